"""Saved plans: `plan -out FILE`, then `apply FILE` applies exactly that plan or refuses."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mlstack.engine.plan import Plan
from mlstack.errors import StateError

FORMAT = "mlstack-plan/1"


def save(
    plan: Plan,
    path: Path,
    *,
    project_file: str,
    variables: dict[str, str],
    options: dict[str, Any] | None = None,
) -> None:
    body = {
        "format": FORMAT,
        "project_file": os.path.abspath(project_file),
        "variables": variables,
        "options": options or {},
        "plan": plan.to_json(),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise StateError(
            f"plan file {path} not found", hint="create one with plan -out FILE"
        ) from None
    except (OSError, ValueError) as e:
        raise StateError(
            f"plan file {path} is unreadable: {e}", hint="make it again with plan -out FILE"
        ) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise StateError(f"{path} is not an mlstack plan file", hint="plan -out FILE makes one")
    return body


def check_still_valid(saved: dict[str, Any], fresh: Plan) -> None:
    """Refuse a saved plan when state, the spec or the platform moved since it was made."""
    p = saved["plan"]
    if p["serial"] != fresh.serial or p["lineage"] != fresh.lineage:
        raise StateError(
            f"the saved plan is stale: state changed since it was made "
            f"(serial {p['serial']} → {fresh.serial})",
            hint="run plan -out FILE again and apply the new file",
        )
    if p["graph_digest"] != fresh.graph_digest:
        raise StateError(
            "the saved plan is stale: the project file or its data changed since it was made",
            hint="run plan -out FILE again and apply the new file",
        )
    saved_actions = [(c["address"], c["action"]) for c in p["resource_changes"]]
    fresh_actions = [(c.address, c.action.value) for c in fresh.actionable]
    if saved_actions != fresh_actions:
        raise StateError(
            "the saved plan is stale: what exists on the platform changed since it was made "
            f"(saved: {len(saved_actions)} change(s), now: {len(fresh_actions)})",
            hint="run plan -out FILE again and apply the new file",
        )
