"""The local model registry's index: versions, digests, metrics, aliases and lineage per model.

Kept as one JSON file per environment (``envs/<env>/registry.json``, written atomically) so
that listing versions, reading the champion's metrics for a gate or answering `mlstack models`
never pays MLflow's start-up. MLflow holds the same versions (written through by
``tracking.py``) for its UI; version numbers are MLflow's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlstack.local.store import atomic_write_json


def env_dir(workdir: str | Path, env: str) -> Path:
    return Path(workdir) / "envs" / env


class Registry:
    def __init__(
        self, workdir: str | Path, env: str, on_save: Callable[[], None] | None = None
    ) -> None:
        self.path = env_dir(workdir, env) / "registry.json"
        self.on_save = on_save  # e.g. copy the index to the `artifacts:` URL

    def load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            data = {}
        data.setdefault("models", {})
        return data

    def _save(self, data: dict[str, Any]) -> None:
        atomic_write_json(self.path, data)
        if self.on_save is not None:
            self.on_save()

    def model(self, name: str) -> dict[str, Any]:
        m: dict[str, Any] = self.load()["models"].get(name) or {"versions": [], "aliases": {}}
        return m

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Newest first, each with the aliases that point at it."""
        m = self.model(name)
        by_version: dict[str, list[str]] = {}
        for alias, v in sorted(m["aliases"].items()):
            by_version.setdefault(str(v), []).append(alias)
        out = [{**v, "aliases": by_version.get(str(v["version"]), [])} for v in m["versions"]]
        return sorted(out, key=lambda v: int(v["version"]), reverse=True)

    def find(
        self,
        name: str,
        *,
        digest: str | None = None,
        run_id: str | None = None,
        version: str | None = None,
    ) -> dict[str, Any] | None:
        for v in self.versions(name):
            if version is not None and str(v["version"]) != str(version):
                continue
            if digest is not None and v["digest"] != digest:
                continue
            if run_id is not None and v.get("run_id") != run_id:
                continue
            return v
        return None

    def next_version(self, name: str) -> str:
        vs = self.model(name)["versions"]
        return str(max((int(v["version"]) for v in vs), default=0) + 1)

    def add(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        data = self.load()
        m = data["models"].setdefault(name, {"versions": [], "aliases": {}})
        rec = {"created": time.time(), **record}
        m["versions"] = [v for v in m["versions"] if str(v["version"]) != str(rec["version"])]
        m["versions"].append(rec)
        self._save(data)
        return rec

    def set_alias(self, name: str, alias: str, version: str) -> None:
        data = self.load()
        m = data["models"].setdefault(name, {"versions": [], "aliases": {}})
        m["aliases"][alias] = str(version)
        self._save(data)

    def alias(self, name: str, alias: str) -> dict[str, Any] | None:
        v = self.model(name)["aliases"].get(alias)
        return None if v is None else self.find(name, version=v)

    def remove_model(self, name: str) -> None:
        data = self.load()
        if data["models"].pop(name, None) is not None:
            self._save(data)
