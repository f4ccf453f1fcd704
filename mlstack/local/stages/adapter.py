"""A runtime stage as the local runner runs it: context in, value and metrics out, errors mapped."""

from __future__ import annotations

from typing import Any

from mlstack_runtime.errors import StageError, StageStopped

from mlstack.errors import BackendError, GateFailed, MlstackError, Problem


def as_mlstack_error(e: StageError) -> MlstackError:
    """The runtime's error (from a built-in, ``function:`` or ``run:`` stage) as the runner
    reports it: a ``StageStopped`` stops the run like a failed gate, the rest are failures the
    user acts on (a ``StageConfigError`` is recognised by the caller and never retried)."""
    if isinstance(e, StageStopped):
        problems = [Problem(e.message, hint=e.hint), *(Problem(p) for p in e.problems)]
        return GateFailed(e.message, problems=problems)
    return BackendError(e.message, hint=e.hint)


def job_for(ctx: Any) -> Any:
    """The runtime's view of a local stage: upstream outputs nearest first, data from the
    project folder (``data.source`` relative to it)."""
    from mlstack_runtime.job import Job

    settings = {
        "stage": ctx.stage,
        "data": ctx.data,
        "pipeline": ctx.pipeline,
        "model": ctx.model_spec,
    }
    return Job(
        settings,
        ctx.output,
        inputs=ctx.ancestors,
        project_root=ctx.project_root,
    )


def run_builtin(kind: str, ctx: Any) -> Any:
    from mlstack_runtime import stages

    job = job_for(ctx)
    try:
        value = stages.run(kind, job)
    finally:
        ctx.metrics.update(job.metrics)
    if kind == "evaluate":
        from mlstack.local.stages.gates import check_gates

        if ctx.champion:
            shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(ctx.champion.items()))
            print("champion: " + shown)
        gates = list(ctx.stage.get("gates") or [])
        for detail in check_gates(gates, ctx.metrics, ctx.champion, ctx.name):
            print(detail)
    return value
