"""kill -9 of `apply`, `promote` and `rollback` at random points, many times (seeded, bounded),
on the `local` backend with real pipelines, model servers and routers on 127.0.0.1.

After each kill the next `apply` of that environment must bring it back to agreement:
- the model servers and routers running for the project are exactly the ones `status --json`
  reports (no orphan holding a port and ~300 MB), and each of them is alive;
- the endpoint answers a prediction;
- `plan --detailed-exitcode` of dev finds nothing left to do (state and what exists agree).
At the end `destroy` of both environments leaves no process of the project running.

Only the CLI is used (observable behaviour), so the test holds across rewrites of the release
commands. ``MLSTACK_CRASH_KILLS`` sets the number of kills (default 8; `make fuzz` runs 50) and
``MLSTACK_CRASH_SEED`` the seed; the figures go to ``MLSTACK_CRASH_REPORT`` when set.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import MLSTACK, run_cli, write_xy_csv

KILLS = int(os.environ.get("MLSTACK_CRASH_KILLS", "8"))
SEED = int(os.environ.get("MLSTACK_CRASH_SEED", "20261130"))
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300 + 240 * KILLS)]

SPEC = """\
project: crash
environments:
  dev: {backend: local}
  staging: {backend: local, promote_from: dev}
data:
  source: data/train.csv
  target: label
  split: {strategy: stratified, by: label, test: 0.25, seed: 1}
pipeline:
  stages:
    - {name: ingest, uses: builtin/ingest}
    - {name: split, uses: builtin/split, needs: [ingest]}
    - {name: features, uses: builtin/features, needs: [split], with: {numeric: [x1, x2]}}
    - name: train
      uses: builtin/train
      needs: [features]
      with: {estimator: sklearn.linear_model.LogisticRegression, params: {C: 1.0}}
    - {name: evaluate, uses: builtin/evaluate, needs: [train]}
    - {name: register, uses: builtin/register, needs: [evaluate]}
model: {name: crash-model}
deployment:
  endpoint: crash
  strategy: all_at_once
"""


def _cli(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    p = run_cli(*args, cwd=root, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr
    if ok:
        assert p.returncode == 0, f"{args}: {p.stdout}\n{p.stderr}"
    return p


def _project_processes(root: Path) -> set[int]:
    """Model servers and routers whose command line names this project's folder."""
    mark = str(root.resolve())
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if mark in cmd and "mlstack.local.serving." in cmd and stat != "Z":
            found.add(int(entry))
    return found


def _reported(root: Path, env: str) -> set[int]:
    st = json.loads(_cli(root, "status", "-e", env, "--json", ok=False).stdout or "{}")
    live = st.get("live") or {}
    pids = {
        int(m.group(1))
        for v in live.get("versions") or []
        if v.get("healthy") and (m := re.search(r"pid (\d+)", v.get("where") or ""))
    }
    details = live.get("details") or {}
    if "not running" not in str(details.get("router", "")) and details.get("router pid"):
        pids.add(int(details["router pid"]))
    return pids


def _check_agreement(root: Path) -> None:
    reported = set()
    for env in ("dev", "staging"):
        reported |= _reported(root, env)
        # both environments: staging's promotion is its desired state, so its plan is empty too
        plan = _cli(root, "plan", "-e", env, "--detailed-exitcode", ok=False)
        assert plan.returncode == 0, f"plan -e {env} after recovery:\n{plan.stdout}{plan.stderr}"
        pred = _cli(root, "predict", "-e", env, "--data", '{"x1": 0.5, "x2": -0.2}', ok=False)
        assert pred.returncode == 0, f"predict -e {env}: {pred.stdout}{pred.stderr}"
    running = _project_processes(root)
    assert running == reported, f"running {sorted(running)} but status reports {sorted(reported)}"


def _peak_rss_kb(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def test_random_kills_leave_state_artifacts_and_processes_in_agreement(tmp_path: Path) -> None:
    root = tmp_path
    write_xy_csv(root, 200)
    (root / "mlstack.yaml").write_text(SPEC)
    rng = random.Random(SEED)
    started = time.monotonic()
    figures: dict[str, object] = {"seed": SEED, "kills": 0, "finished_before_kill": 0}
    peak = 0
    try:
        _cli(root, "apply", "-e", "dev", "--auto-approve")
        _cli(root, "promote", "dev", "staging", "--auto-approve")
        c = 1.0
        trials = 0
        while figures["kills"] < KILLS:  # type: ignore[operator]
            trials += 1
            assert trials <= 4 * KILLS, "too many operations finished before their kill"
            op = rng.choice(["apply", "promote", "rollback"])
            env = "staging" if op == "promote" else rng.choice(["dev", "staging"])
            if op == "apply":
                env = "dev"
                c = round(c * 1.7 % 9 + 0.1, 3)  # a new model: the apply has real work to do
                (root / "mlstack.yaml").write_text(SPEC.replace("C: 1.0", f"C: {c}"))
                args = ["apply", "-e", "dev", "--auto-approve"]
            elif op == "promote":
                args = ["promote", "dev", "staging", "--auto-approve"]
            else:
                args = ["rollback", "-e", env, "--auto-approve"]
            proc = subprocess.Popen(
                [*MLSTACK, *args],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={k: v for k, v in os.environ.items() if not k.startswith("MLSTACK_")},
            )
            delay = rng.uniform(0.2, 8.0)
            try:
                proc.wait(timeout=delay)
                figures["finished_before_kill"] += 1  # type: ignore[operator]
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)  # the CLI process only, as a user's kill -9
                proc.wait()
                figures["kills"] += 1  # type: ignore[operator]
            peak = max(peak, _peak_rss_kb(_project_processes(root)))
            # recovery as a user would: apply each environment (staging's recorded release is
            # finished), promote dev's newest model, then state, processes and plans must agree
            _cli(root, "apply", "-e", "dev", "--auto-approve")
            _cli(root, "apply", "-e", "staging", "--auto-approve")
            _cli(root, "promote", "dev", "staging", "--auto-approve")
            _check_agreement(root)
    finally:
        for env in ("staging", "dev"):
            run_cli("destroy", "-e", env, "--auto-approve", cwd=root, timeout=600)
        left = _project_processes(root)
        for pid in left:  # never leave a process behind, whatever the outcome
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        figures.update(
            seconds=round(time.monotonic() - started, 1),
            peak_serving_rss_mb=round(peak / 1024, 1),
            left_after_destroy=sorted(left),
        )
        report = os.environ.get("MLSTACK_CRASH_REPORT")
        if report:
            Path(report).write_text(json.dumps(figures, indent=1))
    assert not left, f"processes survived destroy: {sorted(left)}"
