"""The `local` backend's model versions: register a run's model (MLflow registry plus the
environment's index), import a promoted artifact by content, aliases, lineage, the MLflow UI.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from typing import Any

from mlstack.engine.backend import (
    Context,
    Event,
    Lineage,
    ModelVersion,
    RunResult,
)
from mlstack.errors import BackendError
from mlstack.local import pipelines
from mlstack.local.environment import LocalEnv
from mlstack.local.store import dir_digest


def register(env: LocalEnv, run: RunResult, ctx: Context) -> ModelVersion:
    from mlstack.local.tracking import run_record

    name = env.model_name()
    if not run.model_uri or not run.model_digest:
        raise BackendError(
            f"run {run.run_id} produced no model to register", hint="add a builtin/train stage"
        )
    existing = env.registry.find(name, digest=run.model_digest, run_id=run.run_id)
    if existing is not None:  # applying again after a crash: same run, same version
        return _version(env, name, existing)
    rec = run_record(env.workdir, env.env, run.run_id) or {}
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
        "environment": env.env,
    }
    mlflow_run = env.mlflow_runs.get(run.run_id)
    if mlflow_run is None:
        pipelines.log_run_async(env, run.run_id)
        mlflow_run = env.mlflow_runs.get(run.run_id)
    try:
        mlflow_run_id = mlflow_run.result() if mlflow_run is not None else None
    except Exception as e:  # noqa: BLE001 - tracking failed: say so, register nothing
        raise BackendError(
            f"MLflow tracking failed for run {run.run_id}: {type(e).__name__}: {e}",
            hint=f"check {env.env_dir / 'mlflow.db'}",
        ) from e
    tags = {
        "mlstack.digest": run.model_digest,
        "mlstack.data_digest": str(lineage["data_digest"]),
        "mlstack.run_id": run.run_id,
        "mlstack.environment": env.env,
        "mlstack.lineage": json.dumps(lineage, default=str)[:5000],
    }
    version = _create_version(env, name, mlflow_run_id, tags)
    entry = env.registry.add(
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
    return _version(env, name, {**entry, "aliases": []})


def _create_version(
    env: LocalEnv, name: str, mlflow_run_id: str | None, tags: Mapping[str, str]
) -> str:
    if mlflow_run_id is None:
        return env.registry.next_version(name)
    version: str = env.mlflow(
        lambda t: t.create_version(name, mlflow_run_id, "model", tags)
    ).result()
    # MLflow's numbering wins, but never reuse a number this index already holds.
    if env.registry.find(name, version=version) is not None:
        return env.registry.next_version(name)
    return version


def _version(env: LocalEnv, name: str, v: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=name,
        version=str(v["version"]),
        digest=v["digest"],
        uri=v["uri"],
        metrics=dict(v.get("metrics") or {}),
        aliases=tuple(v.get("aliases") or ()),
        lineage=dict(v.get("lineage") or {}),
    )


def set_alias(env: LocalEnv, model: str, alias: str, version: str, ctx: Context) -> None:
    reg = env.registry
    v = reg.find(model, version=version)
    if v is None:
        raise BackendError(
            f"cannot point {alias!r} at {model} v{version}: no such version "
            f"in environment {env.env!r}"
        )
    reg.set_alias(model, alias, version)
    if v.get("mlflow_run_id") and (env.env_dir / "mlflow.db").exists():
        env.mlflow(lambda t: t.set_alias(model, alias, version)).result()


def versions(env: LocalEnv, model: str) -> list[ModelVersion]:
    return [_version(env, model, v) for v in env.registry.versions(model)]


def import_version(env: LocalEnv, source: ModelVersion, ctx: Context) -> ModelVersion:
    store = env.store()
    path = store.local_dir(source.uri, source.digest)  # a remote object: fetched by digest
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
    target = store.object_path(actual)
    if not target.is_dir():  # bring it into this project's store, by content
        store.ensure()
        staging = store.new_staging("import", 0)
        shutil.rmtree(staging)
        shutil.copytree(path, staging)
        store.commit_dir(staging)
    if store.remote is not None and not store.remote.has_object(actual):
        store.remote.put_object(actual, target)
    existing = env.registry.find(source.name, digest=source.digest)
    if (
        existing is not None
        and (existing.get("lineage") or {}).get("promoted_from", {}).get("version")
        == source.version
    ):
        return _version(env, source.name, existing)
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
        "environment": env.env,
    }
    tags = {
        "mlstack.digest": source.digest,
        "mlstack.promoted_from": f"{source.name}@{source.version}",
        "mlstack.lineage": json.dumps(lineage, default=str)[:5000],
    }
    try:
        mlflow_run_id = env.mlflow(lambda t: t.log_run(record, {}, [("model", target)])).result()
    except Exception as e:  # noqa: BLE001 - tracking failed: say so, import nothing
        raise BackendError(
            f"MLflow tracking failed while importing {source.name} v{source.version}: "
            f"{type(e).__name__}: {e}"
        ) from e
    version = _create_version(env, source.name, mlflow_run_id, tags)
    entry = env.registry.add(
        source.name,
        {
            "version": version,
            "digest": source.digest,
            "uri": store.uri(actual),
            "metrics": dict(source.metrics),
            "run_id": (source.lineage or {}).get("run_id"),
            "lineage": lineage,
            "mlflow_run_id": mlflow_run_id,
        },
    )
    ctx.emit(Event("model.imported", f"{source.name}@{version}", source.digest))
    return _version(env, source.name, {**entry, "aliases": []})


def lineage(env: LocalEnv, model: str, version: str) -> Lineage:
    from mlstack.local.tracking import lineage

    found = dict(lineage(env.workdir, env.env, model, version))
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


def ui_command(env: LocalEnv) -> list[str]:
    from mlstack.local.tracking import ui_command

    return ui_command(env.workdir, env.env)
