"""Vertex tests: the helper modules beside this file (``vertex_cli``, ``vertex_fake``) are
importable by name (pytest runs with ``--import-mode=importlib``, which adds no path)."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
