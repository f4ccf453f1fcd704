"""Pipelines as Kubernetes Jobs, one per stage in DAG order, each running the shared runtime.

``compile`` is pure: the Job manifests (``manifests.stage_job``) for every stage, with their
upstream stages, in topological order, and a digest of them. ``run_pipeline`` uploads the data
and each stage's settings to storage, creates the Jobs of a wave once every upstream Job is
``Complete``, follows the Jobs' terminal conditions (``Complete``/``Failed``, as the Job
controller documents them) and their pods' phases (emitted as events: a new pod after a failed
one is a ``backoffLimit`` retry), checks an evaluate stage's gates against the registry's
champion, and reads the run's metrics and model from storage. Each stage writes under
``<storage_uri>/runs/<run>/<stage>``; every run runs every stage (no cache across runs yet).
A cancelled or timed-out run deletes its Jobs with ``propagationPolicy: Background`` (the API's
default for ``batch/v1`` Jobs would orphan their pods). ``logs`` reads the stage containers'
logs of the latest run's pods.

Kubeflow Pipelines (``pipelines: kfp``) is not implemented: ``validate`` refuses it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Literal

from mlstack.engine.backend import (
    CompiledPipeline,
    Context,
    Event,
    PipelineRef,
    RunRequest,
    RunResult,
)
from mlstack.engine.digest import digest, tree_digest
from mlstack.errors import BackendError
from mlstack.manifest.dag import toposort
from mlstack.manifest.gates import parse_gate
from mlstack_kserve import manifests as mf
from mlstack_kserve import registry, storage
from mlstack_kserve.k8s_names import object_name
from mlstack_kserve.platform import Platform

JOB_API = ("batch", "v1", "jobs")
POD_API = ("", "v1", "pods")
CONFIGMAPS = ("", "v1", "configmaps")
RUN_PLACEHOLDER = "run"
DATA_PLACEHOLDER = "DATA"
MODEL_KINDS = ("train", "tune")
STAGE_CONTAINER = "stage"
LOG_TAIL_LINES = 15


# --- what runs ------------------------------------------------------------------------------
def _ancestors(p: Platform, name: str) -> list[str]:
    """Every stage ``name`` depends on, nearest first, in the runtime's own order."""
    from mlstack_runtime.job import ancestors

    return ancestors([{"name": s.name, "needs": s.needs} for s in p.project.pipeline.stages], name)


def stage_settings(p: Platform, name: str) -> dict[str, Any]:
    """The settings file ``python -m mlstack_runtime`` reads (``--spec``)."""
    from mlstack_runtime import SETTINGS_FORMAT

    project = p.project
    stage = next(s for s in project.pipeline.stages if s.name == name)
    return {
        "format": SETTINGS_FORMAT,
        "stage": stage.model_dump(mode="json", by_alias=True),
        "inputs": _ancestors(p, name),
        "data": project.data.model_dump(mode="json", by_alias=True) if project.data else None,
        "pipeline": {
            "stages": [s.model_dump(mode="json", by_alias=True) for s in project.pipeline.stages]
        },
        "model": {"name": project.model.name} if project.model else {},
    }


def run_uri(p: Platform, run_id: str) -> str:
    return storage.uri_of(p, f"runs/{run_id}")


def _jobs(
    p: Platform, run_id: str, data_uri: str | None, written: set[str] | None = None
) -> list[dict[str, Any]]:
    """Every stage's Job; ``written``: the upstream stages that wrote outputs (a stage that
    wrote nothing, such as a `run:` command, has nothing to fetch: the storage initializer
    fails on an empty prefix). None: all of them."""
    c, project = p.config, p.project
    stages = {s.name: s for s in project.pipeline.stages}
    order = toposort({s.name: s.needs for s in stages.values()})
    root = run_uri(p, run_id)
    out = []
    for name in order:
        s = stages[name]
        out.append(
            mf.stage_job(
                name=object_name(project.project, run_id, name),
                namespace=c.namespace,
                project=project.project,
                run_id=run_id,
                stage=name,
                image=c.image,
                service_account=c.service_account,
                storage_secret=c.job_storage_secret,
                s3_endpoint=c.s3_endpoint,
                resources=c.resources.requirements(),
                spec_uri=f"{root}/_spec/{name}.json",
                output_uri=f"{root}/{name}",
                inputs={
                    up: f"{root}/{up}"
                    for up in _ancestors(p, name)
                    if written is None or up in written
                },
                data_uri=data_uri if s.kind == "ingest" else None,
                retries=s.retries,
                timeout=s.timeout,
                env=dict(s.env),
            )
        )
    return out


def compile_pipeline(p: Platform) -> CompiledPipeline:
    project = p.project
    stages = {s.name: s for s in project.pipeline.stages}
    order = toposort({s.name: s.needs for s in stages.values()})
    data = storage.uri_of(p, f"data/{DATA_PLACEHOLDER}") if project.data else None
    definition = {
        "format": "k8s-jobs",
        "order": order,
        "needs": {n: stages[n].needs for n in order},
        "jobs": _jobs(p, RUN_PLACEHOLDER, data),
        "settings": {n: stage_settings(p, n) for n in order},
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
    """The pipeline's ConfigMap and every run's Jobs (their pods with them)."""
    for job in p.cluster.list(JOB_API, mf.labels(p.project.project)):
        p.cluster.delete(JOB_API, _name(job), propagation="Background")
    p.cluster.delete(CONFIGMAPS, object_name(p.project.project, "pipeline"))


# --- a run ------------------------------------------------------------------------------------
def _upload_data(p: Platform, request: RunRequest) -> str | None:
    data = p.project.data
    if data is None:
        return None
    source = str(data.source)
    if source.startswith("s3://"):
        return source.rsplit("/", 1)[0]
    if "://" in source:
        raise BackendError(
            f"data.source {source!r}: the KServe backend reads data from a local file or s3://",
            hint="point data.source at a file in the project or an s3:// URI",
        )
    path = Path(p.project.root) / source
    if not path.is_file():
        raise BackendError(
            f"data source {source!r} does not exist (looked for {path})",
            hint="create it, or point data.source at an s3:// URI",
        )
    raw = path.read_bytes()
    key = (request.data_digest or "sha256:" + hashlib.sha256(raw).hexdigest()).split(":")[-1]
    uri = storage.uri_of(p, f"data/{key[:32]}")
    if not storage.exists(p, f"{uri}/{path.name}"):
        storage.put_bytes(p, f"{uri}/{path.name}", raw)
    return uri


def _job_state(job: dict[str, Any]) -> tuple[str, str]:
    """(Complete | Failed | Running | Pending, "reason: message") from the Job's status."""
    for c in job.get("status", {}).get("conditions", []):
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
            return c["type"], f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
    return ("Running" if job.get("status", {}).get("active") else "Pending"), ""


def _pods(p: Platform, run_id: str, stage: str | None = None) -> list[dict[str, Any]]:
    selector = mf.labels(p.project.project, run=run_id) | (
        {"mlstack.dev/stage": object_name(stage)} if stage else {}
    )
    pods = p.cluster.list(POD_API, selector)
    return sorted(pods, key=lambda o: (o["metadata"].get("creationTimestamp", ""), _name(o)))


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def pod_summary(pod: dict[str, Any]) -> str:
    """A pod's phase as ``kubectl get pods`` shows it (``Init:1/3``, ``Running``, ...)."""
    status = pod.get("status", {})
    phase = str(status.get("phase", "Pending"))
    inits = status.get("initContainerStatuses") or []
    total = len(pod.get("spec", {}).get("initContainers") or [])
    if phase == "Pending" and inits:
        done = sum(
            1 for s in inits if s.get("state", {}).get("terminated", {}).get("exitCode") == 0
        )
        running = next((s["name"] for s in inits if "running" in s.get("state", {})), None)
        if done < total:
            return f"Init:{done}/{total}" + (f" ({running})" if running else "")
    return phase


def _failure(p: Platform, pod: dict[str, Any]) -> str:
    """Why a stage pod failed: the container that failed, its reason, exit code, termination
    message and the tail of its log."""
    status = pod.get("status", {})
    for s in [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]:
        term = s.get("state", {}).get("terminated") or {}
        if term and term.get("exitCode", 0) != 0:
            head = (
                f"pod {_name(pod)}: container {s['name']!r} {term.get('reason', 'Error')} "
                f"(exit code {term.get('exitCode')})"
            )
            message = str(term.get("message") or "").strip()
            try:
                log = p.cluster.pod_log(_name(pod), s["name"])
            except BackendError:
                log = ""
            tail = "\n".join(log.strip().splitlines()[-LOG_TAIL_LINES:])
            parts = [head + (f": {message}" if message else "")]
            if tail and tail not in message:
                parts.append("log tail:\n" + tail)
            return "\n".join(parts)
    reason = status.get("reason") or status.get("phase", "")
    return f"pod {_name(pod)}: {reason} {status.get('message', '')}".strip()


def _delete_jobs(p: Platform, names: list[str]) -> None:
    for name in names:
        p.cluster.delete(JOB_API, name, propagation="Background")


def _check_gates(p: Platform, stage: str, metrics: dict[str, float]) -> list[str]:
    """The failing gates of an evaluate stage, against the registry's ``champion``."""
    spec = next(s for s in p.project.pipeline.stages if s.name == stage)
    if not spec.gates:
        return []
    champion = next(
        (v for v in registry.versions(p, p.model_name()) if "champion" in v.aliases), None
    )
    failed = []
    for text in spec.gates:
        res = parse_gate(text).check(metrics, dict(champion.metrics) if champion else None)
        if not res.passed:
            failed.append(f"gate `{text}` failed: {res.detail}")
    return failed


def _metrics(p: Platform, uri: str) -> dict[str, float]:
    files = storage.read_tree(p, uri)
    raw = files.get("metrics.json")
    if raw is None:
        return {}
    blob = json.loads(raw)
    return {k: float(v) for k, v in blob.items() if isinstance(v, (int, float))}


def run_pipeline(
    p: Platform, compiled: CompiledPipeline, request: RunRequest, ctx: Context
) -> RunResult:
    run_id = object_name("r", f"{time.time_ns() // 1_000_000:x}")
    order: list[str] = compiled.definition["order"]
    needs: dict[str, list[str]] = compiled.definition["needs"]
    kinds = {s.name: s.kind for s in p.project.pipeline.stages}
    data_uri = _upload_data(p, request)
    root = run_uri(p, run_id)
    for name in order:
        settings = json.dumps(stage_settings(p, name), sort_keys=True, indent=1).encode()
        storage.put_bytes(p, f"{root}/_spec/{name}.json", settings)
    written: set[str] = set()  # stages whose outputs are in storage
    ctx.emit(Event("run.started", run_id, f"{len(order)} stage Jobs in {p.config.namespace}"))
    done: dict[str, str] = {}
    started: dict[str, str] = {}  # stage -> Job name
    seen: dict[str, tuple[str, str]] = {}  # stage -> (pod, summary) last reported
    metrics: dict[str, float] = {}
    deadline = time.monotonic() + p.config.timeout

    def failed(stage: str, detail: str, status: Literal["failed", "cancelled"]) -> RunResult:
        # Jobs still running go; a failed one stays for `mlstack logs` and kubectl (its
        # ttlSecondsAfterFinished removes it)
        keep = stage if status == "failed" else None
        _delete_jobs(p, [started[s] for s in started if s not in done and s != keep])
        done[stage] = "failed" if status == "failed" else "cancelled"
        for s in order:
            done.setdefault(s, "skipped")
        ctx.emit(Event("run.done", run_id, f"{status}: {detail}"))
        return RunResult(
            run_id=run_id,
            status=status,
            metrics=metrics,
            model_uri=None,
            model_digest=None,
            stages=done,
            detail=detail,
        )

    while len(done) < len(order):
        for stage in order:  # a wave: every stage whose upstream Jobs completed
            if stage in started or any(done.get(u) != "ran" for u in needs[stage]):
                continue
            job = next(
                j
                for j in _jobs(p, run_id, data_uri, written)
                if j["metadata"]["labels"]["mlstack.dev/stage"] == object_name(stage)
            )
            p.cluster.apply(job, "jobs")
            started[stage] = _name(job)
            ctx.emit(Event("stage.start", stage, f"Job {started[stage]}"))
        for stage, job_name in started.items():
            if stage in done:
                continue
            obj = p.cluster.get(JOB_API, job_name)
            if obj is None:
                return failed(stage, f"{stage}: the Job {job_name} was deleted", "failed")
            pods = _pods(p, run_id, stage)
            live = [o for o in pods if o.get("status", {}).get("phase") != "Failed"]
            current = live or pods
            if current:
                pod = current[-1]
                now = (_name(pod), pod_summary(pod))
                before = seen.get(stage)
                if now != before:
                    if before is not None and before[0] != now[0]:
                        ctx.emit(Event("stage.retry", stage, f"pod {before[0]} failed; {now[0]}"))
                    ctx.emit(Event("log", stage, f"pod {now[0]}: {now[1]}"))
                    seen[stage] = now
            state, message = _job_state(obj)
            if state == "Failed":
                dead = [o for o in pods if o.get("status", {}).get("phase") == "Failed"]
                why = (
                    _failure(p, dead[-1])
                    if dead
                    else "no pod of it failed: "
                    + ("its pod did not finish in time" if pods else "no pod was created")
                )
                detail = f"stage {stage!r}: Job {job_name} failed ({message})\n{why}"
                ctx.emit(Event("stage.failed", stage, detail))
                return failed(stage, detail, "failed")
            if state != "Complete":
                continue
            out = f"{root}/{stage}"
            if storage.has_objects(p, out):
                written.add(stage)
            got = _metrics(p, out) if stage in written else {}
            metrics.update(got)
            if kinds[stage] == "evaluate":
                broken = _check_gates(p, stage, got)
                if broken:
                    detail = f"stage {stage!r}: {'; '.join(broken)}; the model was not registered"
                    ctx.emit(Event("stage.failed", stage, detail))
                    return failed(stage, detail, "failed")
            done[stage] = "ran"
            ctx.emit(Event("stage.done", stage, f"Job {job_name} Complete; outputs {out}"))
        if len(done) == len(order):
            break
        if ctx.cancel.is_set():
            running = next((s for s in order if s in started and s not in done), order[0])
            ctx.emit(Event("stage.cancelled", running, "run cancelled: deleting its Jobs"))
            return failed(running, f"cancelled while {running!r} ran", "cancelled")
        if time.monotonic() > deadline:
            _delete_jobs(p, [started[s] for s in started if s not in done])
            raise BackendError(
                f"pipeline run {run_id} did not finish in {p.config.timeout:g}s; its Jobs "
                "were deleted",
                hint="raise `timeout:` in the environment, or look at the pods: "
                f"kubectl -n {p.config.namespace} get pods -l mlstack.dev/run={run_id}",
            )
        ctx.cancel.wait(p.config.poll_interval)
    model_stage = next((s for s in reversed(order) if kinds[s] in MODEL_KINDS), None)
    model_uri = f"{root}/{model_stage}" if model_stage else None
    model_digest = tree_digest(storage.read_tree(p, model_uri)) if model_uri else None
    ctx.emit(Event("run.done", run_id, f"succeeded; model {model_uri or '-'}"))
    return RunResult(
        run_id=run_id,
        status="succeeded",
        metrics=metrics,
        model_uri=model_uri,
        model_digest=model_digest,
        stages=done,
    )


def logs(p: Platform, stage: str | None) -> str:
    """The stage container's log of each pod of the latest run (or of one stage)."""
    selector = mf.labels(p.project.project) | (
        {"mlstack.dev/stage": object_name(stage)} if stage else {}
    )
    pods = p.cluster.list(POD_API, selector)
    if not pods:
        raise BackendError(
            f"no stage pods{f' for {stage!r}' if stage else ''} in {p.config.namespace}",
            hint="the Jobs and their pods are removed a day after they finish "
            "(ttlSecondsAfterFinished)",
        )
    # run ids grow with time (milliseconds, hex of a fixed width for centuries)
    run = max(str(o["metadata"]["labels"].get("mlstack.dev/run", "")) for o in pods)
    pods = sorted(
        (o for o in pods if o["metadata"]["labels"].get("mlstack.dev/run") == run),
        key=lambda o: (o["metadata"].get("creationTimestamp", ""), _name(o)),
    )
    out = []
    for pod in pods:
        try:
            text = p.cluster.pod_log(_name(pod), STAGE_CONTAINER)
        except BackendError as e:
            text = f"(no log: {e})"
        out.append(f"== {_name(pod)} ({pod_summary(pod)}) ==\n{text.rstrip()}")
    return "\n".join(out)
