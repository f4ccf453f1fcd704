"""kill -9 of the runner mid-stage: no half-written artifact, and the next run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FNS = """
import os, time
from pathlib import Path

def quick():
    return 41

def slow(params, output, upstream):
    (output / "partial.bin").write_bytes(b"half")
    Path(params["pidfile"]).write_text(str(os.getpid()))
    time.sleep(float(Path(params["sleepfile"]).read_text()))
    (output / "partial.bin").write_bytes(b"whole")
    return upstream["quick"] + 1
"""

DRIVER = """
import sys
from pathlib import Path
from mlstack.local.runner import Runner
root = Path(sys.argv[1])
stages = [
    {"name": "quick", "kind": "function", "function": "kfns:quick", "needs": []},
    {"name": "slow", "kind": "function", "function": "kfns:slow", "needs": ["quick"],
     "with": {"pidfile": str(root / "pid"), "sleepfile": str(root / "sleep")}},
]
out = Runner(root / ".mlstack", "dev", root, {"stages": stages}).run()
print({n: s.status for n, s in out.stages.items()}, out.stages["slow"].entry["value"])
"""


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_kill_9_mid_stage_then_resume_from_cache(tmp_path: Path) -> None:
    (tmp_path / "kfns.py").write_text(FNS)
    (tmp_path / "driver.py").write_text(DRIVER)
    (tmp_path / "sleep").write_text("60")
    cmd = [sys.executable, str(tmp_path / "driver.py"), str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pidfile = tmp_path / "pid"
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pidfile.exists(), proc.stderr.read() if proc.poll() is not None else "no stage start"
    stage_pid = int(pidfile.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert _gone(stage_pid), "the stage outlived its runner"

    objects = tmp_path / ".mlstack/artifacts/objects"
    stored = [p.relative_to(objects) for p in objects.rglob("*") if p.is_file()]
    assert [p.name for p in stored] == ["return.json"]  # quick's output only
    assert not any(p.name == "partial.bin" for p in objects.rglob("*"))
    assert len(list((tmp_path / ".mlstack/artifacts/cache").glob("*.json"))) == 1
    assert list((tmp_path / ".mlstack/artifacts/tmp").iterdir())  # the dead run's staging

    (tmp_path / "sleep").write_text("0")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'quick': 'cached', 'slow': 'ran'} 42"
    assert not list((tmp_path / ".mlstack/artifacts/tmp").iterdir())  # swept
    [slow_out] = [p.parent for p in objects.rglob("partial.bin")]
    assert (slow_out / "partial.bin").read_bytes() == b"whole"


def test_ctrl_c_stops_the_running_stage_and_keeps_the_store_consistent(tmp_path: Path) -> None:
    (tmp_path / "kfns.py").write_text(FNS)
    driver = DRIVER.replace(
        'print({n: s.status for n, s in out.stages.items()}, out.stages["slow"].entry["value"])',
        "print(out.status, out.interrupted, {n: s.status for n, s in out.stages.items()})",
    )
    (tmp_path / "driver.py").write_text(driver)
    (tmp_path / "sleep").write_text("60")
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pidfile = tmp_path / "pid"
    deadline = time.monotonic() + 30
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pidfile.exists()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.strip() == "cancelled True {'quick': 'ran', 'slow': 'cancelled'}"
    assert _gone(int(pidfile.read_text()))
    objects = tmp_path / ".mlstack/artifacts/objects"
    assert not any(p.name == "partial.bin" for p in objects.rglob("*"))
    assert not list((tmp_path / ".mlstack/artifacts/tmp").iterdir())
