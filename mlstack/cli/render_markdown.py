"""A plan as Markdown, for a pull-request comment: `mlstack plan --format markdown`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlstack.engine.resources import is_missing

if TYPE_CHECKING:
    from mlstack.engine.plan import Plan

_ACTION = {"update": "update in place"}


def plan_markdown(p: Plan, *, saved_as: str | None = None, max_attrs: int = 40) -> str:
    lines = [f"### mlstack plan: `{p.environment}` (backend `{p.backend}`)", ""]
    lines += [f"**{p.summary()}**", ""]
    acts = p.actionable
    if acts:
        lines += ["| | resource | action | why |", "|---|---|---|---|"]
        for c in acts:
            why = "; ".join(c.reasons) or "-"
            verb = _ACTION.get(c.action.value, c.action.value)
            lines.append(f"| `{c.action.symbol}` | `{c.address}` | {verb} | {_cell(why)} |")
        lines.append("")
        for c in acts:
            body = _diff_lines(c, max_attrs)
            if not body:
                continue
            lines += [f"<details><summary><code>{c.address}</code></summary>", "", "```diff"]
            lines += body
            lines += ["```", "", "</details>", ""]
    if p.drift:
        lines += ["Changed outside mlstack:", ""]
        lines += [f"- `{c.address}`: {_cell(', '.join(c.reasons))}" for c in p.drift]
        lines.append("")
    lines += [f"> Note: {_cell(n)}" for n in p.notes]
    lineage = (p.lineage or "new")[:8]
    tail = f"State serial {p.serial}, lineage `{lineage}`."
    if saved_as:
        tail += (
            f" Saved as `{saved_as}`: `mlstack apply {saved_as}` applies exactly this plan, "
            "and refuses it if state has moved since."
        )
    lines.append(tail)
    return "\n".join(lines) + "\n"


def _diff_lines(c: Any, max_attrs: int) -> list[str]:
    out: list[str] = []
    for d in list(c.diffs)[:max_attrs]:
        if c.kind == "run" and d.path.split(".")[0] == "stages":
            continue
        if is_missing(d.before):
            out.append(f"+ {d.path} = {_v(d.after)}")
        elif is_missing(d.after):
            out.append(f"- {d.path} = {_v(d.before)}")
        else:
            out.append(f"! {d.path}: {_v(d.before)} -> {_v(d.after)}")
    if len(c.diffs) > max_attrs:
        out.append(f"# ... {len(c.diffs) - max_attrs} more attribute(s); see plan --json")
    for name, why in (c.details.get("stages") or {}).items():
        out.append(f"# stage {name}: {why}")
    return out


def _v(v: Any) -> str:
    s = json.dumps(v, sort_keys=True, default=str)
    return s if len(s) < 100 else s[:97] + "..."


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
