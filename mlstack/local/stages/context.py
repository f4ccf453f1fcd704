"""What a stage sees: its parameters, the outputs of the stages before it, and where to write.

Custom stages
-------------
``function: package.module:name`` is imported and called with whichever of these keyword
arguments its signature names (or all of them if it takes ``**kwargs``):

- ``inputs``   dict: upstream stage name -> Path of that stage's output directory (``needs:``)
- ``output``   Path of this stage's (empty) output directory; write files there
- ``params``   dict: the stage's ``with:`` mapping
- ``upstream`` dict: upstream stage name -> the value that stage's function returned
- ``metrics``  dict to fill with numbers (logged to MLflow, usable by gates)
- ``ctx``      this ``StageContext`` (all of the above, plus ``find(name)``, ``data``, ``run_id``)

A JSON-serialisable return value is stored as ``return.json`` in the output and handed to the
next stages as ``upstream[name]``.

``run: <shell command>`` runs with ``/bin/sh -c`` in the project directory with the environment
variables ``mlstack_runtime.command`` lists (the same on every platform: ``MLSTACK_OUTPUT``,
``MLSTACK_INPUT_<NAME>``, ``MLSTACK_PARAMS``, ``MLSTACK_METRICS_FILE``, ...) plus the stage's own
``env:`` mapping. A command that exits non-zero fails the stage (and is retried when
``retries:`` allows).

Outputs are immutable once the stage finishes: they are hashed and stored by content, and a
later stage with the same cache key reuses them without running.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlstack_runtime.artifacts import METRICS_FILE, MODEL_META, RETURN_FILE


class StageContext:
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.stage: dict[str, Any] = job["stage"]
        self.name: str = self.stage["name"]
        self.params: dict[str, Any] = dict(self.stage.get("with") or {})
        self.data: dict[str, Any] = job.get("data") or {}
        self.model_spec: dict[str, Any] = job.get("model") or {}
        self.pipeline: dict[str, Any] = job.get("pipeline") or {}
        self.champion: dict[str, float] | None = job.get("champion")
        self.run_id: str = job["run_id"]
        self.env: str = job["env"]
        self.project_root = Path(job["project_root"])
        self.output = Path(job["staging"])
        self.inputs: dict[str, Path] = {k: Path(v) for k, v in job["inputs"].items()}
        self.ancestors: list[tuple[str, Path]] = [(n, Path(p)) for n, p in job["ancestors"]]
        self.metrics: dict[str, float] = {}
        self._values: dict[str, Any] | None = None

    @property
    def upstream_values(self) -> dict[str, Any]:
        if self._values is None:
            self._values = {}
            for name, path in self.inputs.items():
                f = path / RETURN_FILE
                self._values[name] = json.loads(f.read_text()) if f.exists() else None
        return self._values

    def find(self, filename: str) -> Path | None:
        """``filename`` in the nearest earlier stage's output that has it (e.g. train.parquet)."""
        from mlstack.local.stages.adapter import job_for

        found: Path | None = job_for(self).find(filename)
        return found

    def require(self, filename: str, produced_by: str) -> Path:
        """Like ``find``, but a missing file is an error naming the stage to add."""
        from mlstack_runtime.errors import StageError

        from mlstack.errors import BackendError
        from mlstack.local.stages.adapter import job_for

        try:
            path: Path = job_for(self).require(filename, produced_by)
        except StageError as e:
            raise BackendError(e.message, hint=e.hint) from None
        return path

    def environment(self) -> dict[str, str]:
        from mlstack_runtime.command import environment

        # an unset secret raises the runtime's StageConfigError: the user's to fix, never retried
        return environment(
            self.stage, self.output, self.inputs, self.project_root, self.run_id, self.env
        )

    def finish(self, value: Any) -> None:
        """Store the output directory by content and record the cache entry (in that order)."""
        from mlstack_runtime.artifacts import finish

        from mlstack.local.store import ArtifactStore

        mfile = self.output / METRICS_FILE
        if mfile.exists():  # a command stage reports metrics through the file
            self.metrics = {**json.loads(mfile.read_text()), **self.metrics}
        # the same files, written the same way, as a stage run by ``python -m mlstack_runtime``
        finish(self.output, value, {} if mfile.exists() else self.metrics)
        store = ArtifactStore(self.job["workdir"])
        digest, _ = store.commit_dir(self.output)
        store.record(
            self.job["cache_key"],
            {
                "stage": self.name,
                "output": digest,
                "metrics": self.metrics,
                "value": value,
                "model": (store.object_path(digest) / MODEL_META).exists(),
                "run_id": self.run_id,
                "finished": time.time(),
            },
        )

    @staticmethod
    def now() -> float:
        return time.time()
