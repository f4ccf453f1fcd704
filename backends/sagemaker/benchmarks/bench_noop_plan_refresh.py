"""A no-op `mlstack plan -e dev` after an apply, with refresh (asks AWS what exists) and without.

Usage: .venv/bin/python backends/sagemaker/benchmarks/bench_noop_plan_refresh.py [--runs 5]

AWS is the tests' moto server on 127.0.0.1 (started here, in-process, with the fixture's
stand-in for the pipeline's jobs), so the refresh round trips are local HTTP, not a region's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MLSTACK = Path(sys.executable).parent / "mlstack"


def _load(name: str, path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import logging

    logging.getLogger("werkzeug").disabled = True  # the server's request log
    fixture = _load("sm_conftest", HERE.parent / "tests" / "conftest.py")
    cli_test = _load("sm_cli_test", HERE.parent / "tests" / "test_sagemaker_cli.py")
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", NO_COLOR="1",
        AWS_EC2_METADATA_DISABLED="true",
    )  # fmt: skip
    with fixture.moto_server() as url, tempfile.TemporaryDirectory() as tmp:
        import boto3

        fixture.EXECUTION_HOOKS.append(cli_test.Jobs())
        s3 = boto3.client("s3", endpoint_url=url, region_name="eu-west-1")
        s3.create_bucket(
            Bucket=cli_test.BUCKET,
            CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
        )
        root = Path(tmp)
        cli_test._write_project(root, url)
        subprocess.run([str(MLSTACK), "apply", "-e", "dev", "--auto-approve"], cwd=root,
                       check=True, capture_output=True)  # fmt: skip
        for flag in ("--refresh", "--no-refresh"):
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                r = subprocess.run(
                    [str(MLSTACK), "plan", "-e", "dev", "--detailed-exitcode", flag],
                    cwd=root,
                    capture_output=True,
                    text=True,
                )
                times.append(time.perf_counter() - start)
                if r.returncode != 0:
                    sys.exit(f"expected a no-op plan (exit 0):\n{r.stdout}\n{r.stderr}")
            print(f"no-op plan {flag:<12} median {statistics.median(times):.2f}s "
                  f"runs {', '.join(f'{t:.2f}' for t in times)}")  # fmt: skip


if __name__ == "__main__":
    main()
