"""Vertex endpoints: one deployed model per serving version, ``traffic_split`` as the weights.

``deploy`` makes the endpoint hold exactly the desired versions, in the order Vertex allows:
create the endpoint if missing; deploy each new version with no traffic; set the split (whole
percents adding up to 100, by ``mlstack.engine.traffic``); undeploy versions that are no longer
wanted (only once they have no traffic: Vertex refuses to undeploy a deployed model that still
has some). mlstack's rollout controller steps the split for canary, linear and blue/green and judges
the gates on Cloud Monitoring's numbers (``monitoring``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import (
    Context,
    EndpointState,
    EndpointView,
    Event,
    Prediction,
    VersionServing,
)
from mlstack.engine.traffic import whole_percents
from mlstack.errors import BackendError
from mlstack_vertex import names

if TYPE_CHECKING:
    from mlstack_vertex.platform import Platform


def _version_of(deployed: Any) -> str:
    return str(deployed.model).rpartition("@")[2]


def get(platform: Platform, endpoint: str) -> Any | None:
    gcp = platform.gcp
    return gcp.exists(
        "get endpoint", gcp.endpoints.get_endpoint, name=platform.endpoint_name(endpoint)
    )


def _ensure(platform: Platform, desired: EndpointState, ctx: Context) -> Any:
    from google.cloud import aiplatform_v1 as aip

    found = get(platform, desired.name)
    if found is not None:
        return found
    gcp, project = platform.gcp, platform.project
    ep = aip.Endpoint(
        display_name=desired.name,
        labels={
            "mlstack-project": names.label_value(project.project),
            "mlstack-environment": names.label_value(project.environment),
        },
    )
    if platform.config.network:
        ep.network = platform.config.network
    op = gcp.call(
        "create endpoint",
        gcp.endpoints.create_endpoint,
        parent=platform.parent,
        endpoint=ep,
        endpoint_id=names.endpoint_id(desired.name, project),
    )
    made = gcp.wait("create endpoint", op)
    ctx.emit(Event("endpoint.created", desired.name, made.name))
    return made


def deploy(platform: Platform, desired: EndpointState, ctx: Context) -> EndpointView:
    from google.cloud import aiplatform_v1 as aip

    gcp, cfg = platform.gcp, platform.config
    ep = _ensure(platform, desired, ctx)
    by_version = {_version_of(d): d.id for d in ep.deployed_models}
    model = platform.model_name()
    for b in desired.backings:
        if b.version in by_version:
            continue
        deployed = aip.DeployedModel(
            model=f"{model}@{b.version}",
            display_name=f"{desired.model}-v{b.version}",
            dedicated_resources=aip.DedicatedResources(
                machine_spec=aip.MachineSpec(
                    machine_type=desired.instance_type or cfg.serving_machine_type
                ),
                min_replica_count=desired.replicas,
                max_replica_count=desired.replicas,
            ),
        )
        sa = platform.infra_outputs().get("service_account")
        if sa:
            deployed.service_account = sa
        current = dict(ep.traffic_split)
        split = {**current, "0": 0} if current else {"0": 100}
        op = gcp.call(
            "deploy model",
            gcp.endpoints.deploy_model,
            endpoint=ep.name,
            deployed_model=deployed,
            traffic_split=split,
        )
        done = gcp.wait("deploy model", op)
        ctx.emit(Event("endpoint.updated", desired.name, f"version {b.version} deployed"))
        ep = gcp.call("get endpoint", gcp.endpoints.get_endpoint, name=ep.name)
        by_version[b.version] = done.deployed_model.id or next(
            d.id for d in ep.deployed_models if _version_of(d) == b.version
        )
    shares = whole_percents({by_version[b.version]: b.weight for b in desired.backings})
    wanted = {k: v for k, v in shares.items() if v > 0}  # as Vertex answers it
    if wanted != {k: v for k, v in ep.traffic_split.items() if v > 0}:
        ep = gcp.call(
            "set traffic split",
            gcp.endpoints.update_endpoint,
            endpoint=aip.Endpoint(name=ep.name, traffic_split=wanted),
            update_mask={"paths": ["traffic_split"]},
        )
        ctx.emit(Event("endpoint.weights", desired.name, _split_text(ep)))
    keep = {b.version for b in desired.backings}
    for d in list(ep.deployed_models):
        if _version_of(d) not in keep:
            op = gcp.call(
                "undeploy model",
                gcp.endpoints.undeploy_model,
                endpoint=ep.name,
                deployed_model_id=d.id,
            )
            gcp.wait("undeploy model", op)
            ctx.emit(
                Event("endpoint.updated", desired.name, f"version {_version_of(d)} undeployed")
            )
    view = endpoint_status(platform, desired.name)
    assert view is not None
    return view


def _split_text(ep: Any) -> str:
    by_id = {d.id: _version_of(d) for d in ep.deployed_models}
    return ", ".join(f"v{by_id.get(k, k)} {v}%" for k, v in sorted(ep.traffic_split.items()))


def endpoint_status(platform: Platform, endpoint: str) -> EndpointView | None:
    ep = get(platform, endpoint)
    if ep is None:
        return None
    split = dict(ep.traffic_split)
    versions = tuple(
        VersionServing(
            version=_version_of(d),
            weight=float(split.get(d.id, 0)),
            healthy=True,
            where=f"deployed model {d.id} ({d.dedicated_resources.machine_spec.machine_type})",
        )
        for d in ep.deployed_models
    )
    return EndpointView(
        name=ep.name,
        url=f"https://{platform.config.region}-aiplatform.googleapis.com/v1/{ep.name}:predict",
        status="serving" if split else "no traffic",
        versions=versions,
        healthy=bool(split),
        details={"endpoint id": ep.name.rsplit("/", 1)[-1]},
    )


def deployed_ids(platform: Platform, endpoint: str) -> dict[str, str]:
    """deployed model id -> version, for reading Cloud Monitoring's series."""
    ep = get(platform, endpoint)
    return {d.id: _version_of(d) for d in ep.deployed_models} if ep is not None else {}


def predict(
    platform: Platform, endpoint: str, body: Mapping[str, Any], timeout: float
) -> Prediction:
    from google.protobuf import json_format, struct_pb2

    gcp = platform.gcp
    if "instances" not in body:
        raise BackendError(
            'Vertex endpoints take V1 requests: {"instances": [...]}',
            hint='send rows as {"instances": [{column: value, ...}]}',
        )
    instances = []
    for row in body["instances"]:
        v = struct_pb2.Value()
        json_format.ParseDict(row, v)
        instances.append(v)
    parameters = None
    if body.get("parameters") is not None:
        parameters = struct_pb2.Value()
        json_format.ParseDict(body["parameters"], parameters)
    name = platform.endpoint_name(endpoint)
    answer = gcp.call(
        f"predict on {endpoint}",
        gcp.prediction.predict,
        endpoint=name,
        instances=instances,
        parameters=parameters,
        timeout=timeout,
    )
    # the answer names the model version that served it (PredictResponse.model_version_id):
    # one call per prediction, no GetEndpoint to map the deployed model id
    predictions = [json_format.MessageToDict(v) for v in answer._pb.predictions]
    return Prediction(
        body={"predictions": predictions},
        version=answer.model_version_id or None,
        target=name,
    )


def destroy_endpoint(platform: Platform, endpoint: str, ctx: Context) -> None:
    """Traffic off, every deployed model undeployed, then the endpoint deleted."""
    from google.cloud import aiplatform_v1 as aip

    gcp = platform.gcp
    ep = get(platform, endpoint)
    if ep is None:
        return
    if ep.traffic_split:
        ep = gcp.call(
            "clear traffic split",
            gcp.endpoints.update_endpoint,
            endpoint=aip.Endpoint(name=ep.name, traffic_split={}),
            update_mask={"paths": ["traffic_split"]},
        )
    for d in list(ep.deployed_models):
        op = gcp.call(
            "undeploy model", gcp.endpoints.undeploy_model, endpoint=ep.name, deployed_model_id=d.id
        )
        gcp.wait("undeploy model", op)
        ctx.emit(Event("endpoint.updated", endpoint, f"version {_version_of(d)} undeployed"))
    op = gcp.call("delete endpoint", gcp.endpoints.delete_endpoint, name=ep.name)
    gcp.wait("delete endpoint", op)
