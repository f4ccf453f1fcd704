"""``run:`` stages: a shell command with the stage's world in environment variables.

- ``MLSTACK_STAGE``, ``MLSTACK_RUN_ID``, ``MLSTACK_ENV``, ``MLSTACK_PROJECT_ROOT``
- ``MLSTACK_OUTPUT``           directory to write this stage's outputs into
- ``MLSTACK_INPUTS``           JSON object: upstream stage name -> its output directory
- ``MLSTACK_INPUT_<NAME>``     one upstream output directory (name upper-cased, ``-`` -> ``_``)
- ``MLSTACK_PARAMS``           JSON object: the stage's ``with:`` mapping
- ``MLSTACK_PARAM_<KEY>``      each scalar parameter as a string
- ``MLSTACK_METRICS_FILE``     write ``{"metric": number, ...}`` here to report metrics

plus the stage's own ``env:`` mapping. A command that exits non-zero fails the stage.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlstack_runtime.artifacts import METRICS_FILE
from mlstack_runtime.errors import StageConfigError, StageError

# ``${secret:NAME}`` and ``${env:NAME}`` in a stage's env: kept as references in the spec, the
# pipeline definition and state, and filled in here, in the stage's process, at the moment of use
_AT_USE = re.compile(r"\$\{\s*(env|secret):([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def resolve_at_use(value: str, environ: Mapping[str, str], setting: str) -> str:
    """``value`` with its references filled in; an unset one is a wrong ``setting`` (e.g.
    ``env.TOKEN``): it fails the same way on every attempt, so it is never retried."""

    def one(m: re.Match[str]) -> str:
        name = m.group(2)
        if name not in environ:
            raise StageConfigError(
                setting,
                f"{m.group(1)} {name!r} is not set",
                hint=f"export {name}=... in the environment that runs mlstack",
            )
        return environ[name]

    return _AT_USE.sub(one, value)


def env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def environment(
    stage: Mapping[str, Any],
    output: Path,
    inputs: Mapping[str, Path],
    project_root: Path,
    run_id: str = "",
    env: str = "",
) -> dict[str, str]:
    params = dict(stage.get("with") or {})
    out = {
        "MLSTACK_STAGE": str(stage.get("name", "")),
        "MLSTACK_RUN_ID": run_id,
        "MLSTACK_ENV": env,
        "MLSTACK_PROJECT_ROOT": str(project_root),
        "MLSTACK_OUTPUT": str(output),
        "MLSTACK_INPUTS": json.dumps({k: str(v) for k, v in inputs.items()}),
        "MLSTACK_PARAMS": json.dumps(params, default=str),
        "MLSTACK_METRICS_FILE": str(Path(output) / METRICS_FILE),
    }
    for k, v in inputs.items():
        out[f"MLSTACK_INPUT_{env_name(k)}"] = str(v)
    for k, v in params.items():
        if isinstance(v, (str, int, float, bool)):
            out[f"MLSTACK_PARAM_{env_name(k)}"] = str(v)
    for k, v in (stage.get("env") or {}).items():  # secrets resolved now, never stored
        out[str(k)] = resolve_at_use(str(v), os.environ, f"env.{k}")
    return out


def run_command(command: str, variables: Mapping[str, str], cwd: Path) -> None:
    proc = subprocess.run(
        ["/bin/sh", "-c", command],
        env={**os.environ, **variables},
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise StageError(f"command exited with status {proc.returncode}: {command}")
