"""The KServe backend's serving against the fake cluster, in both modes: deploy, canary,
promotion, KServe's rollback, shadow, status, predict, destroy. Real model servers answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import k8s_schemas
import pytest
from conftest import NAMESPACE, FakeCluster, upload_model

from mlstack.engine.backend import Backing, Context, EndpointState, get_plugin
from mlstack.errors import BackendError
from mlstack.manifest.models import Deployment, Model, ResolvedProject

ROW = {"mean_radius": 20.0, "tumor_size": "large"}


def _backend(fc: FakeCluster, mode: str, tmp: Path) -> Any:
    project = ResolvedProject(
        project="quickstart",
        environment="dev",
        backend="kserve",
        settings=fc.settings(mode),
        model=Model(name="cancer-classifier"),
        deployment=Deployment(endpoint="cancer"),
    )
    return get_plugin("kserve").load(project, tmp)


@pytest.fixture(scope="module")
def models(fake_cluster: FakeCluster) -> dict[str, Backing]:
    out = {}
    for version, threshold, flip in (("1", 14.0, False), ("2", 14.0, True), ("3", 18.0, False)):
        prefix = f"quickstart/models/{version}"
        uri, digest = upload_model(fake_cluster.s3_url, prefix, threshold, flip)
        out[version] = Backing(version=version, uri=uri, digest=digest, weight=100.0)
    return out


def _state(*backings: Backing) -> EndpointState:
    return EndpointState(name="cancer", model="cancer-classifier", backings=backings)


def _at(b: Backing, weight: float, shadow: float = 0.0) -> Backing:
    return Backing(b.version, b.uri, b.digest, weight, shadow)


def _answer(b: Any) -> list[Any]:
    return list(b.predict("cancer", {"instances": [ROW]}, timeout=30).body["predictions"])


def _all_valid(fc: FakeCluster) -> None:
    """Every object the API server stored validates against the published schemas."""
    assert fc.api.accepted
    for obj in fc.api.accepted:
        assert k8s_schemas.problems(obj) == [], obj["metadata"]["name"]


def test_serverless_canary_promote_rollback(
    fake_cluster: FakeCluster, models: dict[str, Backing], tmp_path: Path
) -> None:
    b = _backend(fake_cluster, "Serverless", tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    assert b.endpoint_status("cancer") is None

    view = b.deploy(_state(models["1"]), ctx)
    assert view.status == "Ready" and view.weights() == {"1": 100.0}
    assert view.url == f"http://cancer.{NAMESPACE}.example.com"
    answer = b.predict("cancer", {"instances": [ROW]}, timeout=30)
    assert answer.body["predictions"] == [1] and answer.version == "1"  # 1 for a large radius
    # refresh sees the endpoint as state records it (and no model: none registered here)
    seen = b.observe()
    assert seen.resources == {
        "endpoint.cancer": {"url": f"http://cancer.{NAMESPACE}.example.com", "champion": "1"}
    }
    assert seen.kinds == frozenset({"endpoint", "model"})

    # canary: version 2 on the new revision at 10 %, version 1 keeps the rest
    view = b.deploy(_state(_at(models["1"], 90), _at(models["2"], 10)), ctx)
    assert view.weights() == {"2": 10.0, "1": 90.0}
    isvc = fake_cluster.api.get("inferenceservices", NAMESPACE, "cancer")
    assert isvc is not None and isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    pred = isvc["status"]["components"]["predictor"]
    assert pred["latestRolledoutRevision"] == "cancer-predictor-00001"
    assert {t["tag"]: t["percent"] for t in pred["traffic"]} == {"latest": 10, "prev": 90}
    assert isvc["metadata"]["managedFields"][0]["manager"] == "mlstack"

    # promotion removes canaryTrafficPercent: version 2 takes everything
    view = b.deploy(_state(models["2"]), ctx)
    assert view.weights() == {"2": 100.0}
    isvc = fake_cluster.api.get("inferenceservices", NAMESPACE, "cancer")
    assert isvc is not None and "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    # version 2 was trained to say 0 for everything: the answer comes from the new revision
    assert _answer(b) == [0]

    # a canary of 3, then KServe's rollback (canaryTrafficPercent 0) back to 2
    b.deploy(_state(_at(models["2"], 80), _at(models["3"], 20)), ctx)
    view = b.deploy(_state(models["2"]), ctx)
    isvc = fake_cluster.api.get("inferenceservices", NAMESPACE, "cancer")
    assert isvc is not None and isvc["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert view.weights() == {"2": 100.0}
    traffic = isvc["status"]["components"]["predictor"]["traffic"]
    assert {t["revisionName"]: t["percent"] for t in traffic} == {
        "cancer-predictor-00003": 0,  # the canary, kept at 0 %
        "cancer-predictor-00002": 100,  # the last revision rolled out
    }
    assert _answer(b) == [0]

    # V2 protocol through the same ingress
    v2 = {
        "inputs": [
            {"name": "mean_radius", "shape": [1], "datatype": "FP64", "data": [20.0]},
            {"name": "tumor_size", "shape": [1], "datatype": "BYTES", "data": ["large"]},
        ]
    }
    assert b.predict("cancer", v2, timeout=30).body["outputs"][0]["data"] == [0]

    with pytest.raises(BackendError, match="cannot mirror"):
        b.deploy(_state(models["2"], _at(models["3"], 0, shadow=50)), ctx)

    b.destroy("endpoint.cancer", "endpoint", {}, ctx)
    assert b.endpoint_status("cancer") is None
    _all_valid(fake_cluster)


def test_raw_deployment_weights_and_shadow(
    fake_cluster: FakeCluster, models: dict[str, Backing], tmp_path: Path
) -> None:
    b = _backend(fake_cluster, "RawDeployment", tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    view = b.deploy(_state(models["1"]), ctx)
    assert view.weights() == {"1": 100.0} and view.status == "Ready"
    assert _answer(b) == [1]

    view = b.deploy(_state(_at(models["1"], 75), _at(models["2"], 25)), ctx)
    assert view.weights() == {"1": 75.0, "2": 25.0}
    route = fake_cluster.api.get("httproutes", NAMESPACE, "cancer")
    assert route is not None
    refs = {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}
    assert refs == {"cancer-v1-predictor": 75, "cancer-v2-predictor": 25}
    assert route["spec"]["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "mlstack-gw",
        "namespace": "gateways",
    }

    # shadow: version 3 gets every request mirrored, its answers dropped
    view = b.deploy(_state(models["1"], _at(models["3"], 0, shadow=100)), ctx)
    assert {v.version: v.mirrored for v in view.versions} == {"1": 0.0, "3": 100.0}
    before = fake_cluster.cluster.mirrored["cancer-v3-predictor-00001"]
    for _ in range(3):
        assert _answer(b) == [1]
    assert fake_cluster.cluster.mirrored["cancer-v3-predictor-00001"] == before + 3
    # version 2 was retired from the route: its InferenceService is gone
    assert fake_cluster.api.get("inferenceservices", NAMESPACE, "cancer-v2") is None

    b.destroy("endpoint.cancer", "endpoint", {}, ctx)
    assert b.endpoint_status("cancer") is None
    assert fake_cluster.api.list("inferenceservices", NAMESPACE) == []
    _all_valid(fake_cluster)


def test_a_missing_artifact_fails_the_deploy_and_keeps_traffic(
    fake_cluster: FakeCluster, models: dict[str, Backing], tmp_path: Path
) -> None:
    b = _backend(fake_cluster, "Serverless", tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    b.deploy(_state(models["1"]), ctx)
    missing = Backing("9", "s3://ml-artifacts/quickstart/models/none", "x", 10.0)
    with pytest.raises(BackendError, match="No model found in s3://ml-artifacts"):
        b.deploy(_state(_at(models["1"], 90), missing), ctx)
    view = b.endpoint_status("cancer")
    assert view is not None and view.weights() == {"1": 100.0} and not view.healthy
    b.destroy("endpoint.cancer", "endpoint", {}, ctx)
