"""What the user reads about a live endpoint on the `local` backend: `status` says DOWN and
exits 3 once the model server dies (it said "running" and exited 0 while every request got
502); `state history`, `output` and `status` print no Python reprs."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_xy_csv

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

SPEC = """\
project: health
data: {source: data/train.csv, target: label}
pipeline:
  stages:
    - {name: ingest, uses: builtin/ingest}
    - {name: split, uses: builtin/split, needs: [ingest]}
    - {name: features, uses: builtin/features, needs: [split], with: {numeric: [x1, x2]}}
    - name: train
      uses: builtin/train
      needs: [features]
      with: {estimator: sklearn.linear_model.LogisticRegression}
    - {name: evaluate, uses: builtin/evaluate, needs: [train]}
    - {name: register, uses: builtin/register, needs: [evaluate]}
model: {name: health-model}
deployment: {endpoint: health}
"""

REPRS = ("{'", "['", "': ", "(')")


def _no_reprs(text: str) -> None:
    for r in REPRS:
        assert r not in text, text


def test_status_says_down_and_exits_3_when_the_server_dies(tmp_path: Path) -> None:
    write_xy_csv(tmp_path, 200)
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    try:
        a = run_cli("apply", "--auto-approve", cwd=tmp_path, timeout=300)
        assert a.returncode == 0, a.stdout + a.stderr
        s = run_cli("status", cwd=tmp_path)
        assert s.returncode == 0, s.stdout + s.stderr
        assert "state: healthy" in s.stdout
        _no_reprs(s.stdout)
        h = run_cli("state", "history", cwd=tmp_path)
        assert h.returncode == 0 and "apply" in h.stdout and "added" in h.stdout, h.stdout
        _no_reprs(h.stdout)
        o = run_cli("output", cwd=tmp_path)
        assert o.returncode == 0, o.stderr
        _no_reprs(o.stdout)

        live = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)["live"]
        (pid,) = [int(re.search(r"pid (\d+)", v["where"]).group(1)) for v in live["versions"]]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while True:  # wait on the condition: the process is gone
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        down = run_cli("status", cwd=tmp_path)
        assert down.returncode == 3, down.stdout + down.stderr
        assert "state: DOWN" in down.stdout and "not answering" in down.stdout, down.stdout
        assert "NOT HEALTHY" in down.stdout
        assert run_cli("status", "--json", cwd=tmp_path).returncode == 3
        # the router starts the dead worker again by itself (apply has nothing to redo, or
        # recreates what is gone); status says healthy once the new process answers
        assert run_cli("apply", "--auto-approve", cwd=tmp_path, timeout=300).returncode == 0
        deadline = time.monotonic() + 120
        while True:
            again = run_cli("status", cwd=tmp_path)
            if again.returncode == 0 and "state: healthy" in again.stdout:
                break
            assert time.monotonic() < deadline, again.stdout
            time.sleep(0.5)
    finally:
        run_cli("destroy", "--auto-approve", cwd=tmp_path, timeout=300)
