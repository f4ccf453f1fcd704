"""From a file on disk to a validated ``Project``, and from a project to one environment's view.

Every problem is collected and reported at once, each with file:line:column, what was expected,
and a did-you-mean where a close valid name exists.
"""

from __future__ import annotations

import gc
import os
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from mlstack.errors import Location, ProblemList, SpecError
from mlstack.manifest.dag import CycleError, toposort
from mlstack.manifest.interpolate import interpolate
from mlstack.manifest.models import SECTIONS, Environment, Project, ResolvedProject
from mlstack.manifest.project_files import check_project_files
from mlstack.manifest.source import Path, Source, parse, read_text
from mlstack.manifest.suggest import did_you_mean


class Loaded:
    """A parsed, interpolated, validated project file plus its positions."""

    def __init__(self, project: Project, source: Source, raw: dict[str, Any]) -> None:
        self.project = project
        self.source = source
        self.raw = raw

    @property
    def root(self) -> str:
        return os.path.dirname(os.path.abspath(self.source.file))


def load(
    file: str,
    cli_vars: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    checks: Callable[[Any, Source, ProblemList], None] | None = None,
    files: bool = False,
) -> Loaded:
    """Parse, interpolate and validate; ``checks`` adds problems found by layers above
    (backend settings) so that every error is reported at once; ``files`` also checks what the
    spec names on disk (data, scripts, modules, columns; see ``project_files``).

    The cyclic garbage collector is paused meanwhile: loading builds hundreds of thousands of
    acyclic objects for a large file, and each full collection walks them all again (a third
    of the CPU time of a 50,000-stage file)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(file, cli_vars, environ, checks, files)
    finally:
        if was_enabled:
            gc.enable()


def _load(
    file: str,
    cli_vars: Mapping[str, str] | None,
    environ: Mapping[str, str] | None,
    checks: Callable[[Any, Source, ProblemList], None] | None,
    files: bool,
) -> Loaded:
    text = read_text(file)
    src = parse(text, file)
    problems = ProblemList()
    if not isinstance(src.data, dict):
        raise SpecError(
            "the project file must be a mapping (key: value) at the top level",
            location=src.locate(()),
            hint="start with `project: NAME`",
        )
    variables = dict(src.data.get("vars") or {}) if isinstance(src.data.get("vars"), dict) else {}
    variables.update(cli_vars or {})
    # interpolation rebuilds every value; a file without `${` has nothing to interpolate
    raw = interpolate(src.data, (), src, variables, problems, environ) if "${" in text else src.data
    project: Project | None = None
    try:
        project = Project.model_validate(raw)
    except ValidationError as e:
        _collect(e, src, Project, problems, ())
    if project is not None:
        check_semantics(project, src, problems)
        if files and not problems:  # files are worth checking once the spec itself makes sense
            root = os.path.dirname(os.path.abspath(file))
            check_project_files(project, src, problems, root)
    if checks is not None:
        checks(raw, src, problems)
    problems.raise_if_any(SpecError)
    assert project is not None
    return Loaded(project, src, raw)


def check_semantics(project: Project, src: Source, problems: ProblemList) -> None:
    """What a schema cannot say: stage names unique, needs that exist, no cycles."""
    stages = project.pipeline.stages
    seen: dict[str, int] = {}
    for i, st in enumerate(stages):
        if st.name in seen:
            problems.add(
                f"duplicate stage name {st.name!r} (also stage #{seen[st.name] + 1})",
                src.locate(("pipeline", "stages", i, "name")),
                "stage names must be unique",
            )
        else:
            seen[st.name] = i
    unknown = 0
    for i, st in enumerate(stages):
        for j, need in enumerate(st.needs):
            if need not in seen:
                unknown += 1  # did-you-mean costs O(stages) each: only for the first ones
                dym = did_you_mean(need, seen) if unknown <= 20 else ""
                problems.add(
                    f"stage {st.name!r} needs {need!r}, which is not a stage{dym}",
                    src.locate(("pipeline", "stages", i, "needs", j)),
                    _name_list("stages", list(seen)),
                )
            elif need == st.name:
                problems.add(
                    f"stage {st.name!r} needs itself",
                    src.locate(("pipeline", "stages", i, "needs", j)),
                )
    if not problems:
        try:
            toposort({s.name: s.needs for s in stages})
        except CycleError as e:
            first = e.cycle[0]
            problems.add(
                f"the stages form a cycle: {_cycle_text(e.cycle)}",
                src.locate(("pipeline", "stages", seen.get(first, 0), "needs")),
                "remove one of these `needs` so the pipeline can start somewhere",
            )
    uses_data = any(
        s.kind in ("ingest", "validate", "split", "features", "train", "tune") for s in stages
    )
    if uses_data and project.data is None:
        problems.add(
            "built-in stages need a `data:` section (at least `source:`)",
            src.locate(("pipeline",)),
            "add data: {source: data/train.csv, target: label}",
        )
    for name, env in project.environments.items():
        if env.promote_from is not None and env.promote_from not in project.environments:
            problems.add(
                f"environment {name!r} promotes from {env.promote_from!r}, which is not an "
                f"environment{did_you_mean(env.promote_from, project.environments)}",
                src.locate(("environments", name, "promote_from")),
            )
        if env.promote_from == name:
            problems.add(
                f"environment {name!r} cannot promote from itself",
                src.locate(("environments", name, "promote_from")),
            )


def _cycle_text(cycle: list[str], limit: int = 12) -> str:
    if len(cycle) <= limit:
        return " -> ".join(cycle)
    head = " -> ".join(cycle[: limit - 1])
    return f"{head} -> … ({len(cycle) - limit:,} more) -> {cycle[-1]}"


def _name_list(what: str, names: list[str], limit: int = 12) -> str:
    """``stages: a, b, c`` for a hint, cut short so that a huge file gives a short hint."""
    if not names:
        return f"{what}: none"
    shown = ", ".join(names[:limit])
    more = f", … ({len(names) - limit:,} more)" if len(names) > limit else ""
    return f"{what}: {shown}{more}"


def resolve(loaded: Loaded, env_name: str) -> ResolvedProject:
    """The project as ``env_name`` sees it: section overrides deep-merged, defaults applied."""
    project = loaded.project
    if env_name not in project.environments:
        raise SpecError(
            f"no environment {env_name!r} in {loaded.source.file}"
            f"{did_you_mean(env_name, project.environments)}",
            location=loaded.source.locate(("environments",)),
            hint=f"environments: {', '.join(project.environments)}",
        )
    env: Environment = project.environments[env_name]
    raw_env = (loaded.raw.get("environments") or {}).get(env_name) or {}
    merged: dict[str, Any] = {}
    problems = ProblemList()
    overridden = False
    for section in SECTIONS:
        base = loaded.raw.get(section)
        override = raw_env.get(section) if isinstance(raw_env, dict) else None
        if override is not None:
            overridden = True
            merged[section] = deep_merge(base, override) if base is not None else override
        elif base is not None:
            # validated with the project already: pydantic keeps model instances as they are
            merged[section] = getattr(project, section)
    try:
        resolved = ResolvedProject.model_validate(
            {
                "project": project.project,
                "environment": env_name,
                "backend": env.backend,
                "settings": env.backend_settings(),
                "promote_from": env.promote_from,
                "approvals": env.approvals,
                "bake_time": env.bake_time,
                "promotion_gates": env.gates,
                "root": loaded.root,
                "file": loaded.source.file,
                **merged,
            }
        )
    except ValidationError as e:
        _collect(
            e,
            loaded.source,
            ResolvedProject,
            problems,
            ("environments", env_name),
            skip=("project", "environment", "backend", "settings", "root", "file"),
        )
        problems.raise_if_any(SpecError)
        raise
    if overridden:  # otherwise the sections are the project's, checked by `load`
        check_semantics_resolved(resolved, loaded.source, problems, env_name)
    problems.raise_if_any(SpecError)
    return resolved


def check_semantics_resolved(
    r: ResolvedProject, src: Source, problems: ProblemList, env: str
) -> None:
    fake = Project.model_construct(
        project=r.project,
        vars={},
        environments={},
        data=r.data,
        pipeline=r.pipeline,
        model=r.model,
        deployment=r.deployment,
        monitoring=r.monitoring,
    )
    check_semantics(fake, src, problems)


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else (lists included) is replaced by the override."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return override


# --- pydantic errors → problems with positions -------------------------------------------------


def _collect(
    err: ValidationError,
    src: Source,
    model: type[BaseModel],
    problems: ProblemList,
    prefix: Path,
    skip: tuple[str, ...] = (),
) -> None:
    for item in err.errors(include_url=False):
        loc = tuple(item["loc"])
        if loc and loc[0] in skip:
            continue
        loc = _file_path(loc)
        path = prefix + loc if prefix and loc and loc[0] in SECTIONS else loc
        location = src.locate(path) if path in src.positions else src.locate(loc)
        message, hint = _describe(item, loc, model)
        problems.add(message, location, hint)


def _file_path(loc: tuple[Any, ...]) -> Path:
    """Pydantic's loc uses field aliases already; drop union branch labels it inserts."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and (
            part.startswith("function-") or "[" in part or part in ("literal", "constrained-str")
        ):
            continue
        out.append(part)
    return tuple(out)


def _describe(item: Mapping[str, Any], loc: Path, model: type[BaseModel]) -> tuple[str, str | None]:
    kind = item["type"]
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
    msg = str(item["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        known = _fields_at(model, loc[:-1])
        hint = f"valid keys here: {', '.join(sorted(known))}" if known else None
        return f"unknown key {key!r}{did_you_mean(key, known)}", hint
    if kind == "missing":
        return f"{where}: required but missing", "add it (see `mlstack schema` for the fields)"
    if kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        choices = [c.strip().strip("'") for c in str(expected).replace(" or ", ",").split(",")]
        got = item.get("input")
        dym = did_you_mean(str(got), choices) if isinstance(got, str) else ""
        return f"{where}: {got!r} is not one of {expected}{dym}", None
    if kind == "string_pattern_mismatch":
        return (
            f"{where}: {item.get('input')!r} is not a valid name",
            "use lowercase letters, digits, - and _ (start and end with a letter or digit)",
        )
    return f"{where}: {msg}", None


def _fields_at(model: type[BaseModel], loc: Path) -> list[str]:
    """Names valid at ``loc`` in ``model`` (aliases as written in the file)."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(part, int):
            args = typing.get_args(tp)
            tp = args[0] if args else Any
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next((f for n, f in tp.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return []
            tp = field.annotation
        elif typing.get_origin(tp) in (dict, Mapping):
            tp = typing.get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [f.alias or n for n, f in tp.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else (args[0] if args else tp)
    return tp


def location_of(loaded: Loaded, path: Path) -> Location:
    return loaded.source.locate(path)
