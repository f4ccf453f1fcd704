"""Registry, predict and gate metrics through the real MLClient against the strict fake; the
compiled pipeline job checked against azure-ai-ml's generated REST model."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.arm import FakeArm
from fakes.rest_shape import ShapeError, check
from mlstack_azureml import endpoints, invoke, monitor, registry
from mlstack_azureml.platform import Platform
from mlstack_azureml.plugin import AzureMLConfig

from mlstack.engine.backend import Backing, Context, EndpointState, RunResult

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"


def _platform(settings: dict[str, Any], tmp_path: Path) -> Platform:
    project: Any = SimpleNamespace(
        project="quickstart", environment="dev", model=SimpleNamespace(name="cancer-classifier")
    )
    return Platform(AzureMLConfig.model_validate(settings), project, tmp_path)


def _run(n: int, sub: str) -> RunResult:
    return RunResult(
        run_id=f"run-{n}",
        status="succeeded",
        metrics={"roc_auc": 0.9 + n / 100},
        model_uri=f"azureml://subscriptions/{sub}/resourcegroups/ml-rg/workspaces/shop-dev/datastores/workspaceblobstore/paths/runs/{n}/model",
        model_digest=f"sha256:{n:064d}",
        stages={"train": "ran"},
    )


def test_registry_versions_aliases_and_promotion(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    p = _platform(settings, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    sub = settings["subscription_id"]
    v1 = registry.register(p, _run(1, sub), ctx)
    v2 = registry.register(p, _run(2, sub), ctx)
    assert (v1.version, v2.version) == ("1", "2")
    assert registry.register(p, _run(2, sub), ctx).version == "2"  # same artifact: no new version
    registry.set_alias(p, "cancer-classifier", "champion", "1", ctx)
    registry.set_alias(p, "cancer-classifier", "challenger", "2", ctx)
    registry.set_alias(p, "cancer-classifier", "champion", "2", ctx)
    listed = {v.version: v for v in registry.versions(p, "cancer-classifier")}
    assert listed["2"].aliases == ("challenger", "champion") and listed["1"].aliases == ()
    assert listed["2"].metrics == {"roc_auc": pytest.approx(0.92)}
    assert listed["2"].lineage["mlstack.run"] == "run-2"
    stored = fake.state.models["cancer-classifier"]["1"]["properties"]["tags"]
    assert "mlstack.alias.champion" not in stored  # the alias moved off version 1
    # promotion into another workspace keeps URI and digest
    fake.state.workspaces.add("shop-prod")
    prod = _platform({**settings, "workspace": "shop-prod"}, tmp_path)
    imported = registry.import_version(prod, listed["2"], ctx)
    assert imported.digest == listed["2"].digest and imported.uri == listed["2"].uri


def test_predict_and_gate_metrics_per_version(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    p = _platform(settings, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    sub = settings["subscription_id"]
    for n in (1, 2):
        registry.register(p, _run(n, sub), ctx)
    since = time.time() - 1
    endpoints.deploy(
        p,
        EndpointState(
            name="cancer",
            model="cancer-classifier",
            backings=(
                Backing(version="1", uri="", digest="d1", weight=50),
                Backing(version="2", uri="", digest="d2", weight=50),
            ),
        ),
        ctx,
    )
    answers = [invoke.predict(p, "cancer", {"instances": [[1, 2], [3, 4]]}, 30) for _ in range(10)]
    assert all(a.body["predictions"] == [0, 0] for a in answers)
    assert {a.body["version"] for a in answers} == {"1", "2"}
    got = monitor.metrics(p, "cancer", since)
    assert {k: (m.requests, m.errors) for k, m in got.items()} == {"1": (5, 0), "2": (5, 0)}
    assert got["1"].latency_p99 is not None and got["1"].latency_p99 >= 0


def test_compiled_pipeline_job_is_a_valid_azure_ml_job(tmp_path: Path) -> None:
    from azure.ai.ml._restclient.arm_ml_service import models
    from mlstack_azureml import pipeline_job

    from mlstack.manifest.load import load, resolve

    text = (
        (QUICKSTART / "mlstack.yaml")
        .read_text()
        .replace(
            "  dev:\n    backend: local\n",
            "  dev:\n    backend: azureml\n    subscription_id: 0b1f6471-1bf0-4dda-aec3-cb9272f09590\n"
            "    resource_group: ml-rg\n    workspace: shop-dev\n    region: westeurope\n",
        )
    )
    (tmp_path / "mlstack.yaml").write_text(text)
    project = resolve(load(str(tmp_path / "mlstack.yaml")), "dev")
    cfg = AzureMLConfig.model_validate(project.settings)
    definition = pipeline_job.build(project, cfg)
    check(models.JobBase, definition["job"])
    jobs = definition["job"]["properties"]["jobs"]
    assert list(jobs) == [
        "ingest",
        "validate",
        "split",
        "features",
        "train",
        "evaluate",
        "register",
    ]
    assert jobs["train"]["limits"]["timeout"] == "PT600S" and jobs["train"]["retry_settings"]
    cmd = definition["components"]["train"]["command"]
    assert cmd.startswith("python -m mlstack_runtime train --spec ${{inputs.spec}}")
    assert "--inputs ${{inputs.features}}" in cmd and cmd.endswith("--outputs ${{outputs.out}}")
    with pytest.raises(ShapeError):
        check(
            models.JobBase, {"properties": {**definition["job"]["properties"], "jobType": "Pipe"}}
        )
