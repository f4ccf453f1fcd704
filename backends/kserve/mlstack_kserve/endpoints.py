"""Endpoints as KServe InferenceServices: deploy, status, teardown, in both serving modes.

Serverless (KServe's canary rollout guide): one InferenceService per endpoint. Changing the
predictor makes a new Knative revision; ``canaryTrafficPercent`` gives it that share and leaves
the rest on the last revision rolled out; removing the field promotes it; setting it to 0 sends
everything back to the previous rolled-out revision (KServe's rollback). mlstack records which
version each revision serves in the ``mlstack.dev/version`` label and the
``mlstack.dev/previous-version`` annotation, since revisions are named by Knative.

RawDeployment: one InferenceService per version (its ``<name>-predictor`` Service) and one Gateway
API ``HTTPRoute`` per endpoint with the versions' weights and, for shadow, a ``RequestMirror``
filter with the mirrored ``percent``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mlstack.engine.backend import Backing, Context, EndpointState, EndpointView, Event
from mlstack.engine.seam import VersionServing
from mlstack.errors import BackendError
from mlstack_kserve import manifests as mf
from mlstack_kserve.platform import Platform


def _predictor(
    p: Platform, b: Backing, desired: EndpointState, canary: float | None
) -> dict[str, Any]:
    c = p.config
    return mf.predictor(
        image=c.image,
        storage_uri=b.uri,
        model=p.model_name(),
        version=b.version,
        service_account=c.service_account,
        resources=c.resources.requirements(),
        replicas=max(1, desired.replicas),
        canary_percent=canary,
        batcher=(desired.max_batch, desired.max_latency) if desired.max_batch > 1 else None,
    )


def _isvc(
    p: Platform,
    name: str,
    endpoint: str,
    b: Backing,
    desired: EndpointState,
    canary: float | None,
    previous: str | None,
) -> dict[str, Any]:
    return mf.inference_service(
        name=name,
        namespace=p.config.namespace,
        project=p.project.project,
        endpoint=endpoint,
        version=b.version,
        mode=p.config.serving_mode,
        predictor_spec=_predictor(p, b, desired, canary),
        previous=previous,
    )


def _condition(obj: Mapping[str, Any] | None, kind: str = "Ready") -> Mapping[str, Any]:
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c.get("type") == kind:
            found: Mapping[str, Any] = c
            return found
    return {}


def _settled(obj: Mapping[str, Any]) -> bool | None:
    """True ready at its generation, False failed, None still moving."""
    status = obj.get("status", {})
    if status.get("observedGeneration") != obj["metadata"].get("generation"):
        return None
    ready = _condition(obj)
    if ready.get("status") == "True":
        return True
    if ready.get("status") == "False" and ready.get("reason") not in (None, "", "Progressing"):
        return False
    return None


def _wait(p: Platform, names: list[str], ctx: Context) -> list[dict[str, Any]]:
    deadline = time.monotonic() + p.config.timeout
    delay = min(0.05, p.config.poll_interval)
    while True:
        objs = [p.cluster.get(mf.ISVC_API, n) for n in names]
        states = [_settled(o) if o else False for o in objs]
        for n, o, s in zip(names, objs, states, strict=True):
            if s is False:
                why = _condition(o) if o else {"message": "it was deleted"}
                raise BackendError(
                    f"InferenceService {n} did not become ready: "
                    f"{why.get('reason', '')} {why.get('message', '')}".strip(),
                    hint=f"kubectl -n {p.config.namespace} describe inferenceservice {n}",
                )
        if all(states):
            return [o for o in objs if o]
        if ctx.cancel.is_set() or time.monotonic() > deadline:
            raise BackendError(
                f"InferenceServices {', '.join(names)} not ready after {p.config.timeout:g}s",
                hint="raise `timeout:` or look at the predictor pods' events",
            )
        time.sleep(delay)
        delay = min(p.config.poll_interval, delay * 1.5)


def deploy(p: Platform, desired: EndpointState, ctx: Context) -> EndpointView:
    if p.raw:
        _deploy_raw(p, desired, ctx)
    else:
        _deploy_serverless(p, desired, ctx)
    view = endpoint_status(p, desired.name)
    assert view is not None
    ctx.emit(Event("endpoint.updated", desired.name, view.url, {"weights": view.weights()}))
    return view


# --- Serverless ---------------------------------------------------------------------------------
def _deploy_serverless(p: Platform, desired: EndpointState, ctx: Context) -> None:
    if any(b.shadow for b in desired.backings):
        raise BackendError(
            "Serverless InferenceServices cannot mirror requests (Knative has no mirroring)",
            hint="use serving_mode: RawDeployment with a Gateway API gateway for shadow",
        )
    backings = [b for b in desired.backings if b.weight > 0] or list(desired.backings[-1:])
    if len(backings) > 2:
        raise BackendError(
            f"endpoint {desired.name}: KServe Serverless splits traffic between two revisions "
            f"(the latest and the last rolled out), not {len(backings)}",
            hint="roll out one new version at a time",
        )
    name = p.isvc_name(desired.name)
    cur = p.cluster.get(mf.ISVC_API, name)
    spec_version, previous, canary_set = _revisions(cur)
    rolled_out = previous if canary_set else spec_version
    if len(backings) == 1:
        b = backings[0]
        if cur is not None and spec_version == b.version:
            obj = _isvc(p, name, desired.name, b, desired, None, previous)
        elif cur is not None and canary_set and previous == b.version:
            # KServe's rollback: canaryTrafficPercent 0 sends all traffic to the last revision
            # rolled out; the spec keeps the newer predictor
            latest = _backing_of(cur, spec_version)
            obj = _isvc(p, name, desired.name, latest, desired, 0, previous)
            ctx.emit(Event("rollout.rollback", desired.name, f"all traffic to {previous}"))
        else:
            obj = _isvc(p, name, desired.name, b, desired, None, rolled_out)
    else:
        by_version = {b.version: b for b in backings}
        if rolled_out not in by_version:
            raise BackendError(
                f"endpoint {desired.name}: KServe Serverless keeps traffic on the last revision "
                f"rolled out ({rolled_out or 'none'}); it cannot split between "
                f"{' and '.join(sorted(by_version))}",
                hint="deploy one of them at 100% first",
            )
        new = next(b for b in backings if b.version != rolled_out)
        obj = _isvc(p, name, desired.name, new, desired, new.weight, rolled_out)
    p.cluster.apply(obj, "inferenceservices")
    _wait(p, [name], ctx)


def _revisions(cur: Mapping[str, Any] | None) -> tuple[str | None, str | None, bool]:
    """(version in the spec, previous version, canaryTrafficPercent set)."""
    if cur is None:
        return None, None, False
    meta = cur["metadata"]
    spec_version = meta.get("labels", {}).get(mf.VERSION_LABEL)
    previous = meta.get("annotations", {}).get(mf.PREVIOUS_ANNOTATION)
    canary = "canaryTrafficPercent" in cur["spec"]["predictor"]
    return spec_version, previous, canary


def _backing_of(cur: Mapping[str, Any], version: str | None) -> Backing:
    container = cur["spec"]["predictor"]["containers"][0]
    uri = next(e["value"] for e in container["env"] if e["name"] == "STORAGE_URI")
    return Backing(version=str(version), uri=uri, digest="", weight=0.0)


# --- RawDeployment ------------------------------------------------------------------------------
def _service(p: Platform, isvc: str) -> str:
    return f"{isvc}-predictor"


def _deploy_raw(p: Platform, desired: EndpointState, ctx: Context) -> None:
    c = p.config
    names = {}
    for b in desired.backings:
        name = p.isvc_name(desired.name, b.version)
        names[b.version] = name
        p.cluster.apply(_isvc(p, name, desired.name, b, desired, None, None), "inferenceservices")
    _wait(p, list(names.values()), ctx)
    mirrored = [b for b in desired.backings if b.shadow > 0]
    if len(mirrored) > 1:
        raise BackendError("an HTTPRoute rule mirrors to one backend; shadow one version at a time")
    weights = {
        _service(p, names[b.version]): round(b.weight)
        for b in desired.backings
        if b.weight > 0 or not b.shadow
    }
    mirror = (_service(p, names[mirrored[0].version]), mirrored[0].shadow) if mirrored else None
    gw = c.gateway
    assert gw is not None  # the config requires it in RawDeployment mode
    route = mf.http_route(
        name=p.isvc_name(desired.name),
        namespace=c.namespace,
        project=p.project.project,
        endpoint=desired.name,
        gateway={"name": gw.name, "namespace": gw.namespace, "section": gw.section},
        hostname=p.host(p.isvc_name(desired.name)),
        weights=weights,
        mirror=mirror,
    )
    p.cluster.apply(route, "httproutes")
    keep = set(names.values())
    for obj in p.cluster.list(
        mf.ISVC_API, {mf.ENDPOINT_LABEL: mf.labels("", endpoint=desired.name)[mf.ENDPOINT_LABEL]}
    ):
        if obj["metadata"]["name"] not in keep:
            p.cluster.delete(mf.ISVC_API, obj["metadata"]["name"])
            ctx.emit(Event("endpoint.updated", desired.name, obj["metadata"]["name"]))


# --- status / teardown --------------------------------------------------------------------------
def endpoint_status(p: Platform, endpoint: str) -> EndpointView | None:
    return _status_raw(p, endpoint) if p.raw else _status_serverless(p, endpoint)


def _status_serverless(p: Platform, endpoint: str) -> EndpointView | None:
    name = p.isvc_name(endpoint)
    obj = p.cluster.get(mf.ISVC_API, name)
    if obj is None:
        return None
    spec_version, previous, _ = _revisions(obj)
    status = obj.get("status", {})
    pred = status.get("components", {}).get("predictor", {})
    versions = []
    for t in pred.get("traffic", []):
        version = spec_version if t.get("latestRevision") else previous
        versions.append(
            VersionServing(
                version=str(version),
                weight=float(t.get("percent", 0)),
                healthy=_condition(obj).get("status") == "True",
                where=f"revision {t.get('revisionName')}",
            )
        )
    ready = _condition(obj)
    return EndpointView(
        name=name,
        url=str(status.get("url", f"http://{p.host(name)}")),
        status="Ready" if ready.get("status") == "True" else str(ready.get("reason") or "NotReady"),
        versions=tuple(versions),
        healthy=ready.get("status") == "True",
        details={
            "mode": "Serverless",
            "latest ready revision": str(pred.get("latestReadyRevision", "")),
            "previous rolled-out revision": str(pred.get("previousRolledoutRevision", "")),
        },
    )


def _status_raw(p: Platform, endpoint: str) -> EndpointView | None:
    route = p.cluster.get(mf.ROUTE_API, p.isvc_name(endpoint))
    if route is None:
        return None
    rule = route["spec"]["rules"][0]
    weights = {r["name"]: float(r.get("weight", 1)) for r in rule.get("backendRefs", [])}
    total = sum(weights.values()) or 1.0
    mirror: dict[str, float] = {}
    for f in rule.get("filters", []):
        if f.get("type") == "RequestMirror":
            m = f["requestMirror"]
            mirror[m["backendRef"]["name"]] = float(m.get("percent", 100))
    versions = []
    healthy = True
    for svc in sorted(set(weights) | set(mirror)):
        isvc = p.cluster.get(mf.ISVC_API, svc.removesuffix("-predictor"))
        ok = _condition(isvc).get("status") == "True"
        healthy = healthy and ok
        version = (isvc or {}).get("metadata", {}).get("labels", {}).get(mf.VERSION_LABEL, svc)
        versions.append(
            VersionServing(
                version=str(version),
                weight=100.0 * weights.get(svc, 0.0) / total,
                mirrored=mirror.get(svc, 0.0),
                healthy=ok,
                where=f"InferenceService {svc.removesuffix('-predictor')}",
            )
        )
    accepted = any(
        c.get("type") == "Accepted" and c.get("status") == "True"
        for parent in route.get("status", {}).get("parents", [])
        for c in parent.get("conditions", [])
    )
    host = route["spec"].get("hostnames", [p.host(route["metadata"]["name"])])[0]
    return EndpointView(
        name=route["metadata"]["name"],
        url=f"http://{host}",
        status="Ready" if healthy and accepted else ("NotAccepted" if not accepted else "NotReady"),
        versions=tuple(versions),
        healthy=healthy and accepted,
        details={"mode": "RawDeployment", "route": f"HTTPRoute {route['metadata']['name']}"},
    )


def destroy_endpoint(p: Platform, endpoint: str) -> None:
    if p.raw:
        p.cluster.delete(mf.ROUTE_API, p.isvc_name(endpoint))
        selector = {mf.ENDPOINT_LABEL: mf.labels("", endpoint=endpoint)[mf.ENDPOINT_LABEL]}
        for obj in p.cluster.list(mf.ISVC_API, selector):
            p.cluster.delete(mf.ISVC_API, obj["metadata"]["name"])
    else:
        p.cluster.delete(mf.ISVC_API, p.isvc_name(endpoint))
