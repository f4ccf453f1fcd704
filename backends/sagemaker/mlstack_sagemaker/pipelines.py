"""SageMaker Pipelines for runs: compile, upsert, start an execution and follow it to the end,
then read the evaluation metrics and the trained model from the run's S3 prefix.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import (
    CompiledPipeline,
    Context,
    Event,
    PipelineRef,
    RunRequest,
    RunResult,
)
from mlstack.errors import BackendError
from mlstack_sagemaker import pipeline_definition as pdef
from mlstack_sagemaker import registry
from mlstack_sagemaker.aws_names import sagemaker_name
from mlstack_sagemaker.registry import artifact_digest

if TYPE_CHECKING:
    from mlstack.engine.seam import EventKind
    from mlstack_sagemaker.platform import Platform

TERMINAL_RUN = {"Succeeded", "Failed", "Stopped"}


def compile_pipeline(platform: Platform) -> CompiledPipeline:
    from mlstack_sagemaker.compile_cache import cached_definition

    try:
        definition, _ = cached_definition(
            platform.workdir,
            platform.project,
            platform.config,
            lambda: pdef.build(platform.project, platform.config),
        )
    except (ValueError, TypeError) as e:
        raise BackendError(
            f"cannot compile the pipeline for SageMaker: {e}",
            location=None,
            hint="check the pipeline stages",
        ) from None
    steps = tuple(_step_names(definition["Steps"]))
    return CompiledPipeline(
        definition=definition,
        digest=pdef.digest(definition),
        steps=steps,
        format="sagemaker-pipeline",
    )


def upsert_pipeline(platform: Platform, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
    aws, project = platform.aws, platform.project
    infra = platform.infra_outputs(ctx)
    code_digest = compiled.definition["Metadata"]["mlstack"]["code_digest"]
    _upload_code(platform, infra["bucket"], code_digest)
    name = pdef.pipeline_name(project)
    body = json.dumps(compiled.definition, sort_keys=True)
    common = {
        "PipelineName": name,
        "PipelineDefinition": body,
        "RoleArn": infra["role_arn"],
        "PipelineDescription": f"mlstack {project.project} ({project.environment})",
    }
    if aws.exists("sagemaker", "describe_pipeline", PipelineName=name) is None:
        arn = aws.call(
            "sagemaker",
            "create_pipeline",
            PipelineDisplayName=name,
            ClientRequestToken=compiled.digest[7:39],
            **common,
        )["PipelineArn"]
        action = "created"
    else:
        arn = aws.call("sagemaker", "update_pipeline", **common)["PipelineArn"]
        action = "updated"
    kind: EventKind = "pipeline.created" if action == "created" else "pipeline.updated"
    ctx.emit(Event(kind, name, f"SageMaker pipeline {name} {action}"))
    return PipelineRef(
        name=name,
        location=arn,
        steps=compiled.steps,
        action="created" if action == "created" else "updated",
    )


def _upload_code(platform: Platform, bucket: str, code_digest: str) -> None:
    from mlstack_sagemaker import code_bundle

    key = platform.layout.code_key(code_digest)
    code_bundle.upload(platform.aws, bucket, key, platform.project)


def delete_pipeline(platform: Platform, name: str) -> None:
    if platform.aws.exists("sagemaker", "describe_pipeline", PipelineName=name) is not None:
        platform.aws.call(
            "sagemaker",
            "delete_pipeline",
            PipelineName=name,
            ClientRequestToken=hashlib.sha256(name.encode()).hexdigest()[:32],
        )


def run_pipeline(
    platform: Platform, compiled: CompiledPipeline, request: RunRequest, ctx: Context
) -> RunResult:
    infra = platform.infra_outputs(ctx)
    bucket = infra["bucket"]
    name = pdef.pipeline_name(platform.project)
    run_key = _run_key(compiled.digest, request)
    params = {
        "ArtifactBucket": bucket,
        "ExecutionRole": infra["role_arn"],
        "RunKey": run_key,
        "ModelPackageGroup": infra["model_package_group"],
    }
    if platform.project.data is not None:
        params["InputData"] = _stage_data(platform, bucket, request)
    params.update(_champion_bounds(platform, infra["model_package_group"]))
    start = platform.aws.call(
        "sagemaker",
        "start_pipeline_execution",
        PipelineName=name,
        PipelineExecutionDisplayName=sagemaker_name("run", run_key)[:82],
        PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in params.items()],
        PipelineExecutionDescription=json.dumps({"reasons": dict(request.reasons)})[:3072],
    )
    arn = start["PipelineExecutionArn"]
    ctx.emit(
        Event(
            "run.started",
            name,
            f"execution {arn.rsplit('/', 1)[-1]} started",
            {
                "execution_arn": arn,
                "run_key": run_key,
                "bucket": bucket,
                "prefix": f"{platform.layout.prefix}/runs/{run_key}",
            },
        )
    )
    status, reason, step_status = _follow(platform, arn, ctx)
    # In a run that did not succeed, a stage asked to run that no step reports never started.
    started = "ran" if status == "Succeeded" else "skipped"
    stages = {
        s.name: (started if s.name in request.stages else "cached")
        for s in platform.project.pipeline.stages
    }
    stages.update({k: _OUTCOME.get(v, "skipped") for k, v in step_status.items() if k in stages})
    metrics = _read_metrics(platform, bucket, run_key)
    model_uri, model_digest = _find_model(platform, bucket, run_key)
    result_status = {"Succeeded": "succeeded", "Stopped": "cancelled"}.get(status, "failed")
    return RunResult(
        run_id=arn,
        status=result_status,  # type: ignore[arg-type]
        metrics=metrics,
        model_uri=model_uri,
        model_digest=model_digest,
        stages=stages,
        detail=reason,
    )


def _stage_data(platform: Platform, bucket: str, request: RunRequest) -> str:
    data = platform.project.data
    if data is None:
        return ""
    if data.source.startswith("s3://"):
        return data.source
    path = Path(platform.project.root) / data.source
    if not path.is_file():
        raise BackendError(
            f"data source {data.source!r} does not exist",
            hint="create it, or point data.source at an s3:// URI",
        )
    raw = path.read_bytes()
    digest = request.data_digest or "sha256:" + hashlib.sha256(raw).hexdigest()
    key = platform.layout.data_key(digest, path.name)
    platform.aws.call("s3", "put_object", Bucket=bucket, Key=key, Body=raw)
    return f"s3://{bucket}/{key}"


def _champion_bounds(platform: Platform, group: str) -> dict[str, float]:
    gates = pdef.champion_gates(platform.project)
    if not gates:
        return {}
    champion = next(
        (v for v in registry.versions(platform, group) if "champion" in v.aliases), None
    )
    out = {}
    for param, (gate, default) in gates.items():
        bound = gate.threshold(dict(champion.metrics) if champion else None)
        out[param] = default if bound is None else bound
    return out


# SageMaker's step statuses (and a cache hit) in the vocabulary RunResult.stages speaks
_OUTCOME = {"Succeeded": "ran", "CacheHit": "cached", "Failed": "failed"}


def _follow(platform: Platform, arn: str, ctx: Context) -> tuple[str, str, dict[str, str]]:
    cfg = platform.config
    deadline = time.monotonic() + cfg.timeout
    seen: dict[str, str] = {}
    stopped = False
    while True:
        desc = platform.aws.call(
            "sagemaker", "describe_pipeline_execution", PipelineExecutionArn=arn
        )
        status = desc["PipelineExecutionStatus"]
        _step_events(platform, arn, seen, ctx)
        if status in TERMINAL_RUN:
            reason = str(desc.get("FailureReason") or "")
            ctx.emit(Event("run.done", arn.rsplit("/", 1)[-1], status, {"status": status}))
            return status, reason, seen
        if ctx.cancel.is_set() and not stopped:
            # Asked once; the execution stops its running steps, then reports Stopped.
            platform.aws.call("sagemaker", "stop_pipeline_execution", PipelineExecutionArn=arn)
            stopped = True
        if time.monotonic() > deadline:
            raise BackendError(
                f"pipeline execution {arn} still {status} after {cfg.timeout:.0f}s",
                hint="raise `timeout:` in the environment block",
            )
        if stopped:
            time.sleep(cfg.poll_interval)  # the cancel event is set: waiting on it returns at once
        else:
            ctx.cancel.wait(cfg.poll_interval)


def _step_events(platform: Platform, arn: str, seen: dict[str, str], ctx: Context) -> None:
    """Report each step whose status changed since the last poll, oldest step first."""
    request: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
    steps: list[dict[str, Any]] = []
    while True:
        page = platform.aws.call("sagemaker", "list_pipeline_execution_steps", **request)
        steps += page.get("PipelineExecutionSteps") or []
        if not page.get("NextToken"):
            break
        request["NextToken"] = page["NextToken"]
    for step in steps:
        name, status = step["StepName"], step["StepStatus"]
        cached = bool(step.get("CacheHitResult"))
        tag = "CacheHit" if cached and status == "Succeeded" else status
        if seen.get(name) != tag:
            seen[name] = tag
            kind = {
                "Executing": "stage.start",
                "Succeeded": "stage.done",
                "Failed": "stage.failed",
            }.get(status, "log")
            ctx.emit(
                Event(
                    "stage.cached" if cached else kind,
                    name,
                    status,
                    {"reason": step.get("FailureReason", "")},
                )
            )


def _read_metrics(platform: Platform, bucket: str, run_key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for stage in platform.project.pipeline.stages:
        if stage.kind != "evaluate":
            continue
        key = f"{platform.layout.stage_key(run_key, stage.name)}/evaluation.json"
        obj = platform.aws.exists("s3", "get_object", Bucket=bucket, Key=key)
        if obj is None:
            continue
        report = json.loads(obj["Body"].read())
        out.update({k: float(v) for k, v in (report.get("metrics") or {}).items()})
    return out


def _find_model(platform: Platform, bucket: str, run_key: str) -> tuple[str | None, str | None]:
    # the model is train's output; a tune stage's "model" is only its best parameters
    kinds = [s for s in platform.project.pipeline.stages if s.kind in pdef.TRAIN_STAGES]
    train = next((s.name for s in sorted(kinds, key=lambda s: s.kind != "train")), None)
    if train is None:
        return None, None
    prefix = platform.layout.stage_key(run_key, train) + "/"
    listing = platform.aws.call("s3", "list_objects_v2", Bucket=bucket, Prefix=prefix)
    models = sorted(
        (o for o in listing.get("Contents", []) if o["Key"].endswith("output/model.tar.gz")),
        key=lambda o: o["LastModified"],
    )
    if not models:
        return None, None
    key = models[-1]["Key"]
    body = platform.aws.call("s3", "get_object", Bucket=bucket, Key=key)["Body"].read()
    return f"s3://{bucket}/{key}", artifact_digest(body)


def _run_key(pipeline_digest: str, request: RunRequest) -> str:
    raw = json.dumps(
        {
            "pipeline": pipeline_digest,
            "keys": dict(sorted(request.cache_keys.items())),
            "data": request.data_digest,
        },
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _step_names(steps: list[Mapping[str, Any]]) -> list[str]:
    out = []
    for s in steps:
        out.append(str(s["Name"]))
        if s.get("Type") == "Condition":
            args = s.get("Arguments", {})
            out += _step_names(args.get("IfSteps", [])) + _step_names(args.get("ElseSteps", []))
    return out
