"""`deployment.batching` in the spec: checked values with errors at file:line, accepted on the
local backend, refused at `validate` on a backend whose endpoints do not batch (named)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from quickstart_copy import quickstart_project

from mlstack.manifest.models import Deployment

ROLE = "arn:aws:iam::123456789012:role/mlstack-sm"
SAGEMAKER = f"    region: eu-west-1\n    role: {ROLE}\n    bucket: shop-artifacts\n"


def test_defaults_and_limits() -> None:
    d = Deployment.model_validate({"endpoint": "e", "batching": {}})
    assert d.batching_fields() == {"max_batch": 32, "max_latency": 0.005}
    assert Deployment(endpoint="e").batching_fields() == {"max_batch": 0, "max_latency": 0.0}
    d = Deployment.model_validate({"endpoint": "e", "batching": {"max_latency": "20ms"}})
    assert d.batching_fields()["max_latency"] == pytest.approx(0.02)


def _project(tmp_path: Path, backend: str, batching: str, settings: str = "") -> int:
    """The quickstart on ``backend`` with ``batching`` under its deployment; the line of it."""
    quickstart_project(tmp_path, backend, settings)
    f = tmp_path / "mlstack.yaml"
    text = f.read_text().replace("\ndeployment:\n", f"\ndeployment:\n  batching: {batching}\n", 1)
    f.write_text(text)
    return next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("  batching:"))


def _validate(cwd: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(NO_COLOR="1", AWS_EC2_METADATA_DISABLED="true")
    r = subprocess.run(
        [sys.executable, "-m", "mlstack.cli.main", "validate", "-e", "dev"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return r.returncode, r.stdout + r.stderr


def test_bad_values_are_reported_at_their_lines(tmp_path: Path) -> None:
    line = _project(tmp_path, "local", "{max_batch: 1, max_latency: 2s, size: 3}")
    code, out = _validate(tmp_path)
    assert code == 1 and "Traceback" not in out, out
    assert f"mlstack.yaml:{line}:" in out
    assert "max_batch 1: a batch holds 2 to 1024 rows" in out, out
    assert "max_latency 2s: the longest a request waits" in out and "at most 1s" in out, out
    assert "size" in out, out


def test_local_accepts_batching_and_sagemaker_refuses_it_by_name(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    _project(tmp_path / "local", "local", "{max_batch: 16, max_latency: 5ms}")
    code, out = _validate(tmp_path / "local")
    assert code == 0, out
    (tmp_path / "sm").mkdir()
    line = _project(tmp_path / "sm", "sagemaker", "{max_batch: 16}", SAGEMAKER)
    code, out = _validate(tmp_path / "sm")
    assert code == 1 and "Traceback" not in out, out
    assert f"mlstack.yaml:{line}:" in out, out
    assert "adaptive batching (`batching:`) is not available on this backend" in out, out
    assert "backend 'sagemaker'" in out and "remove `batching:`" in out, out
