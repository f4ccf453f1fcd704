"""What a stage sees, on any platform: its settings, its upstream outputs, where to write.

The settings file (``--spec``) is JSON::

    {"format": "mlstack-stage/1",
     "stage": {"name": ..., "kind"|"uses": ..., "with": {...}, "gates": [...]},
     "data": {... the project's data: section ...},
     "pipeline": {"stages": [...]},          # to find the train stage a tune stage feeds
     "model": {"name": ...},
     "inputs": ["split", "validate", ...]}   # upstream stage names, nearest first (ancestors)

Upstream outputs arrive as directories named after their stage. A training job's output may
arrive as ``model.tar.gz`` (SageMaker uploads a model directory that way); it is unpacked once.
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from mlstack_runtime.errors import StageError


def kind_of(stage: dict[str, Any]) -> str:
    if stage.get("kind"):
        return str(stage["kind"])
    uses = stage.get("uses")
    if uses:
        return str(uses).split("/", 1)[-1]
    return "command" if stage.get("run") else "function"


def ancestors(stages: Sequence[Mapping[str, Any]], name: str) -> list[str]:
    """Every stage ``name`` depends on, nearest first: breadth-first along ``needs`` (in the
    order each stage lists them). ``Job.find`` looks through upstream outputs in this order, so
    every platform (the local runner, each cloud backend) must list a job's inputs by it."""
    needs = {str(s["name"]): [str(n) for n in s.get("needs") or []] for s in stages}
    out: list[str] = []
    frontier = list(needs[name])
    while frontier:
        n = frontier.pop(0)
        if n not in out:
            out.append(n)
            frontier.extend(needs[n])
    return out


def normalise_data(data: Optional[dict[str, Any]]) -> dict[str, Any]:
    """``data:`` as either dump of the spec model (by alias or by field name) -> one shape."""
    out = dict(data or {})
    if "_table" in out and not out.get("table"):
        out["table"] = out.pop("_table")
    exps = {}
    for column, rule in (out.get("expectations") or {}).items():
        rule = dict(rule or {})
        if "in_" in rule and rule.get("in") is None:
            rule["in"] = rule.pop("in_")
        exps[column] = rule
    out["expectations"] = exps
    return out


def _check_members(archive: Path, tar: tarfile.TarFile, target: Path) -> None:
    """Only plain files and folders inside ``target``: checked here, not left to
    ``tarfile.data_filter`` (which Pythons before 3.9.17 / 3.11.4 lack)."""
    root = os.path.realpath(target)
    for member in tar.getmembers():
        if not (member.isfile() or member.isdir()):
            what = "a link" if member.issym() or member.islnk() else "not a file or folder"
            raise StageError(
                f"{archive}: member {member.name!r} is {what}; a model archive holds only "
                "files and folders",
                hint="write the model's files into the output folder themselves, not links",
            )
        dest = os.path.realpath(os.path.join(root, member.name))
        if os.path.commonpath([root, dest]) != root:
            raise StageError(
                f"{archive}: member {member.name!r} leaves the archive",
                hint="an archive's members are relative paths inside it",
            )


class Job:
    def __init__(
        self,
        settings: dict[str, Any],
        output: Path,
        inputs: Sequence[tuple[str, Path]] = (),
        data_dir: Optional[Path] = None,
        project_root: Optional[Path] = None,
    ) -> None:
        self.settings = settings
        self.stage: dict[str, Any] = dict(settings.get("stage") or {})
        self.name = str(self.stage.get("name") or "stage")
        self.kind = kind_of(self.stage)
        self.params: dict[str, Any] = dict(self.stage.get("with") or {})
        self.data = normalise_data(settings.get("data"))
        self.pipeline: dict[str, Any] = dict(settings.get("pipeline") or {})
        self.model_spec: dict[str, Any] = dict(settings.get("model") or {})
        self.output = Path(output)
        self.inputs: list[tuple[str, Path]] = [(n, Path(p)) for n, p in inputs]
        self.data_dir = data_dir
        self.project_root = project_root
        self.metrics: dict[str, float] = {}
        self._unpacked: dict[str, Path] = {}

    # --- upstream outputs ------------------------------------------------------------------
    def _dirs(self, name: str, path: Path) -> list[Path]:
        archive = path / "model.tar.gz"
        if not archive.is_file():
            return [path]
        if name not in self._unpacked:
            target = Path(tempfile.mkdtemp(prefix=f"mlstack-{name}-"))
            with tarfile.open(archive, "r:gz") as tar:
                _check_members(archive, tar, target)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(target, filter="data")
                else:  # pragma: no cover - Pythons without extraction filters
                    tar.extractall(target)
            self._unpacked[name] = target
        return [path, self._unpacked[name]]

    def find(self, filename: str) -> Optional[Path]:
        """``filename`` in the nearest upstream output that has it (e.g. train.parquet)."""
        for name, path in self.inputs:
            for d in self._dirs(name, path):
                if (d / filename).is_file():
                    return d / filename
        return None

    def find_all(self, filename: str) -> list[Path]:
        """``filename`` in every upstream output that has it, nearest first."""
        return [
            d / filename
            for name, path in self.inputs
            for d in self._dirs(name, path)
            if (d / filename).is_file()
        ]

    def require(self, filename: str, produced_by: str) -> Path:
        found = self.find(filename)
        if found is None:
            raise StageError(
                f"stage {self.name!r} needs {filename}, which no earlier stage produced",
                hint=f"add a {produced_by} stage before it and list it under `needs:`",
            )
        return found

    def input_dir(self, filename: str) -> Optional[str]:
        """The name of the upstream stage whose output holds ``filename``."""
        for name, path in self.inputs:
            for d in self._dirs(name, path):
                if (d / filename).is_file():
                    return name
        return None

    # --- settings --------------------------------------------------------------------------
    def setting(self, key: str, default: Any = None) -> Any:
        """``with: KEY`` of this stage, as ``dict.get``. A built-in stage reads only the keys
        ``mlstack_runtime.settings`` declares for it (they are validated and documented there);
        reading another is a bug, reported as one."""
        from mlstack_runtime.settings import STAGES, keys

        if self.kind in STAGES and key not in keys(self.kind):
            raise RuntimeError(
                f"builtin/{self.kind} reads `with: {key}`, which mlstack_runtime.settings does "
                "not declare for it: declare it there"
            )
        return self.params.get(key, default)

    def target(self) -> str:
        target = self.data.get("target") or self.setting("target")
        if not target:
            raise StageError(
                f"stage {self.name!r} needs to know the target column",
                hint="set data.target in mlstack.yaml",
            )
        return str(target)

    def following(self, kind: str) -> dict[str, Any]:
        """The first stage of ``kind`` that depends on this one (e.g. the train a tune feeds)."""
        stages = list(self.pipeline.get("stages") or [])
        needs = {s["name"]: list(s.get("needs") or []) for s in stages}
        for s in stages:
            if kind_of(s) != kind:
                continue
            seen: set[str] = set()
            todo = list(needs.get(s["name"], []))
            while todo:
                n = todo.pop()
                if n not in seen:
                    seen.add(n)
                    todo.extend(needs.get(n, []))
            if self.name in seen:
                return dict(s)
        return {}
