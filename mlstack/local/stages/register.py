"""builtin/register: marks the point after which the model may be registered.

The registration itself happens when the engine applies ``model.<name>`` (the backend's
``register``), so that a run that stopped at a gate never reaches the registry. This stage
records which model artifact and metrics are to be registered.
"""

from __future__ import annotations

import json
from typing import Any

from mlstack.local.stages.common import MODEL_META


def run(ctx: Any) -> dict[str, Any]:
    meta_path = ctx.require(MODEL_META, "builtin/train")
    metrics: dict[str, float] = {}
    for _name, path in ctx.ancestors:
        m = path / "metrics.json"
        if m.exists():
            metrics.update(json.loads(m.read_text()))
    info = {
        "model_dir": str(meta_path.parent),
        "model": ctx.model_spec.get("name"),
        "metrics": metrics,
    }
    print(f"model ready for registration: {info['model']} ({meta_path.parent.name[:12]})")
    return info
