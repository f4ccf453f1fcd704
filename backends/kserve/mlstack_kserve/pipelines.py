"""Pipelines as Kubernetes Jobs, one per stage in DAG order, each running the shared runtime.

``compile`` is pure: the Job manifests (``manifests.stage_job``) for every stage, with their
upstream stages, in topological order, and a digest of them. ``run_pipeline`` writes each stage's
settings to storage, creates the Jobs of a wave once their upstream Jobs completed, follows
the Jobs' conditions (``Complete``/``Failed``, the Job controller's documented terminal
conditions) and emits stage events; ``logs`` reads the stage pods' logs.

Kubeflow Pipelines (``pipelines: kfp``) is not implemented yet: ``auto`` uses Jobs.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from mlstack.engine.backend import (
    CompiledPipeline,
    Context,
    Event,
    PipelineRef,
    RunRequest,
    RunResult,
)
from mlstack.engine.digest import digest
from mlstack.errors import BackendError
from mlstack.manifest.dag import toposort
from mlstack_kserve import manifests as mf
from mlstack_kserve.k8s_names import object_name
from mlstack_kserve.platform import Platform

JOB_API = ("batch", "v1", "jobs")
POD_API = ("", "v1", "pods")
CONFIGMAPS = ("", "v1", "configmaps")
RUN_PLACEHOLDER = "RUN"


def compile_pipeline(p: Platform) -> CompiledPipeline:
    c, project = p.config, p.project
    stages = {s.name: s for s in project.pipeline.stages}
    order = toposort({s.name: s.needs for s in stages.values()})
    run_uri = f"{c.storage_uri}/runs/{RUN_PLACEHOLDER}"
    data = project.data.source if project.data else None
    jobs = []
    for name in order:
        s = stages[name]
        jobs.append(
            mf.stage_job(
                name=object_name(project.project, RUN_PLACEHOLDER.lower(), name),
                namespace=c.namespace,
                project=project.project,
                run_id=RUN_PLACEHOLDER.lower(),
                stage=name,
                image=c.image,
                service_account=c.service_account,
                resources=c.resources.requirements(),
                run_uri=run_uri,
                upstream=list(s.needs),
                data_uri=f"{c.storage_uri}/data" if (data and s.kind == "ingest") else None,
                retries=s.retries,
                timeout=s.timeout,
                env=dict(s.env),
            )
        )
    definition = {
        "format": "k8s-jobs",
        "order": order,
        "needs": {n: stages[n].needs for n in order},
        "jobs": jobs,
    }
    return CompiledPipeline(
        definition=definition, digest=digest(definition), steps=tuple(order), format="k8s-jobs"
    )


def _pipeline_configmap(p: Platform, compiled: CompiledPipeline) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": object_name(p.project.project, "pipeline"),
            "namespace": p.config.namespace,
            "labels": {**mf.labels(p.project.project), "mlstack.dev/kind": "pipeline"},
        },
        "data": {"digest": compiled.digest, "steps": ",".join(compiled.steps)},
    }


def upsert_pipeline(p: Platform, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
    """Jobs are made per run; the definition's digest and steps live in a ConfigMap."""
    name = object_name(p.project.project, "pipeline")
    before = p.cluster.get(CONFIGMAPS, name)
    p.cluster.apply(_pipeline_configmap(p, compiled), "configmaps")
    action: Literal["created", "updated", "unchanged"] = (
        "created"
        if before is None
        else "unchanged"
        if before.get("data", {}).get("digest") == compiled.digest
        else "updated"
    )
    return PipelineRef(
        name=name,
        location=f"configmap/{p.config.namespace}/{name}",
        steps=compiled.steps,
        action=action,
    )


def delete_pipeline(p: Platform) -> None:
    p.cluster.delete(CONFIGMAPS, object_name(p.project.project, "pipeline"))


def _job_state(job: dict[str, Any]) -> tuple[str, str]:
    for c in job.get("status", {}).get("conditions", []):
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
            return c["type"], str(c.get("message", ""))
    return "Running" if job.get("status", {}).get("active") else "Pending", ""


def run_pipeline(
    p: Platform, compiled: CompiledPipeline, request: RunRequest, ctx: Context
) -> RunResult:
    run_id = object_name("r", str(int(time.time())))
    needs: dict[str, list[str]] = compiled.definition["needs"]
    jobs = {j["metadata"]["labels"]["mlstack.dev/stage"]: j for j in compiled.definition["jobs"]}
    done: dict[str, str] = {}
    deadline = time.monotonic() + p.config.timeout
    started: dict[str, str] = {}
    while len(done) < len(jobs):
        for stage in compiled.definition["order"]:
            if stage in started or any(done.get(u) != "ran" for u in needs[stage]):
                continue
            job = _for_run(jobs[stage], run_id)
            p.cluster.apply(job, "jobs")
            started[stage] = job["metadata"]["name"]
            ctx.emit(Event("stage.start", stage, f"Job {job['metadata']['name']}"))
        for stage, name in started.items():
            if stage in done:
                continue
            obj = p.cluster.get(JOB_API, name)
            state, message = _job_state(obj or {})
            if state == "Complete":
                done[stage] = "ran"
                ctx.emit(Event("stage.done", stage, name))
            elif state == "Failed" or obj is None:
                done[stage] = "failed"
                ctx.emit(Event("stage.failed", stage, message or "the Job was deleted"))
                return RunResult(
                    run_id=run_id,
                    status="failed",
                    metrics={},
                    model_uri=None,
                    model_digest=None,
                    stages=done,
                    detail=f"{stage}: {message}",
                )
        if ctx.cancel.is_set() or time.monotonic() > deadline:
            raise BackendError(
                f"pipeline run {run_id} did not finish in {p.config.timeout:g}s",
                hint=f"kubectl -n {p.config.namespace} get jobs -l mlstack.dev/run={run_id}",
            )
        time.sleep(p.config.poll_interval)
    raise BackendError(
        "the stage Jobs completed, but reading the run's metrics and model from storage is not "
        "implemented yet on KServe",
        hint="register the artifact with `mlstack promote` from an environment that trains",
    )


def _for_run(job: dict[str, Any], run_id: str) -> dict[str, Any]:
    import json

    text = json.dumps(job)
    text = text.replace(f"/runs/{RUN_PLACEHOLDER}", f"/runs/{run_id}")
    text = text.replace(f"-{RUN_PLACEHOLDER.lower()}-", f"-{run_id}-").replace(
        f'"{RUN_PLACEHOLDER.lower()}"', f'"{run_id}"'
    )
    out: dict[str, Any] = json.loads(text)
    return out


def logs(p: Platform, stage: str | None) -> str:
    selector = mf.labels(p.project.project) | ({"mlstack.dev/stage": stage} if stage else {})
    pods = p.cluster.list(POD_API, selector)
    if not pods:
        raise BackendError(
            f"no stage pods{f' for {stage!r}' if stage else ''} in {p.config.namespace}",
            hint="the Jobs' pods are removed after a day (ttlSecondsAfterFinished)",
        )
    return "\n".join(
        f"== {pod['metadata']['name']} ==\n{p.cluster.pod_log(pod['metadata']['name'])}"
        for pod in pods
    )
