"""Backend entry points found without ``importlib.metadata``.

``importlib.metadata.entry_points`` parses every installed distribution (~25 ms in a venv with the
cloud SDKs). This module reads only the ``entry_points.txt`` files that mention our group and
imports nothing else of mlstack, so the validate cache can stamp plugins on its fast path.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import import_module
from typing import Any

ENTRY_POINT_GROUP = "mlstack.backends"


@dataclass(frozen=True)
class EntryPoint:
    name: str
    value: str

    def load(self) -> Any:
        module_name, _, attr = self.value.partition(":")
        obj: Any = import_module(module_name.strip())
        for part in attr.strip().split("."):
            obj = getattr(obj, part)
        return obj


def scan_entry_points() -> dict[str, Any] | None:
    """Entry points of our group from the ``entry_points.txt`` files that mention it."""
    out: dict[str, Any] = {}
    header = f"[{ENTRY_POINT_GROUP}]"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            path = os.path.join(entry or ".", name, "entry_points.txt")
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            if header not in text:
                continue
            section = False
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("["):
                    section = line == header
                elif section and "=" in line:
                    key, _, value = line.partition("=")
                    out.setdefault(key.strip(), EntryPoint(key.strip(), value.strip()))
    return out
