"""Running the compiled pipeline on Azure ML: the stages' settings files, the data and the code
asset are put in the workspace's default datastore, each stage's command component is
registered as a component version (the version is the stage's mlstack cache key, so Azure ML's
reuse of an unchanged step and mlstack's cache agree), then the pipeline job is submitted with
``PUT jobs/{name}`` and followed with ``GET`` until it reaches a terminal status. A completed
run's metrics (each stage's ``metrics.json``) and model (the last train/tune stage's output
folder, with its tree digest) are read back from the datastore.

The REST bodies are ``ComponentVersion`` and ``JobBase`` (``jobType: Pipeline``) of the Azure ML
REST API ("Machine Learning Services REST API": Component Versions - Create Or Update, Jobs -
Create Or Update, Jobs - Get); they go through azure-core with the environment's credential.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from mlstack.engine.backend import CompiledPipeline, Context, Event, PipelineRef, RunRequest
from mlstack.engine.seam import RunResult
from mlstack.errors import BackendError
from mlstack_azureml import datastore
from mlstack_azureml import pipeline_job as pjob
from mlstack_azureml.platform import Platform

API = "2024-10-01"
MODEL_KINDS = ("train", "tune")
TERMINAL = {"Completed": "succeeded", "Failed": "failed", "Canceled": "cancelled"}
NOT_RESPONDING = "NotResponding"


def _ws(p: Platform) -> str:
    return p.workspace_id


def _version(compiled: CompiledPipeline, cache_keys: dict[str, str], stage: str) -> str:
    key = cache_keys.get(stage) or compiled.digest
    return key.split(":", 1)[-1][:16]


def _keys(compiled: CompiledPipeline, request: RunRequest) -> dict[str, str]:
    keys = dict(request.cache_keys)
    return {s: _version(compiled, keys, s) for s in compiled.steps}


def pipeline_ref(p: Platform, compiled: CompiledPipeline) -> PipelineRef:
    name = f"{p.project.project}-{p.project.environment}"
    return PipelineRef(name=name, location=f"{_ws(p)}/components", steps=compiled.steps)


def register_components(
    p: Platform, compiled: CompiledPipeline, ctx: Context, request: RunRequest
) -> PipelineRef:
    """Register each stage's component version (an unchanged one is left as it is)."""
    versions = _keys(compiled, request)
    components: dict[str, dict[str, Any]] = compiled.definition["components"]
    for stage, spec in components.items():
        body = {
            "properties": {
                "componentSpec": {**spec, "version": versions[stage]},
                "isAnonymous": False,
                "isArchived": False,
                "tags": {"mlstack-stage": stage},
            }
        }
        p.arm.request(
            "PUT",
            f"{_ws(p)}/components/{spec['name']}/versions/{versions[stage]}",
            f"registering component {spec['name']}:{versions[stage]}",
            params={"api-version": API},
            body=body,
        )
    ref = pipeline_ref(p, compiled)
    ctx.emit(
        Event("pipeline.updated", ref.name, f"{len(components)} Azure ML components registered")
    )
    return ref


def job_body(
    p: Platform, compiled: CompiledPipeline, request: RunRequest, data_uri: str = ""
) -> dict[str, Any]:
    """The pipeline job's REST body with each step pointing at its component version, its
    output folder named by the stage's cache key, and the data folder ``data_uri``."""
    versions = _keys(compiled, request)
    body: dict[str, Any] = copy.deepcopy(compiled.definition["job"])
    components = compiled.definition["components"]
    for stage, step in body["properties"]["jobs"].items():
        name = components[stage]["name"]
        step["componentId"] = f"{_ws(p)}/components/{name}/versions/{versions[stage]}"
        out = step["outputs"]["out"]
        out["uri"] = out["uri"].replace(f"{{cache_key:{stage}}}", versions[stage])
        data = step["inputs"].get(pjob.DATA_INPUT)
        if data is not None and data.get("uri") == pjob.DATA_PLACEHOLDER:
            data["uri"] = data_uri
    body["properties"]["description"] = json.dumps({"reasons": dict(request.reasons)})[:1000]
    return body


def job_name(p: Platform, compiled: CompiledPipeline, request: RunRequest) -> str:
    from mlstack.engine.digest import digest

    key = digest({"pipeline": compiled.digest, "stages": list(request.stages), "t": time.time()})
    return f"mlstack-{p.project.project}-{p.project.environment}-{key.split(':')[-1][:12]}"


def run(p: Platform, compiled: CompiledPipeline, request: RunRequest, ctx: Context) -> RunResult:
    """Submit and follow the run; a completed run's metrics and model read back."""
    result = execute(p, compiled, request, ctx)
    if result.status != "succeeded":
        return result
    versions = _keys(compiled, request)
    metrics: dict[str, float] = {}
    model_stage = None
    for stage in p.project.pipeline.stages:
        folder = stage_output(p, stage.name, versions[stage.name])
        path = folder + "metrics.json"
        if datastore.exists(p, path):
            raw = datastore.read_file(p, path)
            try:
                values = json.loads(raw)
            except ValueError:
                values = {}
            if isinstance(values, dict):
                metrics.update(
                    {
                        k: float(v)
                        for k, v in values.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)
                    }
                )
        if pjob.kind_of(stage) in MODEL_KINDS:
            model_stage = stage.name
    if model_stage is None:
        return result
    model_uri = datastore.long_uri(p, stage_output(p, model_stage, versions[model_stage]))
    digest = datastore.digest_of(p, model_uri)
    if digest is None:
        raise BackendError(
            f"pipeline job {result.run_id} completed, but its {model_stage} step left no "
            f"files in {model_uri}",
            hint=f"look at the {model_stage} step's outputs and logs in the Azure ML studio",
        )
    return RunResult(
        run_id=result.run_id,
        status="succeeded",
        metrics=metrics,
        model_uri=model_uri,
        model_digest=digest,
        stages=result.stages,
        detail=result.detail,
    )


def stage_output(p: Platform, stage: str, version: str) -> str:
    """The datastore folder (ending in ``/``) a stage's step writes for this cache key."""
    return f"{pjob.data_root(p.project)}/stages/{stage}/{version}/"


def upload_inputs(p: Platform, compiled: CompiledPipeline, request: RunRequest) -> str:
    """Put the stages' settings files and the data into the datastore (each once: their paths
    are named by their digests); the data folder's URI."""
    for entry in compiled.definition["settings"].values():
        if not datastore.exists(p, entry["uri"]):
            folder, _, name = entry["uri"].rpartition("/")
            datastore.write_tree(
                p, folder, {name: json.dumps(entry["settings"], sort_keys=True).encode()}
            )
    data = p.project.data
    if data is None:
        raise BackendError("the pipeline needs a data: section to run on Azure ML")
    if str(data.source).startswith("azureml://"):
        return str(data.source).rsplit("/", 1)[0]
    path = Path(p.project.root) / data.source
    if not path.is_file():
        raise BackendError(
            f"data source {data.source!r} does not exist",
            hint="create it, or point data.source at an azureml://datastores/... URI",
        )
    raw = path.read_bytes()
    key = (request.data_digest or "sha256:" + hashlib.sha256(raw).hexdigest()).split(":")[-1]
    folder = f"{pjob.data_root(p.project)}/data/{key[:32]}"
    if not datastore.exists(p, f"{folder}/{path.name}"):
        datastore.write_tree(p, folder, {path.name: raw})
    return folder


def execute(
    p: Platform, compiled: CompiledPipeline, request: RunRequest, ctx: Context
) -> RunResult:
    """Upload what the steps read, register the code and the components, submit the pipeline
    job and follow it to its end."""
    data_uri = upload_inputs(p, compiled, request)
    datastore.ensure_code(p, ctx)
    register_components(p, compiled, ctx, request)
    name = job_name(p, compiled, request)
    url = f"{_ws(p)}/jobs/{name}"
    p.arm.request(
        "PUT",
        url,
        f"submitting pipeline job {name}",
        params={"api-version": API},
        body=job_body(p, compiled, request, data_uri),
    )
    ctx.emit(Event("run.started", name, f"Azure ML pipeline job {name} submitted", {"job": name}))
    job = _follow(p, url, name, ctx)
    props = job.get("properties") or {}
    status = str(props.get("status"))
    stages = {
        s.name: ("ran" if s.name in request.stages else "cached") for s in p.project.pipeline.stages
    }
    studio = ((props.get("services") or {}).get("Studio") or {}).get("endpoint", "")
    result = TERMINAL.get(status, "failed")
    detail = "" if result == "succeeded" else f"pipeline job {name} ended {status}"
    if detail and studio:
        detail += f"; its steps' logs: {studio}"
    return RunResult(
        run_id=name,
        status=result,  # type: ignore[arg-type]
        metrics={},
        model_uri=None,
        model_digest=None,
        stages=stages if result == "succeeded" else {k: "skipped" for k in stages},
        detail=detail,
    )


def _follow(p: Platform, url: str, name: str, ctx: Context) -> dict[str, Any]:
    seen = ""
    timeout = sum(float(s.timeout or 86400) for s in p.project.pipeline.stages)
    deadline = time.monotonic() + timeout
    while True:
        job = p.arm.request("GET", url, f"reading pipeline job {name}", params={"api-version": API})
        status = str((job.get("properties") or {}).get("status"))
        if status != seen:
            ctx.emit(Event("log", name, status, {"status": status}))
            seen = status
        if status in TERMINAL or status == NOT_RESPONDING:
            ctx.emit(Event("run.done", name, status, {"status": status}))
            return dict(job)
        if time.monotonic() > deadline:
            raise BackendError(
                f"pipeline job {name} still {status} after {timeout:.0f} s",
                hint="look at it in the Azure ML studio; cancel it there or raise the stages' "
                "timeout",
            )
        time.sleep(p.config.poll_interval)
