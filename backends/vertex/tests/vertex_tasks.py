"""What Vertex AI Pipelines does with a submitted job's tasks, for the stand-in: each task's
container command from the compiled KFP spec, run on this machine with the shared runtime.

Following the KFP v2 pipeline spec (``PipelineSpec``: ``root.dag.tasks``, ``componentRef``,
``dependentTasks``, ``inputs.parameters.*.componentInputParameter``, executors' ``container``
with ``{{$.inputs.parameters['NAME']}}`` and ``{"Concat": [...]}`` placeholders) and Vertex's
documented task behaviour: Cloud Storage is mounted at ``/gcs/BUCKET`` (Cloud Storage FUSE; here
a folder mirrored from fake-gcs-server, named by ``MLSTACK_GCS_MOUNT``), a task whose component
and inputs equal an earlier successful execution's is not run again (state ``SKIPPED``, "step
caching"), a failing task fails the job and its downstream tasks do not start.

The image is not pulled: the command ``python -m mlstack_runtime ARGS`` is run as
``mlstack_runtime.__main__.main(ARGS)`` inside this process (what ``-m`` calls; pandas and
scikit-learn load once instead of once per task), after checking that the command is exactly
that and that the ``PYTHONPATH`` the task is given holds the runtime ``upsert_pipeline``
published to the bucket.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format

_PARAM = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")


def _resolve(arg: str, values: dict[str, str]) -> str:
    if arg.startswith('{"Concat"'):
        return "".join(_resolve(part, values) for part in json.loads(arg)["Concat"])
    return _PARAM.sub(lambda m: values[m.group(1)], arg)


_ENTRY = threading.Lock()


def _run_entry_point(args: list[str], mount: Path) -> tuple[int, str]:
    """``python -m mlstack_runtime ARGS`` in this process, with the FUSE mount at ``mount``."""
    import contextlib
    import io

    from mlstack_runtime.__main__ import main

    err = io.StringIO()
    with _ENTRY:
        old = os.environ.get("MLSTACK_GCS_MOUNT")
        os.environ["MLSTACK_GCS_MOUNT"] = str(mount)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(args)
        finally:
            if old is None:
                os.environ.pop("MLSTACK_GCS_MOUNT", None)
            else:
                os.environ["MLSTACK_GCS_MOUNT"] = old
    return code, err.getvalue()


def _order(tasks: dict[str, Any]) -> list[str]:
    done: list[str] = []
    while len(done) < len(tasks):
        for name, t in sorted(tasks.items()):
            if name not in done and all(d in done for d in t.get("dependentTasks", [])):
                done.append(name)
    return done


class TaskRunner:
    """Runs jobs' tasks against one bucket; remembers executions for step caching."""

    def __init__(self, storage: Any, bucket: str) -> None:
        self.storage = storage
        self.bucket = bucket
        self.cache: set[str] = set()
        self.ran: list[str] = []  # task names, in the order they ran (not cached)

    def _pull(self, mount: Path) -> None:
        for blob in self.storage.list_blobs(self.bucket):
            path = mount / self.bucket / blob.name
            path.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(str(path))

    def _push(self, mount: Path, uri: str) -> None:
        local = mount / uri.removeprefix("gs://")
        bucket = self.storage.bucket(self.bucket)
        for p in sorted(local.rglob("*")):
            if p.is_file():
                key = str(p.relative_to(mount / self.bucket))
                bucket.blob(key).upload_from_filename(str(p))

    def __call__(self, job: Any, report: Callable[..., None]) -> None:
        spec = json_format.MessageToDict(type(job).pb(job).pipeline_spec)
        params = {k: v for k, v in job.runtime_config.parameter_values.items()}
        params = {k: (v if isinstance(v, str) else v.string_value) for k, v in params.items()}
        tasks = spec["root"]["dag"]["tasks"]
        with tempfile.TemporaryDirectory(prefix="vertex-task-") as tmp:
            mount = Path(tmp) / "gcs"
            self._pull(mount)
            for name in _order(tasks):
                task = tasks[name]
                comp = spec["components"][task["componentRef"]["name"]]
                container = spec["deploymentSpec"]["executors"][comp["executorLabel"]]["container"]
                values = {
                    k: params[v["componentInputParameter"]]
                    for k, v in task.get("inputs", {}).get("parameters", {}).items()
                }
                args = [_resolve(a, values) for a in container.get("args", [])]
                key = json.dumps([container, values], sort_keys=True)
                shown = task.get("taskInfo", {}).get("name", name)
                if key in self.cache and task.get("cachingOptions", {}).get("enableCache"):
                    report(shown, "SKIPPED")
                    continue
                report(shown, "RUNNING")
                assert container["command"] == ["python", "-m", "mlstack_runtime"], container
                env = {e["name"]: e["value"] for e in container.get("env", [])}
                published = mount / env["PYTHONPATH"].removeprefix("/gcs/")
                assert (published / "mlstack_runtime" / "__main__.py").is_file(), published
                code, log = _run_entry_point(args, mount)
                if code != 0:
                    report(shown, "FAILED", log.strip()[-800:], log=log)
                    return
                out = args[args.index("--outputs") + 1]
                self._push(mount, out)
                self.cache.add(key)
                self.ran.append(shown)
                report(shown, "SUCCEEDED", log=log)


def predictor(storage: Any) -> Callable[[Any, Any, list[Any]], list[Any]]:
    """The serving container's answer: the model version's artifact through the shared
    runtime's serving hooks (what the Custom Prediction Routine image runs)."""
    import sklearn.ensemble  # noqa: F401 - loaded now, not inside the first request
    from mlstack_runtime import serving

    loaded: dict[str, Any] = {}

    def predict(deployed: Any, model: Any, instances: list[Any]) -> list[Any]:
        artifact = model.artifact_uri
        if artifact not in loaded:
            bucket, _, prefix = artifact.removeprefix("gs://").partition("/")
            folder = Path(tempfile.mkdtemp(prefix="vertex-model-"))
            for blob in storage.list_blobs(bucket, prefix=prefix + "/"):
                path = folder / blob.name[len(prefix) + 1 :]
                path.parent.mkdir(parents=True, exist_ok=True)
                blob.download_to_filename(str(path))
            loaded[artifact] = serving.load(folder)
        m = loaded[artifact]
        rows = serving.rows_from_instances(instances, m.meta)
        return list(serving.encode(serving.predict(m, rows))["predictions"])

    return predict
