"""The model registry on SageMaker: one Model Package Group per environment, a model package
per version. mlstack's digest, run, metrics and aliases ride in CustomerMetadataProperties;
approval is the champion alias.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Context, Event, ModelVersion, RunResult
from mlstack.errors import BackendError
from mlstack_sagemaker import pipeline_definition as pdef

if TYPE_CHECKING:
    from mlstack_sagemaker.backend import SageMakerBackend

META_DIGEST = "mlstack:digest"
META_RUN = "mlstack:run"
META_METRIC = "mlstack:metric:"
META_ALIAS = "mlstack:alias:"


def ensure_group(backend: SageMakerBackend, group: str) -> None:
    aws = backend.aws
    if aws.exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group) is None:
        aws.call(
            "sagemaker",
            "create_model_package_group",
            ModelPackageGroupName=group,
            ModelPackageGroupDescription=f"mlstack {backend.project.project} "
            f"({backend.project.environment})",
        )


def register(backend: SageMakerBackend, run: RunResult, ctx: Context) -> ModelVersion:
    infra = backend.infra_outputs(ctx)
    group = infra["model_package_group"]
    if infra.get("provisioned_by") == "environment":
        # promote may reach an environment that was never applied: the group is ours to make
        ensure_group(backend, group)
    if run.model_uri is None:
        raise BackendError(
            f"run {run.run_id} produced no model artifact to register",
            hint="check the train stage's output in the run's S3 prefix",
        )
    meta = {
        META_DIGEST: run.model_digest or "",
        META_RUN: run.run_id,
        **{META_METRIC + k: repr(float(v)) for k, v in run.metrics.items()},
    }
    existing = next(
        (v for v in versions(backend, group) if v.lineage.get("model_data_url") == run.model_uri),
        None,
    )
    if existing is not None:
        # The pipeline's RegisterModel step made it; add what mlstack tracks.
        update_package(backend, existing.uri, meta)
        return version(backend, existing.uri)
    arn = backend.aws.call(
        "sagemaker",
        "create_model_package",
        ModelPackageGroupName=group,
        ModelPackageDescription=f"{backend.project.project}: run {run.run_id.rsplit('/', 1)[-1]}",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": image(backend),
                    "ModelDataUrl": run.model_uri,
                    "Environment": {
                        "SAGEMAKER_PROGRAM": pdef.RUNTIME_SCRIPT,
                        # the train stage puts the inference script inside model.tar.gz
                        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                        "MLSTACK_STAGE_KIND": "serve",
                    },
                }
            ],
            "SupportedContentTypes": ["application/json", "text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": [backend.config.hosting_instance_type],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=meta,
    )["ModelPackageArn"]
    made = version(backend, arn)
    ctx.emit(
        Event(
            "model.registered",
            made.name,
            f"version {made.version} registered (PendingManualApproval)",
            {"arn": arn},
        )
    )
    return made


def import_version(backend: SageMakerBackend, source: ModelVersion, ctx: Context) -> ModelVersion:
    run = RunResult(
        run_id=str(source.lineage.get("run", source.uri)),
        status="succeeded",
        metrics=source.metrics,
        model_uri=str(source.lineage.get("model_data_url") or source.uri),
        model_digest=source.digest,
        stages={},
    )
    return register(backend, run, ctx)


def set_alias(backend: SageMakerBackend, model: str, alias: str, wanted: str, ctx: Context) -> None:
    group = backend.infra_outputs(ctx)["model_package_group"]
    known = versions(backend, group)
    target = next((v for v in known if v.version == str(wanted)), None)
    if target is None:
        raise BackendError(
            f"model {model!r} has no version {wanted} in {group}",
            hint=f"versions: {', '.join(v.version for v in known)}",
        )
    for v in known:
        if alias in v.aliases and v.version != target.version:
            update_package(backend, v.uri, {}, remove=[META_ALIAS + alias])
    # Approval is SageMaker's promotion gate: the champion is the approved version.
    status = "Approved" if alias == "champion" else None
    update_package(backend, target.uri, {META_ALIAS + alias: "true"}, status=status)
    ctx.emit(
        Event(
            "model.alias",
            model,
            f"{alias} -> version {wanted}" + (" (Approved)" if status else ""),
        )
    )


def update_package(
    backend: SageMakerBackend,
    arn: str,
    add: Mapping[str, str],
    status: str | None = None,
    remove: list[str] | None = None,
) -> None:
    desc = backend.aws.call("sagemaker", "describe_model_package", ModelPackageName=arn)
    meta = dict(desc.get("CustomerMetadataProperties") or {})
    meta.update(add)
    for key in remove or []:
        meta.pop(key, None)
    kwargs: dict[str, Any] = {"ModelPackageArn": arn, "CustomerMetadataProperties": meta}
    if remove:
        kwargs["CustomerMetadataPropertiesToRemove"] = remove
    if status:
        kwargs["ModelApprovalStatus"] = status
        kwargs["ApprovalDescription"] = "approved by mlstack (champion)"
    backend.aws.call("sagemaker", "update_model_package", **kwargs)


def versions(backend: SageMakerBackend, group: str) -> list[ModelVersion]:
    aws = backend.aws
    if aws.exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group) is None:
        return []
    arns: list[str] = []
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 100,
    }
    while True:
        page = aws.call("sagemaker", "list_model_packages", **kwargs)
        arns += [p["ModelPackageArn"] for p in page.get("ModelPackageSummaryList", [])]
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    found = [version(backend, a) for a in arns]
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def version(backend: SageMakerBackend, arn: str) -> ModelVersion:
    d = backend.aws.call("sagemaker", "describe_model_package", ModelPackageName=arn)
    meta = d.get("CustomerMetadataProperties") or {}
    containers = (d.get("InferenceSpecification") or {}).get("Containers") or [{}]
    project = backend.project
    model = project.model.name if project.model else project.project
    return ModelVersion(
        name=model,
        version=str(d.get("ModelPackageVersion", arn.rsplit("/", 1)[-1])),
        digest=meta.get(META_DIGEST, ""),
        uri=arn,
        metrics={
            k[len(META_METRIC) :]: float(v) for k, v in meta.items() if k.startswith(META_METRIC)
        },
        aliases=tuple(sorted(k[len(META_ALIAS) :] for k in meta if k.startswith(META_ALIAS))),
        lineage={
            "run": meta.get(META_RUN, ""),
            "model_data_url": containers[0].get("ModelDataUrl", ""),
            "image": containers[0].get("Image", ""),
            "group": d.get("ModelPackageGroupName", ""),
        },
        approved=d.get("ModelApprovalStatus") == "Approved",
    )


def latest_version(backend: SageMakerBackend, group: str) -> ModelVersion | None:
    page = backend.aws.exists(
        "sagemaker",
        "list_model_packages",
        ModelPackageGroupName=group,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = (page or {}).get("ModelPackageSummaryList") or []
    return version(backend, summaries[0]["ModelPackageArn"]) if summaries else None


def delete_all(backend: SageMakerBackend, group: str) -> None:
    """Every version, then the group itself unless the environment block named it."""
    aws = backend.aws
    for v in versions(backend, group):
        aws.call("sagemaker", "delete_model_package", ModelPackageName=v.uri)
    if (
        backend.config.model_package_group is None
        and aws.exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group)
        is not None
    ):
        aws.call("sagemaker", "delete_model_package_group", ModelPackageGroupName=group)


def image(backend: SageMakerBackend) -> str:
    from mlstack_sagemaker.compile_cache import cached_image

    cfg = backend.config
    lookup = ("sklearn", cfg.region, cfg.sklearn_version)
    return cached_image(
        backend.workdir,
        (*lookup, cfg.hosting_instance_type),
        lambda: _retrieve_image(backend),
    )


def _retrieve_image(backend: SageMakerBackend) -> str:
    import logging
    import warnings

    cfg = backend.config
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the SDK logs config-file lookups on import
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sagemaker.core import image_uris

            return str(
                image_uris.retrieve(
                    "sklearn",
                    region=cfg.region,
                    version=cfg.sklearn_version,
                    instance_type=cfg.hosting_instance_type,
                )
            )
    finally:
        logging.disable(previous)
