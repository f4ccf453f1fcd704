"""Vertex Model Registry: one parent model per mlstack model and environment; every registered
run is a new version under it (``UploadModelRequest.parent_model``), champion / challenger are
version aliases (``MergeVersionAliases``), and the artifact's digest, metrics and lineage travel
in the version's description (JSON; label values cannot hold a sha256 or a decimal point) with
short labels for filtering.

Promotion imports the artifact into the target environment: the model directory is copied into
the target's bucket and the copy's digest must equal the source's before the new version is
uploaded; a version with that digest already registered is reused.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Context, Event, ModelVersion, RunResult
from mlstack.errors import BackendError
from mlstack_vertex import artifacts, names, pipeline_spec

if TYPE_CHECKING:
    from mlstack_vertex.platform import Platform

DESCRIPTION_FORMAT = "mlstack/1"


def _serving_image(platform: Platform) -> str:
    return platform.config.serving_image or _default_serving_image(platform)


def _default_serving_image(platform: Platform) -> str:
    cfg = platform.config
    return f"{cfg.region}-docker.pkg.dev/{cfg.project}/mlstack/mlstack-serving:latest"


def register(platform: Platform, run: RunResult, ctx: Context) -> ModelVersion:
    if not run.model_uri or not run.model_digest:
        raise BackendError(
            f"run {run.run_id} produced no model artifact to register",
            hint="check the train stage's outputs in the pipeline run",
        )
    existing = next((v for v in versions(platform) if v.digest == run.model_digest), None)
    if existing is not None:
        return existing
    return _upload(platform, run.model_uri, run.model_digest, run.metrics, run.run_id, ctx)


def _upload(
    platform: Platform,
    uri: str,
    digest: str,
    metrics: Any,
    run_id: str,
    ctx: Context,
    source: str = "",
) -> ModelVersion:
    from google.cloud import aiplatform_v1 as aip

    gcp, project = platform.gcp, platform.project
    assert project.model is not None
    parent_model = platform.model_name()
    exists = gcp.exists("get model", gcp.models.get_model, name=parent_model) is not None
    description = {
        "format": DESCRIPTION_FORMAT,
        "digest": digest,
        "metrics": dict(metrics),
        "lineage": {"run": run_id, "source": source, "environment": project.environment},
    }
    model = aip.Model(
        display_name=project.model.name,
        artifact_uri=uri,
        version_description=json.dumps(description, sort_keys=True),
        version_aliases=[a for a in project.model.registration.aliases if a != "champion"],
        labels={
            "mlstack-project": names.label_value(project.project),
            "mlstack-environment": names.label_value(project.environment),
            "mlstack-run": names.label_value(run_id),
        },
        container_spec=aip.ModelContainerSpec(
            image_uri=_serving_image(platform),
            predict_route="/predict",
            health_route="/health",
            ports=[aip.Port(container_port=8080)],
        ),
    )
    request = aip.UploadModelRequest(parent=platform.parent, model=model)
    if exists:
        request.parent_model = parent_model
    else:
        request.model_id = names.model_id(project)
    sa = platform.infra_outputs(ctx).get("service_account")
    if sa:
        request.service_account = sa
    op = gcp.call("upload model", gcp.models.upload_model, request=request)
    done = gcp.wait("upload model", op)
    made = version(platform, f"{done.model}@{done.model_version_id}")
    ctx.emit(Event("model.registered", project.model.name, f"version {made.version}"))
    return made


def import_version(platform: Platform, source: ModelVersion, ctx: Context) -> ModelVersion:
    """Copy the artifact into this environment's bucket, check its digest, register it."""
    existing = next((v for v in versions(platform) if v.digest == source.digest), None)
    if existing is not None:
        return existing
    layout = pipeline_spec.Layout(platform.project, platform.config)
    target = f"{layout.root}/models/{source.digest.removeprefix('sha256:')[:32]}"
    copied = artifacts.copy_tree(platform, source.uri, target)
    if copied != source.digest:
        raise BackendError(
            f"the copy of model version {source.version} has digest {copied}, not "
            f"{source.digest}; nothing was registered",
            hint="the source artifact changed after it was registered; promote again",
        )
    return _upload(
        platform,
        target,
        source.digest,
        source.metrics,
        str(source.lineage.get("run", "")),
        ctx,
        source=source.uri,
    )


def set_alias(platform: Platform, model: str, alias: str, wanted: str, ctx: Context) -> None:
    gcp = platform.gcp
    known = versions(platform)
    if not any(v.version == str(wanted) for v in known):
        raise BackendError(
            f"model {model!r} has no version {wanted}",
            hint=f"versions: {', '.join(v.version for v in known) or 'none'}",
        )
    # an alias names one version of a model: Vertex moves it from whichever version held it
    gcp.call(
        "set version alias",
        gcp.models.merge_version_aliases,
        name=f"{platform.model_name()}@{wanted}",
        version_aliases=[alias],
    )


def version(platform: Platform, name: str) -> ModelVersion:
    gcp = platform.gcp
    return _to_version(gcp.call("get model version", gcp.models.get_model, name=name))


def _to_version(m: Any) -> ModelVersion:
    try:
        meta = json.loads(m.version_description or "{}")
    except ValueError:
        meta = {}
    if not isinstance(meta, dict) or meta.get("format") != DESCRIPTION_FORMAT:
        meta = {}
    return ModelVersion(
        name=m.display_name,
        version=str(m.version_id),
        digest=str(meta.get("digest", "")),
        uri=m.artifact_uri,
        metrics={k: float(v) for k, v in (meta.get("metrics") or {}).items()},
        aliases=tuple(a for a in m.version_aliases if a != "default"),
        lineage={**(meta.get("lineage") or {}), "resource": f"{m.name}@{m.version_id}"},
    )


def versions(platform: Platform) -> list[ModelVersion]:
    """Newest first; empty when the parent model does not exist yet."""
    gcp = platform.gcp
    name = platform.model_name()
    if gcp.exists("get model", gcp.models.get_model, name=name) is None:
        return []
    pager = gcp.call("list model versions", gcp.models.list_model_versions, name=name)
    found: list[Any] = gcp.call("list model versions", list, pager)
    out = [_to_version(m) for m in found]
    return sorted(out, key=lambda v: int(v.version) if v.version.isdigit() else 0, reverse=True)


def delete_all(platform: Platform) -> None:
    """The parent model and every version. Vertex refuses while a version is deployed: a
    destroy removes the endpoint beside the model, so wait (up to ``timeout``) for its
    undeploys before giving up with what still holds the model."""
    import time

    gcp, cfg = platform.gcp, platform.config
    name = platform.model_name()
    deadline = time.monotonic() + cfg.timeout
    while True:
        if gcp.exists("get model", gcp.models.get_model, name=name) is None:
            return
        try:
            op = gcp.exists("delete model", gcp.models.delete_model, name=name)
        except BackendError as e:
            if "deployed" not in e.render() or time.monotonic() > deadline:
                raise
            time.sleep(cfg.poll_interval)
            continue
        if op is not None:
            gcp.wait("delete model", op)
        return
