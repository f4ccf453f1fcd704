"""Managed online endpoints: one deployment per model version, traffic and mirror traffic.

``deploy`` makes the endpoint hold exactly an ``EndpointState``: missing deployments are created
(at 0 %; each runs ``score.py`` of mlstack's code asset over its registered model version in
the environment's curated scikit-learn image), then one endpoint update sets ``traffic`` (whole percents summing to 100) and
``mirror_traffic`` (shadow copies, at most 50 %, only to deployments without live traffic),
then deployments no longer wanted are deleted (they hold no traffic by then, as Azure requires).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from mlstack.engine.backend import Context, EndpointState, EndpointView, Event, VersionServing
from mlstack.engine.traffic import whole_percents
from mlstack.errors import BackendError
from mlstack_azureml import datastore
from mlstack_azureml.azure import arm_error
from mlstack_azureml.code_asset import SCORING_SCRIPT
from mlstack_azureml.platform import DIGEST_TAG, MODEL_TAG, VERSION_TAG, Platform


def _not_found(e: Exception) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    return isinstance(e, ResourceNotFoundError)


def _wait(start: Callable[[], Any], doing: str) -> Any:
    """Start a long-running operation and wait for it. ARM may refuse the first request (400
    validation, 409 another operation on the endpoint) before any operation exists: that answer
    comes from ``begin_*`` itself, so the start is inside the same error mapping."""
    from azure.core.exceptions import HttpResponseError

    try:
        return start().result()
    except HttpResponseError as e:
        raise arm_error(e, doing) from None


def deploy(p: Platform, desired: EndpointState, ctx: Context) -> EndpointView:
    from azure.ai.ml.entities import (
        CodeConfiguration,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
    )
    from azure.core.exceptions import HttpResponseError

    ops = p.client.online_endpoints
    name = p.endpoint_name(desired.name)
    try:
        endpoint = ops.get(name)
    except HttpResponseError as e:
        if not _not_found(e):
            raise arm_error(e, f"reading endpoint {name}") from None
        ctx.emit(Event("endpoint.created", name, "creating the managed online endpoint"))
        new = ManagedOnlineEndpoint(name=name, auth_mode="key", tags={MODEL_TAG: desired.model})
        endpoint = _wait(
            lambda: ops.begin_create_or_update(new),
            f"creating endpoint {name}",
        )
    try:
        existing = {d.name: d for d in p.client.online_deployments.list(name)}
    except HttpResponseError as e:
        raise arm_error(e, f"listing the deployments of {name}") from None
    wanted = {p.deployment_name(b.version): b for b in desired.backings}
    instance_type = desired.instance_type or p.config.serving_sku
    code: str | None = None
    for dep_name, backing in wanted.items():
        current = existing.get(dep_name)
        if (
            current is not None
            and _word(current.provisioning_state) == "Succeeded"
            and current.instance_count == desired.replicas
            and current.instance_type == instance_type
        ):
            continue  # a failed deployment, or one of another size, is deployed again
        ctx.emit(Event("endpoint.updated", f"{name}/{dep_name}", f"version {backing.version}"))
        code = code or datastore.ensure_code(p, ctx)
        deployment = ManagedOnlineDeployment(
            name=dep_name,
            endpoint_name=name,
            model=f"azureml:{p.model_name(desired.model)}:{backing.version}",
            # the shared runtime's serving hooks behind Azure ML's init()/run()
            code_configuration=CodeConfiguration(code=code, scoring_script=SCORING_SCRIPT),
            environment=p.config.environment,
            instance_type=instance_type,
            instance_count=desired.replicas,
            tags={VERSION_TAG: backing.version, DIGEST_TAG: backing.digest},
        )
        _wait(
            partial(p.client.online_deployments.begin_create_or_update, deployment),
            f"deploying version {backing.version} to {name}",
        )
    traffic = whole_percents({d: b.weight for d, b in wanted.items()})
    mirror = {d: int(round(b.shadow)) for d, b in wanted.items() if b.shadow > 0}
    live = {d: v for d, v in traffic.items() if v > 0}
    if live != dict(endpoint.traffic or {}) or mirror != dict(endpoint.mirror_traffic or {}):
        endpoint.traffic = live
        endpoint.mirror_traffic = mirror
        ctx.emit(Event("endpoint.weights", name, _describe(live, mirror)))
        _wait(lambda: ops.begin_create_or_update(endpoint), f"setting traffic on {name}")
    for dep_name in sorted(set(existing) - set(wanted)):
        ctx.emit(Event("endpoint.updated", f"{name}/{dep_name}", "retired"))
        _wait(
            partial(p.client.online_deployments.begin_delete, name=dep_name, endpoint_name=name),
            f"deleting retired deployment {dep_name}",
        )
    view = endpoint_status(p, desired.name)
    if view is None:
        raise BackendError(f"endpoint {name} vanished while it was being deployed")
    return view


def _word(value: object) -> str:
    """The service's word for an enum value (the SDK hands back enums or plain strings)."""
    return str(getattr(value, "value", value) or "")


def _describe(traffic: dict[str, int], mirror: dict[str, int]) -> str:
    text = ", ".join(f"{d} {v}%" for d, v in sorted(traffic.items())) or "no live traffic"
    if mirror:
        text += "; mirrored: " + ", ".join(f"{d} {v}%" for d, v in sorted(mirror.items()))
    return text


def endpoint_status(p: Platform, endpoint: str) -> EndpointView | None:
    from azure.core.exceptions import HttpResponseError

    name = p.endpoint_name(endpoint)
    try:
        ep = p.client.online_endpoints.get(name)
        deployments = list(p.client.online_deployments.list(name))
    except HttpResponseError as e:
        if _not_found(e):
            return None
        raise arm_error(e, f"reading endpoint {name}") from None
    traffic = dict(ep.traffic or {})
    mirror = dict(ep.mirror_traffic or {})
    versions = []
    for d in sorted(deployments, key=lambda d: d.name):
        state = _word(d.provisioning_state)
        versions.append(
            VersionServing(
                version=(d.tags or {}).get(VERSION_TAG, d.name),
                weight=float(traffic.get(d.name, 0)),
                mirrored=float(mirror.get(d.name, 0)),
                healthy=state == "Succeeded" if state else None,
                where=f"deployment {d.name} ({d.instance_type} x{d.instance_count}, {state})",
            )
        )
    state = _word(ep.provisioning_state)
    return EndpointView(
        name=name,
        url=str(ep.scoring_uri or ""),
        status=state,
        versions=tuple(versions),
        healthy=state == "Succeeded" and all(v.healthy is not False for v in versions),
        details={"workspace": p.config.workspace, "auth": _word(ep.auth_mode)},
    )


def destroy_endpoint(p: Platform, endpoint_name: str) -> bool:
    """Delete an endpoint and with it its deployments; False when it was already gone."""
    from azure.core.exceptions import HttpResponseError

    try:
        p.client.online_endpoints.get(endpoint_name)
    except HttpResponseError as e:
        if _not_found(e):
            return False
        raise arm_error(e, f"reading endpoint {endpoint_name}") from None
    _wait(
        lambda: p.client.online_endpoints.begin_delete(name=endpoint_name),
        f"deleting endpoint {endpoint_name}",
    )
    return True
