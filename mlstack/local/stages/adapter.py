"""A runtime stage as the local runner runs it: context in, value and metrics out, errors mapped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlstack.errors import BackendError, GateFailed, Problem


class StageConfigError(BackendError):
    """A stage's settings are wrong (``setting`` is its path under the stage, e.g.
    ``with.estimator``): the same input fails the same way, so it is never retried."""

    def __init__(self, setting: str, message: str, hint: str | None = None) -> None:
        self.setting = setting
        super().__init__(message, hint=hint)


def config_error(e: Any) -> StageConfigError:
    """The runtime's ``StageConfigError`` as the runner reports it (never retried)."""
    return StageConfigError(e.setting, e.message, hint=e.hint)


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
        inputs=list(reversed(ctx.ancestors)),
        project_root=ctx.project_root,
    )


def run_builtin(kind: str, ctx: Any) -> Any:
    from mlstack_runtime import errors, stages

    job = job_for(ctx)
    try:
        value = stages.run(kind, job)
    except errors.StageConfigError as e:
        raise config_error(e) from None
    except errors.StageStopped as e:
        problems = [Problem(e.message, hint=e.hint), *(Problem(p) for p in e.problems)]
        raise GateFailed(e.message, problems=problems) from None
    except errors.StageError as e:
        raise BackendError(e.message, hint=e.hint) from None
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


def runner_for(kind: str) -> Callable[[Any], Any]:
    def run(ctx: Any) -> Any:
        return run_builtin(kind, ctx)

    return run
