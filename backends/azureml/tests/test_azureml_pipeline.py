"""The quickstart's pipeline submitted to the fake as Azure ML components and a pipeline job
(real azure-core requests, bodies checked with the SDK's models), followed over several polls to
Completed or Failed; the steps run the shared runtime over the data in the datastore (Azurite),
and the model is read back from the train step's output with its tree digest; component
versions are the stages' cache keys, so they are reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes.arm import FakeArm
from mlstack_azureml.backend import AzureMLBackend
from mlstack_azureml.plugin import plugin
from quickstart_copy import QUICKSTART, copy_data

from mlstack.engine.backend import Context, Event, RunRequest
from mlstack.engine.digest import dir_digest
from mlstack.errors import BackendError

STAGES = ("ingest", "validate", "split", "features", "train", "evaluate", "register")


def _backend(settings: dict[str, Any], tmp_path: Path) -> AzureMLBackend:
    from mlstack.manifest.load import load, resolve

    block = "".join(f"    {k}: {v}\n" for k, v in settings.items())
    text = (QUICKSTART / "mlstack.yaml").read_text()
    (tmp_path / "mlstack.yaml").write_text(
        text.replace("  dev:\n    backend: local\n", "  dev:\n    backend: azureml\n" + block, 1)
    )
    copy_data(tmp_path)
    project = resolve(load(str(tmp_path / "mlstack.yaml")), "dev")
    return plugin.load(project, tmp_path)  # type: ignore[return-value]


def _request(keys: dict[str, str]) -> RunRequest:
    return RunRequest(stages=STAGES, reasons={"ingest": "new"}, cache_keys=keys, data_digest=None)


def test_pipeline_job_runs_the_stages_and_its_model_is_read_back(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    b = _backend(settings, tmp_path)
    events: list[Event] = []
    ctx = Context(workdir=tmp_path, environment="dev", emit=events.append)
    compiled = b.compile()
    keys = {s: f"sha256:{i:02d}" + "ab" * 31 for i, s in enumerate(STAGES)}
    result = b.run_pipeline(compiled, _request(keys), ctx)
    assert result.status == "succeeded", result.detail
    assert set(result.stages) == set(STAGES)
    statuses = [e.message for e in events if e.kind == "log" and e.data.get("status")]
    assert statuses == ["NotStarted", "Queued", "Running", "Completed"], statuses
    gets = [p for m, p in fake.state.requests_seen if m == "GET" and "/jobs/" in p]
    assert len(gets) > len(statuses)  # it followed the job over several polls per state
    (job,) = fake.jobs.jobs.values()
    assert job.steps == dict.fromkeys(STAGES, "Completed"), job.logs
    # the model: the train step's output in the datastore, digest = the tree digest of its files
    train = f"mlstack/quickstart/dev/stages/train/04{'ab' * 7}"
    assert result.model_uri == (
        f"azureml://subscriptions/{settings['subscription_id']}/resourcegroups/ml-rg/"
        f"workspaces/shop-dev/datastores/workspaceblobstore/paths/{train}"
    )
    local = tmp_path / "model"
    for blob in fake.container.list_blobs(name_starts_with=train + "/"):
        target = local / blob.name[len(train) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fake.container.download_blob(blob.name).readall())
    assert (local / "model.joblib").is_file() and (local / "mlstack-model.json").is_file()
    assert result.model_digest == dir_digest(local)
    assert result.metrics["roc_auc"] > 0.9  # evaluate's metrics.json, read back
    # each stage's component version is its cache key; the job's steps point at them
    assert ("mlstack_quickstart_train", f"04{'ab' * 7}") in fake.jobs.components
    step = job.resource["properties"]["jobs"]["train"]
    assert step["componentId"].endswith(
        f"/components/mlstack_quickstart_train/versions/04{'ab' * 7}"
    )
    # a second run with the same keys reuses the component versions (no conflict) and every
    # step (same component version, same inputs, output still there): nothing runs again
    runs = fake.jobs.runs
    again = b.run_pipeline(compiled, _request(keys), ctx)
    assert again.status == "succeeded" and again.model_digest == result.model_digest
    assert len(fake.jobs.jobs) == 2 and len(fake.jobs.components) == len(STAGES)
    assert fake.jobs.runs == runs
    assert list(fake.jobs.jobs.values())[1].steps == dict.fromkeys(STAGES, "Reused")
    # the code asset was uploaded once and holds the runtime and the scoring script
    (code,) = fake.codes.values()
    assert code["properties"]["codeUri"].endswith("/mlstack/code/" + code["name"])


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
