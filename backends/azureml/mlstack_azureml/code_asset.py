"""The one code asset mlstack gives Azure ML: the shared stage runtime (``mlstack_runtime``)
and the scoring script (``score.py``), at the folder's root.

Pipeline steps run ``python -m mlstack_runtime ...`` in it (Azure ML starts a command job in its
code folder); managed online deployments load ``score.py`` from it. The curated scikit-learn
environment has pandas, scikit-learn and joblib but not mlstack, so the runtime travels as code,
not as a package. Its version is a digest of the files, so an unchanged runtime is uploaded once
and a changed one gets a new version (code versions are immutable).
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path

from mlstack.engine.digest import tree_digest

NAME = "mlstack-code"
RUNTIME = "mlstack_runtime"
SCORING_SCRIPT = "score.py"


@cache
def files() -> dict[str, bytes]:
    """``{relative path: bytes}`` of the code folder (empty when the runtime is missing)."""
    spec = find_spec(RUNTIME)
    if spec is None or not spec.submodule_search_locations:
        return {}
    root = Path(next(iter(spec.submodule_search_locations)))
    out = {
        f"{RUNTIME}/{p.relative_to(root).as_posix()}": p.read_bytes() for p in root.rglob("*.py")
    }
    out[SCORING_SCRIPT] = (Path(__file__).parent / SCORING_SCRIPT).read_bytes()
    return dict(sorted(out.items()))


def version() -> str:
    found = files()
    return tree_digest(found).removeprefix("sha256:")[:16] if found else "missing"


def arm_id(workspace_id: str) -> str:
    return f"{workspace_id}/codes/{NAME}/versions/{version()}"
