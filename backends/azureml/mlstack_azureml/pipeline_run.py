"""Running the compiled pipeline on Azure ML: each stage's command component is registered as a
component version (the version is the stage's mlstack cache key, so Azure ML's reuse of an
unchanged step and mlstack's cache agree), then the pipeline job is submitted with ``PUT
jobs/{name}`` and followed with ``GET`` until it reaches a terminal status.

The REST bodies are ``ComponentVersion`` and ``JobBase`` (``jobType: Pipeline``) of the Azure ML
REST API ("Machine Learning Services REST API": Component Versions - Create Or Update, Jobs -
Create Or Update, Jobs - Get); they go through azure-core with the environment's credential.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from mlstack.engine.backend import CompiledPipeline, Context, Event, PipelineRef, RunRequest
from mlstack.engine.seam import RunResult
from mlstack.errors import BackendError
from mlstack_azureml.azure import arm_request
from mlstack_azureml.platform import Platform

API = "2024-10-01"
TERMINAL = {"Completed": "succeeded", "Failed": "failed", "Canceled": "cancelled"}
NOT_RESPONDING = "NotResponding"


def _ws(p: Platform) -> str:
    c = p.config
    return (
        f"/subscriptions/{c.subscription_id}/resourceGroups/{c.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{c.workspace}"
    )


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
        arm_request(
            p.config,
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


def job_body(p: Platform, compiled: CompiledPipeline, request: RunRequest) -> dict[str, Any]:
    """The pipeline job's REST body with each step pointing at its component version and its
    output folder named by the stage's cache key."""
    versions = _keys(compiled, request)
    body: dict[str, Any] = copy.deepcopy(compiled.definition["job"])
    components = compiled.definition["components"]
    for stage, step in body["properties"]["jobs"].items():
        name = components[stage]["name"]
        step["componentId"] = f"{_ws(p)}/components/{name}/versions/{versions[stage]}"
        out = step["outputs"]["out"]
        out["uri"] = out["uri"].replace(f"{{cache_key:{stage}}}", versions[stage])
    body["properties"]["description"] = json.dumps({"reasons": dict(request.reasons)})[:1000]
    return body


def job_name(p: Platform, compiled: CompiledPipeline, request: RunRequest) -> str:
    from mlstack.engine.digest import digest

    key = digest({"pipeline": compiled.digest, "stages": list(request.stages), "t": time.time()})
    return f"mlstack-{p.project.project}-{p.project.environment}-{key.split(':')[-1][:12]}"


def run(p: Platform, compiled: CompiledPipeline, request: RunRequest, ctx: Context) -> RunResult:
    """Submit and follow the run; a completed run stops clearly where mlstack's path ends."""
    result = execute(p, compiled, request, ctx)
    if result.status == "succeeded" and result.model_uri is None:
        # the model and metrics are step outputs on the workspace's blob datastore
        raise BackendError(
            f"pipeline job {result.run_id} completed, but mlstack cannot read its model and "
            "metrics from the workspace's datastore yet (blob storage is not wired)",
            hint="register the model from the job's `register` step output yourself, or train "
            "with `backend: local` and promote the version",
        )
    return result


def execute(
    p: Platform, compiled: CompiledPipeline, request: RunRequest, ctx: Context
) -> RunResult:
    """Register the components, submit the pipeline job and follow it to its end."""
    register_components(p, compiled, ctx, request)
    name = job_name(p, compiled, request)
    url = f"{_ws(p)}/jobs/{name}"
    arm_request(
        p.config,
        "PUT",
        url,
        f"submitting pipeline job {name}",
        params={"api-version": API},
        body=job_body(p, compiled, request),
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
        job = arm_request(
            p.config, "GET", url, f"reading pipeline job {name}", params={"api-version": API}
        )
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
