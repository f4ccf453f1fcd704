"""Every kind of event the engine and the backends emit is enumerated once
(``mlstack.engine.seam.EventKind``) and has a renderer in the CLI: rollout judgement is never
silent because an event kind fell through the renderer's list."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args

from mlstack.cli import render
from mlstack.engine.seam import Event, EventKind

REPO = Path(__file__).resolve().parents[3]
KINDS = set(get_args(EventKind))


def _emitted_kinds() -> dict[str, str]:
    """kind -> file:line of every ``Event("kind", ...)`` with a literal kind in the sources."""
    found: dict[str, str] = {}
    for root in (REPO / "mlstack", REPO / "backends"):
        for path in root.rglob("*.py"):
            if "tests" in path.parts or "build" in path.parts:  # build/: setuptools output
                continue
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "Event"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    found.setdefault(node.args[0].value, f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_enumerated_kind_has_a_renderer() -> None:
    assert set(render.EVENT_LINES) == KINDS


def test_every_emitted_kind_is_enumerated() -> None:
    emitted = _emitted_kinds()
    assert len(emitted) > 10  # the scan sees the sources
    unknown = {k: where for k, where in emitted.items() if k not in KINDS}
    assert unknown == {}


def test_rollout_judgement_events_are_shown_with_their_reason() -> None:
    for kind in ("rollout.warning", "rollout.held", "rollout.rollback", "rollout.done"):
        line = render.event_line(Event(kind, "endpoint.web", "fewer than 20 requests"))  # type: ignore[arg-type]
        assert line is not None and "fewer than 20 requests" in line, kind
    held = render.event_line(Event("rollout.held", "web", "canary 10%: 3 of 20 requests"))
    assert held is not None and "HELD" in held
