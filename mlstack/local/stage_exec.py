"""What a stage's process does: set up its world, run the stage, store its output atomically.

Runs inside a child forked by the zygote (see ``zygote.py``). Exit codes tell the runner what
happened: 0 done (output stored, cache entry written), 1 failed (may be retried), 3 stopped on
purpose by a gate or a validation report, 4 a setting of the stage is wrong (neither retried). Details of a failure are written as
JSON to ``job["error_file"]``; everything the stage prints goes to its log file.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_STOPPED = 3
EXIT_CONFIG = 4


def execute(job: dict[str, Any]) -> int:
    log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    started = time.time()
    print(
        f"--- stage {job['stage']['name']} attempt {job['attempt']} "
        f"(run {job['run_id']}, pid {os.getpid()}) ---",
        flush=True,
    )
    os.chdir(job["project_root"])
    from mlstack.local.stages.context import StageContext

    ctx = StageContext(job)
    try:
        value = _dispatch(ctx)
        ctx.finish(value)
    except BaseException as caught:  # noqa: BLE001 - everything is reported, nothing escapes
        from mlstack_runtime.errors import StageConfigError, StageError

        from mlstack.errors import GateFailed, MlstackError
        from mlstack.local.stages.adapter import as_mlstack_error

        # the runtime's errors, whichever kind of stage raised them (built-in, function:, run:)
        setting = caught.setting if isinstance(caught, StageConfigError) else None
        e = as_mlstack_error(caught) if isinstance(caught, StageError) else caught
        stopped = isinstance(e, GateFailed)
        config = setting is not None
        report: dict[str, Any] = {
            "type": type(e).__name__,
            "message": str(e),
            "stopped": stopped,
            "config": config,
            "metrics": ctx.metrics,
        }
        if setting is not None:
            report["setting"] = setting
        if isinstance(e, MlstackError):
            report["problems"] = [{"message": p.message, "hint": p.hint} for p in e.problems]
            print(f"error: {e.render()}", flush=True)
        else:
            traceback.print_exc()
            report["traceback"] = traceback.format_exc(limit=8)
        _write_report(job["error_file"], report)
        sys.stdout.flush()
        return EXIT_STOPPED if stopped else EXIT_CONFIG if config else EXIT_FAILED
    print(f"--- done in {time.time() - started:.3f}s ---", flush=True)
    return EXIT_OK


def _dispatch(ctx: Any) -> Any:
    stage = ctx.stage
    if stage.get("function"):
        return _call_function(ctx, stage["function"])
    if stage.get("run"):
        return _run_command(ctx, stage["run"])
    from mlstack.local.stages.adapter import run_builtin

    return run_builtin(stage["kind"], ctx)


def _call_function(ctx: Any, ref: str) -> Any:
    import inspect
    from importlib import import_module

    module_name, _, attr = ref.partition(":")
    fn = getattr(import_module(module_name), attr)
    offered = {
        "ctx": ctx,
        "inputs": ctx.inputs,
        "output": ctx.output,
        "params": ctx.params,
        "upstream": ctx.upstream_values,
        "metrics": ctx.metrics,
    }
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        kwargs = offered
    else:
        kwargs = {k: v for k, v in offered.items() if k in sig.parameters}
    return fn(**kwargs)


def _run_command(ctx: Any, command: str) -> Any:
    from mlstack_runtime.command import run_command

    # an unset secret (StageConfigError) or a non-zero exit (StageError): reported as the
    # runtime's errors are, without a traceback; the command's own output is in the log
    run_command(command, ctx.environment(), Path.cwd())
    return None


def _write_report(path: str, report: dict[str, Any]) -> None:
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(report, default=str))
    os.replace(tmp, p)
