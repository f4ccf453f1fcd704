"""The pipeline half of the quickstart through the real CLI: apply, no-op apply, a parameter
change that reruns only what follows it, new data rows that rerun everything after ingest (plan
says so first), and bad data that stops at validate with exit code 1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import make_env, run_cli
from tests.unit.local.conftest import BUILTIN_STAGES, DATA_BLOCK, cancer_frame

pytestmark = pytest.mark.e2e


def _latest_run(root: Path) -> dict:
    runs = sorted((root / ".mlstack/envs/dev/runs").glob("*.json"))
    return json.loads(runs[-1].read_text())


def test_apply_noop_param_change_new_data_and_bad_data(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    cancer_frame().to_csv(tmp_path / "data/cancer.csv", index=False)
    body = DATA_BLOCK + BUILTIN_STAGES.replace("{gate}", '"roc_auc >= 0.8"')
    (tmp_path / "mlstack.yaml").write_text(
        "project: demo\nenvironments:\n  dev: {backend: local}\n" + body
    )
    env = make_env()

    first = run_cli("apply", "-e", "dev", "--auto-approve", cwd=tmp_path, env=env, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert set(_latest_run(tmp_path)["stages"][s]["status"] for s in ("ingest", "train")) == {"ran"}
    models = run_cli("models", "-e", "dev", "--json", cwd=tmp_path, env=env)
    assert json.loads(models.stdout)[0]["version"] == "1", models.stderr

    runs_before = len(list((tmp_path / ".mlstack/envs/dev/runs").glob("*.json")))
    noop = run_cli("apply", "-e", "dev", "--auto-approve", cwd=tmp_path, env=env)
    assert noop.returncode == 0, noop.stderr
    assert len(list((tmp_path / ".mlstack/envs/dev/runs").glob("*.json"))) == runs_before

    spec = tmp_path / "mlstack.yaml"
    spec.write_text(spec.read_text().replace("max_iter: 300", "max_iter: 400"))
    changed = run_cli("apply", "-e", "dev", "--auto-approve", cwd=tmp_path, env=env, timeout=120)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    statuses = {n: s["status"] for n, s in _latest_run(tmp_path)["stages"].items()}
    assert statuses == {
        "ingest": "cached",
        "validate": "cached",
        "split": "cached",
        "features": "cached",
        "train": "ran",
        "evaluate": "ran",
        "register": "ran",
    }
    logs = run_cli("logs", "-e", "dev", "train", cwd=tmp_path, env=env)
    assert "trained sklearn.linear_model.LogisticRegression" in logs.stdout

    # new rows in the CSV: plan says ingest reruns for its data and every stage after it
    # because of what it follows; apply then runs exactly those stages
    more = cancer_frame(rows=60, seed=11)
    more.to_csv(tmp_path / "data/cancer.csv", mode="a", header=False, index=False)
    plan = run_cli("plan", "-e", "dev", "--json", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr
    changes = {c["address"]: c for c in json.loads(plan.stdout)["resource_changes"]}
    assert changes["dataset.demo"]["action"] == "update"
    reasons = changes["run.demo"]["details"]["stages"]
    assert reasons["ingest"] == "data digest changed"
    assert reasons["validate"] == "upstream ingest reruns"
    assert reasons["split"] == "upstream validate reruns"
    assert set(reasons) == {
        "ingest",
        "validate",
        "split",
        "features",
        "train",
        "evaluate",
        "register",
    }
    text = run_cli("plan", "-e", "dev", cwd=tmp_path, env=env).stdout
    assert "> ingest: data digest changed" in text and "> train: upstream features reruns" in text
    rerun = run_cli("apply", "-e", "dev", "--auto-approve", cwd=tmp_path, env=env, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    latest = _latest_run(tmp_path)
    assert {s["status"] for s in latest["stages"].values()} == {"ran"}
    assert latest["dataset"]["rows"] == 300

    bad = cancer_frame()
    bad.loc[3, "mean_radius"] = None
    bad.loc[5, "mean_smoothness"] = 4.2
    bad.loc[7, "tumor_size"] = "huge"
    bad.to_csv(tmp_path / "data/cancer.csv", index=False)
    stopped = run_cli("apply", "-e", "dev", "--auto-approve", cwd=tmp_path, env=env, timeout=120)
    text = stopped.stdout + stopped.stderr
    assert stopped.returncode == 1, text
    headline = re.search(
        r"data validation failed in (\S*)data/cancer.csv \(\d+ rows\): column '(\w+)'", text
    )
    assert headline and headline.group(2) == "mean_radius", text
    assert "(and 2 more)" in text
    for col in ("mean_radius", "mean_smoothness", "tumor_size"):
        assert f"column '{col}'" in text
    assert "Traceback" not in text
    after = json.loads(run_cli("models", "-e", "dev", "--json", cwd=tmp_path, env=env).stdout)
    assert [v["version"] for v in after] == ["3", "2", "1"]
