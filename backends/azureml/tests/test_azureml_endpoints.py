"""Endpoints through the real MLClient against the strict fake: deployments per version,
traffic, mirror traffic, retirement, and the rules Azure enforces."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fakes.arm import FakeArm
from mlstack_azureml import endpoints
from mlstack_azureml.platform import Platform, azure_name
from mlstack_azureml.plugin import AzureMLConfig

from mlstack.engine.backend import Backing, Context, EndpointState
from mlstack.engine.seam import Event
from mlstack.errors import BackendError


def _platform(settings: dict[str, Any], tmp_path: Path) -> Platform:
    project: Any = SimpleNamespace(project="quickstart", environment="dev")
    return Platform(AzureMLConfig.model_validate(settings), project, tmp_path)


def _register(p: Platform, version: str) -> None:
    from azure.ai.ml.entities import Model

    p.client.models.create_or_update(
        Model(
            name="cancer-classifier",
            version=version,
            path=f"azureml://subscriptions/{p.config.subscription_id}/resourcegroups/ml-rg/workspaces/shop-dev/datastores/workspaceblobstore/paths/runs/r{version}/model",
            type="custom_model",
            tags={"mlstack-digest": f"sha256:{version * 8}"},
        )
    )


def _state(*backings: tuple[str, float, float]) -> EndpointState:
    return EndpointState(
        name="cancer",
        model="cancer-classifier",
        backings=tuple(
            Backing(version=v, uri="", digest=f"sha256:{v}", weight=w, shadow=s)
            for v, w, s in backings
        ),
    )


def test_azure_names() -> None:
    assert azure_name("cancer", "dev") == "cancer-dev"
    assert azure_name("v", "12") == "v-12"
    long = azure_name("a" * 40, "dev")
    assert len(long) == 32 and long != azure_name("a" * 41, "dev")
    assert azure_name("1st", "dev").startswith("m-")


def test_deploy_canary_shadow_and_retire(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    p = _platform(settings, tmp_path)
    ev_objs: list[Event] = []
    ctx = Context(workdir=tmp_path, environment="dev", emit=ev_objs.append)
    for v in ("1", "2"):
        _register(p, v)
    view = endpoints.deploy(p, _state(("1", 100, 0)), ctx)
    assert view.name == "cancer-dev" and view.weights() == {"1": 100.0}
    assert view.status == "Succeeded" and view.healthy
    # shadow: v2 mirrored 20 % while v1 serves everything
    view = endpoints.deploy(p, _state(("1", 100, 0), ("2", 0, 20)), ctx)
    assert {v.version: (v.weight, v.mirrored) for v in view.versions} == {
        "1": (100.0, 0.0),
        "2": (0.0, 20.0),
    }
    ep = fake.state.endpoints["cancer-dev"]["properties"]
    assert ep["traffic"] == {"v-1": 100} and ep["mirrorTraffic"] == {"v-2": 20}
    # canary step, then all on v2: v1 retired and deleted
    view = endpoints.deploy(p, _state(("1", 90, 0), ("2", 10, 0)), ctx)
    assert view.weights() == {"1": 90.0, "2": 10.0}
    view = endpoints.deploy(p, _state(("2", 100, 0)), ctx)
    assert view.weights() == {"2": 100.0} and set(fake.state.deployments["cancer-dev"]) == {"v-2"}
    assert any(e.kind == "endpoint.updated" and e.message == "retired" for e in ev_objs)
    # the long-running operations were polled, not answered at once
    polls = [path for method, path in fake.state.requests_seen if "mfeOperationsStatus" in path]
    assert len(polls) >= 3 * 5


def test_failed_deployment_is_reported_and_traffic_untouched(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    p = _platform(settings, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    for v in ("1", "2"):
        _register(p, v)
    endpoints.deploy(p, _state(("1", 100, 0)), ctx)
    fake.state.fail_next_deployment = "ImageBuildFailure: the environment could not be built"
    with pytest.raises(BackendError) as e:
        endpoints.deploy(p, _state(("1", 50, 0), ("2", 50, 0)), ctx)
    assert "deploying version 2" in str(e.value) and "ImageBuildFailure" in str(e.value)
    assert fake.state.endpoints["cancer-dev"]["properties"]["traffic"] == {"v-1": 100}


def test_a_refused_first_request_is_a_clear_error(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    """ARM refuses a PUT before any long-running operation starts (400, 409): that answer comes
    from ``begin_*`` itself and must be reported like a failed operation, not as a crash."""
    p = _platform(settings, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    for v in ("1", "2"):
        _register(p, v)
    fake.state.reject_next_put = (400, "BadRequest", "The request is invalid: quota exceeded.")
    with pytest.raises(BackendError) as e:
        endpoints.deploy(p, _state(("1", 100, 0)), ctx)
    assert "creating endpoint cancer-dev" in str(e.value) and "quota exceeded" in str(e.value)
    endpoints.deploy(p, _state(("1", 100, 0)), ctx)
    fake.state.reject_next_put = (409, "Conflict", "cancer-dev is Updating; wait.")
    with pytest.raises(BackendError) as e:
        endpoints.deploy(p, _state(("1", 50, 0), ("2", 50, 0)), ctx)
    assert "deploying version 2" in str(e.value) and "Conflict" in str(e.value)
    endpoints.deploy(p, _state(("1", 100, 0), ("2", 0, 0)), ctx)  # v-2 deployed, no traffic
    fake.state.reject_next_put = (409, "Conflict", "cancer-dev is Updating; wait.")
    with pytest.raises(BackendError) as e:
        endpoints.deploy(p, _state(("1", 50, 0), ("2", 50, 0)), ctx)
    assert "setting traffic on cancer-dev" in str(e.value) and "is Updating" in str(e.value)
    assert fake.state.endpoints["cancer-dev"]["properties"]["traffic"] == {"v-1": 100}


def test_fake_refuses_what_azure_refuses(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    from azure.ai.ml.entities import ManagedOnlineEndpoint
    from azure.core.exceptions import HttpResponseError

    p = _platform(settings, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    for v in ("1", "2"):
        _register(p, v)
    endpoints.deploy(p, _state(("1", 50, 0), ("2", 50, 0)), ctx)
    ops = p.client.online_endpoints

    def put(traffic: dict[str, int], mirror: dict[str, int]) -> str:
        ep = ManagedOnlineEndpoint(
            name="cancer-dev", auth_mode="key", traffic=traffic, mirror_traffic=mirror
        )
        with pytest.raises(HttpResponseError) as e:
            ops.begin_create_or_update(ep).result()
        return str(e.value)

    assert "sum to 100" in put({"v-1": 60, "v-2": 30}, {})
    assert "cannot exceed 50%" in put({"v-1": 100}, {"v-2": 60})
    assert "receives live traffic" in put({"v-1": 50, "v-2": 50}, {"v-2": 10})
    assert "does not exist" in put({"v-9": 100}, {})
    with pytest.raises(HttpResponseError) as e:
        p.client.online_deployments.begin_delete(name="v-1", endpoint_name="cancer-dev").result()
    assert "has traffic assigned" in str(e.value)
    # the shape check: an unknown member and a bad enum value are 400s, as on Azure
    import json
    import os
    import ssl
    import urllib.request

    tls = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])

    url = f"{fake.base}/subscriptions/{settings['subscription_id']}/resourceGroups/ml-rg/providers/Microsoft.MachineLearningServices/workspaces/shop-dev/onlineEndpoints/other?api-version=2024-10-01-preview"
    for body, expected in (
        ({"location": "westeurope", "properties": {"authMode": "Password"}}, "authMode"),
        ({"location": "westeurope", "properties": {"authMode": "Key", "trafic": {}}}, "trafic"),
        ({"properties": {"authMode": "Key"}}, "location: required"),
    ):
        req = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as he:
            urllib.request.urlopen(req, timeout=30, context=tls)
        err = json.loads(he.value.read())["error"]
        assert he.value.code == 400 and err["code"] == "BadRequest" and expected in err["message"]
    assert "other" not in fake.state.endpoints


def test_fake_endpoint_lifecycle_rules(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    """Traffic only to a Succeeded deployment; a failed update rolls the deployment back to its
    previous spec; one operation at a time on an endpoint, its deployments' included."""
    from azure.ai.ml.entities import ManagedOnlineEndpoint
    from azure.core.exceptions import HttpResponseError

    p = _platform(settings, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    for v in ("1", "2"):
        _register(p, v)
    endpoints.deploy(p, _state(("1", 100, 0)), ctx)
    fake.state.fail_next_deployment = "ImageBuildFailure: the environment could not be built"
    with pytest.raises(BackendError):
        endpoints.deploy(p, _state(("1", 100, 0), ("2", 0, 0)), ctx)
    assert fake.state.deployments["cancer-dev"]["v-2"]["properties"]["provisioningState"] == (
        "Failed"
    )
    ops = p.client.online_endpoints
    with pytest.raises(HttpResponseError) as e:
        ops.begin_create_or_update(
            ManagedOnlineEndpoint(name="cancer-dev", auth_mode="key", traffic={"v-2": 100})
        ).result()
    assert "v-2' is Failed" in str(e.value)
    assert fake.state.endpoints["cancer-dev"]["properties"]["traffic"] == {"v-1": 100}
    # a failed update of v-1 (another size) leaves v-1 as it was, still serving its traffic
    before = fake.state.deployments["cancer-dev"]["v-1"]["properties"]
    fake.state.fail_next_deployment = "OutOfQuota: not enough cores"
    with pytest.raises(BackendError, match="OutOfQuota"):
        endpoints.deploy(
            p,
            EndpointState(
                name="cancer",
                model="cancer-classifier",
                backings=_state(("1", 100, 0)).backings,
                instance_type="Standard_F4s_v2",
            ),
            ctx,
        )
    after = fake.state.deployments["cancer-dev"]["v-1"]["properties"]
    assert after["instanceType"] == before["instanceType"] == "Standard_DS3_v2"
    assert after["provisioningState"] == "Failed"
    # while a deployment operation runs, the endpoint and its other deployments refuse (409)
    deps = fake.state.deployments["cancer-dev"]
    deps["v-2"]["properties"]["provisioningState"] = "Updating"
    with pytest.raises(HttpResponseError) as e:
        ops.begin_create_or_update(
            ManagedOnlineEndpoint(name="cancer-dev", auth_mode="key", traffic={"v-1": 100})
        ).result()
    assert e.value.status_code == 409 and "v-2 is Updating" in str(e.value)
    with pytest.raises(HttpResponseError) as e:
        p.client.online_deployments.begin_delete(name="v-1", endpoint_name="cancer-dev").result()
    assert e.value.status_code in (400, 409)  # v-1 has traffic (400) or the endpoint is busy
    with pytest.raises(BackendError, match="Conflict"):
        endpoints.deploy(p, _state(("1", 100, 0)), ctx)  # v-1 is redeployed: refused, busy
    with pytest.raises(HttpResponseError) as e:
        ops.begin_delete(name="cancer-dev").result()
    assert e.value.status_code == 409
