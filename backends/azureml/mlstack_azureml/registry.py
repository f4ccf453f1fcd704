"""Workspace models as mlstack's registry.

Azure ML has no aliases, so an alias is a tag on the version that holds it:
``mlstack.alias.<alias> = "true"``; moving an alias removes the tag from the version that had it
and sets it on the new one (two tag updates; the container's tag ``mlstack.alias.<alias>`` names
the version too, so a reader needs one call). Each version carries the artifact's digest
(``mlstack.digest``), the run's metrics (``mlstack.metric.<name>`` properties) and its lineage
(``mlstack.run``, ``mlstack.data_digest``); promotion registers the same artifact and digest
in the target workspace (its files copied into that workspace's datastore when they lie in
another workspace's).
"""

from __future__ import annotations

from typing import Any

from mlstack.engine.backend import Context, Event, ModelVersion, RunResult
from mlstack.engine.digest import tree_digest
from mlstack.errors import BackendError
from mlstack_azureml import datastore
from mlstack_azureml.azure import arm_error
from mlstack_azureml.platform import Platform

ALIAS = "mlstack.alias."
DIGEST = "mlstack.digest"
METRIC = "mlstack.metric."


def _model_version(m: Any) -> ModelVersion:
    tags = dict(m.tags or {})
    props = dict(m.properties or {})
    return ModelVersion(
        name=m.name,
        version=str(m.version),
        digest=tags.get(DIGEST, ""),
        uri=str(m.path or ""),
        metrics={k[len(METRIC) :]: float(v) for k, v in props.items() if k.startswith(METRIC)},
        aliases=tuple(sorted(k[len(ALIAS) :] for k, v in tags.items() if k.startswith(ALIAS))),
        lineage={k: v for k, v in props.items() if k in ("mlstack.run", "mlstack.data_digest")},
    )


def versions(p: Platform, model: str) -> list[ModelVersion]:
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    try:
        found = [_model_version(m) for m in p.client.models.list(name=model)]
    except ResourceNotFoundError:
        return []
    except HttpResponseError as e:
        raise arm_error(e, f"listing versions of model {model}") from None
    return sorted(found, key=lambda v: int(v.version) if v.version.isdigit() else -1, reverse=True)


def _create(
    p: Platform,
    name: str,
    uri: str,
    digest: str,
    metrics: dict[str, float],
    lineage: dict[str, str],
) -> ModelVersion:
    from azure.ai.ml.entities import Model
    from azure.core.exceptions import HttpResponseError

    existing = versions(p, name)
    same = next((v for v in existing if v.digest == digest and v.uri == uri), None)
    if same is not None:
        return same  # registering the same artifact twice is a no-op
    number = str(1 + max((int(v.version) for v in existing if v.version.isdigit()), default=0))
    props = {f"{METRIC}{k}": repr(float(v)) for k, v in sorted(metrics.items())}
    props.update({k: v for k, v in lineage.items() if v})
    try:
        made = p.client.models.create_or_update(
            Model(
                name=name,
                version=number,
                path=uri,
                type="custom_model",
                tags={DIGEST: digest},
                properties=props,
                description=f"registered by mlstack ({p.project.environment})",
            )
        )
    except HttpResponseError as e:
        raise arm_error(e, f"registering model {name}") from None
    return _model_version(made)


def register(p: Platform, run: RunResult, ctx: Context) -> ModelVersion:
    model = p.project.model
    if model is None or not run.model_uri or not run.model_digest:
        raise BackendError("the run produced no model to register", hint="check the train stage")
    mv = _create(
        p,
        model.name,
        run.model_uri,
        run.model_digest,
        dict(run.metrics),
        {"mlstack.run": run.run_id},
    )
    ctx.emit(Event("model.registered", f"{mv.name}:{mv.version}", mv.digest))
    return mv


def _artifact_here(p: Platform, source: ModelVersion) -> str:
    """The URI of ``source``'s files in this workspace's datastore: its own URI when it is
    already here, else its files copied from the workspace its long-form URI names (checked
    against its digest before and kept under it)."""
    source_ws = datastore.workspace_id_of(source.uri)
    if source_ws is None or source_ws.lower() == p.workspace_id.lower():
        return source.uri
    files = datastore.read_tree(p, source.uri, datastore.container_of(p, source_ws))
    if not files or tree_digest(files) != source.digest:
        raise BackendError(
            f"{source.name}:{source.version} in {source.uri} does not hold the files of digest "
            f"{source.digest}",
            hint="the source version's files changed or are gone; train and register it again",
        )
    digest = source.digest.split(":")[-1][:32]
    target = datastore.long_uri(
        p, datastore.uri(f"mlstack/{p.project.project}/models/{source.name}/{digest}")
    )
    if datastore.digest_of(p, target) != source.digest:
        datastore.write_tree(p, target, files)
    return target


def import_version(p: Platform, source: ModelVersion, ctx: Context) -> ModelVersion:
    """Promotion: the same artifact (same files, same digest) registered in this workspace;
    from another workspace its files are copied into this workspace's datastore first."""
    mv = _create(
        p,
        source.name,
        _artifact_here(p, source),
        source.digest,
        dict(source.metrics),
        {
            "mlstack.run": str(source.lineage.get("mlstack.run", "")),
            "mlstack.promoted_from": source.version,
        },
    )
    if mv.digest != source.digest:
        raise BackendError(f"promoted {source.name}:{source.version} changed digest")
    ctx.emit(Event("model.imported", f"{mv.name}:{mv.version}", mv.digest))
    return mv


def set_alias(p: Platform, model: str, alias: str, version: str, ctx: Context) -> None:
    from azure.core.exceptions import HttpResponseError

    key = f"{ALIAS}{alias}"
    try:
        for m in p.client.models.list(name=model):
            tags = dict(m.tags or {})
            holds = key in tags
            if holds == (str(m.version) == version):
                continue
            if holds:
                tags.pop(key)
            else:
                tags[key] = "true"
            m.tags = tags
            p.client.models.create_or_update(m)
    except HttpResponseError as e:
        raise arm_error(e, f"moving alias {alias} of {model} to version {version}") from None
    ctx.emit(Event("model.alias", f"{model}:{version}", alias))


MODELS_API = "2024-10-01"


def delete_all(p: Platform, model: str) -> list[str]:
    """Delete every version of ``model`` and then its container (REST "Model Versions - Delete",
    "Model Containers - Delete"; the SDK only archives). The versions deleted, oldest first.

    Deleted, not archived: Azure ML's archiving hides a version from lists while keeping it
    usable and its name taken, which is how to retire a version, not to tear an environment
    down. The artifact files stay in the datastore with the job outputs they came from."""
    base = f"{p.workspace_id}/models/{model}"
    params = {"api-version": MODELS_API}
    removed: list[str] = []
    url: str | None = f"{base}/versions"
    rows: list[dict[str, Any]] = []
    query: dict[str, str] | None = {**params, "listViewType": "All"}
    while url:
        page = p.arm.request(
            "GET", url, f"listing versions of model {model}", params=query, absent_ok=True
        )
        if page is None:
            return []
        rows.extend(page.get("value") or [])
        url = page.get("nextLink") or None  # a whole URL with its query
        query = None
    names = sorted((str(r["name"]) for r in rows), key=lambda v: (not v.isdigit(), v.zfill(12)))
    for version in names:
        p.arm.request(
            "DELETE", f"{base}/versions/{version}", f"deleting model {model}:{version}", params
        )
        removed.append(version)
    p.arm.request("DELETE", base, f"deleting model {model}", params)
    return removed
