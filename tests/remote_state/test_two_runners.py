"""Two CI runners, simulated as processes in two checkouts that share one remote state (and one
platform, TOY_HOME): one apply waits for the other and fails naming it; kill -9 of a holder
leaves a lock that is reported stale and that force-unlock clears."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from mlstack.engine.lock_remote import parse
from mlstack.engine.objectstore import open_store
from mlstack.manifest.models import StateConfig
from tests.conftest import MLSTACK, TOY_SPEC, make_env, run_cli

pytestmark = pytest.mark.e2e


def checkout(root: Path, block: dict) -> Path:
    spec = yaml.safe_load(TOY_SPEC)
    spec["state"] = block
    root.mkdir()
    (root / "mlstack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def wait_for_holder(block: dict, proc: subprocess.Popen[str], limit: float = 60) -> str:
    cfg = StateConfig(**block)
    store = open_store(cfg.backend, cfg.model_dump())
    key = f"{block['prefix']}/dev/lock.json"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        info = parse(store.lock_read(key))
        if info is not None and info.pid == proc.pid:
            return info.id
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("the first runner never took the lock")


def test_two_runners_share_remote_state_and_its_lock(remote, tmp_path: Path) -> None:
    srv, block = remote
    a, b = checkout(tmp_path / "a", block), checkout(tmp_path / "b", block)
    env = make_env(**srv.env, TOY_HOME=str(tmp_path / "platform"))
    go = tmp_path / "go"  # the first runner's apply finishes only once this file exists
    slow = {**env, "TOY_WAIT_FILE": str(go)}

    first = subprocess.Popen(
        [*MLSTACK, "apply", "--auto-approve"],
        cwd=a,
        env=slow,
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_holder(block, first)
        second = run_cli("apply", "--auto-approve", "--lock-timeout", "1s", cwd=b, env=env)
        assert first.poll() is None, "the first runner should still hold the lock"
        go.touch()
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert second.returncode == 1, second.stderr
    assert "Waiting up to 1s for the state lock held by apply" in second.stderr
    assert "state is locked: apply by " in second.stderr
    assert f"pid {first.pid} " in second.stderr
    assert first.returncode == 0, err
    # the other checkout sees what the first applied: nothing left to do
    plan = run_cli("plan", "--detailed-exitcode", cwd=b, env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr

    # a runner killed while holding the lock leaves it behind
    spec = yaml.safe_load((a / "mlstack.yaml").read_text())
    spec["pipeline"]["stages"][1]["run"] = "echo fit again"
    (a / "mlstack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    victim = subprocess.Popen(
        [*MLSTACK, "apply", "--auto-approve"],
        cwd=a,
        env={**env, "TOY_WAIT_FILE": str(tmp_path / "never")},
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock_id = wait_for_holder(block, victim)
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    blocked = run_cli("apply", "--auto-approve", cwd=b, env=env, timeout=180)
    assert blocked.returncode == 1
    assert "state is locked by a stale lock" in blocked.stderr
    assert f"its process {victim.pid} on " in blocked.stderr and "is gone" in blocked.stderr
    assert f"mlstack force-unlock {lock_id}" in blocked.stderr
    assert "Traceback" not in blocked.stderr

    unlocked = run_cli("force-unlock", lock_id, cwd=b, env=env)
    assert unlocked.returncode == 0, unlocked.stderr
    assert f"Lock {lock_id} removed" in unlocked.stdout
    spec_b = yaml.safe_load((b / "mlstack.yaml").read_text())
    spec_b["pipeline"]["stages"][1]["run"] = "echo fit again"
    (b / "mlstack.yaml").write_text(yaml.safe_dump(spec_b, sort_keys=False))
    done = run_cli("apply", "--auto-approve", cwd=b, env=env)
    assert done.returncode == 0, done.stderr
    again = run_cli("plan", "--detailed-exitcode", cwd=a, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
