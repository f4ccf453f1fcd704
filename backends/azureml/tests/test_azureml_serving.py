"""Registry, predict and gate metrics through the real MLClient against the strict fake; the
compiled pipeline job checked against azure-ai-ml's generated REST model."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.arm import FakeArm
from fakes.rest_shape import ShapeError, check
from mlstack_azureml import code_asset, endpoints, invoke, monitor, registry
from mlstack_azureml.platform import Platform
from mlstack_azureml.plugin import AzureMLConfig

from mlstack.engine.backend import Backing, Context, EndpointState, RunResult
from mlstack.engine.digest import tree_digest
from mlstack.errors import BackendError

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
    stored = fake.state.models["shop-dev"]["cancer-classifier"]["1"]["properties"]["tags"]
    assert "mlstack.alias.champion" not in stored  # the alias moved off version 1
    # promotion into another workspace (its own storage): the files are copied into its
    # datastore, checked against the digest; the version there has the same digest
    fake.state.workspaces.add("shop-prod")
    prod = _platform({**settings, "workspace": "shop-prod"}, tmp_path)
    with pytest.raises(BackendError, match="does not hold the files of digest"):
        registry.import_version(prod, listed["2"], ctx)  # no files behind the made-up digest
    files = {"model.joblib": b"weights", "mlstack-model.json": b"{}"}
    folder = "runs/3/model"
    for rel, data in files.items():
        fake.container.upload_blob(f"{folder}/{rel}", data)
    v3 = registry.register(p, replace(_run(3, sub), model_digest=tree_digest(files)), ctx)
    imported = registry.import_version(prod, v3, ctx)
    assert imported.digest == v3.digest and imported.version == "1"
    assert "/workspaces/shop-prod/datastores/workspaceblobstore/paths/" in imported.uri
    copied = fake.blobs("shop-prod")
    path = imported.uri.split("/paths/", 1)[1]
    assert {
        b.name[len(path) + 1 :]: copied.download_blob(b.name).readall()
        for b in copied.list_blobs(name_starts_with=path + "/")
    } == files
    assert fake.state.models["shop-prod"]["cancer-classifier"]["1"]["properties"]["tags"][
        "mlstack.digest"
    ] == tree_digest(files)
    assert registry.import_version(prod, v3, ctx).version == "1"  # again: nothing new


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
    fake.scorer = lambda dep, body: (
        (500, {"message": "boom"})
        if dep["name"] == "v-2"
        else (
            200,
            {"predictions": []},
        )
    )
    for _ in range(4):
        try:
            invoke.predict(p, "cancer", {"instances": [[1, 2]]}, 30)
        except Exception:  # noqa: BLE001, S110 - v-2's answers are 500s on purpose
            pass
    got = monitor.metrics(p, "cancer", since)
    # what the endpoint answered, per deployment (the SDK retries a 500, so count, not guess)
    answered = {
        dep[-1]: (len(rows), sum(1 for r in rows if r[1] >= 500))
        for (_, dep), rows in fake.state.requests.items()
    }
    assert {k: (m.requests, m.errors) for k, m in got.items()} == answered
    assert answered["1"][1] == 0 and answered["2"][1] >= 2 and answered["1"][0] >= 7
    assert got["1"].latency_p99 is not None and got["1"].latency_p99 >= 0


def test_monitor_fake_honours_metric_filter_and_aggregation(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    """Azure Monitor splits and filters by the dimensions ``$filter`` names, returns only the
    aggregations asked for, and refuses a dimension a metric does not have."""
    p = _platform(settings, tmp_path)
    tokens: list[tuple[str, ...]] = []

    class Counting:
        def get_token(self, *scopes: str, **kwargs: object) -> object:
            from azure.core.credentials import AccessToken

            tokens.append(scopes)
            return AccessToken("t", int(time.time()) + 3600)

    p._credential = Counting()
    rid = f"{p.workspace_id}/onlineEndpoints/cancer-dev"
    fake.state.endpoints["cancer-dev"] = {"name": "cancer-dev", "properties": {}}
    now = time.time()
    fake.state.requests[("cancer-dev", "v-1")] = [(now, 200, 0.01), (now, 503, 0.02)]
    fake.state.requests[("cancer-dev", "v-2")] = [(now, 200, 0.03)]
    fake.state.requests[("other-dev", "v-1")] = [(now, 200, 0.01)]
    span = (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
        + "/"
        + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 60))
    )

    def query(metrics: str, flt: str, aggregation: str = "Total") -> list[Any]:
        params = {"api-version": "2023-10-01", "metricnames": metrics, "timespan": span}
        params.update({"aggregation": aggregation, "$filter": flt} if flt else {})
        if not flt:
            params["aggregation"] = aggregation
        body = p.arm.request("GET", f"{rid}/providers/Microsoft.Insights/metrics", "q", params)
        return [
            (
                {m["name"]["value"]: m["value"] for m in series["metadatavalues"]},
                series["data"][0],
            )
            for series in body["value"][0]["timeseries"]
        ]

    one = query("RequestsPerMinute", "deployment eq 'v-1'")
    assert [(d, pt.get("total")) for d, pt in one] == [({"deployment": "v-1"}, 2.0)]
    assert "average" not in one[0][1]  # only the aggregation asked for
    split = query("RequestsPerMinute", "deployment eq '*' and statusCodeClass eq '5xx'")
    assert [(d, pt["total"]) for d, pt in split] == [
        ({"deployment": "v-1", "statusCodeClass": "5xx"}, 1.0)
    ]
    whole = query("RequestsPerMinute", "")  # no dimension named: one series, not split
    assert [(d, pt["total"]) for d, pt in whole] == [({}, 3.0)]
    either = query("RequestsPerMinute", "(deployment eq 'v-1' or deployment eq 'v-2')")
    assert sorted(pt["total"] for _, pt in either) == [1.0, 2.0]
    lat = query("RequestLatency_P99", "deployment eq 'v-2'", "Average")
    assert [(d, round(pt["average"])) for d, pt in lat] == [({"deployment": "v-2"}, 30)]
    with pytest.raises(BackendError, match="does not support requested dimension"):
        query("RequestLatency_P99", "deployment eq '*' and statusCodeClass eq '*'", "Average")
    # one HTTP pipeline and credential for the Platform: seven calls, one token
    assert p.arm is p.arm and p.arm.client is p.arm.client and len(tokens) == 1


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
    assert "--input features=${{inputs.features}} --input split=${{inputs.split}}" in cmd
    assert cmd.endswith("--outputs ${{outputs.out}}") and "--data" not in cmd
    ingest = definition["components"]["ingest"]
    assert "--data ${{inputs.data}}" in ingest["command"] and ingest["code"].endswith(
        f"/codes/mlstack-code/versions/{code_asset.version()}"
    )
    with pytest.raises(ShapeError):
        check(
            models.JobBase, {"properties": {**definition["job"]["properties"], "jobType": "Pipe"}}
        )
