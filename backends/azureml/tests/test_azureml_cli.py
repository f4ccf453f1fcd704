"""The CLI against the fake: what works end to end today (workspace, pipeline job submitted and
followed) and the clear stop where it ends (reading the model from blob storage)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fakes.arm import FakeArm
from test_azureml_config import AZURE_SETTINGS, cli, quickstart


def test_apply_runs_the_pipeline_job_then_stops_clearly_at_its_model(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    quickstart(tmp_path, AZURE_SETTINGS + f"    base_url: {fake.base}\n    poll_interval: 0.05\n")
    env = {
        "MLSTACK_AZURE_ACCESS_TOKEN": "fake-token",
        "REQUESTS_CA_BUNDLE": os.environ["REQUESTS_CA_BUNDLE"],
    }
    r = cli(["apply", "-e", "dev", "--auto-approve"], tmp_path, **env)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "infra.dev: create complete" in out, out
    assert "blob storage is not wired" in out and "Traceback" not in out, out
    assert len(fake.jobs.jobs) == 1 and len(fake.jobs.components) == 7
    assert (
        "GET",
        "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/ml-rg/"
        "providers/Microsoft.MachineLearningServices/workspaces/shop-dev",
    ) in fake.state.requests_seen
    assert "fake-token" not in out
    state = "".join(p.read_text() for p in (tmp_path / ".mlstack").rglob("*.json"))
    assert "fake-token" not in state
    # status says nothing is deployed, and destroy removes what apply recorded
    r = cli(["status", "-e", "dev"], tmp_path, **env)
    assert r.returncode == 0 and "not deployed" in r.stdout, r.stdout + r.stderr
    r = cli(["destroy", "-e", "dev", "--auto-approve"], tmp_path, **env)
    assert r.returncode == 0, r.stdout + r.stderr
