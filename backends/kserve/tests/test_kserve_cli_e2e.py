"""The quickstart through the CLI with staging on the fake cluster (Serverless): `dev` trains on
the local backend; `promote dev staging` copies the artifact to S3 storage, registers it in the
namespace and rolls it out as an InferenceService; status and predict go through the cluster's
ingress; a canary whose version fails its error-rate gate (read from Prometheus) is rolled
back to the last revision rolled out; destroy removes what mlstack made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from conftest import NAMESPACE, FakeCluster

_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]
QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _project(root: Path, fc: FakeCluster, n_estimators: int) -> None:
    """The quickstart; staging changes only `backend:` and adds the cluster settings."""
    text = (QUICKSTART / "mlstack.yaml").read_text()
    staging = "  staging:\n    backend: local\n"
    assert staging in text
    settings = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in fc.settings("Serverless").items())
    text = text.replace(staging, "  staging:\n    backend: kserve\n" + settings, 1)
    text = text.replace("n_estimators: 100", f"n_estimators: {n_estimators}")
    (root / "mlstack.yaml").write_text(text)


def _cli(root: Path, *args: str, status: int = 0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSTACK_", "AWS_", "KUBE"))}
    env.update(
        NO_COLOR="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    r = subprocess.run(
        [*MLSTACK, *args], cwd=root, capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == status, f"mlstack {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr
    return r.stdout + r.stderr


class Traffic:
    """Clients calling the endpoint through the ingress until stopped (for the gates)."""

    def __init__(self, fc: FakeCluster, row: dict[str, object]) -> None:
        self.fc, self.row = fc, row
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = json.dumps({"instances": [self.row]}).encode()
        while not self.stop.is_set():
            req = urllib.request.Request(
                self.fc.ingress_url + "/v1/models/cancer-classifier:predict",
                data=body,
                headers={"Host": f"cancer.{NAMESPACE}.example.com"},
                method="POST",
            )
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except OSError:
                pass  # 5xx answers are what the gate must see

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def test_quickstart_promoted_to_kserve(fake_cluster: FakeCluster, tmp_path: Path) -> None:
    fc = fake_cluster
    data = QUICKSTART / "data" / "cancer.csv"
    if not data.exists():
        subprocess.run(
            [sys.executable, "prepare_data.py"], cwd=QUICKSTART, check=True, capture_output=True
        )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cancer.csv").write_bytes(data.read_bytes())
    row = json.loads((QUICKSTART / "sample.json").read_text())
    _project(tmp_path, fc, n_estimators=100)
    try:
        assert "is valid" in _cli(tmp_path, "validate")
        plan = _cli(tmp_path, "plan", "-e", "staging", "--no-refresh")
        assert "backend kserve" in plan
        _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")

        out = _cli(tmp_path, "promote", "dev", "staging")
        isvc = fc.api.get("inferenceservices", NAMESPACE, "cancer")
        assert isvc is not None, out
        env = next(e for e in isvc["spec"]["predictor"]["containers"][0]["env"])
        assert env["value"].startswith("s3://ml-artifacts/quickstart/models/cancer-classifier/")
        status = _cli(tmp_path, "status", "-e", "staging")
        assert f"http://cancer.{NAMESPACE}.example.com" in status and "Ready" in status, status
        answer = _cli(tmp_path, "predict", "-e", "staging", "--data", json.dumps(row))
        assert "predictions" in answer or "prediction" in answer.lower(), answer

        # a second version whose answers fail: the canary's error-rate gate rolls it back
        _project(tmp_path, fc, n_estimators=60)
        _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
        fc.cluster.break_versions.add("2")
        with Traffic(fc, row):
            out = _cli(tmp_path, "promote", "dev", "staging", status=1)
        assert "rolled back" in out, out
        assert "error_rate" in out, out
        isvc = fc.api.get("inferenceservices", NAMESPACE, "cancer")
        assert isvc is not None
        traffic = isvc["status"]["components"]["predictor"]["traffic"]
        served = {t["revisionName"]: t["percent"] for t in traffic if t["percent"]}
        assert served == {"cancer-predictor-00001": 100}, traffic
        status = _cli(tmp_path, "status", "-e", "staging")
        assert "1" in status and "100" in status, status

        _cli(tmp_path, "destroy", "-e", "staging", "--auto-approve")
        assert fc.api.get("inferenceservices", NAMESPACE, "cancer") is None
    finally:
        subprocess.run(
            [*MLSTACK, "destroy", "-e", "dev", "--auto-approve"],
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
        )
        fc.cluster.break_versions.clear()
