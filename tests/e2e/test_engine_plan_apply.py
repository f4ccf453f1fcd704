"""plan / apply / destroy / output / state through the real CLI, on the toy backend (installed
through its real `mlstack.backends` entry point on PYTHONPATH)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ALL = ["infra.dev", "model.toymodel", "pipeline.toyproj", "run.toyproj"]


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def serial(root: Path) -> int:
    with sqlite3.connect(root / ".mlstack" / "state" / "dev.db") as c:
        return int(c.execute("SELECT value FROM meta WHERE key='serial'").fetchone()[0])


def toy_db(root: Path) -> dict:
    return json.loads((root / ".mlstack" / "envs" / "dev" / "toy.json").read_text())


def edit(root: Path, old: str, new: str) -> None:
    spec = root / "mlstack.yaml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))


def test_plan_apply_then_no_changes_then_change(toy_project: Path, cli) -> None:
    p = ok(cli("plan", cwd=toy_project))
    assert "Plan: 4 to add, 0 to change, 0 to destroy." in p.stdout
    for addr in ALL:
        assert f"+ {addr}" in p.stdout
    assert "> prep: no previous run" in p.stdout
    assert not (toy_project / ".mlstack" / "state" / "dev.db").exists() or serial(toy_project) == 0

    a = ok(cli("apply", "--auto-approve", cwd=toy_project))
    assert "Apply complete! Resources: 4 added, 0 changed, 0 destroyed." in a.stdout
    assert toy_db(toy_project)["runs"] == 1
    assert toy_db(toy_project)["resources"]["infra"] == {"flavour": "vanilla"}

    again = ok(cli("apply", "--auto-approve", cwd=toy_project))
    assert "No changes." in again.stdout
    assert toy_db(toy_project)["runs"] == 1  # nothing ran twice
    assert cli("plan", "--detailed-exitcode", cwd=toy_project).returncode == 0

    edit(toy_project, "run: echo fit", "run: echo fit --harder")
    changed = cli("plan", "--detailed-exitcode", cwd=toy_project)
    assert changed.returncode == 2, changed.stderr
    assert "~ run.toyproj" in changed.stdout
    assert "> fit: definition changed" in changed.stdout
    assert "> prep" not in changed.stdout  # unchanged stage stays cached
    assert "Plan: 0 to add, 3 to change, 0 to destroy." in changed.stdout
    # without --detailed-exitcode a plan with changes is still a success
    assert cli("plan", cwd=toy_project).returncode == 0


def test_backend_setting_change_is_an_update(toy_project: Path, cli) -> None:
    ok(cli("apply", "--auto-approve", cwd=toy_project))
    edit(toy_project, "backend: toy", "backend: toy\n    flavour: chocolate")
    p = ok(cli("plan", cwd=toy_project))
    assert "~ infra.dev" in p.stdout
    assert '~ flavour: "vanilla" → "chocolate"' in p.stdout
    ok(cli("apply", "--auto-approve", cwd=toy_project))
    assert toy_db(toy_project)["resources"]["infra"] == {"flavour": "chocolate"}


def test_saved_plan_applies_exactly_and_is_refused_when_stale(toy_project: Path, cli) -> None:
    ok(cli("plan", "-out", "first.plan", cwd=toy_project))
    applied = ok(cli("apply", "first.plan", cwd=toy_project))  # a saved plan needs no prompt
    assert "4 added" in applied.stdout
    assert serial(toy_project) == 4

    # a plan made, then state moves on (another apply), then the old plan is refused
    edit(toy_project, "run: echo fit", "run: echo fit2")
    ok(cli("plan", "-out", "second.plan", cwd=toy_project))
    ok(cli("apply", "--auto-approve", "--target", "run.toyproj", cwd=toy_project))
    before = serial(toy_project)
    stale = cli("apply", "second.plan", cwd=toy_project)
    assert stale.returncode == 1
    assert "the saved plan is stale: state changed since it was made" in stale.stderr
    assert "Traceback" not in stale.stderr
    assert serial(toy_project) == before

    # a plan made, then the spec changes: refused too
    ok(cli("plan", "-out", "third.plan", cwd=toy_project))
    edit(toy_project, "run: echo prep", "run: echo prep2")
    spec_moved = cli("apply", "third.plan", cwd=toy_project)
    assert spec_moved.returncode == 1
    assert "project file or its data changed" in spec_moved.stderr

    garbage = toy_project / "garbage.plan"
    garbage.write_text("{not json")
    bad = cli("apply", "garbage.plan", cwd=toy_project)
    assert bad.returncode == 1 and "is unreadable" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_plan_json_shape(toy_project: Path, cli) -> None:
    body = json.loads(ok(cli("plan", "--json", cwd=toy_project)).stdout)
    assert body["format_version"] == "1"
    assert body["environment"] == "dev" and body["backend"] == "toy"
    assert body["summary"] == {
        "add": 4,
        "change": 0,
        "destroy": 0,
        "text": "Plan: 4 to add, 0 to change, 0 to destroy.",
    }
    changes = {c["address"]: c for c in body["resource_changes"]}
    assert set(changes) == set(ALL)
    run = changes["run.toyproj"]
    assert run["action"] == "create" and run["kind"] == "run"
    assert set(run["details"]["stages"]) == {"prep", "fit"}
    assert {"path", "before", "after"} <= set(run["diff"][0])
    infra = changes["infra.dev"]
    assert {"path": "flavour", "before": None, "after": "vanilla"} in infra["diff"]

    ok(cli("apply", "--auto-approve", cwd=toy_project))
    after = json.loads(ok(cli("plan", "--json", cwd=toy_project)).stdout)
    assert after["resource_changes"] == []
    assert after["serial"] == 4

    applied = json.loads(ok(cli("apply", "--auto-approve", "--json", cwd=toy_project)).stdout)
    assert applied == {"changes": 0, "summary": after["summary"]["text"]}


def test_target_brings_dependencies_only(toy_project: Path, cli) -> None:
    p = ok(cli("plan", "--target", "pipeline.toyproj", cwd=toy_project))
    assert "Plan: 2 to add" in p.stdout
    assert "+ infra.dev" in p.stdout and "+ pipeline.toyproj" in p.stdout
    assert "run.toyproj" not in p.stdout

    ok(cli("apply", "--auto-approve", "--target", "pipeline.toyproj", cwd=toy_project))
    listed = ok(cli("state", "list", cwd=toy_project)).stdout.split()
    assert listed == ["infra.dev", "pipeline.toyproj"]

    rest = ok(cli("plan", cwd=toy_project))
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in rest.stdout

    typo = cli("plan", "--target", "pipeline.toyprj", cwd=toy_project)
    assert typo.returncode == 1
    assert "did you mean 'pipeline.toyproj'?" in typo.stderr


def test_apply_and_destroy_refuse_without_a_terminal(toy_project: Path, cli) -> None:
    refused = cli("apply", cwd=toy_project)
    assert refused.returncode == 1
    assert "refusing to perform these actions without confirmation" in refused.stderr
    assert "--auto-approve" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (toy_project / ".mlstack" / "envs" / "dev" / "toy.json").exists()
    assert ok(cli("state", "list", cwd=toy_project)).stdout.strip() == ""

    ok(cli("apply", "--auto-approve", cwd=toy_project))
    no = cli("destroy", cwd=toy_project)
    assert no.returncode == 1
    assert "refusing to destroy these resources without confirmation" in no.stderr
    assert ok(cli("state", "list", cwd=toy_project)).stdout.split() == ALL


def test_destroy_removes_everything_dependents_first(toy_project: Path, cli) -> None:
    ok(cli("apply", "--auto-approve", cwd=toy_project))
    plan = ok(cli("plan", "--destroy", cwd=toy_project))
    assert "Plan: 0 to add, 0 to change, 4 to destroy." in plan.stdout
    d = ok(cli("destroy", "--auto-approve", cwd=toy_project))
    assert "Destroy complete! Resources: 0 added, 0 changed, 4 destroyed." in d.stdout
    order = [line.split(":")[0] for line in d.stderr.splitlines() if "destroying..." in line]
    assert order.index("model.toymodel") < order.index("run.toyproj")
    assert order.index("pipeline.toyproj") < order.index("infra.dev")
    assert ok(cli("state", "list", cwd=toy_project)).stdout.strip() == ""
    assert "infra" not in toy_db(toy_project)["resources"]
    assert "No changes." in ok(cli("destroy", "--auto-approve", cwd=toy_project)).stdout


def test_removed_model_section_plans_a_destroy(toy_project: Path, cli) -> None:
    ok(cli("apply", "--auto-approve", cwd=toy_project))
    edit(toy_project, "model:\n  name: toymodel\n", "")
    p = ok(cli("plan", cwd=toy_project))
    assert "- model.toymodel" in p.stdout
    assert "Plan: 0 to add, 0 to change, 1 to destroy." in p.stdout


def test_output_and_state_commands(toy_project: Path, cli) -> None:
    empty = ok(cli("output", cwd=toy_project))
    assert "No outputs" in empty.stdout
    ok(cli("apply", "--auto-approve", cwd=toy_project))

    outs = json.loads(ok(cli("output", "--json", cwd=toy_project)).stdout)
    assert set(outs) == set(ALL)
    assert outs["infra.dev"] == {"bucket": "toy-dev", "provisioned_by": "toy"}
    assert outs["run.toyproj"]["status"] == "succeeded"
    assert outs["model.toymodel"]["version"] == "1"
    one = ok(cli("output", "infra.dev", cwd=toy_project))
    assert "bucket = toy-dev" in one.stdout
    missing = cli("output", "endpoint.nope", cwd=toy_project)
    assert missing.returncode == 1 and "no resource 'endpoint.nope'" in missing.stderr

    assert ok(cli("state", "list", cwd=toy_project)).stdout.split() == ALL
    shown = json.loads(ok(cli("state", "show", "run.toyproj", cwd=toy_project)).stdout)
    assert shown["kind"] == "run"
    assert shown["depends_on"] == ["pipeline.toyproj"]
    assert set(shown["inputs"]["stages"]) == {"prep", "fit"}
    assert shown["outputs"]["stages"] == {"prep": "ran", "fit": "ran"}
    typo = cli("state", "show", "run.toyprj", cwd=toy_project)
    assert typo.returncode == 1 and "did you mean 'run.toyproj'?" in typo.stderr


def test_serial_and_history_record_every_apply(toy_project: Path, cli) -> None:
    ok(cli("apply", "--auto-approve", cwd=toy_project))
    s1 = serial(toy_project)
    assert s1 == 4  # one write per finished resource
    edit(toy_project, "run: echo fit", "run: echo fit2")
    ok(cli("apply", "--auto-approve", cwd=toy_project))
    s2 = serial(toy_project)
    assert s2 > s1
    ok(cli("apply", "--auto-approve", cwd=toy_project))  # no changes: nothing written
    assert serial(toy_project) == s2
    ok(cli("destroy", "--auto-approve", cwd=toy_project))
    assert serial(toy_project) == s2 + 4

    hist = json.loads(ok(cli("state", "history", "--json", cwd=toy_project)).stdout)
    assert [(h["operation"], h["status"]) for h in hist] == [
        ("destroy", "ok"),
        ("apply", "ok"),
        ("apply", "ok"),
    ]
    assert [h["serial"] for h in hist] == [s2 + 4, s2, s1]
    assert hist[-1]["summary"]["counts"] == {"added": 4, "changed": 0, "destroyed": 0}
    assert hist[0]["summary"]["counts"]["destroyed"] == 4
    text = ok(cli("state", "history", cwd=toy_project)).stdout.splitlines()
    assert len(text) == 4 and text[0].split() == [  # a header row, then newest first
        "id",
        "time",
        "serial",
        "operation",
        "status",
        "detail",
    ]
    assert text[1].split()[4:6] == ["destroy", "ok"] and "destroyed 4" in text[1]
    assert "{'" not in "\n".join(text)  # counts as words, not a Python dict


def test_failing_resource_skips_dependents_and_keeps_the_rest(
    toy_project: Path, cli, toy_env
) -> None:
    failed = cli("apply", "--auto-approve", cwd=toy_project, env=toy_env(TOY_FAIL_KIND="run"))
    assert failed.returncode == 1
    text = failed.stdout + failed.stderr
    assert "Traceback" not in text
    assert "Error: run.toyproj: RuntimeError: toy backend told to fail on run" in failed.stderr
    assert "run.toyproj: failed" in failed.stderr
    assert "Apply complete" not in failed.stdout
    # earlier resources are recorded; the failed one and its dependent are not
    assert ok(cli("state", "list", cwd=toy_project)).stdout.split() == [
        "infra.dev",
        "pipeline.toyproj",
    ]
    hist = json.loads(ok(cli("state", "history", "--json", cwd=toy_project)).stdout)
    outcomes = {o["address"]: o["status"] for o in hist[0]["summary"]["outcomes"]}
    assert hist[0]["status"] == "failed"
    assert outcomes == {
        "infra.dev": "ok",
        "pipeline.toyproj": "ok",
        "run.toyproj": "failed",
        "model.toymodel": "skipped",
    }
    # the next apply picks up where it stopped
    resumed = ok(cli("apply", "--auto-approve", cwd=toy_project))
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in resumed.stdout


def test_failing_resource_json_output(toy_project: Path, cli, toy_env) -> None:
    failed = cli(
        "apply", "--auto-approve", "--json", cwd=toy_project, env=toy_env(TOY_FAIL_KIND="pipeline")
    )
    assert failed.returncode == 1
    body = json.loads(failed.stdout)
    status = {o["address"]: o["status"] for o in body["outcomes"]}
    assert status == {
        "infra.dev": "ok",
        "pipeline.toyproj": "failed",
        "run.toyproj": "skipped",
        "model.toymodel": "skipped",
    }
    assert "toy backend told to fail on pipeline" in failed.stderr


def test_refresh_only_reports_drift_and_refresh_recreates(toy_project: Path, cli) -> None:
    ok(cli("apply", "--auto-approve", cwd=toy_project))
    clean = cli("plan", "--refresh-only", "--detailed-exitcode", cwd=toy_project)
    assert clean.returncode == 0, clean.stderr
    assert "No drift" in clean.stdout

    db = toy_project / ".mlstack" / "envs" / "dev" / "toy.json"
    data = json.loads(db.read_text())
    del data["resources"]["infra"]  # someone deleted the infrastructure by hand
    db.write_text(json.dumps(data))

    drifted = cli("plan", "--refresh-only", "--detailed-exitcode", cwd=toy_project)
    assert drifted.returncode == 2, drifted.stderr
    assert "! infra.dev: deleted outside mlstack" in drifted.stdout
    assert "Drift: 1 resource(s) changed outside mlstack." in drifted.stdout
    body = json.loads(ok(cli("plan", "--refresh-only", "--json", cwd=toy_project)).stdout)
    assert body["refresh_only"] is True and body["resource_changes"] == []
    assert [(d["address"], d["action"]) for d in body["drift"]] == [("infra.dev", "destroy")]

    # --no-refresh trusts state; plan refreshes by default (as Terraform) and plans it anew
    assert "No changes." in ok(cli("plan", "--no-refresh", cwd=toy_project)).stdout
    refreshed = ok(cli("plan", cwd=toy_project))
    assert "+ infra.dev" in refreshed.stdout
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in refreshed.stdout
    assert refreshed.stdout.count("Plan: ") == 1
    fixed = ok(cli("apply", "--auto-approve", cwd=toy_project))
    assert "1 added" in fixed.stdout
    assert "infra" in json.loads(db.read_text())["resources"]
    assert "No drift" in ok(cli("plan", "--refresh-only", cwd=toy_project)).stdout
