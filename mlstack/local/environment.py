"""What the `local` backend's modules work with: one environment's project, settings and folders,
its model index, and the MLflow worker.

``LocalBackend`` makes one ``LocalEnv`` and hands it to the modules that do the work
(``pipelines``, ``versions``, ``endpoints``, ``observe``); none of them imports the backend.
MLflow is imported and its store prepared on one background thread per process, while stages
run; every MLflow call goes through it so calls stay ordered.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.errors import BackendError
from mlstack.local.registry import Registry, env_dir
from mlstack.local.remote import RemoteArtifacts, open_remote
from mlstack.local.store import ArtifactStore, atomic_write

# the environment's records kept beside the artifacts when there is an `artifacts:` URL
RECORDS = ("registry.json", "pipeline.json")

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlstack.manifest.models import ResolvedProject


class LocalEnv:
    _mlflow_pool: _DaemonWorker | None = None  # one per process
    _pool_lock = threading.Lock()

    def __init__(self, project: ResolvedProject, config: BaseModel, workdir: Path) -> None:
        self.project = project
        self.config = config
        self.workdir = workdir
        self.tracker_future: Future[Any] | None = None
        self.mlflow_runs: dict[str, Future[str]] = {}
        self.remote: RemoteArtifacts | None = open_remote(getattr(config, "artifacts", None))
        self._synced = False

    @property
    def env(self) -> str:
        return self.project.environment

    @property
    def env_dir(self) -> Path:
        return env_dir(self.workdir, self.env)

    @property
    def registry(self) -> Registry:
        self.sync_records()
        return Registry(self.workdir, self.env, on_save=lambda: self.push_record("registry.json"))

    def store(self) -> ArtifactStore:
        """The content-addressed store: ``.mlstack/artifacts``, a cache of the `artifacts:` URL
        when there is one."""
        return ArtifactStore(self.workdir, self.remote)

    def sync_records(self) -> None:
        """With an `artifacts:` URL, the environment's records there replace the ones on this
        machine, once per command: another machine (a CI runner) may have written them."""
        if self.remote is None or self._synced:
            return
        self._synced = True
        for name in RECORDS:
            data = self.remote.read(f"envs/{self.env}/{name}")
            if data is not None:
                atomic_write(self.env_dir / name, data)

    def push_record(self, name: str) -> None:
        """Write one of the environment's records to the `artifacts:` URL (or remove it there
        when it is gone here)."""
        if self.remote is None:
            return
        path = self.env_dir / name
        if path.exists():
            self.remote.write(f"envs/{self.env}/{name}", path.read_bytes())
        else:
            self.remote.delete(f"envs/{self.env}/{name}")

    @classmethod
    def mlflow_started(cls) -> bool:
        return cls._mlflow_pool is not None

    def _pool(self) -> _DaemonWorker:
        with LocalEnv._pool_lock:
            if LocalEnv._mlflow_pool is None:
                LocalEnv._mlflow_pool = _DaemonWorker("mlflow")
            return LocalEnv._mlflow_pool

    def tracker(self) -> Future[Any]:
        """The environment's MLflow tracker, made on the MLflow thread on first use."""
        if self.tracker_future is None:
            from mlstack.local.tracking import Tracker

            self.tracker_future = self._pool().submit(
                Tracker, self.workdir, self.env, self.project.project
            )
        return self.tracker_future

    def mlflow(self, fn: Any, *args: Any) -> Future[Any]:
        """``fn(tracker, *args)`` on the MLflow thread."""
        tracker = self.tracker()
        return self._pool().submit(lambda: fn(tracker.result(), *args))

    def model_name(self) -> str:
        if self.project.model is None:
            raise BackendError(
                "this project declares no `model:`, so there is nothing to register",
                hint="add `model: {name: ...}` to mlstack.yaml",
            )
        return self.project.model.name

    def parallelism(self) -> int:
        pipe = self.project.pipeline
        if "parallelism" in pipe.model_fields_set:
            return int(pipe.parallelism)
        return int(getattr(self.config, "parallelism", 2))

    def serving_workers(self, replicas: int) -> int:
        """Model-server processes per version: the backend's ``workers`` setting when the
        environment sets it, otherwise the deployment's ``resources.replicas``."""
        fields: set[str] = getattr(self.config, "model_fields_set", set())
        if "workers" in fields:
            return int(getattr(self.config, "workers", replicas))
        return replicas

    def serving_host_port(self) -> tuple[str, int | None]:
        d = self.project.deployment
        host = getattr(self.config, "host", "127.0.0.1")
        port = getattr(self.config, "port", None)
        if d is not None:
            host = d.host if "host" in d.model_fields_set else host
            port = d.port if d.port is not None else port
        return host, port


class _DaemonWorker:
    """One daemon thread running submitted calls in order.

    Unlike ThreadPoolExecutor, whose threads are joined at exit, a process that stops early
    (a failed gate, bad data) does not wait for MLflow's warm-up; work whose result matters
    (logging a run, creating a version, setting an alias) is always awaited by its caller.
    """

    def __init__(self, name: str) -> None:
        import queue

        self._queue: queue.SimpleQueue[tuple[Future[Any], Any]] = queue.SimpleQueue()
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        self._queue.put((fut, lambda: fn(*args)))
        return fut

    def _loop(self) -> None:
        while True:
            fut, call = self._queue.get()
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(call())
            except BaseException as e:  # noqa: BLE001 - handed to whoever awaits the future
                fut.set_exception(e)
