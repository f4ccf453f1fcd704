"""Pipelines on Vertex AI Pipelines: compile (cached), publish the settings and the runtime to the
bucket, submit a ``PipelineJob`` and follow it, turning its task states into stage events.

Vertex keeps no pipeline definition apart from a run; ``upsert_pipeline`` stores the compiled
spec, the per-stage settings files and the shared runtime's source in the bucket (content
addressed: an unchanged pipeline uploads nothing) and reports that place.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from functools import cache
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
from mlstack.engine.digest import tree_digest
from mlstack.errors import BackendError
from mlstack_vertex import artifacts, names, pipeline_spec
from mlstack_vertex.gcp import google_errors

if TYPE_CHECKING:
    from mlstack_vertex.platform import Platform

CACHE_FORMAT = 1
MODEL_KINDS = ("train", "tune")


@cache
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("mlstack-vertex", "kfp"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "none"
    return out


def runtime_source() -> Path | None:
    """The installed shared runtime's package folder, found without importing it."""
    from importlib.util import find_spec

    spec = find_spec(pipeline_spec.RUNTIME_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _runtime_files() -> dict[str, bytes]:
    root = runtime_source()
    if root is None:
        return {}
    return {
        f"{pipeline_spec.RUNTIME_MODULE}/{p.relative_to(root)}": p.read_bytes()
        for p in sorted(root.rglob("*.py"))
    }


def runtime_digest() -> str:
    files = _runtime_files()
    return tree_digest(files).removeprefix("sha256:")[:16] if files else "missing"


def _compile_key(platform: Platform, rt: str) -> str:
    p, cfg = platform.project, platform.config
    inputs = {
        "format": CACHE_FORMAT,
        "project": p.project,
        "environment": p.environment,
        "pipeline": p.pipeline.model_dump(mode="json", by_alias=True),
        "data": p.data.model_dump(mode="json", by_alias=True) if p.data else None,
        "model": p.model.model_dump(mode="json", by_alias=True) if p.model else None,
        "config": cfg.model_dump(mode="json"),
        "compiler": hashlib.sha256(Path(pipeline_spec.__file__).read_bytes()).hexdigest(),
        "runtime": rt,
        "versions": _versions(),
    }
    raw = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def compile_pipeline(platform: Platform) -> CompiledPipeline:
    """The KFP spec; kept in ``<workdir>/cache`` so an unchanged plan never imports KFP."""
    rt = runtime_digest()
    key = _compile_key(platform, rt)
    path = platform.workdir / "cache" / f"vertex-pipeline-{platform.project.environment}.json"
    definition: dict[str, Any] | None = None
    try:
        entry = json.loads(path.read_text())
        if entry.get("key") == key:
            definition = entry["definition"]
    except (OSError, ValueError, KeyError, AttributeError):
        definition = None
    if definition is None:
        try:
            definition = pipeline_spec.build(platform.project, platform.config, rt)
        except (ValueError, TypeError) as e:
            raise BackendError(
                f"cannot compile the pipeline for Vertex AI: {e}", hint="check the stages"
            ) from None
        _write_atomic(path, {"key": key, "definition": definition})
    return CompiledPipeline(
        definition=definition,
        digest=pipeline_spec.digest(definition),
        steps=tuple(definition["order"]),
        format="kfp-v2",
    )


def _write_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only project still compiles, every time


def upsert_pipeline(platform: Platform, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
    d = compiled.definition
    layout = pipeline_spec.Layout(platform.project, platform.config)
    spec_uri = layout.spec(compiled.digest.removeprefix("sha256:")[:32])
    if artifacts.exists(platform, spec_uri):
        return PipelineRef(
            names.pipeline_name(platform.project), spec_uri, compiled.steps, "unchanged"
        )
    runtime = _runtime_files()
    if not runtime:
        raise BackendError(
            "the shared stage runtime (mlstack_runtime) is not installed, and Vertex pipeline "
            "tasks run it",
            hint="pip install mlstack-runtime into the environment that runs mlstack",
        )
    artifacts.write_tree(platform, layout.runtime_dir(d["runtime_digest"]), runtime)
    for stage, settings in d["settings"].items():
        uri = layout.settings_file(stage, pipeline_spec.settings_digest(settings))
        folder, _, file = uri.rpartition("/")
        artifacts.write_tree(
            platform, folder, {file: json.dumps(settings, sort_keys=True).encode()}
        )
    artifacts.write_tree(
        platform,
        spec_uri.rsplit("/", 1)[0],
        {spec_uri.rsplit("/", 1)[1]: json.dumps(d["pipeline_spec"]).encode()},
    )
    ctx.emit(Event("pipeline.updated", names.pipeline_name(platform.project), spec_uri))
    return PipelineRef(names.pipeline_name(platform.project), spec_uri, compiled.steps, "updated")


def _upload_data(platform: Platform, request: RunRequest) -> str:
    data = platform.project.data
    if data is None:
        raise BackendError("the pipeline needs a data: section to run on Vertex")
    if data.source.startswith("gs://"):
        return str(data.source).rsplit("/", 1)[0]
    path = Path(platform.project.root) / data.source
    if not path.is_file():
        raise BackendError(
            f"data source {data.source!r} does not exist",
            hint="create it, or point data.source at a gs:// URI",
        )
    raw = path.read_bytes()
    digest = (request.data_digest or "sha256:" + hashlib.sha256(raw).hexdigest()).removeprefix(
        "sha256:"
    )[:32]
    layout = pipeline_spec.Layout(platform.project, platform.config)
    uri = layout.data(digest)
    if not artifacts.exists(platform, f"{uri}/{path.name}"):
        artifacts.write_tree(platform, uri, {path.name: raw})
    return uri


def run_pipeline(
    platform: Platform, compiled: CompiledPipeline, request: RunRequest, ctx: Context
) -> RunResult:
    from google.cloud import aiplatform_v1 as aip
    from google.protobuf import json_format, struct_pb2

    gcp, project, cfg = platform.gcp, platform.project, platform.config
    d = compiled.definition
    layout = pipeline_spec.Layout(project, cfg)
    data_uri = _upload_data(platform, request)
    order: list[str] = list(d["order"])
    keys = {s: request.cache_keys.get(s, "none").removeprefix("sha256:")[:32] for s in order}
    params = {f"key_{s}": keys[s] for s in order}
    params[pipeline_spec.DATA_PARAM] = data_uri  # the runtime reads gs:// through the mount
    spec = struct_pb2.Struct()
    json_format.ParseDict(d["pipeline_spec"], spec)
    job = aip.PipelineJob(
        display_name=names.pipeline_name(project),
        pipeline_spec=spec,
        labels={"mlstack-project": names.label_value(project.project)},
        runtime_config=aip.PipelineJob.RuntimeConfig(
            gcs_output_directory=layout.pipeline_root,
            parameter_values={k: struct_pb2.Value(string_value=v) for k, v in params.items()},
        ),
    )
    sa = platform.infra_outputs(ctx).get("service_account")
    if sa:
        job.service_account = sa
    if cfg.network:
        job.network = cfg.network
    job_id = names.resource_id(
        project.project, project.environment, str(int(time.time() * 1000)), limit=128
    )
    made = gcp.call(
        "submit pipeline job",
        gcp.pipelines.create_pipeline_job,
        parent=platform.parent,
        pipeline_job=job,
        pipeline_job_id=job_id,
    )
    ctx.emit(Event("run.started", made.name, f"pipeline job {job_id}"))
    final = _follow(platform, made.name, order, request, ctx)
    stages: dict[str, str] = {}
    failed: list[str] = []
    for t in final.job_detail.task_details:
        name = t.task_name
        if name not in order:
            continue
        state = aip.PipelineTaskDetail.State(t.state).name
        stages[name] = {
            "SUCCEEDED": "ran",
            "SKIPPED": "cached",
            "FAILED": "failed",
        }.get(state, "skipped")
        if state == "FAILED":
            failed.append(f"{name}: {t.error.message}" if t.error.message else name)
    status = aip.PipelineState(final.state).name
    if status != "PIPELINE_STATE_SUCCEEDED":
        where = f"{layout.pipeline_root}/{final.name.rsplit('/', 1)[-1]}"
        detail = "; ".join(failed) or final.error.message or status
        ctx.emit(Event("run.done", final.name, detail))
        return RunResult(
            run_id=job_id,
            status="cancelled" if "CANCEL" in status else "failed",
            metrics={},
            model_uri=None,
            model_digest=None,
            stages=stages,
            detail=f"{detail} (logs: Cloud Logging for the pipeline job {final.name}; "
            f"outputs under {where})",
        )
    metrics: dict[str, float] = {}
    for s in order:
        out = f"{layout.outputs(s)}/{keys[s]}/metrics.json"
        if artifacts.exists(platform, out):
            blob = read_json(platform, out)
            metrics.update({k: float(v) for k, v in blob.items() if isinstance(v, (int, float))})
    model_stage = next(
        (s for s in reversed(order) if pipeline_spec.kind_of(_stage(platform, s)) in MODEL_KINDS),
        None,
    )
    model_uri = f"{layout.outputs(model_stage)}/{keys[model_stage]}" if model_stage else None
    digest = artifacts.digest_of(platform, model_uri) if model_uri else None
    return RunResult(
        run_id=job_id,
        status="succeeded",
        metrics=metrics,
        model_uri=model_uri,
        model_digest=digest,
        stages=stages,
    )


def _stage(platform: Platform, name: str) -> Any:
    return next(s for s in platform.project.pipeline.stages if s.name == name)


def read_json(platform: Platform, uri: str) -> dict[str, Any]:
    bucket, key = artifacts.split_uri(uri)
    gcp = platform.gcp
    raw = gcp.call("download object", gcp.storage.bucket(bucket).blob(key).download_as_bytes)
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


def _follow(
    platform: Platform, name: str, order: list[str], request: RunRequest, ctx: Context
) -> Any:
    """Poll the job until it ends, emitting each task's state once as it changes."""
    from google.cloud import aiplatform_v1 as aip

    gcp, cfg = platform.gcp, platform.config
    done_states = {
        aip.PipelineState.PIPELINE_STATE_SUCCEEDED,
        aip.PipelineState.PIPELINE_STATE_FAILED,
        aip.PipelineState.PIPELINE_STATE_CANCELLED,
    }
    seen: dict[str, str] = {}
    deadline = time.monotonic() + cfg.timeout
    while True:
        if ctx.cancel.is_set():
            gcp.call("cancel pipeline job", gcp.pipelines.cancel_pipeline_job, name=name)
        job = gcp.call("get pipeline job", gcp.pipelines.get_pipeline_job, name=name)
        for t in job.job_detail.task_details:
            if t.task_name not in order:
                continue
            state = aip.PipelineTaskDetail.State(t.state).name
            if seen.get(t.task_name) == state:
                continue
            seen[t.task_name] = state
            kind = {
                "RUNNING": "stage.start",
                "SUCCEEDED": "stage.done",
                "SKIPPED": "stage.cached",
                "FAILED": "stage.failed",
            }.get(state, "log")
            msg = {"FAILED": t.error.message, "RUNNING": request.reasons.get(t.task_name, "")}.get(
                state, ""
            )
            ctx.emit(Event(kind, t.task_name, msg))
        if job.state in done_states:
            return job
        if time.monotonic() > deadline:
            raise BackendError(
                f"pipeline job {name} did not finish within {cfg.timeout:g}s",
                hint="look at it in the Vertex AI console; raise `timeout:`",
            )
        time.sleep(cfg.poll_interval)


def delete_runs(platform: Platform) -> None:
    """Nothing to delete on Vertex for the pipeline itself: its spec lives in the bucket,
    removed with the bucket by the GCP stack (or kept, when the bucket was given)."""


# Cloud Logging: a Vertex pipeline task runs as a CustomJob, whose containers log to resource
# ``ml_job`` labelled with the job's id (Vertex AI "View logs" for custom training).
LOG_PAGE = 1000


def latest_job(platform: Platform) -> Any:
    """The newest pipeline job of this project and environment, or a clear error."""
    from google.cloud import aiplatform_v1 as aip

    gcp, project = platform.gcp, platform.project
    request = aip.ListPipelineJobsRequest(
        parent=platform.parent,
        filter=f'display_name="{names.pipeline_name(project)}" AND '
        f'labels.mlstack-project="{names.label_value(project.project)}"',
        order_by="create_time desc",
    )
    with google_errors("list pipeline jobs"):
        for job in gcp.pipelines.list_pipeline_jobs(request=request):
            return job
    raise BackendError(
        f"no pipeline run of {project.project!r} in {platform.parent} yet",
        hint=f"`mlstack apply -e {project.environment}` runs the pipeline",
    )


def logs(platform: Platform, stage: str | None = None) -> str:
    """Each task's log lines of the latest pipeline job (or of one stage), read from Cloud
    Logging by the CustomJob that ran the task."""
    job = latest_job(platform)
    order = [s.name for s in platform.project.pipeline.stages]
    if stage is not None and stage not in order:
        raise BackendError(
            f"no stage {stage!r} in the pipeline",
            hint=f"the stages are: {', '.join(order)}",
        )
    tasks = sorted(
        (t for t in job.job_detail.task_details if t.task_name in order),
        key=lambda t: order.index(t.task_name),
    )
    out = []
    for t in tasks:
        if stage is not None and t.task_name != stage:
            continue
        custom_job = t.executor_detail.container_detail.main_job
        state = type(t).State(t.state).name.lower()
        if not custom_job:
            out.append(f"== {t.task_name} ({state}; no job ran) ==")
            continue
        lines = _log_lines(platform, custom_job.rsplit("/", 1)[-1])
        out.append(f"== {t.task_name} ({state}; {custom_job}) ==")
        out.extend(lines or ["(no log lines)"])
    if not out:
        return f"no task{f' {stage!r}' if stage else ''} has started in {job.name}\n"
    return "\n".join(out) + "\n"


def _log_lines(platform: Platform, job_id: str) -> list[str]:
    gcp = platform.gcp
    body: dict[str, Any] = {
        "resourceNames": [f"projects/{platform.config.project}"],
        "filter": f'resource.type="ml_job" AND resource.labels.job_id="{job_id}"',
        "orderBy": "timestamp asc",
        "pageSize": LOG_PAGE,
    }
    lines: list[str] = []
    while True:
        try:
            r = gcp.session.post(f"{gcp.logging_url}/v2/entries:list", json=body, timeout=30)
        except OSError as e:
            raise BackendError(f"cannot read Cloud Logging: {e}") from None
        if r.status_code != 200:
            raise BackendError(
                f"Cloud Logging answered {r.status_code} for job {job_id}: {r.text[:300]}",
                hint="the credentials need roles/logging.viewer",
            )
        answer = r.json()
        for entry in answer.get("entries", []):
            text = entry.get("textPayload")
            if text is None:
                text = json.dumps(entry.get("jsonPayload", {}), sort_keys=True)
            lines.append(str(text).rstrip("\n"))
        token = answer.get("nextPageToken")
        if not token:
            return lines
        body["pageToken"] = token
