"""The desired resource graph of one environment, built from its resolved spec.

Everything here is pure and cheap (no platform calls) so that a no-op plan is near-instant: the
only I/O is hashing data and code files, and those digests are cached by size and mtime.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlstack.engine import address
from mlstack.engine.backend import Backend, CompiledPipeline
from mlstack.engine.digest import digest, file_digest
from mlstack.engine.release_state import Release
from mlstack.engine.resources import Resource
from mlstack.errors import SpecError
from mlstack.manifest.dag import toposort
from mlstack.manifest.models import ResolvedProject, Stage
from mlstack.manifest.strategies import params_of

# Which parts of `data:` each built-in stage's result depends on.
_DATA_FIELDS: dict[str, tuple[str, ...]] = {
    "ingest": ("source", "format"),
    "validate": ("expectations", "table"),
    "split": ("split", "target"),
    "features": ("target",),
    "train": ("target",),
    "tune": ("target", "split"),
    "evaluate": ("target",),
    "register": (),
}


@dataclass
class DesiredGraph:
    resources: dict[str, Resource]
    compiled: CompiledPipeline | None
    stage_needs: dict[str, list[str]] = field(default_factory=dict)
    release: Release | None = None  # what the environment serves, when it was promoted/pinned

    def order(self) -> list[str]:
        return toposort(
            {a: [d for d in r.depends_on if d in self.resources] for a, r in self.resources.items()}
        )


class DigestCache:
    """File digests keyed by path, reused while size and mtime are unchanged."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.dirty = False
        try:
            self.data = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def file(self, p: str) -> str:
        before = self.data.get(p)
        d = file_digest(p, self.data)
        if self.data.get(p) != before:
            self.dirty = True
        return d

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)
        self.dirty = False


def build(
    project: ResolvedProject,
    backend: Backend,
    cache: DigestCache,
    release: Release | None = None,
) -> DesiredGraph:
    """The environment's resources. ``release`` is its recorded (or proposed) release: what a
    promoted environment serves, or a rollback's pin in an environment that trains."""
    be = backend.name
    resources: dict[str, Resource] = {}
    infra_addr = address.infra(project.environment)
    resources[infra_addr] = Resource(
        infra_addr,
        "infra",
        {"backend": be, **dict(backend.infrastructure())},
        replace_on=("backend",),
    )

    compiled: CompiledPipeline | None = None
    needs: dict[str, list[str]] = {}
    model_source: str | None = None
    trains_here = project.promote_from is None and bool(project.pipeline.stages)
    if trains_here:
        data_addr = None
        data_digest = None
        if project.data is not None:
            data_addr = address.dataset(project.project)
            data_inputs = dataset_inputs(project, cache)
            data_digest = data_inputs["digest"]
            resources[data_addr] = Resource(
                data_addr, "dataset", {"backend": be, **data_inputs}, replace_on=("backend",)
            )
        compiled = backend.compile()
        pipe_addr = address.pipeline(project.project)
        resources[pipe_addr] = Resource(
            pipe_addr,
            "pipeline",
            {
                "backend": be,
                "format": compiled.format,
                "digest": compiled.digest,
                "steps": len(compiled.steps),
            },
            depends_on=(infra_addr,),
            replace_on=("backend",),
        )
        stages, needs = stage_keys(project, cache, data_digest)
        run_inputs = {"backend": be, "data_digest": data_digest, "stages": stages}
        run_addr = address.run(project.project)
        resources[run_addr] = Resource(
            run_addr,
            "run",
            run_inputs,
            depends_on=tuple(a for a in (pipe_addr, data_addr) if a),
            replace_on=("backend",),
        )
        model_source = digest({k: v["key"] for k, v in stages.items()})
        if project.model is not None:
            addr = address.model(project.model.name)
            resources[addr] = Resource(
                addr,
                "model",
                {
                    "backend": be,
                    "name": project.model.name,
                    "aliases": list(project.model.registration.aliases),
                    "source": model_source,
                },
                depends_on=(run_addr,),
                replace_on=("backend", "name"),
            )
    if release is not None and (project.model is None or release.model != project.model.name):
        release = None  # the spec no longer names that model: nothing of it is wanted
    if release is not None and not trains_here:
        assert project.model is not None
        addr = address.model(project.model.name)
        resources[addr] = Resource(
            addr,
            "model",
            {
                "backend": be,
                "name": project.model.name,
                "promoted_from": release.source_env,
                "source_version": release.source_version,
                "digest": release.digest,
            },
            depends_on=(infra_addr,),
            replace_on=("backend", "name"),
        )
    pinned = (
        release is not None
        and trains_here
        and release.source_env == project.environment
        and release.pinned_source == model_source
    )
    if trains_here and not pinned:
        release = None  # the pin ended: the pipeline trains a new model now
    if project.deployment is not None and project.model is not None and (trains_here or release):
        d = project.deployment
        strategy_params = params_of(d)
        ep_inputs: dict[str, Any] = {
            "backend": be,
            "endpoint": d.endpoint,
            "model": project.model.name,
            "strategy": d.strategy,
            "strategy_params": strategy_params.model_dump() if strategy_params is not None else {},
            "gates": dict(d.gates),
            "on_inconclusive": d.on_inconclusive,
            "replicas": d.resources.replicas,
            "instance_type": d.resources.instance_type,
        }
        if d.batching is not None:  # absent when off: plans of specs without it do not change
            ep_inputs["batching"] = d.batching.model_dump()
        if project.monitoring is not None:
            ep_inputs["sample_rate"] = project.monitoring.sample_rate  # the router's request log
        if model_source is not None:
            ep_inputs["source"] = model_source
        if release is not None:
            ep_inputs["release"] = release.inputs()
        addr = address.endpoint(d.endpoint)
        deps = (infra_addr, address.model(project.model.name))
        resources[addr] = Resource(
            addr, "endpoint", ep_inputs, depends_on=deps, replace_on=("backend", "endpoint")
        )
    return DesiredGraph(resources, compiled, needs, release)


def dataset_inputs(project: ResolvedProject, cache: DigestCache) -> dict[str, Any]:
    assert project.data is not None
    source = project.data.source
    if "://" in source:
        return {
            "source": source,
            "format": project.data.format,
            "digest": _remote_digest(source),
            "size": None,
        }
    path = source if os.path.isabs(source) else os.path.join(project.root, source)
    files = sorted(glob.glob(path)) if any(c in source for c in "*?[") else [path]
    if not files or not all(os.path.isfile(f) for f in files):
        raise SpecError(
            f"data source {source!r} not found (looked for {path})",
            hint="create the file, fix data.source, or run the example's "
            "prepare step (e.g. python prepare_data.py)",
        )
    digests = [cache.file(f) for f in files]
    size = sum(os.path.getsize(f) for f in files)
    d = digests[0] if len(files) == 1 else digest(digests)
    return {"source": source, "format": project.data.format, "digest": d, "size": size}


def _remote_digest(url: str) -> str:
    try:
        import fsspec  # optional; only for remote sources

        fs, p = fsspec.core.url_to_fs(url)
        info = fs.info(p)
    except Exception:  # noqa: BLE001 - offline or no driver: the digest is unknown, say so
        return f"unknown:{url}"
    keep = {k: info.get(k) for k in ("ETag", "etag", "md5Hash", "size", "mtime", "LastModified")}
    return digest(keep)


def stage_keys(
    project: ResolvedProject, cache: DigestCache, data_digest: str | None
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Each stage's cache key and the parts it is made of (for `plan` to say why it reruns)."""
    stages = {s.name: s for s in project.pipeline.stages}
    needs = {s.name: list(s.needs) for s in project.pipeline.stages}
    data = project.data.model_dump(by_alias=False) if project.data else {}
    out: dict[str, dict[str, Any]] = {}
    for name in toposort(needs):
        st = stages[name]
        definition = digest(_definition(st))
        code = code_digests(st, project.root, cache)
        data_part: Any = None
        if st.kind in _DATA_FIELDS:
            data_part = {k: data.get(k) for k in _DATA_FIELDS[st.kind]}
            if st.kind == "ingest":
                data_part["digest"] = data_digest
            if st.kind == "register" and project.model is not None:
                data_part = {"model": project.model.name}
            data_part = digest(data_part)
        upstream = {n: out[n]["key"] for n in st.needs}
        key = digest([definition, st.with_, code, data_part, upstream])
        out[name] = {
            "key": key,
            "kind": st.kind,
            "definition": definition,
            "params": st.with_,
            "code": code,
            "data": data_part,
            "needs": list(st.needs),
        }
    return out, needs


def _definition(st: Stage) -> dict[str, Any]:
    return {
        "kind": st.kind,
        "run": st.run,
        "function": st.function,
        "env": st.env,
        "gates": st.gates,
    }


def code_digests(st: Stage, root: str, cache: DigestCache) -> dict[str, str]:
    files: list[str] = []
    if st.run:
        try:
            tokens = shlex.split(st.run)
        except ValueError:
            tokens = st.run.split()
        files += [t for t in tokens if os.path.isfile(os.path.join(root, t))]
    if st.function:
        mod = st.function.split(":")[0].replace(".", "/")
        for cand in (f"{mod}.py", f"{mod}/__init__.py"):
            if os.path.isfile(os.path.join(root, cand)):
                files.append(cand)
    for pattern in st.code:
        files += sorted(
            os.path.relpath(p, root)
            for p in glob.glob(os.path.join(root, pattern), recursive=True)
            if os.path.isfile(p)
        )
    return {f: cache.file(os.path.join(root, f)) for f in dict.fromkeys(files)}


def stage_reasons(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, str]:
    """Which stages will run and why, comparing recorded stage keys with desired ones."""
    prev: Mapping[str, Any] = (before or {}).get("stages") or {}
    reasons: dict[str, str] = {}
    for name, cur in after["stages"].items():  # already in dependency order
        old = prev.get(name)
        if old is None:
            reasons[name] = "new stage" if prev else "no previous run"
            continue
        if old.get("key") == cur["key"]:
            continue
        why: list[str] = []
        if old.get("definition") != cur["definition"]:
            why.append("definition changed")
        for d in _param_changes(old.get("params") or {}, cur["params"] or {}):
            why.append(d)
        old_code, new_code = old.get("code") or {}, cur["code"] or {}
        for f in sorted(set(old_code) | set(new_code)):
            if old_code.get(f) != new_code.get(f):
                why.append(f"code of {f} changed")
        if old.get("data") != cur["data"]:
            why.append(
                "data digest changed" if cur.get("kind") == "ingest" else "data settings changed"
            )
        ups = [n for n in cur.get("needs", []) if n in reasons]
        if ups:
            why.append(f"upstream {', '.join(ups)} reruns")
        reasons[name] = "; ".join(why) or "inputs changed"
    return reasons


def _param_changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k in sorted(set(old) | set(new), key=str):
        p = f"{prefix}.{k}" if prefix else str(k)
        a, b = old.get(k, "(none)"), new.get(k, "(none)")
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += _param_changes(a, b, p)
        elif a != b:
            out.append(f"{p} {_fmt(a)} → {_fmt(b)}")
    return out


def _fmt(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)
