"""Two applies at once, kill -9 half-way, stale locks and force-unlock: real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mlstack.engine.lock import is_held, read_info

pytestmark = pytest.mark.e2e


def lock_path(root: Path) -> Path:
    return root / ".mlstack" / "state" / "dev.lock"


def serial(root: Path) -> int:
    with sqlite3.connect(root / ".mlstack" / "state" / "dev.db") as c:
        return int(c.execute("SELECT value FROM meta WHERE key='serial'").fetchone()[0])


def wait_until_locked(root: Path, proc: subprocess.Popen[str], limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        info = read_info(lock_path(root))
        if info is not None and info.pid == proc.pid and is_held(lock_path(root)):
            return
        assert proc.poll() is None, "the first apply ended before taking the lock"
        time.sleep(0.02)
    raise AssertionError("the first apply never took the lock")


def read_until(proc: subprocess.Popen[str], marker: str) -> list[str]:
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # blocks per line; EOF (process gone) ends the loop
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never appeared: {''.join(seen)}")


def test_second_apply_waits_then_fails_naming_the_holder(
    toy_project: Path, cli, toy_env, mlstack_cmd
) -> None:
    # the first apply's run finishes only when the test creates this file (not after a sleep)
    go = Path(tempfile.mkdtemp()) / "go"
    slow = toy_env(TOY_WAIT_FILE=str(go))
    first = subprocess.Popen(
        [*mlstack_cmd, "apply", "--auto-approve"],
        cwd=toy_project,
        env=slow,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_locked(toy_project, first)
        # a patient third apply waits for the lock and then finds nothing to do
        patient = subprocess.Popen(
            [*mlstack_cmd, "apply", "--auto-approve", "--lock-timeout", "60s"],
            cwd=toy_project,
            env=slow,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        second = cli("apply", "--auto-approve", "--lock-timeout", "1s", cwd=toy_project, env=slow)
        assert first.poll() is None, "the first apply should still be running"
        assert second.returncode == 1
        assert "Waiting up to 1s for the state lock held by apply" in second.stderr
        assert "Error: state is locked: apply by " in second.stderr
        assert f"(pid {first.pid} on {socket.gethostname()}" in second.stderr
        assert "mlstack force-unlock " in second.stderr
        assert "Traceback" not in second.stderr
        go.touch()
        out1, err1 = first.communicate(timeout=60)
        out3, err3 = patient.communicate(timeout=60)
    finally:
        first.kill()
    assert first.returncode == 0, err1
    assert "Apply complete! Resources: 4 added" in out1
    assert patient.returncode == 0, err3
    assert "Waiting up to 60s" in err3
    assert "No changes." in out3
    # state intact: every resource once, one history entry, nobody left holding the lock
    assert cli("state", "list", cwd=toy_project).stdout.split() == [
        "infra.dev",
        "model.toymodel",
        "pipeline.toyproj",
        "run.toyproj",
    ]
    assert serial(toy_project) == 4
    hist = json.loads(cli("state", "history", "--json", cwd=toy_project).stdout)
    assert [(h["operation"], h["status"]) for h in hist] == [("apply", "ok")]
    assert not is_held(lock_path(toy_project))
    assert json.loads((toy_project / ".mlstack/envs/dev/toy.json").read_text())["runs"] == 1


def test_kill_9_half_way_then_plan_is_consistent_and_lock_is_stale(
    toy_project: Path, cli, toy_env, mlstack_cmd
) -> None:
    proc = subprocess.Popen(
        [*mlstack_cmd, "apply", "--auto-approve"],
        cwd=toy_project,
        env=toy_env(TOY_SLEEP="60"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_until(proc, "run.toyproj: creating...")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    # what finished is recorded; the run in flight and what follows it are planned again
    listed = cli("state", "list", cwd=toy_project)
    assert listed.stdout.split() == ["infra.dev", "pipeline.toyproj"]
    plan = cli("plan", cwd=toy_project)
    assert plan.returncode == 0, plan.stderr
    assert "+ run.toyproj" in plan.stdout and "+ model.toymodel" in plan.stdout
    assert "infra.dev" not in plan.stdout and "pipeline.toyproj" not in plan.stdout
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in plan.stdout

    # the dead apply's lock record is still there, but nobody holds the lock
    info = read_info(lock_path(toy_project))
    assert info is not None and info.pid == proc.pid
    assert info.process_alive() is False
    assert not is_held(lock_path(toy_project))

    resumed = cli("apply", "--auto-approve", cwd=toy_project)
    assert resumed.returncode == 0, resumed.stderr
    assert "took over a stale lock left by a dead process" in resumed.stderr
    assert f"pid {proc.pid}" in resumed.stderr
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in resumed.stdout
    assert "No changes." in cli("plan", cwd=toy_project).stdout


def test_force_unlock_needs_the_right_id(toy_project: Path, cli, toy_env, mlstack_cmd) -> None:
    proc = subprocess.Popen(
        [*mlstack_cmd, "apply", "--auto-approve"],
        cwd=toy_project,
        env=toy_env(TOY_SLEEP="60"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_until(proc, "run.toyproj: creating...")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    info = read_info(lock_path(toy_project))
    assert info is not None

    wrong = cli("force-unlock", "0123456789ab", cwd=toy_project)
    assert wrong.returncode == 1
    assert "does not match the current lock" in wrong.stderr
    assert f"mlstack force-unlock {info.id}" in wrong.stderr
    assert read_info(lock_path(toy_project)) == info

    right = cli("force-unlock", info.id, cwd=toy_project)
    assert right.returncode == 0, right.stderr
    assert f"Lock {info.id} removed" in right.stdout
    assert read_info(lock_path(toy_project)) is None

    again = cli("force-unlock", info.id, cwd=toy_project)
    assert again.returncode == 1 and "the state is not locked" in again.stderr

    resumed = cli("apply", "--auto-approve", cwd=toy_project)
    assert resumed.returncode == 0, resumed.stderr
    assert "stale lock" not in resumed.stderr


def test_bad_lock_timeout_is_a_user_error(toy_project: Path, cli) -> None:
    proc = cli("apply", "--auto-approve", "--lock-timeout", "soon", cwd=toy_project)
    assert proc.returncode == 1
    assert "--lock-timeout" in proc.stderr and "Traceback" not in proc.stderr
