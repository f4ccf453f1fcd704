"""The model registry as ConfigMaps in the environment's namespace, one per version.

KServe has no registry of its own; a ConfigMap (labelled with the project, model and version)
holds a version's artifact URI, digest, metrics, aliases and lineage, so the registry lives in
the cluster next to the InferenceServices that serve it and needs no other service.
"""

from __future__ import annotations

import json
from typing import Any

from mlstack.engine.backend import Context, Event, ModelVersion, RunResult
from mlstack.errors import BackendError
from mlstack_kserve.k8s_names import object_name
from mlstack_kserve.manifests import labels
from mlstack_kserve.platform import Platform

CONFIGMAPS = ("", "v1", "configmaps")


def _name(model: str, version: str) -> str:
    return object_name("mlstack-model", model, f"v{version}", limit=253)


def _configmap(p: Platform, v: ModelVersion) -> dict[str, Any]:
    record = {
        "name": v.name,
        "version": v.version,
        "digest": v.digest,
        "uri": v.uri,
        "metrics": dict(v.metrics),
        "aliases": list(v.aliases),
        "lineage": dict(v.lineage),
        "approved": v.approved,
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": _name(v.name, v.version),
            "namespace": p.config.namespace,
            "labels": {**labels(p.project.project, model=v.name), "mlstack.dev/kind": "model"},
        },
        "data": {"version.json": json.dumps(record, sort_keys=True)},
    }


def _read(cm: dict[str, Any]) -> ModelVersion:
    r = json.loads(cm["data"]["version.json"])
    return ModelVersion(
        name=r["name"],
        version=r["version"],
        digest=r["digest"],
        uri=r["uri"],
        metrics=r.get("metrics", {}),
        aliases=tuple(r.get("aliases", ())),
        lineage=r.get("lineage", {}),
        approved=bool(r.get("approved", True)),
    )


def versions(p: Platform, model: str) -> list[ModelVersion]:
    selector = {**labels(p.project.project, model=model), "mlstack.dev/kind": "model"}
    found = [_read(cm) for cm in p.cluster.list(CONFIGMAPS, selector)]
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def save(p: Platform, version: ModelVersion) -> ModelVersion:
    p.cluster.apply(_configmap(p, version), "configmaps")
    return version


def add(p: Platform, model: str, digest: str, uri: str, **more: Any) -> ModelVersion:
    existing = versions(p, model)
    for v in existing:
        if v.digest == digest:
            return v
    number = str(int(existing[0].version) + 1 if existing else 1)
    return save(p, ModelVersion(name=model, version=number, digest=digest, uri=uri, **more))


def register(p: Platform, run: RunResult, ctx: Context) -> ModelVersion:
    if run.model_uri is None or run.model_digest is None:
        raise BackendError(f"run {run.run_id} produced no model artifact to register")
    aliases = tuple(p.project.model.registration.aliases) if p.project.model else ()
    v = add(
        p,
        p.model_name(),
        run.model_digest,
        run.model_uri,
        metrics=dict(run.metrics),
        lineage={"run_id": run.run_id},
    )
    for alias in aliases:
        set_alias(p, v.name, alias, v.version)
    v = next(x for x in versions(p, v.name) if x.version == v.version)
    ctx.emit(Event("model.registered", f"{v.name}@{v.version}", v.uri))
    return v


def import_version(p: Platform, source: ModelVersion, ctx: Context) -> ModelVersion:
    """The promoted artifact, same digest. An artifact on this machine (the local backend) is
    copied to the environment's storage, where KServe's storage initializer can read it."""
    from mlstack_kserve import storage

    uri = source.uri
    folder = storage.local_dir(uri)
    if folder is not None:
        key = f"models/{source.name}/{source.digest.removeprefix('sha256:')[:16]}"
        uri = storage.upload_dir(p, folder, key)
        ctx.emit(Event("log", "promote", f"copied {source.uri} to {uri}"))
    v = add(
        p,
        source.name,
        source.digest,
        uri,
        metrics=dict(source.metrics),
        lineage={**dict(source.lineage), "promoted_from": f"{source.name}@{source.version}"},
    )
    ctx.emit(Event("model.imported", f"{v.name}@{v.version}", v.uri))
    return v


def set_alias(p: Platform, model: str, alias: str, version: str) -> None:
    for v in versions(p, model):
        has = alias in v.aliases
        if (v.version == version) != has:
            aliases = (
                (*v.aliases, alias)
                if v.version == version
                else tuple(a for a in v.aliases if a != alias)
            )
            save(p, ModelVersion(**{**v.__dict__, "aliases": aliases}))
    if not any(v.version == version for v in versions(p, model)):
        raise BackendError(f"model {model!r} has no version {version!r}")


def delete_all(p: Platform, model: str) -> None:
    for v in versions(p, model):
        p.cluster.delete(CONFIGMAPS, _name(v.name, v.version))
