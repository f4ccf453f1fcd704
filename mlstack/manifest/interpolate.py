"""``${env:NAME}``, ``${var.name}`` and ``${secret:NAME}`` in string values.

Secrets are never resolved here: the reference stays in the spec (and so in digests, state and
plan output) and the backend resolves it at the moment of use through ``Context.secret``.
The same holds for ``${env:NAME}`` inside a stage's ``env:`` (what a stage's process receives
is often a token): it is checked to be set, kept as a reference, and resolved by
``mlstack_runtime.command.resolve_at_use`` in the stage's process, so its value never reaches pipeline definitions,
state or plan output. Everywhere else ``${env:NAME}`` is resolved when the file is loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from mlstack.errors import ProblemList
from mlstack.manifest.source import Path, Source
from mlstack.manifest.suggest import did_you_mean

MAX_RESULT_CHARS = 64 * 1024
_REF = re.compile(r"\$\{\s*(env:|var\.|secret:)([A-Za-z_][A-Za-z0-9_]*)\s*\}|\$\{([^}]*)\}")


def is_secret_ref(value: object) -> bool:
    return isinstance(value, str) and "${secret:" in value


def _deferred(path: Path) -> bool:
    """A stage's ``env:`` value (top level or an environment's pipeline override)."""
    for i in range(len(path) - 3):
        if path[i] == "stages" and isinstance(path[i + 1], int) and path[i + 2] == "env":
            return True
    return False


def interpolate(
    value: Any,
    path: Path,
    src: Source,
    variables: Mapping[str, Any],
    problems: ProblemList,
    environ: Mapping[str, str] | None = None,
) -> Any:
    environ = os.environ if environ is None else environ
    if isinstance(value, dict):
        return {
            k: interpolate(v, path + (k,), src, variables, problems, environ)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            interpolate(v, path + (i,), src, variables, problems, environ)
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str) or "${" not in value:
        return value

    size = [len(value)]  # what the result would hold so far; refs cannot build a bomb

    def one(m: re.Match[str]) -> str:
        text = _one(m)
        size[0] += len(text) - len(m.group(0))
        return text if size[0] <= MAX_RESULT_CHARS else ""

    def _one(m: re.Match[str]) -> str:
        kind, name, bad = m.group(1), m.group(2), m.group(3)
        if bad is not None:
            problems.add(
                f"cannot interpolate ${{{bad}}}",
                src.locate(path),
                "use ${env:NAME}, ${var.name} or ${secret:NAME}",
            )
            return m.group(0)
        if kind == "secret:":
            return m.group(0)
        if kind == "env:":
            if name not in environ:
                problems.add(
                    f"environment variable {name} is not set (used as ${{env:{name}}})",
                    src.locate(path),
                    f"export {name}=... or use ${{var.{name}}} with a default in vars:",
                )
                return m.group(0)
            if _deferred(path):
                return m.group(0)  # the stage's process resolves it (resolve_at_use)
            return environ[name]
        if name not in variables:
            problems.add(
                f"unknown variable {name!r}{did_you_mean(name, variables)}",
                src.locate(path),
                "declare it under `vars:` or pass --var NAME=VALUE",
            )
            return m.group(0)
        return str(variables[name])

    whole = _REF.fullmatch(value)
    if whole and whole.group(1) == "var." and whole.group(2) in variables:
        return variables[whole.group(2)]  # keep the variable's type when it is the whole value
    result = _REF.sub(one, value)
    if size[0] > MAX_RESULT_CHARS:
        problems.add(
            f"this value would be {size[0]:,} characters once its references are filled in",
            src.locate(path),
            f"values are at most {MAX_RESULT_CHARS // 1024} KiB; put long text in a file",
        )
        return value
    return result
