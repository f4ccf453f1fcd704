"""Shared fixtures: the toy backend "installed" on PYTHONPATH, and the CLI as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOY = REPO / "tests" / "fixtures" / "toybackend"
# the installed console script, as a user runs it
_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]

TOY_SPEC = """\
project: toyproj
environments:
  dev:
    backend: toy
pipeline:
  parallelism: 4
  stages:
    - name: prep
      run: echo prep
    - name: fit
      run: echo fit
      needs: [prep]
model:
  name: toymodel
"""


# Every process the suite starts (CLI runs, and the model servers and routers they start, which
# inherit their environment) carries this marker; at the end the suite fails if one survives.
SESSION_MARKER = "MLSTACK_TEST_SESSION"
SESSION_ID = os.environ.setdefault(SESSION_MARKER, uuid.uuid4().hex)


def make_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI process that sees the toy backend (and no TOY_* knobs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOY_", "MLSTACK_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOY), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    env[SESSION_MARKER] = SESSION_ID
    env.update(extra)
    return env


def marked_processes(session_id: str = SESSION_ID) -> dict[int, str]:
    """pid -> command line of every live process (but this one) started by this test session."""
    needle = f"{SESSION_MARKER}={session_id}".encode()
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # exited, not yet reaped by its parent
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


@pytest.hookimpl(trylast=True)  # under xdist: after the controller has stopped its workers
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a process the suite started outlives it (then stop it).

    Under pytest-xdist only the controller checks, once every worker has finished: a worker
    that finishes first would take the others' live servers for leaks."""
    if not os.path.isdir("/proc") or hasattr(session.config, "workerinput"):
        return
    # processes told to stop may still be exiting: give them a grace period
    deadline = time.monotonic() + float(os.environ.get("MLSTACK_TEST_LEAK_GRACE", "15"))
    survivors = marked_processes()
    while survivors and time.monotonic() < deadline:
        time.sleep(0.2)
        survivors = marked_processes()
    if not survivors:
        return
    for pid in survivors:
        try:
            group = os.getpgid(pid)
            if group != os.getpgrp():  # a server's own session: take its children with it
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    lines = "\n".join(f"  pid {pid}: {cmd[:200]}" for pid, cmd in sorted(survivors.items()))
    sys.stderr.write(
        f"\nERROR: {len(survivors)} process(es) started by the test suite were still running "
        f"at its end (now killed):\n{lines}\n"
    )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    stdin: int | None = subprocess.DEVNULL,
) -> subprocess.CompletedProcess[str]:
    """`mlstack ARGS` in a fresh process; stdin is not a terminal unless the caller says so."""
    return subprocess.run(
        [*MLSTACK, *args],
        cwd=cwd,
        env=env or make_env(),
        text=True,
        capture_output=True,
        timeout=timeout,
        stdin=stdin,
    )


def write_xy_csv(root: Path, rows: int, seed: int = 3) -> Path:
    """data/train.csv with two gaussian features and a label that depends on them."""
    import random

    rng = random.Random(seed)
    lines = ["x1,x2,label"]
    for _ in range(rows):
        x1, x2 = rng.gauss(0, 1), rng.gauss(0, 1)
        lines.append(f"{x1:.4f},{x2:.4f},{int(x1 + 0.3 * x2 > 0)}")
    (root / "data").mkdir(exist_ok=True)
    path = root / "data" / "train.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_spec(root: Path, text: str) -> Path:
    path = root / "mlstack.yaml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def toy_project(tmp_path: Path) -> Path:
    """A project on the toy backend: infra, pipeline, run and model; no endpoint."""
    write_spec(tmp_path, TOY_SPEC)
    return tmp_path


@pytest.fixture
def toy_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the toy backend importable and discoverable in this process."""
    monkeypatch.syspath_prepend(str(TOY))


@pytest.fixture
def cli():
    """`cli(*args, cwd=..., env=...)`: run mlstack as a real process (see run_cli)."""
    return run_cli


@pytest.fixture
def toy_env():
    """`toy_env(TOY_SLEEP="3", ...)`: a process environment that sees the toy backend."""
    return make_env


@pytest.fixture
def mlstack_cmd() -> list[str]:
    """The argv prefix that starts mlstack, for tests that need a Popen."""
    return list(MLSTACK)
