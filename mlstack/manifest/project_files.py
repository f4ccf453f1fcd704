"""What `validate` can check against the project's own files without running anything.

A spec that names a data file, a script or a module that is not there, a target or feature
column the data does not have, a gate on a metric the task never measures, or a `tune` stage
whose result nothing uses, fails later (at train time, as a bare ``KeyError``). These checks
say so at the line that names it.

What a project may read: local data paths are relative to the folder of ``mlstack.yaml`` and
must stay inside it (no absolute paths, no ``..`` that leaves it); symlinks inside the project
are followed. Data elsewhere is named by URL (``s3://…``, ``file://`` is refused the same way).
Only CSV headers are read (the first line, at most 1 MiB); Parquet and JSON columns are checked
when the data is read.
"""

from __future__ import annotations

import csv
import errno
import glob
import io
import os
import shlex
from collections.abc import Iterable
from typing import Any

from mlstack.errors import ProblemList
from mlstack.manifest.source import Source
from mlstack.manifest.suggest import did_you_mean

CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
SCRIPT_SUFFIXES = (".py", ".sh", ".r", ".R", ".jl", ".ipynb")
_HEADER_BYTES = 1024 * 1024


def check_project_files(project: Any, src: Source, problems: ProblemList, root: str) -> None:
    """Add a problem for each file, column, metric or wiring that will fail at run time."""
    columns = _check_data(project, src, problems, root)
    stages = project.pipeline.stages
    for i, st in enumerate(stages):
        where = ("pipeline", "stages", i)
        if st.run:
            _check_run(st.run, src, problems, root, where + ("run",))
        if st.function:
            _check_function(st.function, src, problems, root, where + ("function",))
        if st.uses:
            _check_settings(st, src, problems, where)
        if st.kind == "evaluate":
            _check_gates(st, stages, src, problems, where)
        if columns is not None and st.kind == "features":
            for key in ("numeric", "categorical"):
                names = st.with_.get(key)
                if isinstance(names, list):
                    for j, col in enumerate(names):
                        _check_column(col, columns, src, problems, where + ("with", key, j))
    _check_tune(stages, src, problems)


def files_read(project: Any, root: str) -> list[str]:
    """The files ``check_project_files`` looks at, for a cache of its verdict to key on."""
    out: list[str] = []
    data = project.data
    if data is not None and "://" not in data.source.removeprefix("file://"):
        path = os.path.join(root, data.source.removeprefix("file://"))
        out += sorted(glob.glob(path)) if any(c in path for c in "*?[") else [path]
        out.append(os.path.dirname(path))  # a glob's matches come and go with the folder
    for st in project.pipeline.stages:
        if st.run and any(s in st.run for s in SCRIPT_SUFFIXES):
            try:
                words = shlex.split(st.run)
            except ValueError:
                words = []
            out += [os.path.join(root, w) for w in words if w.endswith(SCRIPT_SUFFIXES)]
        if st.function:
            rel = os.path.join(root, *st.function.partition(":")[0].split("."))
            out += [rel + ".py", os.path.join(rel, "__init__.py")]
    return out


# --- data ----------------------------------------------------------------------------------------


def _check_data(project: Any, src: Source, problems: ProblemList, root: str) -> list[str] | None:
    """Check data.source; return the CSV's columns when they could be read."""
    data = project.data
    if data is None:
        return None
    source = data.source
    at = src.locate(("data", "source"))
    if "://" in source and not source.startswith("file://"):
        return None  # a remote URL: the backend reads it
    path = source.removeprefix("file://")
    if os.path.isabs(path) or _leaves(path):
        problems.add(
            f"data.source {source!r} is outside the project folder",
            at,
            "a project reads local data from inside its own folder (the one holding "
            "mlstack.yaml): copy the data there, or name remote data by URL (s3://...)",
        )
        return None
    full = os.path.join(root, path)
    files = sorted(glob.glob(full)) if any(c in path for c in "*?[") else [full]
    if not files:
        problems.add(f"data.source {source!r} matches no file", at, "create it or fix the pattern")
        return None
    for f in files:
        try:
            st = os.stat(f)
        except OSError as e:
            if e.errno == errno.ELOOP:
                problems.add(f"data.source {source!r} is a symlink loop", at, "fix the link")
            elif e.errno == errno.ENOENT:
                problems.add(
                    f"data file {path!r} not found (looked for {f})",
                    at,
                    "create it (for example with the script that prepares your data) or fix "
                    "data.source",
                )
            else:
                problems.add(f"cannot read data.source {source!r}: {e.strerror}", at)
            return None
        if not os.path.isfile(f) or not os.access(f, os.R_OK):
            problems.add(f"data.source {source!r} is not a readable file", at)
            return None
        del st
    fmt = data.format or ("csv" if path.lower().endswith(".csv") else None)
    if fmt != "csv":
        return None
    columns = _csv_header(files[0])
    if columns is None:
        return None
    if data.target is not None:
        _check_column(data.target, columns, src, problems, ("data", "target"))
    if data.split.by is not None:
        _check_column(data.split.by, columns, src, problems, ("data", "split", "by"))
    return columns


def _leaves(path: str) -> bool:
    """Whether a relative path climbs out of the folder it is relative to."""
    depth = 0
    for part in path.replace("\\", "/").split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _csv_header(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_BYTES)
    except OSError:
        return None
    line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").lstrip("\ufeff")
    if not line.strip():
        return None
    try:
        row = next(csv.reader(io.StringIO(line)))
    except (csv.Error, StopIteration):
        return None
    return [c.strip() for c in row]


def _check_column(
    name: Any, columns: list[str], src: Source, problems: ProblemList, path: tuple[Any, ...]
) -> None:
    if isinstance(name, str) and name not in columns:
        problems.add(
            f"column {name!r} is not in the data{did_you_mean(name, columns)}",
            src.locate(path),
            _names("columns", columns),
        )


def _names(what: str, names: Iterable[str], limit: int = 12) -> str:
    items = list(names)
    more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
    return f"{what}: {', '.join(items[:limit])}{more}"


# --- code ----------------------------------------------------------------------------------------


def _check_run(
    command: str, src: Source, problems: ProblemList, root: str, path: tuple[Any, ...]
) -> None:
    """Scripts named in a `run:` command (words ending in .py, .sh, ...) must exist."""
    if not any(suffix in command for suffix in SCRIPT_SUFFIXES):
        return
    try:
        words = shlex.split(command)
    except ValueError as e:
        problems.add(f"cannot split the command into words: {e}", src.locate(path))
        return
    for word in words:
        if word.startswith("-") or "=" in word or "$" in word or not word.endswith(SCRIPT_SUFFIXES):
            continue
        full = word if os.path.isabs(word) else os.path.join(root, word)
        if not os.path.isfile(full):
            problems.add(
                f"script {word!r} not found (looked for {full})",
                src.locate(path),
                "create it or fix the command",
            )


def _check_function(
    ref: str, src: Source, problems: ProblemList, root: str, path: tuple[Any, ...]
) -> None:
    """`function: pkg.mod:fn` needs pkg/mod.py in the project, or an installed top package."""
    module = ref.partition(":")[0]
    rel = os.path.join(root, *module.split("."))
    if os.path.isfile(rel + ".py") or os.path.isfile(os.path.join(rel, "__init__.py")):
        return
    import importlib.util

    top = module.split(".")[0]
    if os.path.isdir(os.path.join(root, top)):
        found = True  # a namespace package in the project; the stage says what is missing
    else:
        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
    if not found:
        problems.add(
            f"module {module!r} not found (looked for {rel}.py and installed packages)",
            src.locate(path),
            "create the module in the project folder or install its package",
        )


def _check_settings(st: Any, src: Source, problems: ProblemList, where: tuple[Any, ...]) -> None:
    """A built-in stage's ``with:`` keys, against the settings the runtime declares it reads
    (``mlstack_runtime.settings``: one table for the stage, this check and the docs). Where the
    runtime is not installed (a core-only install), the stage's job checks them when it starts."""
    try:
        from mlstack_runtime.settings import unknown
    except ImportError:
        return
    for key, message in unknown(st.kind, st.with_):
        problems.add(message, src.locate(where + ("with", key)), "see docs/reference/stages.md")


# --- gates and wiring ----------------------------------------------------------------------------


def _metrics_for(stages: list[Any]) -> tuple[str, ...]:
    """The metrics builtin/evaluate measures, narrowed by the estimator when it says which."""
    for st in stages:
        if st.kind == "train":
            estimator = str(st.with_.get("estimator") or "")
            if estimator.endswith("Regressor") or estimator.endswith("Regression"):
                if not estimator.endswith("LogisticRegression"):
                    return REGRESSION_METRICS
            if estimator.endswith("Classifier") or estimator.endswith("LogisticRegression"):
                return CLASSIFICATION_METRICS
    return CLASSIFICATION_METRICS + REGRESSION_METRICS


def _check_gates(
    st: Any, stages: list[Any], src: Source, problems: ProblemList, where: tuple[Any, ...]
) -> None:
    known = _metrics_for(stages)
    for j, gate in enumerate(st.parsed_gates()):
        for metric in (gate.metric, gate.champion_metric):
            if metric is not None and metric not in known:
                problems.add(
                    f"gate `{gate.text}`: builtin/evaluate does not measure {metric!r}"
                    f"{did_you_mean(metric, known)}",
                    src.locate(where + ("gates", j)),
                    _names("metrics here", known),
                )


def _check_tune(stages: list[Any], src: Source, problems: ProblemList) -> None:
    needs = {s.name: list(s.needs) for s in stages}
    for i, st in enumerate(stages):
        if st.kind != "tune":
            continue
        space = st.with_.get("space")
        if not space:
            problems.add(
                f"stage {st.name!r} (tune) has no search space",
                src.locate(("pipeline", "stages", i)),
                "add with: {space: {max_depth: [2, 12]}}",
            )
        trains = [s for s in stages if s.kind == "train"]
        if trains and not any(st.name in _ancestors(t.name, needs) for t in trains):
            after = [t.name for t in trains if t.name in _ancestors(st.name, needs)]
            why = f"it runs after {after[0]!r}" if after else "no train stage needs it"
            problems.add(
                f"stage {st.name!r} (tune): its best parameters are ignored, {why}",
                src.locate(("pipeline", "stages", i)),
                f"make the train stage need it: needs: [{st.name}]",
            )


def _ancestors(name: str, needs: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    todo = list(needs.get(name, []))
    while todo:
        n = todo.pop()
        if n not in out:
            out.add(n)
            todo.extend(needs.get(n, []))
    return out
