"""The `local` backend: pipelines, registry and tracking on this machine.

Pipelines compile to a JSON DAG (format ``mlstack-dag``) run by ``runner.Runner``; outputs go to
the content-addressed store shared by all environments (``<workdir>/artifacts``); the registry
index and MLflow store are per environment (``<workdir>/envs/<env>/``). Serving is delegated to
``mlstack.local.serving.api``, imported only when an endpoint is touched.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mlstack.engine.backend import (
    Backend,
    CompiledPipeline,
    Context,
    EndpointState,
    EndpointView,
    Event,
    Lineage,
    ModelVersion,
    Observed,
    PipelineRef,
    Prediction,
    Provisioned,
    RunRequest,
    RunResult,
    VersionMetrics,
)
from mlstack.engine.digest import digest
from mlstack.errors import BackendError, GateFailed, Location, MlstackError, Problem, SpecError
from mlstack.local.registry import Registry, env_dir
from mlstack.local.store import ArtifactStore, atomic_write_json, dir_digest
from mlstack.manifest.dag import toposort

FORMAT = "mlstack-dag"
LOG_TAIL_LINES = 15
DEFAULT_SAMPLE_RATE = 0.1  # share of requests the router logs when the spec has no monitoring


class LocalBackend(Backend):
    # MLflow is imported and its store prepared on one background thread per process, while
    # stages run; every MLflow call goes through it so calls stay ordered.
    _mlflow_pool: _DaemonWorker | None = None
    _pool_lock = threading.Lock()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tracker_future: Future[Any] | None = None
        self._mlflow_runs: dict[str, Future[str]] = {}

    # --- helpers ------------------------------------------------------------------------------
    @property
    def env(self) -> str:
        return self.project.environment

    @property
    def env_dir(self) -> Path:
        return env_dir(self.workdir, self.env)

    @property
    def registry(self) -> Registry:
        return Registry(self.workdir, self.env)

    def _pool(self) -> _DaemonWorker:
        with LocalBackend._pool_lock:
            if LocalBackend._mlflow_pool is None:
                LocalBackend._mlflow_pool = _DaemonWorker("mlflow")
            return LocalBackend._mlflow_pool

    def _tracker(self) -> Future[Any]:
        if self._tracker_future is None:
            from mlstack.local.tracking import Tracker

            self._tracker_future = self._pool().submit(
                Tracker, self.workdir, self.env, self.project.project
            )
        return self._tracker_future

    def _mlflow(self, fn: Any, *args: Any) -> Future[Any]:
        tracker = self._tracker()
        return self._pool().submit(lambda: fn(tracker.result(), *args))

    def _model_name(self) -> str:
        if self.project.model is None:
            raise BackendError(
                "this project declares no `model:`, so there is nothing to register",
                hint="add `model: {name: ...}` to mlstack.yaml",
            )
        return self.project.model.name

    def _parallelism(self) -> int:
        pipe = self.project.pipeline
        if "parallelism" in pipe.model_fields_set:
            return int(pipe.parallelism)
        return int(getattr(self.config, "parallelism", 2))

    # --- infrastructure -----------------------------------------------------------------------
    def infrastructure(self) -> Mapping[str, Any]:
        return {"root": f"envs/{self.env}", "tracking": "mlflow+sqlite"}

    def provision(self, inputs: Mapping[str, Any], ctx: Context) -> Provisioned:
        from mlstack.local.tracking import tracking_uri

        for d in (self.env_dir / "logs", self.env_dir / "runs"):
            d.mkdir(parents=True, exist_ok=True)
        ArtifactStore(self.workdir).ensure()
        outputs = {
            **inputs,
            "path": str(self.env_dir),
            "tracking_uri": tracking_uri(self.workdir, self.env),
        }
        return Provisioned(outputs=outputs, provisioned_by="mlstack")

    # --- pipeline -----------------------------------------------------------------------------
    def compile(self) -> CompiledPipeline:
        p = self.project
        stages: list[dict[str, Any]] = [
            {
                "name": st.name,
                "kind": st.kind,
                "uses": st.uses,
                "run": st.run,
                "function": st.function,
                "needs": list(st.needs),
                "with": st.with_,
                "env": st.env,
                "gates": list(st.gates),
                "retries": st.retries,
                "timeout": st.timeout,
                "code": list(st.code),
                "resources": st.resources.model_dump(mode="json"),
            }
            for st in p.pipeline.stages
        ]
        order = toposort({s["name"]: s["needs"] for s in stages})
        definition: dict[str, Any] = {
            "format": FORMAT,
            "version": 1,
            "project": p.project,
            "stages": stages,
            "order": order,
            "parallelism": p.pipeline.parallelism,
            "data": p.data.model_dump(mode="json", by_alias=False) if p.data else None,
            "model": (
                {"name": p.model.name, "aliases": list(p.model.registration.aliases)}
                if p.model
                else None
            ),
        }
        return CompiledPipeline(
            definition=definition, digest=digest(definition), steps=tuple(order), format=FORMAT
        )

    def upsert_pipeline(self, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
        path = self.env_dir / "pipeline.json"
        atomic_write_json(path, {"digest": compiled.digest, "definition": compiled.definition})
        return PipelineRef(name=self.project.project, location=str(path), steps=compiled.steps)

    def run_pipeline(
        self, compiled: CompiledPipeline, request: RunRequest, ctx: Context
    ) -> RunResult:
        from mlstack.local.runner import Runner, save_run_record

        champion = None
        if self.project.model is not None:
            champ = self.registry.alias(self.project.model.name, "champion")
            champion = dict(champ.get("metrics") or {}) if champ else None
        runner = Runner(
            self.workdir,
            ctx.environment,
            Path(self.project.root),
            compiled.definition,
            parallelism=self._parallelism(),
            emit=ctx.emit,
            cancelled=ctx.cancel.is_set,
            champion=champion,
        )
        keys = runner.effective_keys(request.cache_keys, request.data_digest)
        will_run = any(runner.store.lookup(k) is None for k in keys.values())
        if will_run and self.project.model is not None:
            self._tracker()  # MLflow warms up on its thread while the stages run
        outcome = runner.run(request.cache_keys, request.data_digest)
        metrics: dict[str, float] = {}
        model_entry: dict[str, Any] | None = None
        for name in outcome.order:
            entry = outcome.stages[name].entry
            if entry is None:
                continue
            metrics.update(
                {
                    k: float(v)
                    for k, v in (entry.get("metrics") or {}).items()
                    if isinstance(v, (int, float))
                }
            )
            if entry.get("model"):
                model_entry = entry
        model_uri = str(runner.store.object_path(model_entry["output"])) if model_entry else None
        model_digest = model_entry["output"] if model_entry else None
        dataset = self._dataset_info(outcome, runner.store)
        record = {
            "environment": ctx.environment,
            "project": self.project.project,
            "pipeline_digest": compiled.digest,
            "data_digest": request.data_digest or (dataset or {}).get("digest"),
            "dataset": dataset,
            "cache_keys": dict(request.cache_keys),
            "reasons": dict(request.reasons),
            "metrics": metrics,
            "model_uri": model_uri,
            "model_digest": model_digest,
        }
        save_run_record(self.workdir, ctx.environment, outcome, record)
        statuses = {n: s.status for n, s in outcome.stages.items()}
        if (
            outcome.status == "succeeded"
            and model_entry is not None
            and self.project.model is not None
            and any(s == "ran" for s in statuses.values())
        ):
            self._log_run_async(outcome.run_id)
        if outcome.interrupted:
            raise KeyboardInterrupt
        if outcome.status == "cancelled":
            return RunResult(
                outcome.run_id,
                "cancelled",
                metrics,
                None,
                None,
                statuses,
                detail="cancelled; finished stages are cached",
            )
        if outcome.status == "failed":
            self._raise_failure(outcome)
        ctx.emit(
            Event(
                "run.done",
                outcome.run_id,
                f"{outcome.seconds:.2f}s",
                {"stages": statuses, "metrics": metrics},
            )
        )
        return RunResult(
            run_id=outcome.run_id,
            status="succeeded",
            metrics=metrics,
            model_uri=model_uri,
            model_digest=model_digest,
            stages=statuses,
            detail=f"{sum(s == 'ran' for s in statuses.values())} ran, "
            f"{sum(s == 'cached' for s in statuses.values())} cached",
        )

    @staticmethod
    def _dataset_info(outcome: Any, store: ArtifactStore) -> dict[str, Any] | None:
        for name in outcome.order:
            entry = outcome.stages[name].entry
            if entry is not None:
                f = store.object_path(entry["output"]) / "dataset.json"
                if f.exists():
                    info: dict[str, Any] = json.loads(f.read_text())
                    return info
        return None

    def _raise_failure(self, outcome: Any) -> None:
        failed = outcome.first_failure()
        if failed is None:
            raise BackendError(f"pipeline run {outcome.run_id} did not finish")
        err = failed.error or {}
        where = f"stage {failed.name!r}"
        if err.get("stopped"):  # a gate or the data validation report: the user's to act on
            problems = [
                Problem(p["message"], hint=p.get("hint"))
                for p in err.get("problems") or [{"message": err.get("message", "")}]
            ]
            if problems:
                problems[0] = Problem(f"{where}: {problems[0].message}", hint=problems[0].hint)
            raise GateFailed(problems[0].message, problems=problems)
        if err.get("config"):  # a wrong setting: no log tail, point at the spec
            raise SpecError(
                f"{where}: {err.get('message', '')}",
                location=self._setting_location(failed.name, str(err.get("setting") or "")),
                hint=((err.get("problems") or [{}])[0].get("hint")),
            )
        attempts = f" after {failed.attempts} attempts" if failed.attempts > 1 else ""
        tail = _tail(failed.log)
        message = f"{where} failed{attempts}: {err.get('message', 'unknown error')}"
        hint = f"full log: mlstack logs -e {self.env} {failed.name}  ({failed.log})"
        if tail and not err.get("timeout"):
            message += "\n    last lines of its log:\n" + "\n".join(
                "      " + line for line in tail
            )
        raise BackendError(message, hint=hint)

    def _setting_location(self, stage: str, setting: str) -> Location | None:
        """Where ``setting`` of ``stage`` is written in the project file (best effort)."""
        from mlstack.manifest.source import parse, read_text

        path = Path(self.project.file)
        if not path.is_absolute() and not path.exists():
            path = Path(self.project.root) / path.name
        try:
            src = parse(read_text(str(path)), self.project.file)
        except MlstackError:
            return None
        stages = ((src.data or {}).get("pipeline") or {}).get("stages") or []
        for i, s in enumerate(stages):
            if isinstance(s, dict) and s.get("name") == stage:
                return src.locate(("pipeline", "stages", i, *setting.split(".")))
        return None

    def _log_run_async(self, run_id: str) -> None:
        from mlstack.local.tracking import REPORT_FILES, flatten_params, run_record

        rec = run_record(self.workdir, self.env, run_id)
        if rec is None:
            return
        store = ArtifactStore(self.workdir)
        artifacts: list[tuple[str, Path]] = []
        for name, st in rec["stages"].items():
            if not st.get("output"):
                continue
            out = store.object_path(st["output"])
            artifacts += [(f"stages/{name}", out / f) for f in REPORT_FILES if (out / f).exists()]
        if rec.get("model_uri"):
            artifacts.append(("model", Path(rec["model_uri"])))
        stages: list[Mapping[str, Any]] = [
            {"name": s.name, "with": s.with_} for s in self.project.pipeline.stages
        ]
        params = flatten_params(stages)
        self._mlflow_runs[run_id] = self._mlflow(lambda t: t.log_run(rec, params, artifacts))

    # --- registry -----------------------------------------------------------------------------
    def register(self, run: RunResult, ctx: Context) -> ModelVersion:
        from mlstack.local.tracking import run_record

        name = self._model_name()
        if not run.model_uri or not run.model_digest:
            raise BackendError(
                f"run {run.run_id} produced no model to register", hint="add a builtin/train stage"
            )
        existing = self.registry.find(name, digest=run.model_digest, run_id=run.run_id)
        if existing is not None:  # applying again after a crash: same run, same version
            return self._version(name, existing)
        rec = run_record(self.workdir, self.env, run.run_id) or {}
        lineage = {
            "run_id": run.run_id,
            "data_digest": rec.get("data_digest"),
            "dataset": rec.get("dataset"),
            "pipeline_digest": rec.get("pipeline_digest"),
            "stages": [
                {
                    "name": n,
                    "status": rec["stages"][n]["status"],
                    "output": rec["stages"][n].get("output"),
                }
                for n in rec.get("order", [])
                if n in rec.get("stages", {})
            ],
            "environment": self.env,
        }
        mlflow_run = self._mlflow_runs.get(run.run_id)
        if mlflow_run is None:
            self._log_run_async(run.run_id)
            mlflow_run = self._mlflow_runs.get(run.run_id)
        try:
            mlflow_run_id = mlflow_run.result() if mlflow_run is not None else None
        except Exception as e:  # noqa: BLE001 - tracking failed: say so, register nothing
            raise BackendError(
                f"MLflow tracking failed for run {run.run_id}: {type(e).__name__}: {e}",
                hint=f"check {self.env_dir / 'mlflow.db'}",
            ) from e
        tags = {
            "mlstack.digest": run.model_digest,
            "mlstack.data_digest": str(lineage["data_digest"]),
            "mlstack.run_id": run.run_id,
            "mlstack.environment": self.env,
            "mlstack.lineage": json.dumps(lineage, default=str)[:5000],
        }
        version = self._create_version(name, mlflow_run_id, tags)
        entry = self.registry.add(
            name,
            {
                "version": version,
                "digest": run.model_digest,
                "uri": run.model_uri,
                "metrics": dict(run.metrics),
                "run_id": run.run_id,
                "lineage": lineage,
                "mlflow_run_id": mlflow_run_id,
            },
        )
        ctx.emit(Event("model.registered", f"{name}@{version}", run.model_digest))
        return self._version(name, {**entry, "aliases": []})

    def _create_version(self, name: str, mlflow_run_id: str | None, tags: Mapping[str, str]) -> str:
        if mlflow_run_id is None:
            return self.registry.next_version(name)
        version: str = self._mlflow(
            lambda t: t.create_version(name, mlflow_run_id, "model", tags)
        ).result()
        # MLflow's numbering wins, but never reuse a number this index already holds.
        if self.registry.find(name, version=version) is not None:
            return self.registry.next_version(name)
        return version

    def _version(self, name: str, v: Mapping[str, Any]) -> ModelVersion:
        return ModelVersion(
            name=name,
            version=str(v["version"]),
            digest=v["digest"],
            uri=v["uri"],
            metrics=dict(v.get("metrics") or {}),
            aliases=tuple(v.get("aliases") or ()),
            lineage=dict(v.get("lineage") or {}),
        )

    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        reg = self.registry
        v = reg.find(model, version=version)
        if v is None:
            raise BackendError(
                f"cannot point {alias!r} at {model} v{version}: no such version "
                f"in environment {self.env!r}"
            )
        reg.set_alias(model, alias, version)
        if v.get("mlflow_run_id") and (self.env_dir / "mlflow.db").exists():
            self._mlflow(lambda t: t.set_alias(model, alias, version)).result()

    def versions(self, model: str) -> list[ModelVersion]:
        return [self._version(model, v) for v in self.registry.versions(model)]

    def import_version(self, source: ModelVersion, ctx: Context) -> ModelVersion:
        from mlstack.local.serving_uri import local_path

        path = local_path(source.uri)
        if path is None or not path.is_dir():
            raise BackendError(
                f"cannot import {source.name} v{source.version}: its artifact "
                f"{source.uri!r} is not a directory on this machine",
                hint="promote between local environments, or copy the artifact",
            )
        actual = dir_digest(path)
        if actual != source.digest:
            raise BackendError(
                f"artifact of {source.name} v{source.version} has digest {actual}"
                f", expected {source.digest}; refusing to import it"
            )
        store = ArtifactStore(self.workdir)
        target = store.object_path(actual)
        if not target.is_dir():  # bring it into this project's store, by content
            store.ensure()
            staging = store.new_staging("import", 0)
            shutil.rmtree(staging)
            shutil.copytree(path, staging)
            store.commit_dir(staging)
        existing = self.registry.find(source.name, digest=source.digest)
        if (
            existing is not None
            and (existing.get("lineage") or {}).get("promoted_from", {}).get("version")
            == source.version
        ):
            return self._version(source.name, existing)
        lineage = {
            **dict(source.lineage),
            "promoted_from": {
                "name": source.name,
                "version": source.version,
                "digest": source.digest,
                "environment": (source.lineage or {}).get("environment"),
            },
        }
        # The promoted artifact shows in this environment's MLflow too: one run holding it.
        record = {
            "run_id": f"import-{source.name}-v{source.version}",
            "status": "succeeded",
            "metrics": {k: v for k, v in source.metrics.items() if isinstance(v, (int, float))},
            "data_digest": (source.lineage or {}).get("data_digest"),
            "environment": self.env,
        }
        tags = {
            "mlstack.digest": source.digest,
            "mlstack.promoted_from": f"{source.name}@{source.version}",
            "mlstack.lineage": json.dumps(lineage, default=str)[:5000],
        }
        try:
            mlflow_run_id = self._mlflow(
                lambda t: t.log_run(record, {}, [("model", target)])
            ).result()
        except Exception as e:  # noqa: BLE001 - tracking failed: say so, import nothing
            raise BackendError(
                f"MLflow tracking failed while importing {source.name} v{source.version}: "
                f"{type(e).__name__}: {e}"
            ) from e
        version = self._create_version(source.name, mlflow_run_id, tags)
        entry = self.registry.add(
            source.name,
            {
                "version": version,
                "digest": source.digest,
                "uri": str(target),
                "metrics": dict(source.metrics),
                "run_id": (source.lineage or {}).get("run_id"),
                "lineage": lineage,
                "mlflow_run_id": mlflow_run_id,
            },
        )
        ctx.emit(Event("model.imported", f"{source.name}@{version}", source.digest))
        return self._version(source.name, {**entry, "aliases": []})

    # --- serving (another module; imported only when used) ------------------------------------
    def _serving_host_port(self) -> tuple[str, int | None]:
        d = self.project.deployment
        host = getattr(self.config, "host", "127.0.0.1")
        port = getattr(self.config, "port", None)
        if d is not None:
            host = d.host if "host" in d.model_fields_set else host
            port = d.port if d.port is not None else port
        return host, port

    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        from mlstack.local.serving import api, client

        host, port = self._serving_host_port()
        mon = self.project.monitoring
        rate = mon.sample_rate if mon is not None else DEFAULT_SAMPLE_RATE
        out = api.deploy(
            self.workdir, self.env, desired, ctx, host=host, port=port, sample_rate=rate
        )
        return client.deployed(desired.name, out)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        from mlstack.local.serving import api

        result: Mapping[str, VersionMetrics] = api.metrics(self.workdir, self.env, endpoint, since)
        return result

    def endpoint_status(self, endpoint: str) -> EndpointView | None:
        from mlstack.local.serving import client

        return client.view(self.workdir, self.env, endpoint)

    def predict(self, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
        from mlstack.local.serving import client

        model = self.project.model.name if self.project.model else endpoint
        return client.predict(self.workdir, self.env, endpoint, model, body, timeout)

    def drift_samples(
        self, model: str, version: str, endpoint: str, since: float, limit: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from mlstack.local.serving.artifact import ModelMeta, model_dir_from_uri
        from mlstack.local.serving.runtime import serving_dir
        from mlstack.local.stages.common import TRAIN

        entry = self.registry.find(model, version=version)
        if entry is None:
            raise BackendError(
                f"{model} v{version} is not registered in environment {self.env!r}",
                hint=f"mlstack models -e {self.env}",
            )
        try:
            columns = list(ModelMeta.read(model_dir_from_uri(str(entry["uri"]))).columns)
        except (OSError, ValueError, KeyError) as e:
            raise BackendError(
                f"cannot read the input columns of {model} v{version}: {e}",
                hint=f"its artifact is {entry['uri']}",
            ) from None
        store = ArtifactStore(self.workdir)
        train: Path | None = None
        for st in (entry.get("lineage") or {}).get("stages") or []:
            if st.get("output") and (store.object_path(st["output"]) / TRAIN).exists():
                train = store.object_path(st["output"]) / TRAIN
                break
        if train is None:
            raise BackendError(
                f"cannot find the training split of {model} v{version} in the artifact store",
                hint="drift needs a builtin/split stage; apply again to rebuild its outputs",
            )
        import pandas as pd

        frame = pd.read_parquet(train)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise BackendError(
                f"the training split of {model} v{version} lacks column(s) {missing}"
            )
        frame = frame[columns]
        if len(frame) > limit:
            frame = frame.sample(n=limit, random_state=0)
        reference: list[dict[str, Any]] = frame.to_dict("records")
        log = serving_dir(Path(self.workdir).resolve(), self.env, endpoint) / "requests.jsonl"
        live = _logged_rows([log.with_suffix(".1.jsonl"), log], columns, since)
        return reference, live[-limit:]

    # --- views for people -------------------------------------------------------------------
    def logs(self, stage: str | None = None) -> str:
        from mlstack.local.tracking import read_logs

        return read_logs(self.workdir, self.env, stage)

    def lineage(self, model: str, version: str) -> Lineage:
        from mlstack.local.tracking import lineage

        found = dict(lineage(self.workdir, self.env, model, version))
        name, _, number = str(found.pop("model")).partition("@")
        stages = str(found.pop("stages") or "")
        return Lineage(
            model=name,
            version=number,
            digest=str(found.pop("digest")),
            data_digest=found.pop("data_digest", None),
            run_id=found.pop("run", None),
            stages=tuple(s for s in stages.split(" -> ") if s),
            details={k: str(v) for k, v in found.items() if v is not None},
        )

    def ui_command(self) -> list[str]:
        from mlstack.local.tracking import ui_command

        return ui_command(self.workdir, self.env)

    # --- refresh / teardown -------------------------------------------------------------------
    def observe(self) -> Observed:
        """Infrastructure, pipeline, models and endpoints as they are on this machine.

        Each kind is listed exhaustively, and only with facts that state records in the same
        shape, so a recorded resource is drift only when it really changed: an environment
        folder removed, a pipeline definition rewritten, a model's versions gone, an endpoint
        whose router or model servers are not running (``apply --refresh`` deploys it again).
        """
        resources: dict[str, dict[str, Any]] = {}
        absent: dict[str, str] = {}
        if self.env_dir.is_dir():
            resources[f"infra.{self.env}"] = {"path": str(self.env_dir)}
        pipe = self.env_dir / "pipeline.json"
        if pipe.exists():
            try:
                resources[f"pipeline.{self.project.project}"] = {
                    "digest": json.loads(pipe.read_text())["digest"]
                }
            except (OSError, ValueError, KeyError):
                pass
        for name in self.registry.load()["models"]:
            vs = self.registry.versions(name)
            if vs:  # the newest version is the one the last apply registered
                resources[f"model.{name}"] = {
                    "version": str(vs[0]["version"]),
                    "digest": vs[0]["digest"],
                }
        serving = self.env_dir / "serving"
        if serving.is_dir():
            from mlstack.local.serving import api

            for d in sorted(p for p in serving.iterdir() if (p / "runtime.json").exists()):
                addr = f"endpoint.{d.name}"
                st = api.status(self.workdir, self.env, d.name)
                down = [
                    f"model server of version {v} (pid {i.get('pid')})"
                    for v, i in (st.get("versions") or {}).items()
                    if not i.get("alive")
                ]
                if not st.get("running"):
                    pid = (st.get("router") or {}).get("pid")
                    down.insert(0, f"router (pid {pid})" if pid else "router")
                if down:
                    absent[addr] = "not running: " + ", ".join(down) + " down"
                else:
                    resources[addr] = {"url": st.get("url")}
        return Observed(
            resources=resources,
            complete=False,  # runs and datasets are the engine's records, not looked at here
            kinds=frozenset({"infra", "pipeline", "model", "endpoint"}),
            absent=absent,
        )

    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        kind = kind or address.split(".", 1)[0]
        name = address.split(".", 1)[1] if "." in address else address
        if kind == "endpoint":
            from mlstack.local.serving import api

            api.stop(self.workdir, self.env, name)
        elif kind == "pipeline":
            (self.env_dir / "pipeline.json").unlink(missing_ok=True)
        elif kind == "model":
            had_mlflow = any(v.get("mlflow_run_id") for v in self.registry.versions(name))
            self.registry.remove_model(name)
            if had_mlflow and (self.env_dir / "mlflow.db").exists():
                self._mlflow(lambda t: t.delete_model(name)).result()
        elif kind == "infra":
            if LocalBackend._mlflow_pool is not None and self._tracker_future is not None:
                self._tracker_future = None
            shutil.rmtree(self.env_dir, ignore_errors=True)
        # run.* and dataset.*: outputs live in the shared, content-addressed store, which other
        # environments (and the next apply's cache) may still use; nothing to remove per env.


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


def _logged_rows(files: list[Path], columns: list[str], since: float) -> list[dict[str, Any]]:
    """Input rows of the answered inference requests the router sampled, oldest first.

    Shadow copies repeat a primary request, and refused requests (4xx/5xx) were never scored,
    so both are left out; a line that is not one of ours is skipped rather than fatal.
    """
    rows: list[dict[str, Any]] = []
    for f in files:
        try:
            lines = f.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or rec.get("role") != "primary":
                continue
            if not isinstance(rec.get("ts"), (int, float)) or rec["ts"] < since:
                continue
            if not isinstance(rec.get("status"), int) or not 200 <= rec["status"] < 300:
                continue
            body = rec.get("request")
            if isinstance(body, dict):
                rows.extend(_request_rows(body, columns))
    return rows


def _request_rows(body: dict[str, Any], columns: list[str]) -> list[dict[str, Any]]:
    """V1 ``instances`` (objects, or lists in column order) or V2 ``inputs`` as row dicts."""
    instances = body.get("instances")
    if isinstance(instances, list):
        out: list[dict[str, Any]] = []
        for inst in instances:
            if isinstance(inst, dict):
                out.append({c: inst.get(c) for c in columns})
            elif isinstance(inst, list) and len(inst) == len(columns):
                out.append(dict(zip(columns, inst, strict=True)))
        return out
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        return []
    tensors = {
        t.get("name"): t for t in inputs if isinstance(t, dict) and isinstance(t.get("data"), list)
    }
    if len(tensors) == 1:  # one [rows, columns] tensor, row-major
        (t,) = tensors.values()
        shape, data = t.get("shape") or [], _flat(t["data"])
        if t.get("name") not in columns and len(shape) == 2 and shape[1] == len(columns):
            width = len(columns)
            return [
                dict(zip(columns, data[r * width : (r + 1) * width], strict=True))
                for r in range(len(data) // width)
            ]
    by_column = {c: _flat(tensors[c]["data"]) for c in columns if c in tensors}
    if len(by_column) != len(columns):
        return []
    n = min(len(v) for v in by_column.values())
    return [{c: by_column[c][i] for c in columns} for i in range(n)]


def _flat(data: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in data:
        out.extend(_flat(v) if isinstance(v, list) else [v])
    return out


def _tail(path: str | None, n: int = LOG_TAIL_LINES) -> list[str]:
    if not path:
        return []
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if not ln.startswith("---")][-n:]
