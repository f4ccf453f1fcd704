"""`mlstack monitor --act` on the toy backend (real CLI processes): drift with
`on_drift: retrain` goes through apply's path and is recorded in history with its reason; with
nothing new to train on it changes nothing; a retrain that fails changes nothing that serves;
`on_drift: alert` only reports; `schedule show` prints the schedule. The toy's capture shifts
live rows by TOY_DRIFT."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import TOY_SPEC, make_env, run_cli


def _project(root: Path, on_drift: str) -> Path:
    spec = yaml.safe_load(TOY_SPEC)
    spec["deployment"] = {"endpoint": "ep", "strategy": "all_at_once"}
    spec["monitoring"] = {
        "schedule": "*/30 * * * *",
        "drift": {"threshold": 0.2, "on_drift": on_drift},
    }
    (root / "mlstack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def _edit_fit(root: Path, command: str) -> None:
    """A changed stage stands in for new data: the run is out of date, so apply retrains."""
    spec = yaml.safe_load((root / "mlstack.yaml").read_text())
    spec["pipeline"]["stages"][1]["run"] = command
    (root / "mlstack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


def _served(root: Path, env: dict[str, str]) -> object:
    p = run_cli("output", "-e", "dev", "endpoint.ep", "--json", cwd=root, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _monitor_act(root: Path, env: dict[str, str], status: int) -> dict:
    p = run_cli("monitor", "-e", "dev", "--act", "--json", cwd=root, env=env)
    assert p.returncode == status, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout) if status != 1 else {"stderr": p.stderr}


def test_act_retrains_through_apply_and_records_the_reason(tmp_path: Path) -> None:
    root = _project(tmp_path, "retrain")
    env = make_env(TOY_HOME=str(tmp_path / "platform"))
    assert run_cli("apply", "-e", "dev", "--auto-approve", cwd=root, env=env).returncode == 0

    calm = _monitor_act(root, make_env(TOY_HOME=str(tmp_path / "platform")), 0)
    assert calm["act"]["action"] == "none"

    drifted = make_env(TOY_HOME=str(tmp_path / "platform"), TOY_DRIFT="3")
    same = _monitor_act(root, drifted, 2)
    assert same["act"]["action"] == "unchanged" and "add recent data" in same["act"]["message"]

    before = _served(root, env)
    _edit_fit(root, "echo fit v2")
    done = _monitor_act(root, drifted, 2)
    assert done["act"]["action"] == "retrained", done["act"]
    assert done["reason"].startswith("drift in x, PSI ")
    hist = json.loads(run_cli("state", "history", "-e", "dev", "--json", cwd=root, env=env).stdout)
    retrains = [h for h in hist if h["operation"] == "retrain"]
    assert len(retrains) == 1 and retrains[0]["status"] == "ok"
    assert json.dumps(retrains[0]).count(done["reason"]) == 1

    # a retrain that fails: exit 1, history says failed, the endpoint's record is untouched
    after_ok = _served(root, env)
    _edit_fit(root, "echo fit v3")
    failing = make_env(TOY_HOME=str(tmp_path / "platform"), TOY_DRIFT="3", TOY_FAIL_KIND="run")
    _monitor_act(root, failing, 1)
    assert _served(root, env) == after_ok
    assert after_ok != before  # the retrained version serves now

    # on_drift: alert only reports, and records nothing
    spec = yaml.safe_load((root / "mlstack.yaml").read_text())
    spec["monitoring"]["drift"]["on_drift"] = "alert"
    (root / "mlstack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    alert = _monitor_act(root, drifted, 2)
    assert alert["act"]["action"] == "alert"
    hist2 = json.loads(run_cli("state", "history", "-e", "dev", "--json", cwd=root, env=env).stdout)
    assert len(hist2) == len(hist) + 1  # only the failed retrain was recorded since

    # the schedule: a crontab line and CI schedules running the same command
    shown = run_cli("schedule", "show", "-e", "dev", "--json", cwd=root, env=env)
    assert shown.returncode == 0, shown.stderr
    sched = json.loads(shown.stdout)
    assert sched["command"] == "mlstack monitor -e dev --since 30m"
    assert sched["crontab"].startswith("*/30 * * * * cd ")
    assert 'cron: "*/30 * * * *"' in sched["github_actions"]
