"""The model registry on SageMaker: one Model Package Group per environment, a model package
per version. mlstack's digest, run, metrics and aliases ride in CustomerMetadataProperties;
approval is the champion alias.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Context, Event, ModelVersion, RunResult
from mlstack.engine.digest import tree_digest
from mlstack.errors import BackendError
from mlstack_sagemaker import pipeline_definition as pdef
from mlstack_sagemaker.code_bundle import JOB_SCRIPT

if TYPE_CHECKING:
    from mlstack_sagemaker.platform import Platform

META_DIGEST = "mlstack:digest"
META_RUN = "mlstack:run"
META_METRIC = "mlstack:metric:"
META_ALIAS = "mlstack:alias:"


def ensure_group(platform: Platform, group: str) -> None:
    aws = platform.aws
    if aws.exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group) is None:
        aws.call(
            "sagemaker",
            "create_model_package_group",
            ModelPackageGroupName=group,
            ModelPackageGroupDescription=f"mlstack {platform.project.project} "
            f"({platform.project.environment})",
        )


def register(platform: Platform, run: RunResult, ctx: Context) -> ModelVersion:
    infra = platform.infra_outputs(ctx)
    group = infra["model_package_group"]
    if infra.get("provisioned_by") == "environment":
        # promote may reach an environment that was never applied: the group is ours to make
        ensure_group(platform, group)
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
        (v for v in versions(platform, group) if v.lineage.get("model_data_url") == run.model_uri),
        None,
    )
    if existing is not None:
        # The pipeline's RegisterModel step made it; add what mlstack tracks.
        update_package(platform, existing.uri, meta)
        return version(platform, existing.uri)
    code_uri = _serving_code(platform, infra["bucket"])
    arn = platform.aws.call(
        "sagemaker",
        "create_model_package",
        ModelPackageGroupName=group,
        ModelPackageDescription=f"{platform.project.project}: run {run.run_id.rsplit('/', 1)[-1]}",
        InferenceSpecification={
            "Containers": [
                {
                    "Image": image(platform),
                    "ModelDataUrl": run.model_uri,
                    "Environment": {
                        # the inference hooks: mlstack_runtime.inference, from the code bundle
                        "SAGEMAKER_PROGRAM": JOB_SCRIPT,
                        "SAGEMAKER_SUBMIT_DIRECTORY": code_uri,
                    },
                }
            ],
            "SupportedContentTypes": list(pdef.CONTENT_TYPES),
            "SupportedResponseMIMETypes": list(pdef.RESPONSE_TYPES),
            "SupportedRealtimeInferenceInstanceTypes": [platform.config.hosting_instance_type],
        },
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties=meta,
    )["ModelPackageArn"]
    made = version(platform, arn)
    ctx.emit(
        Event(
            "model.registered",
            made.name,
            f"version {made.version} registered (PendingManualApproval)",
            {"arn": arn},
        )
    )
    return made


def _serving_code(platform: Platform, bucket: str) -> str:
    """The code bundle an endpoint serves with, uploaded here too: a promoted environment may
    never have run a pipeline that would have uploaded it."""
    from mlstack_sagemaker import code_bundle

    key = platform.layout.code_key(pdef.code_digest(platform.project))
    code_bundle.upload(platform.aws, bucket, key, platform.project)
    return f"s3://{bucket}/{key}"


def import_version(platform: Platform, source: ModelVersion, ctx: Context) -> ModelVersion:
    """``source`` registered in this environment's group. An artifact in another bucket (an
    environment with its own bucket, which this environment's role may not read) is copied
    into this environment's bucket first, and the copy's digest checked against the source's."""
    model_uri = str(source.lineage.get("model_data_url") or source.uri)
    bucket = platform.infra_outputs(ctx)["bucket"]
    if model_uri.startswith("s3://") and not model_uri.startswith(f"s3://{bucket}/"):
        model_uri = _copy_artifact(platform, model_uri, bucket, source, ctx)
    run = RunResult(
        run_id=str(source.lineage.get("run", source.uri)),
        status="succeeded",
        metrics=source.metrics,
        model_uri=model_uri,
        model_digest=source.digest,
        stages={},
    )
    return register(platform, run, ctx)


def _copy_artifact(
    platform: Platform, uri: str, bucket: str, source: ModelVersion, ctx: Context
) -> str:
    """S3 CopyObject of a model artifact into ``bucket``, under the digest; its digest checked."""
    src_bucket, _, src_key = uri.removeprefix("s3://").partition("/")
    digest = (source.digest or "").removeprefix("sha256:")
    if not digest:
        raise BackendError(
            f"model version {source.version} has no digest; its artifact cannot be copied "
            f"from {src_bucket} with its identity checked",
            hint="register it again in the source environment",
        )
    key = f"{platform.layout.prefix}/models/{digest[:32]}/model.tar.gz"
    aws = platform.aws
    aws.call(
        "s3",
        "copy_object",
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": src_bucket, "Key": src_key},
    )
    body = aws.call("s3", "get_object", Bucket=bucket, Key=key)["Body"].read()
    copied = artifact_digest(body)
    if copied != source.digest:
        raise BackendError(
            f"the copy of {uri} in s3://{bucket}/{key} has digest {copied}, not the "
            f"version's {source.digest}",
            hint="the source artifact changed after it was registered; promote a version "
            "registered from it again",
        )
    ctx.emit(Event("log", source.name, f"copied {uri} to s3://{bucket}/{key} ({copied})"))
    return f"s3://{bucket}/{key}"


def artifact_digest(model_tar_gz: bytes) -> str:
    """The artifact's digest over the files inside SageMaker's model.tar.gz: the same
    ``tree_digest`` the local store and the other backends use, so a promoted version's digest
    means the same files everywhere."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(model_tar_gz), mode="r:gz") as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                files[m.name.removeprefix("./")] = f.read() if f else b""
    return tree_digest(files)


def set_alias(platform: Platform, model: str, alias: str, wanted: str, ctx: Context) -> None:
    group = platform.infra_outputs(ctx)["model_package_group"]
    known = versions(platform, group)
    target = next((v for v in known if v.version == str(wanted)), None)
    if target is None:
        raise BackendError(
            f"model {model!r} has no version {wanted} in {group}",
            hint=f"versions: {', '.join(v.version for v in known)}",
        )
    for v in known:
        if alias in v.aliases and v.version != target.version:
            update_package(platform, v.uri, {}, remove=[META_ALIAS + alias])
    # Approval is SageMaker's promotion gate: the champion is the approved version.
    status = "Approved" if alias == "champion" else None
    update_package(platform, target.uri, {META_ALIAS + alias: "true"}, status=status)
    ctx.emit(
        Event(
            "model.alias",
            model,
            f"{alias} -> version {wanted}" + (" (Approved)" if status else ""),
        )
    )


def update_package(
    platform: Platform,
    arn: str,
    add: Mapping[str, str],
    status: str | None = None,
    remove: list[str] | None = None,
) -> None:
    desc = platform.aws.call("sagemaker", "describe_model_package", ModelPackageName=arn)
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
    platform.aws.call("sagemaker", "update_model_package", **kwargs)


def versions(platform: Platform, group: str) -> list[ModelVersion]:
    aws = platform.aws
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
    found = [version(platform, a) for a in arns]
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def version(platform: Platform, arn: str) -> ModelVersion:
    d = platform.aws.call("sagemaker", "describe_model_package", ModelPackageName=arn)
    meta = d.get("CustomerMetadataProperties") or {}
    containers = (d.get("InferenceSpecification") or {}).get("Containers") or [{}]
    project = platform.project
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


def latest_version(platform: Platform, group: str) -> ModelVersion | None:
    page = platform.aws.exists(
        "sagemaker",
        "list_model_packages",
        ModelPackageGroupName=group,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = (page or {}).get("ModelPackageSummaryList") or []
    return version(platform, summaries[0]["ModelPackageArn"]) if summaries else None


def delete_all(platform: Platform, group: str) -> None:
    """Every version, then the group itself unless the environment block named it."""
    aws = platform.aws
    for v in versions(platform, group):
        aws.call("sagemaker", "delete_model_package", ModelPackageName=v.uri)
    if (
        platform.config.model_package_group is None
        and aws.exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group)
        is not None
    ):
        aws.call("sagemaker", "delete_model_package_group", ModelPackageGroupName=group)


def image(platform: Platform) -> str:
    from mlstack_sagemaker.compile_cache import cached_image

    cfg = platform.config
    lookup = ("sklearn", cfg.region, cfg.sklearn_version)
    return cached_image(
        platform.workdir,
        (*lookup, cfg.hosting_instance_type),
        lambda: _retrieve_image(platform),
    )


def _retrieve_image(platform: Platform) -> str:
    import logging
    import warnings

    cfg = platform.config
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
