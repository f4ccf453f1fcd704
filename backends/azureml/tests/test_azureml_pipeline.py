"""The quickstart's pipeline submitted to the fake as Azure ML components and a pipeline job
(real azure-core requests, bodies checked with the SDK's models), followed over several polls to
Completed or Failed; component versions are the stages' cache keys, so they are reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes.arm import FakeArm
from mlstack_azureml import pipeline_run
from mlstack_azureml.backend import AzureMLBackend
from mlstack_azureml.plugin import plugin
from quickstart_copy import QUICKSTART

from mlstack.engine.backend import Context, Event, RunRequest
from mlstack.errors import BackendError

STAGES = ("ingest", "validate", "split", "features", "train", "evaluate", "register")


def _backend(settings: dict[str, Any], tmp_path: Path) -> AzureMLBackend:
    from mlstack.manifest.load import load, resolve

    block = "".join(f"    {k}: {v}\n" for k, v in settings.items())
    text = (QUICKSTART / "mlstack.yaml").read_text()
    (tmp_path / "mlstack.yaml").write_text(
        text.replace("  dev:\n    backend: local\n", "  dev:\n    backend: azureml\n" + block, 1)
    )
    project = resolve(load(str(tmp_path / "mlstack.yaml")), "dev")
    return plugin.load(project, tmp_path)  # type: ignore[return-value]


def _request(keys: dict[str, str]) -> RunRequest:
    return RunRequest(stages=STAGES, reasons={"ingest": "new"}, cache_keys=keys, data_digest=None)


def test_pipeline_job_runs_to_completed_over_several_polls(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    b = _backend(settings, tmp_path)
    events: list[Event] = []
    ctx = Context(workdir=tmp_path, environment="dev", emit=events.append)
    compiled = b.compile()
    keys = {s: f"sha256:{i:02d}" + "ab" * 31 for i, s in enumerate(STAGES)}
    result = pipeline_run.execute(b.platform, compiled, _request(keys), ctx)
    assert result.status == "succeeded", result.detail
    assert set(result.stages) == set(STAGES)
    statuses = [e.message for e in events if e.kind == "log" and e.data.get("status")]
    assert statuses == ["NotStarted", "Queued", "Running", "Completed"], statuses
    gets = [p for m, p in fake.state.requests_seen if m == "GET" and "/jobs/" in p]
    assert len(gets) > len(statuses)  # it followed the job over several polls per state
    # each stage's component version is its cache key; the job's steps point at them
    assert ("mlstack_quickstart_train", f"04{'ab' * 7}") in fake.jobs.components
    (job,) = fake.jobs.jobs.values()
    step = job.resource["properties"]["jobs"]["train"]
    assert step["componentId"].endswith(
        f"/components/mlstack_quickstart_train/versions/04{'ab' * 7}"
    )
    assert f"/stages/train/04{'ab' * 7}/" in step["outputs"]["out"]["uri"]
    # a second run with the same keys reuses the component versions (no conflict) ...
    assert pipeline_run.execute(b.platform, compiled, _request(keys), ctx).status == "succeeded"
    assert len(fake.jobs.jobs) == 2 and len(fake.jobs.components) == len(STAGES)
    # ... and through the backend, a completed run stops clearly: its model is on blob storage
    with pytest.raises(BackendError, match="blob storage is not wired"):
        b.run_pipeline(compiled, _request(keys), ctx)


def test_failing_step_fails_the_run_with_where_to_look(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    b = _backend(settings, tmp_path)
    fake.jobs.fail_step = "train"
    ctx = Context(workdir=tmp_path, environment="dev")
    result = b.run_pipeline(b.compile(), _request({}), ctx)
    assert result.status == "failed"
    assert "ended Failed" in result.detail and "/studio/runs/" in result.detail


def test_unknown_compute_is_refused_clearly(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    b = _backend({**settings, "compute": "gpu-cluster"}, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    with pytest.raises(BackendError) as e:
        b.run_pipeline(b.compile(), _request({}), ctx)
    assert "submitting pipeline job" in str(e.value) and "gpu-cluster" in str(e.value)
    assert not fake.jobs.jobs
