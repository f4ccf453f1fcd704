"""The `local` backend's pipelines: compile the spec to a JSON DAG (format ``mlstack-dag``), keep
the definition, run it with ``runner.Runner`` (outputs in the content-addressed store shared by
all environments), log finished runs to MLflow, and show run logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlstack.engine.backend import (
    CompiledPipeline,
    Context,
    Event,
    PipelineRef,
    RunRequest,
    RunResult,
)
from mlstack.engine.digest import digest
from mlstack.errors import BackendError, GateFailed, Location, MlstackError, Problem, SpecError
from mlstack.local.environment import LocalEnv
from mlstack.local.store import ArtifactStore, atomic_write_json
from mlstack.manifest.dag import toposort

FORMAT = "mlstack-dag"
LOG_TAIL_LINES = 15


def compile_pipeline(env: LocalEnv) -> CompiledPipeline:
    p = env.project
    stages: list[dict[str, Any]] = [
        {
            "name": st.name,
            "kind": st.kind,
            "uses": st.uses,
            "run": st.run,
            "function": st.function,
            "needs": list(st.needs),
            "with": st.with_,
            "env": st.env,
            "gates": list(st.gates),
            "retries": st.retries,
            "timeout": st.timeout,
            "code": list(st.code),
            "resources": st.resources.model_dump(mode="json"),
        }
        for st in p.pipeline.stages
    ]
    order = toposort({s["name"]: s["needs"] for s in stages})
    definition: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "project": p.project,
        "stages": stages,
        "order": order,
        "parallelism": p.pipeline.parallelism,
        "data": p.data.model_dump(mode="json", by_alias=False) if p.data else None,
        "model": (
            {"name": p.model.name, "aliases": list(p.model.registration.aliases)}
            if p.model
            else None
        ),
    }
    return CompiledPipeline(
        definition=definition, digest=digest(definition), steps=tuple(order), format=FORMAT
    )


def upsert_pipeline(env: LocalEnv, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
    path = env.env_dir / "pipeline.json"
    atomic_write_json(path, {"digest": compiled.digest, "definition": compiled.definition})
    env.push_record("pipeline.json")
    return PipelineRef(name=env.project.project, location=str(path), steps=compiled.steps)


def run_pipeline(
    env: LocalEnv, compiled: CompiledPipeline, request: RunRequest, ctx: Context
) -> RunResult:
    from mlstack.local.runner import Runner, save_run_record

    champion = None
    if env.project.model is not None:
        champ = env.registry.alias(env.project.model.name, "champion")
        champion = dict(champ.get("metrics") or {}) if champ else None
    runner = Runner(
        env.workdir,
        ctx.environment,
        Path(env.project.root),
        compiled.definition,
        parallelism=env.parallelism(),
        emit=ctx.emit,
        cancelled=ctx.cancel.is_set,
        champion=champion,
        remote=env.remote,
    )
    keys = runner.effective_keys(request.cache_keys, request.data_digest)
    will_run = any(runner.store.lookup(k) is None for k in keys.values())
    if will_run and env.project.model is not None:
        env.tracker()  # MLflow warms up on its thread while the stages run
    outcome = runner.run(request.cache_keys, request.data_digest)
    metrics: dict[str, float] = {}
    model_entry: dict[str, Any] | None = None
    for name in outcome.order:
        entry = outcome.stages[name].entry
        if entry is None:
            continue
        metrics.update(
            {
                k: float(v)
                for k, v in (entry.get("metrics") or {}).items()
                if isinstance(v, (int, float))
            }
        )
        if entry.get("model"):
            model_entry = entry
    # with an `artifacts:` URL, the model's URI is its object there: the same on every machine
    model_uri = runner.store.uri(model_entry["output"]) if model_entry else None
    model_digest = model_entry["output"] if model_entry else None
    dataset = _dataset_info(outcome, runner.store)
    record = {
        "environment": ctx.environment,
        "project": env.project.project,
        "pipeline_digest": compiled.digest,
        "data_digest": request.data_digest or (dataset or {}).get("digest"),
        "dataset": dataset,
        "cache_keys": dict(request.cache_keys),
        "reasons": dict(request.reasons),
        "metrics": metrics,
        "model_uri": model_uri,
        "model_digest": model_digest,
    }
    save_run_record(env.workdir, ctx.environment, outcome, record)
    statuses = {n: s.status for n, s in outcome.stages.items()}
    if (
        outcome.status == "succeeded"
        and model_entry is not None
        and env.project.model is not None
        and any(s == "ran" for s in statuses.values())
    ):
        log_run_async(env, outcome.run_id)
    if outcome.interrupted:
        raise KeyboardInterrupt
    if outcome.status == "cancelled":
        return RunResult(
            outcome.run_id,
            "cancelled",
            metrics,
            None,
            None,
            statuses,
            detail="cancelled; finished stages are cached",
        )
    if outcome.status == "failed":
        _raise_failure(env, outcome)
    ctx.emit(
        Event(
            "run.done",
            outcome.run_id,
            f"{outcome.seconds:.2f}s",
            {"stages": statuses, "metrics": metrics},
        )
    )
    return RunResult(
        run_id=outcome.run_id,
        status="succeeded",
        metrics=metrics,
        model_uri=model_uri,
        model_digest=model_digest,
        stages=statuses,
        detail=f"{sum(s == 'ran' for s in statuses.values())} ran, "
        f"{sum(s == 'cached' for s in statuses.values())} cached",
    )


def _dataset_info(outcome: Any, store: ArtifactStore) -> dict[str, Any] | None:
    for name in outcome.order:
        entry = outcome.stages[name].entry
        if entry is not None:
            f = store.object_path(entry["output"]) / "dataset.json"
            if f.exists():
                info: dict[str, Any] = json.loads(f.read_text())
                return info
    return None


def _raise_failure(env: LocalEnv, outcome: Any) -> None:
    failed = outcome.first_failure()
    if failed is None:
        raise BackendError(f"pipeline run {outcome.run_id} did not finish")
    err = failed.error or {}
    where = f"stage {failed.name!r}"
    if err.get("stopped"):  # a gate or the data validation report: the user's to act on
        problems = [
            Problem(p["message"], hint=p.get("hint"))
            for p in err.get("problems") or [{"message": err.get("message", "")}]
        ]
        if problems and not problems[0].message.startswith(where):  # said once
            problems[0] = Problem(f"{where}: {problems[0].message}", hint=problems[0].hint)
        raise GateFailed(problems[0].message, problems=problems)
    if err.get("config"):  # a wrong setting: no log tail, point at the spec
        raise SpecError(
            f"{where}: {err.get('message', '')}",
            location=_setting_location(env, failed.name, str(err.get("setting") or "")),
            hint=((err.get("problems") or [{}])[0].get("hint")),
        )
    attempts = f" after {failed.attempts} attempts" if failed.attempts > 1 else ""
    tail = _tail(failed.log)
    message = f"{where} failed{attempts}: {err.get('message', 'unknown error')}"
    hint = f"full log: mlstack logs -e {env.env} {failed.name}  ({failed.log})"
    if tail and not err.get("timeout"):
        message += "\n    last lines of its log:\n" + "\n".join("      " + line for line in tail)
    raise BackendError(message, hint=hint)


def _setting_location(env: LocalEnv, stage: str, setting: str) -> Location | None:
    """Where ``setting`` of ``stage`` is written in the project file (best effort)."""
    from mlstack.manifest.source import parse, read_text

    path = Path(env.project.file)
    if not path.is_absolute() and not path.exists():
        path = Path(env.project.root) / path.name
    try:
        src = parse(read_text(str(path)), env.project.file)
    except MlstackError:
        return None
    stages = ((src.data or {}).get("pipeline") or {}).get("stages") or []
    for i, s in enumerate(stages):
        if isinstance(s, dict) and s.get("name") == stage:
            return src.locate(("pipeline", "stages", i, *setting.split(".")))
    return None


def log_run_async(env: LocalEnv, run_id: str) -> None:
    from mlstack.local.tracking import REPORT_FILES, flatten_params, run_record

    rec = run_record(env.workdir, env.env, run_id)
    if rec is None:
        return
    store = env.store()
    artifacts: list[tuple[str, Path]] = []
    for name, st in rec["stages"].items():
        if not st.get("output"):
            continue
        out = store.object_path(st["output"])
        artifacts += [(f"stages/{name}", out / f) for f in REPORT_FILES if (out / f).exists()]
    if rec.get("model_digest") and store.object_path(rec["model_digest"]).is_dir():
        artifacts.append(("model", store.object_path(rec["model_digest"])))
    stages: list[Mapping[str, Any]] = [
        {"name": s.name, "with": s.with_} for s in env.project.pipeline.stages
    ]
    params = flatten_params(stages)
    env.mlflow_runs[run_id] = env.mlflow(lambda t: t.log_run(rec, params, artifacts))


def logs(env: LocalEnv, stage: str | None = None) -> str:
    from mlstack.local.tracking import read_logs

    return read_logs(env.workdir, env.env, stage)


def _tail(path: str | None, n: int = LOG_TAIL_LINES) -> list[str]:
    if not path:
        return []
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if not ln.startswith("---")][-n:]
