"""Compiled pipeline definitions (and image URIs) kept under ``<workdir>/cache/``.

Compiling imports the SageMaker SDK, which takes seconds; an unchanged spec should plan at once.
A definition is reused when the digest of everything ``pipeline_definition.build`` reads is
unchanged: the resolved ``pipeline``/``data``/``model`` sections, the project and environment
names, the backend's settings, the stages' code and the runtime script, the compiler's own source,
and the versions of mlstack_sagemaker and the SDK. One file per environment, replaced atomically,
so the cache never grows and a torn write is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from mlstack.manifest.models import ResolvedProject
from mlstack_sagemaker import pipeline_definition as pdef
from mlstack_sagemaker.plugin import SageMakerConfig

FORMAT = 1


@cache
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("mlstack-sagemaker", "sagemaker", "sagemaker-core"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "none"
    return out


def compile_key(project: ResolvedProject, config: SageMakerConfig) -> str:
    """sha256 over every input of ``pipeline_definition.build``."""
    inputs = {
        "format": FORMAT,
        "project": project.project,
        "environment": project.environment,
        "pipeline": project.pipeline.model_dump(mode="json", by_alias=True),
        "data": project.data.model_dump(mode="json", by_alias=True) if project.data else None,
        "model": project.model.model_dump(mode="json", by_alias=True) if project.model else None,
        "config": config.model_dump(mode="json"),
        "code": pdef.code_digest(project),
        "compiler": hashlib.sha256(Path(pdef.__file__).read_bytes()).hexdigest(),
        "versions": _versions(),
    }
    raw = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def _write_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or unreadable: compile afresh
    return data if isinstance(data, dict) else None


def cached_definition(
    workdir: Path,
    project: ResolvedProject,
    config: SageMakerConfig,
    build: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """(definition, True if it came from the cache); ``build`` runs only on a miss."""
    path = workdir / "cache" / f"sagemaker-pipeline-{project.environment}.json"
    key = compile_key(project, config)
    entry = _read(path)
    if entry is not None and entry.get("key") == key and isinstance(entry.get("definition"), dict):
        return entry["definition"], True
    definition = build()
    try:
        _write_atomic(path, {"key": key, "definition": definition})
    except OSError:
        pass  # a read-only project still compiles, just every time
    return definition, False


def cached_image(workdir: Path, lookup: tuple[str, ...], retrieve: Callable[[], str]) -> str:
    """An image URI from ``image_uris.retrieve`` (an SDK import), remembered per lookup."""
    path = workdir / "cache" / "sagemaker-images.json"
    entries = _read(path) or {}
    key = "|".join(lookup)
    if isinstance(entries.get(key), str):
        return str(entries[key])
    uri = retrieve()
    try:
        _write_atomic(path, {**entries, key: uri})
    except OSError:
        pass
    return uri
