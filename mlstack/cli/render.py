"""Rendering for people: rich on a terminal, plain text when piped or NO_COLOR is set."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.resources import Action, Change, is_missing
from mlstack.errors import MlstackError

if TYPE_CHECKING:
    from mlstack.engine.plan import Plan
    from mlstack.engine.seam import Event

_console: Any = None
_err_console: Any = None


def fancy() -> bool:
    return (
        sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    )


def console(stderr: bool = False) -> Any:
    global _console, _err_console
    from rich.console import Console

    if stderr:
        if _err_console is None:
            _err_console = Console(
                stderr=True, highlight=False, no_color=bool(os.environ.get("NO_COLOR"))
            )
        return _err_console
    if _console is None:
        _console = Console(highlight=False, no_color=not fancy(), soft_wrap=True)
    return _console


def out(text: str = "", style: str | None = None) -> None:
    if fancy():
        console().print(text, style=style, markup=False)
    else:
        sys.stdout.write(text + "\n")


def info(text: str) -> None:
    sys.stderr.write(text + "\n")


def error(e: MlstackError) -> None:
    lines = e.render().splitlines()
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        c = console(stderr=True)
        for i, line in enumerate(lines):
            c.print(
                ("Error: " if i == 0 else "") + line, style="red" if i == 0 else None, markup=False
            )
    else:
        for i, line in enumerate(lines):
            sys.stderr.write(("Error: " if i == 0 else "") + line + "\n")


def human(v: Any) -> str:
    """A value as a person reads it: no Python reprs (``{'added': 6}`` → ``added 6``)."""
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {human(x)}" for k, x in v.items()) or "-"
    if isinstance(v, (list, tuple, set)):
        return ", ".join(human(x) for x in v) or "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if v is None:
        return "-"
    return str(v)


def table(
    headers: list[str], rows: list[list[str]], *, indent: int = 2, title: str | None = None
) -> None:
    """A rich table on a terminal; aligned columns of plain text when piped."""
    if fancy():
        from rich.box import SIMPLE
        from rich.table import Table

        t = Table(*headers, box=SIMPLE, title=title, title_justify="left", pad_edge=False)
        for r in rows:
            t.add_row(*r)
        console().print(t)
        return
    if title:
        out(title)
    grid = [headers, *rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(headers))]
    for r in grid:
        out(" " * indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


_STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REPLACE: "magenta",
    Action.DESTROY: "red",
}
_VERB = {
    Action.CREATE: "will be created",
    Action.UPDATE: "will be updated in-place",
    Action.REPLACE: "must be replaced",
    Action.DESTROY: "will be destroyed",
}


def plan(p: Plan, *, max_attrs: int = 40) -> None:
    if p.refresh_only:
        for note in p.notes:
            out(f"Note: {note}")
        _drift(p)
        out(p.summary(), style="bold")
        return
    acts = p.actionable
    if p.release is not None:
        release(p.release)
    if acts:
        out(f"mlstack will perform the following actions in {p.environment} (backend {p.backend}):")
        out("")
    for c in acts:
        _change(c, max_attrs)
    for note in p.notes:
        out(f"Note: {note}")
    if p.drift:
        _drift(p)
    out(p.summary(), style="bold")


def release(view: Mapping[str, Any]) -> None:
    """What a promote or rollback releases: version, digest, strategy, steps, gates, approvals."""
    op = "Promotion" if view.get("operation") == "promote" else "Rollback"
    source = (
        f"v{view['source_version']}"
        if view.get("source_env") == view.get("environment")
        else f"v{view['source_version']} of {view['source_env']}"
    )
    out(f"{op} of {view['model']} to {view['environment']}:", style="bold")
    out(f"  version:  {source}")
    out(f"  digest:   {view['digest']}")
    out(f"  endpoint: {view['endpoint']}, strategy {view['strategy']}")
    for i, step in enumerate(view.get("steps") or [], 1):
        out(f"    step {i}: {step}")
    if view.get("steps_note"):
        out(f"    ({view['steps_note']})")
    gates = view.get("gates") or {}
    if gates:
        rules = ", ".join(f"{k} {v}" for k, v in gates.items())
        out(
            f"  gates:    {rules} (judged after {view.get('min_requests')} requests; "
            f"when too few arrive: {view.get('on_inconclusive')})"
        )
    for c in view.get("checks") or []:
        out(f"  check:    {c['gate']}: {'pass' if c['passed'] else 'FAIL'} ({c['detail']})")
    if view.get("operation") == "promote" and not view.get("approvals"):
        out("  approvals: none required")
    if view.get("note"):
        out(f"  Note: {view['note']}")
    out("")


def release_done(result: Mapping[str, Any]) -> None:
    if result["operation"] == "promote":
        out(
            f"Promoted {result['model']} v{result['source_version']} ({result['source_env']}) → "
            f"v{result['version']} ({result['environment']}), digest {result['digest'][:19]}.",
            style="bold green",
        )
    else:
        out(
            f"Rolled back {result['endpoint']} in {result['environment']}: "
            f"v{result['from']} → v{result['to']}.",
            style="bold green",
        )
    if result.get("url"):
        out(f"endpoint: {result['url']}")


def _change(c: Change, max_attrs: int) -> None:
    sym = c.action.symbol
    style = _STYLE.get(c.action)
    out(f"  # {c.address} {_VERB[c.action]}", style="bold")
    for r in c.reasons:
        out(f"  #   ({r})")
    out(f"  {sym} {c.address}", style=style)
    shown = 0
    for d in c.diffs:
        if shown >= max_attrs:
            out(f"      ... {len(c.diffs) - shown} more attribute(s); see plan --json")
            break
        shown += 1
        if c.kind == "run" and d.path.split(".")[0] == "stages":
            continue
        if is_missing(d.before):
            out(f"      + {d.path} = {_v(d.after)}", style="green")
        elif is_missing(d.after):
            out(f"      - {d.path} = {_v(d.before)}", style="red")
        else:
            out(f"      ~ {d.path}: {_v(d.before)} → {_v(d.after)}", style="yellow")
    stages: Mapping[str, str] = c.details.get("stages") or {}
    if stages:
        total = len(c.after.get("stages", {})) if c.after else len(stages)
        out(f"      stages to run ({len(stages)} of {total}; the rest are cached):")
        for i, (name, why) in enumerate(stages.items()):
            if i >= max_attrs:
                out(f"        ... {len(stages) - i} more")
                break
            out(f"        > {name}: {why}")
    out("")


def _drift(p: Plan) -> None:
    for c in p.drift:
        out(f"  ! {c.address}: {', '.join(c.reasons)}", style="yellow")
        for d in c.diffs:
            out(f"      ~ {d.path}: {_v(d.before)} → {_v(d.after)}")


def _v(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v) if len(v) < 80 else json.dumps(v[:77] + "...")
    if isinstance(v, (dict, list)):
        s = json.dumps(v, sort_keys=True, default=str)
        return s if len(s) < 100 else s[:97] + "..."
    return json.dumps(v, default=str)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


class Progress:
    """Events from the engine and backends as one line each (a spinner on a terminal)."""

    def __init__(self) -> None:
        self.status: Any = None
        if fancy():
            self.status = console().status("working...")
            self.status.start()

    def __call__(self, event: Any) -> None:
        line = event_line(event)
        if line is None:
            return
        if self.status is not None:
            console().print(line, markup=False, highlight=False)
            self.status.update(line)
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


class LazyProgress:
    """A ``Progress`` started by the first event (so after any prompt), or nothing when
    ``quiet`` (``--json``); ``stop`` is safe whether or not one started."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Progress | None = None

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        if self.bar is None:
            self.bar = Progress()
        self.bar(event)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _plain(e: Event) -> str:
    return f"  {e.subject}: {e.message}" if e.message else f"  {e.subject}: {e.kind.split('.')[-1]}"


def _warning(e: Event) -> str:
    return f"  {e.subject}: warning: {e.message}"


def _held(e: Event) -> str:
    return f"  {e.subject}: HELD: {e.message}"


def _start(e: Event) -> str:
    return f"{e.subject}: {_ING.get(e.message, e.message)}..."


def _done(e: Event) -> str:
    return f"{e.subject}: {e.message} complete after {e.data.get('seconds', 0.0):.1f}s"


def _failed(e: Event) -> str:
    return f"{e.subject}: failed"


def _quiet(e: Event) -> None:
    return None  # shown elsewhere (status polling: the next event says where it ended)


# One renderer per event kind the engine and backends emit (mlstack.engine.seam.EventKind);
# tests/unit/cli/test_event_rendering.py fails when a kind is missing here.
EVENT_LINES: dict[str, Callable[[Event], str | None]] = {
    "resource.start": _start,
    "resource.done": _done,
    "resource.failed": _failed,
    "stage.start": _plain,
    "stage.done": _plain,
    "stage.cached": _plain,
    "stage.failed": _plain,
    "stage.cancelled": _plain,
    "stage.retry": _plain,
    "run.started": _plain,
    "run.done": _plain,
    "pipeline.created": _plain,
    "pipeline.updated": _plain,
    "model.registered": _plain,
    "model.imported": _plain,
    "model.alias": _plain,
    "endpoint.created": _plain,
    "endpoint.updated": _plain,
    "endpoint.weights": _plain,
    "endpoint.unchanged": _plain,
    "endpoint.status": _quiet,
    "rollout.step": _plain,
    "rollout.warning": _warning,
    "rollout.held": _held,
    "rollout.rollback": _plain,
    "rollout.done": _plain,
    "destroyed": _plain,
    "log": _plain,
    "interrupt": _plain,
}


def event_line(event: Event) -> str | None:
    """The line a person sees for an event (None: deliberately not shown)."""
    render = EVENT_LINES.get(event.kind)
    if render is None:  # a kind added to the engine without a renderer: still say it
        return f"  {event.subject}: {event.kind}: {event.message}"
    return render(event)


_ING = {
    "create": "creating",
    "update": "modifying",
    "replace": "replacing",
    "destroy": "destroying",
}
