"""examples/ci/gitlab-ci.yml: valid against GitLab's published CI schema, and its jobs, run in
stage order against remote state on a local S3 server: MR plan (posted as a note) → merge
applies that plan → manual promotions record who ran them → scheduled monitor."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.ci.simulate import REPO, GitLab, check_schema, mr_record
from tests.ci.test_github_workflow import history, project
from tests.conftest import make_env

pytestmark = pytest.mark.e2e
PIPELINE = REPO / "examples" / "ci" / "gitlab-ci.yml"


def test_pipeline_passes_the_published_schema() -> None:
    r = check_schema("vendor.gitlab-ci", PIPELINE)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mr_plan_merge_apply_manual_promotions_then_monitor(s3_state, tmp_path: Path) -> None:
    root = project(tmp_path, f"gl-{uuid.uuid4().hex[:8]}")
    env = make_env(
        **s3_state.env,
        TOY_HOME=str(tmp_path / "platform"),
        CI_API_V4_URL="http://gitlab.test/api/v4",
        CI_PROJECT_ID="42",
        MLSTACK_API_TOKEN="glpat-test",
        CI_DEFAULT_BRANCH="main",
    )
    gl = GitLab(PIPELINE, root, tmp_path, env)

    mr = gl.run_pipeline(
        {
            "CI_PIPELINE_SOURCE": "merge_request_event",
            "CI_MERGE_REQUEST_IID": "5",
            "CI_COMMIT_SHA": "mr1",
        }
    )
    assert [j.name for j in mr] == ["validate", "plan"] and all(j.ok for j in mr), mr[-1].output
    note = (gl.state / "note-5.md").read_text()
    assert all(f"### mlstack plan: `{e}`" in note for e in ("dev", "staging", "prod"))

    mr_record(gl.state, 5, "mr1")
    push = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_SHA": "m1"}
    ran = gl.run_pipeline(push)  # the promotions are manual: the pipeline waits after apply
    assert [j.name for j in ran] == ["apply"] and ran[0].ok, ran[0].output
    assert "Apply complete!" in ran[0].output
    staging = gl.run_job("promote-staging", push, who="carol")
    assert staging.ok, staging.output
    prod = gl.run_job("promote-prod", push, who="dave")
    assert prod.ok, prod.output
    assert history(root, "staging", env)[0]["summary"]["approved_by"] == ["carol"]
    assert history(root, "prod", env)[0]["summary"]["approved_by"] == ["dave"]

    # the same merge pipeline run again: its reviewed plan is stale now, and says so
    rerun = gl.run_pipeline(push)
    assert not rerun[0].ok and "the saved plan is stale" in rerun[0].output
    assert "### mlstack plan: `dev`" in rerun[0].output and "No changes." in rerun[0].output

    mon = gl.run_pipeline({"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main"})
    assert [j.name for j in mon] == ["monitor"] and mon[0].ok, mon[0].output
    assert "No drift." in mon[0].output
