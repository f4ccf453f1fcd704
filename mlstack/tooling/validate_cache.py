"""Remember that a project file was valid, so an unchanged file validates without pydantic.

`mlstack validate` is run by editors on save and by CI on every push; most runs see a file that
has not changed since it last passed. Importing pydantic and building the spec models costs
~110 ms of the ~180 ms a cold validate takes; a hit here costs a few stats and one hash.

The key covers everything the verdict depends on: the file's bytes, the values of every
``${env:NAME}`` it mentions, ``--var`` values, the environment asked for, the Python and mlstack
versions, the source files of the spec layer, and each installed backend's registration and
descriptor module. Anything unexpected means no cache. Only successes are stored; errors are
always computed afresh so their messages are exact.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

_ENV_REF = re.compile(r"\$\{\s*env:([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_FORMAT = 1


def _cache_path(project_file: str) -> str:
    root = os.path.dirname(os.path.abspath(project_file))
    return os.path.join(root, ".mlstack", "cache", "validate.json")


def _code_stamp() -> list[Any]:
    """mtimes and sizes of the modules that decide validity (so editing them invalidates)."""
    import mlstack

    pkg = os.path.dirname(mlstack.__file__)
    stamp: list[Any] = [mlstack.__version__, sys.version]
    for sub in ("manifest", "engine", "tooling", ""):
        folder = os.path.join(pkg, sub)
        with os.scandir(folder) as it:
            for e in sorted(it, key=lambda e: e.name):
                if e.name.endswith(".py"):
                    st = e.stat()
                    stamp.append([sub, e.name, st.st_size, st.st_mtime_ns])
    return stamp


def _plugin_stamp() -> list[Any] | None:
    """Each registered backend: its entry point and its descriptor module's size and mtime."""
    from importlib.util import find_spec

    from mlstack.engine.entry_points import scan_entry_points

    eps = scan_entry_points()
    if eps is None:
        return None
    out: list[Any] = []
    for name in sorted(eps):
        value = eps[name].value
        module = value.partition(":")[0].strip()
        top, _, rest = module.partition(".")
        spec = find_spec(top)  # a top-level lookup imports nothing
        if spec is None:
            return None
        if rest:
            locations = list(spec.submodule_search_locations or [])
            path = None
            for loc in locations:
                cand = os.path.join(loc, *rest.split(".")) + ".py"
                if os.path.isfile(cand):
                    path = cand
                    break
        else:
            path = spec.origin
        if not path or not os.path.isfile(path):
            return None
        st = os.stat(path)
        out.append([name, value, path, st.st_size, st.st_mtime_ns])
    return out


def key(project_file: str, cli_vars: Mapping[str, str], env: str | None) -> str | None:
    if not os.path.isfile(project_file):
        return None  # a FIFO or a device: no cache, and the loader says what is wrong
    try:
        with open(project_file, "rb") as fh:
            raw = fh.read(4 * 1024 * 1024)
        text = raw.decode("utf-8", errors="replace")
        refs = sorted(set(_ENV_REF.findall(text)))
        plugins = _plugin_stamp()
        if plugins is None:
            return None
        parts = [
            _FORMAT,
            hashlib.sha256(raw).hexdigest(),
            os.path.abspath(project_file),
            {r: os.environ.get(r) for r in refs},
            dict(sorted(cli_vars.items())),
            env,
            _code_stamp(),
            plugins,
        ]
    except (OSError, ValueError, ImportError):
        return None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def lookup(project_file: str, k: str | None) -> dict[str, Any] | None:
    if k is None:
        return None
    try:
        with open(_cache_path(project_file)) as fh:
            entry = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != k:
        return None
    if entry.get("files") != _file_stamps(entry.get("files") or []):
        return None  # a data file, script or module the verdict checked has changed
    result = entry.get("result")
    return result if isinstance(result, dict) else None


def _file_stamps(files: Any) -> list[list[Any]]:
    """[path, size, mtime] now, for each [path, ...] the verdict depended on (-1: absent)."""
    out: list[list[Any]] = []
    for item in files if isinstance(files, list) else []:
        p = str(item[0]) if isinstance(item, list) and item else ""
        try:
            st = os.stat(p)
            out.append([p, st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([p, -1, -1])
    return out


def store(
    project_file: str,
    k: str | None,
    result: Mapping[str, Any],
    files: Sequence[str] = (),
) -> None:
    """``files``: what the verdict read besides the spec (data, scripts, modules)."""
    if k is None:
        return
    path = _cache_path(project_file)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(
                {"key": k, "result": dict(result), "files": _file_stamps([[f] for f in files])},
                fh,
            )
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only checkout validates every time; that is all
