"""The fake API server rejects what a real one rejects, through the official kubernetes client:
unknown fields (422 Invalid), stale resourceVersions (409 Conflict), field-manager conflicts in
server-side apply (409 unless forced), missing objects (404 NotFound), as ``Status`` bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import NAMESPACE, FakeCluster
from mlstack_kserve import manifests as mf


@pytest.fixture()
def api(fake_cluster: FakeCluster) -> Iterator[Any]:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(str(fake_cluster.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        yield c


def _isvc(name: str = "probe", **predictor: Any) -> dict[str, Any]:
    spec = mf.predictor(
        image="img:1",
        storage_uri="s3://ml-artifacts/none",
        model="m",
        version="1",
        service_account="mlstack",
        resources={"requests": {"cpu": "1"}},
        replicas=1,
    )
    spec.update(predictor)
    return mf.inference_service(
        name=name,
        namespace=NAMESPACE,
        project="p",
        endpoint=name,
        version="1",
        mode="Serverless",
        predictor_spec=spec,
    )


def _apply(api: Any, obj: dict[str, Any], manager: str, force: bool = False) -> Any:
    path = f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/"
    return api.call_api(
        path + obj["metadata"]["name"],
        "PATCH",
        query_params=[("fieldManager", manager), ("force", force)],
        header_params={
            "Content-Type": "application/apply-patch+yaml",
            "Accept": "application/json",
        },
        body=obj,
        response_type="object",
        _return_http_data_only=True,
    )


def _status(e: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(e.body)
    assert body["kind"] == "Status" and body["status"] == "Failure"
    return body


def test_unknown_fields_and_bad_names_are_422(api: Any) -> None:
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    objs = CustomObjectsApi(api)
    with pytest.raises(ApiException) as e:
        objs.create_namespaced_custom_object(
            "serving.kserve.io",
            "v1beta1",
            NAMESPACE,
            "inferenceservices",
            _isvc(canaryTrafficPrecent=10),
        )
    body = _status(e.value)
    assert (body["code"], body["reason"]) == (422, "Invalid")
    assert "canaryTrafficPrecent" in body["message"]
    with pytest.raises(ApiException) as e:
        objs.create_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", _isvc("1-probe")
        )
    assert "DNS-1035" in _status(e.value)["message"]


def test_resource_version_conflict_and_not_found(api: Any) -> None:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    core = CoreV1Api(api)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "rv"}, "data": {"a": "1"}}
    created = core.create_namespaced_config_map(NAMESPACE, cm)
    stale = created.to_dict()
    created.data = {"a": "2"}
    core.replace_namespaced_config_map("rv", NAMESPACE, created)  # bumps resourceVersion
    stale_body = api.sanitize_for_serialization(created)
    stale_body["metadata"]["resourceVersion"] = stale["metadata"]["resource_version"]
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("rv", NAMESPACE, stale_body)
    body = _status(e.value)
    assert (body["code"], body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]
    core.delete_namespaced_config_map("rv", NAMESPACE)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("rv", NAMESPACE)
    body = _status(e.value)
    assert (body["code"], body["reason"]) == (404, "NotFound")
    assert body["message"] == 'configmaps "rv" not found'


def test_server_side_apply_field_managers(api: Any, fake_cluster: FakeCluster) -> None:
    from kubernetes.client.exceptions import ApiException

    _apply(api, _isvc("ssa", canaryTrafficPercent=10), "mlstack")
    # someone else applies a different canary share: a conflict unless forced
    with pytest.raises(ApiException) as e:
        _apply(api, _isvc("ssa", canaryTrafficPercent=50), "kubectl")
    body = _status(e.value)
    assert body["code"] == 409 and 'conflict with "mlstack"' in body["message"]
    assert "spec.predictor.canaryTrafficPercent" in body["message"]
    out = _apply(api, _isvc("ssa", canaryTrafficPercent=50), "kubectl", force=True)
    assert out["spec"]["predictor"]["canaryTrafficPercent"] == 50
    managers = {m["manager"] for m in out["metadata"]["managedFields"]}
    assert managers == {"mlstack", "kubectl"}
    # mlstack stops applying the field: kubectl owns it now, so it stays
    out = _apply(api, _isvc("ssa"), "mlstack")
    assert out["spec"]["predictor"]["canaryTrafficPercent"] == 50
    # once nobody applies it, it goes
    out = _apply(
        api,
        {**_isvc("ssa"), "spec": {"predictor": _isvc("ssa")["spec"]["predictor"]}},
        "kubectl",
        force=True,
    )
    out = _apply(api, _isvc("ssa"), "kubectl", force=True)
    assert "canaryTrafficPercent" not in out["spec"]["predictor"]
    # applying without a field manager is refused
    with pytest.raises(ApiException) as e:
        api.call_api(
            f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/ssa",
            "PATCH",
            header_params={"Content-Type": "application/apply-patch+yaml"},
            body=_isvc("ssa"),
            response_type="object",
        )
    assert _status(e.value)["code"] == 400
    assert fake_cluster.api.get("inferenceservices", NAMESPACE, "ssa") is not None
    api.call_api(
        f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/ssa", "DELETE"
    )


def test_a_rejected_request_changes_nothing(api: Any, fake_cluster: FakeCluster) -> None:
    """A 422 apply leaves the object and its field ownership as they were: the field the
    rejected request tried to take stays the first manager's, so another manager changing
    it is still a conflict."""
    from kubernetes.client.exceptions import ApiException

    fc = fake_cluster
    _apply(api, _isvc("own", canaryTrafficPercent=10), "mlstack")
    before = fc.api.get("inferenceservices", NAMESPACE, "own")
    assert before is not None
    owners_before = {m: set(p) for m, (_, p) in fc.api.owners[_key("own")].items()}
    bad = _isvc("own", canaryTrafficPercent=20)
    bad["spec"]["predictor"]["canaryTrafficPrecent"] = 1  # unknown field: 422
    with pytest.raises(ApiException) as e:
        _apply(api, bad, "kubectl", force=True)
    assert _status(e.value)["code"] == 422
    after = fc.api.get("inferenceservices", NAMESPACE, "own")
    assert after == before
    assert {m: set(p) for m, (_, p) in fc.api.owners[_key("own")].items()} == owners_before
    with pytest.raises(ApiException) as e:  # still mlstack's field
        _apply(api, _isvc("own", canaryTrafficPercent=30), "kubectl")
    assert _status(e.value)["code"] == 409
    api.call_api(
        f"/apis/serving.kserve.io/v1beta1/namespaces/{NAMESPACE}/inferenceservices/own", "DELETE"
    )


def _key(name: str) -> tuple[str, str, str]:
    return ("inferenceservices", NAMESPACE, name)


def test_post_without_metadata_is_422_and_a_server_bug_is_500(
    api: Any, fake_cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes.client.exceptions import ApiException

    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    with pytest.raises(ApiException) as e:
        api.call_api(
            path,
            "POST",
            header_params={"Content-Type": "application/json"},
            body={"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}},
            response_type="object",
        )
    body = _status(e.value)
    assert (body["code"], body["reason"]) == (422, "Invalid")
    assert "metadata.name: Required value" in body["message"]
    assert body["details"]["causes"][0]["field"] == "metadata.name"

    def broken(*args: Any) -> Any:
        raise KeyError("spec")

    monkeypatch.setattr(fake_cluster.api, "_list", broken)
    with pytest.raises(ApiException) as e:
        api.call_api(path, "GET", response_type="object")
    body = _status(e.value)
    assert (body["code"], body["reason"]) == (500, "InternalError")
    assert body["message"].startswith("Internal error occurred: KeyError")


def test_replicas_and_batching_map_to_min_replicas_and_the_batcher(api: Any) -> None:
    """``replicas`` is ``minReplicas``; ``batching`` is ``spec.predictor.batcher`` with the
    latency in whole milliseconds; the API server (the published CRD) accepts both."""
    spec = mf.predictor(
        image="img:1",
        storage_uri="s3://ml-artifacts/none",
        model="m",
        version="1",
        service_account="mlstack",
        resources={"requests": {"cpu": "1"}},
        replicas=3,
        batcher=(16, 0.0049),
    )
    assert spec["minReplicas"] == 3
    assert spec["batcher"] == {"maxBatchSize": 16, "maxLatency": 5}
    obj = mf.inference_service(
        name="batched",
        namespace=NAMESPACE,
        project="p",
        endpoint="batched",
        version="1",
        mode="Serverless",
        predictor_spec=spec,
    )
    out = _apply(api, obj, "mlstack")
    assert out["spec"]["predictor"]["batcher"] == {"maxBatchSize": 16, "maxLatency": 5}
    with pytest.raises(Exception) as refused:  # a field the CRD does not have is refused
        _apply(api, _isvc("batched-bad", batcher={"maxBatchRows": 16}), "mlstack")
    assert getattr(refused.value, "status", None) == 422
