"""examples/ci/github-actions.yml: valid against GitHub's published workflow schema and
actionlint, and its jobs, run in order against remote state on a local S3 server, do what the
file says: PR plan (posted as a comment) → merge applies that very plan → promotions with the
approver recorded → scheduled monitor; a stale reviewed plan is refused and planned again."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.ci.simulate import REPO, GitHub, check_schema
from tests.conftest import TOY_SPEC, make_env, run_cli

pytestmark = pytest.mark.e2e
WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
BIN = Path(sys.executable).parent


def test_workflow_passes_the_published_schema_and_actionlint() -> None:
    schema = check_schema("vendor.github-workflows", WORKFLOW)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    lint = subprocess.run([str(BIN / "actionlint"), str(WORKFLOW)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    wf = yaml.safe_load(WORKFLOW.read_text())
    wf["jobs"]["plan"]["runs-on"] = None
    del wf["jobs"]["plan"]["steps"]
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(wf))
    r = subprocess.run([str(BIN / "actionlint"), str(bad)], capture_output=True, text=True)
    assert r.returncode != 0


def project(tmp: Path, prefix: str) -> Path:
    spec = yaml.safe_load(TOY_SPEC)
    spec["project"] = "ciproj"
    spec["state"] = {"backend": "s3", "bucket": "ci-state", "prefix": prefix}
    spec["environments"] = {
        "dev": {"backend": "toy"},
        "staging": {"backend": "toy", "promote_from": "dev", "approvals": 1},
        "prod": {"backend": "toy", "promote_from": "staging", "approvals": 1},
    }
    spec["deployment"] = {"endpoint": "ep", "strategy": "all_at_once"}
    root = tmp / "repo"
    root.mkdir()
    (root / "mlstack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def history(root: Path, env_name: str, env: dict[str, str]) -> list[dict]:
    r = run_cli("state", "history", "-e", env_name, "--json", cwd=root, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_pr_plan_merge_apply_promote_with_approval_then_monitor(s3_state, tmp_path: Path) -> None:
    root = project(tmp_path, f"gh-{uuid.uuid4().hex[:8]}")
    env = make_env(
        **s3_state.env,
        TOY_HOME=str(tmp_path / "platform"),
        FAKE_GH_APPROVER_STAGING="alice",
        FAKE_GH_APPROVER_PROD="bob",
    )
    gh = GitHub(WORKFLOW, root, tmp_path, env)

    # pull request: validate, plan -out per environment, one Markdown comment
    pr = gh.run_event(
        "pull_request", {"sha": "pr1", "run_id": "101", "github.event.pull_request.number": "7"}
    )
    assert [j.name for j in pr] == ["plan"] and pr[0].ok, pr[0].output
    comment = (gh.state / "comment-7.md").read_text()
    for name in ("dev", "staging", "prod"):
        assert f"### mlstack plan: `{name}` (backend `toy`)" in comment
    assert "| `+` | `run.ciproj` | create |" in comment
    assert "Saved as `plans/dev.plan`" in comment
    assert comment in pr[0].summary
    assert {p.name for p in gh.artifacts["mlstack-plans"].iterdir()} >= {"dev.plan", "prod.plan"}

    # merge: the apply job applies exactly the reviewed plan, then the gated promotions
    (gh.state / "pr_head_sha").write_text("pr1")
    (gh.state / "run-of-pr1").write_text("101")
    push = gh.run_event("push", {"sha": "m1", "run_id": "102", "reviewed_run_id": "101"})
    assert [j.name for j in push] == ["apply", "staging", "prod"]
    assert all(j.ok for j in push), push[-1].output
    planned = re.search(r"`dev` \(backend `toy`\)\n\n\*\*Plan: (\d+) to add", comment)
    assert planned, comment
    assert f"Apply complete! Resources: {planned.group(1)} added, 0 changed" in push[0].output
    assert "Promoted toymodel" in push[1].output and "Promoted toymodel" in push[2].output
    last = {e: history(root, e, env)[0] for e in ("dev", "staging", "prod")}
    assert last["dev"]["operation"] == "apply" and last["dev"]["status"] == "ok"
    assert last["staging"]["summary"]["approved_by"] == ["alice"]
    assert last["prod"]["summary"]["approved_by"] == ["bob"]
    assert last["prod"]["summary"]["source_env"] == "staging"

    # schedule: status and drift of prod
    mon = gh.run_event("schedule", {"sha": "m1", "run_id": "103"})
    assert [j.name for j in mon] == ["monitor"] and mon[0].ok, mon[0].output
    assert "No drift." in mon[0].output
    (tmp_path / "drifted").mkdir()
    drifted = GitHub(WORKFLOW, root, tmp_path / "drifted", {**env, "TOY_DRIFT": "3"})
    bad = drifted.run_event("schedule", {"sha": "m1", "run_id": "104"})
    assert not bad[0].ok
    assert bad[0].steps[-1] == ("drift of prod (exit 2 = drift found)", 2)


def test_a_stale_reviewed_plan_is_refused_and_planned_again(s3_state, tmp_path: Path) -> None:
    root = project(tmp_path, f"gh-{uuid.uuid4().hex[:8]}")
    env = make_env(**s3_state.env, TOY_HOME=str(tmp_path / "platform"))
    gh = GitHub(WORKFLOW, root, tmp_path, env)
    pr = gh.run_event(
        "pull_request", {"sha": "pr2", "run_id": "201", "github.event.pull_request.number": "8"}
    )
    assert pr[0].ok, pr[0].output
    # someone applies dev from elsewhere after the review: state moves on
    other = tmp_path / "elsewhere"
    shutil.copytree(root, other)
    moved = run_cli("apply", "-e", "dev", "--auto-approve", cwd=other, env=env)
    assert moved.returncode == 0, moved.stderr
    (gh.state / "pr_head_sha").write_text("pr2")
    (gh.state / "run-of-pr2").write_text("201")
    push = gh.run_event("push", {"sha": "m2", "run_id": "202", "reviewed_run_id": "201"})
    assert [j.name for j in push] == ["apply"]  # promotions never start
    assert not push[0].ok
    assert "the saved plan is stale" in push[0].output
    assert "The reviewed plan is stale" in push[0].summary
    assert "### mlstack plan: `dev`" in push[0].summary
    assert "No changes." in push[0].summary
