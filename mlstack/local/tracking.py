"""MLflow on SQLite: runs (params, metrics, artifacts) and registered model versions.

The store lives at ``<workdir>/envs/<env>/mlflow.db`` with artifacts under ``envs/<env>/mlruns``.
Importing MLflow and creating its tables costs seconds, so the backend warms it up on a
background thread while the pipeline runs, and nothing here runs on a no-op apply. The model
version is created from the artifact directory we built (logged as run artifacts): no
``mlflow.sklearn.log_model``, whose pip-requirement inference alone costs ~3.6 s.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlstack.local.registry import env_dir

REPORT_FILES = (
    "dataset.json",
    "validation.json",
    "split.json",
    "features.json",
    "best_params.json",
    "metrics.json",
)


def tracking_uri(workdir: str | Path, env: str) -> str:
    return f"sqlite:///{(env_dir(workdir, env) / 'mlflow.db').resolve()}"


def artifact_root(workdir: str | Path, env: str) -> str:
    return (env_dir(workdir, env) / "mlruns").resolve().as_uri()


class Tracker:
    """One MLflow client bound to one environment's store."""

    def __init__(self, workdir: str | Path, env: str, experiment: str) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from mlflow import MlflowClient

            # MLflow sets its loggers up on import; its INFO lines would land in the CLI output.
            for name in ("mlflow", "alembic"):
                logging.getLogger(name).setLevel(logging.WARNING)

            env_dir(workdir, env).mkdir(parents=True, exist_ok=True)
            self.client = MlflowClient(
                tracking_uri=tracking_uri(workdir, env), registry_uri=tracking_uri(workdir, env)
            )
            exp = self.client.get_experiment_by_name(experiment)
            self.experiment_id = (
                exp.experiment_id
                if exp
                else self.client.create_experiment(
                    experiment, artifact_location=artifact_root(workdir, env)
                )
            )

    def log_run(
        self,
        record: Mapping[str, Any],
        params: Mapping[str, Any],
        artifacts: Iterable[tuple[str, Path]],
    ) -> str:
        from mlflow.entities import Metric, Param, RunTag

        c = self.client
        run = c.create_run(
            self.experiment_id,
            run_name=str(record["run_id"]),
            tags={
                "mlstack.run_id": str(record["run_id"]),
                "mlstack.data_digest": str(record.get("data_digest")),
                "mlstack.pipeline_digest": str(record.get("pipeline_digest")),
                "mlstack.environment": str(record.get("environment")),
            },
        )
        rid = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in (record.get("metrics") or {}).items()]
        ps = [Param(k[:250], str(v)[:6000]) for k, v in params.items()]
        tags = [
            RunTag(f"mlstack.stage.{n}", s["status"])
            for n, s in (record.get("stages") or {}).items()
        ]
        for i in range(0, max(len(ps), 1), 100):
            c.log_batch(
                rid,
                metrics=metrics if i == 0 else [],
                params=ps[i : i + 100],
                tags=tags if i == 0 else [],
            )
        for name, path in artifacts:
            if path.is_dir():
                c.log_artifacts(rid, str(path), name)
            elif path.is_file():
                c.log_artifact(rid, str(path), name)
        c.set_terminated(rid, "FINISHED" if record.get("status") == "succeeded" else "FAILED")
        return str(rid)

    def create_version(
        self,
        name: str,
        mlflow_run_id: str,
        artifact_path: str,
        tags: Mapping[str, str],
        description: str = "",
    ) -> str:
        from mlflow.exceptions import MlflowException

        c = self.client
        try:
            c.get_registered_model(name)
        except MlflowException:
            c.create_registered_model(name, description="registered by mlstack")
        run = c.get_run(mlflow_run_id)
        mv = c.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/{artifact_path}",
            run_id=mlflow_run_id,
            tags=dict(tags),
            description=description,
        )
        return str(mv.version)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def delete_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.delete_registered_model(name)
        except MlflowException:
            pass


def flatten_params(stages: list[Mapping[str, Any]]) -> dict[str, Any]:
    """``train.params.max_depth: 6`` style names for every stage's ``with:``."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        else:
            out[prefix] = json.dumps(value) if isinstance(value, (list, dict)) else value

    for s in stages:
        for k, v in (s.get("with") or {}).items():
            walk(f"{s['name']}.{k}", v)
    return out


# --- views the CLI calls (`mlstack logs / models / lineage / ui`); no MLflow import ----------


def read_logs(workdir: str | Path, env: str, stage: str | None = None) -> str:
    from mlstack.local.runner import read_logs as _read

    return _read(workdir, env, stage)


def run_record(workdir: str | Path, env: str, run_id: str) -> dict[str, Any] | None:
    p = env_dir(workdir, env) / "runs" / f"{run_id}.json"
    try:
        rec: dict[str, Any] = json.loads(p.read_text())
        return rec
    except (OSError, ValueError):
        return None


def list_models(workdir: str | Path, env: str) -> list[dict[str, Any]]:
    """Every registered version in the environment, newest first, with metrics and aliases."""
    from mlstack.local.registry import Registry

    reg = Registry(workdir, env)
    rows = []
    for name in sorted(reg.load()["models"]):
        for v in reg.versions(name):
            rows.append(
                {
                    "model": name,
                    "version": v["version"],
                    "aliases": v["aliases"],
                    "digest": v["digest"],
                    "metrics": v.get("metrics", {}),
                    "run_id": v.get("run_id"),
                    "created": v.get("created"),
                }
            )
    return rows


def lineage(workdir: str | Path, env: str, model: str, version: str) -> dict[str, Any]:
    """data digest -> pipeline run -> stages -> model version (and where a promotion came from)."""
    from mlstack.errors import BackendError
    from mlstack.local.registry import Registry

    reg = Registry(workdir, env)
    v = reg.find(model, version=str(version).lstrip("v"))
    if v is None:
        known = ", ".join(str(x["version"]) for x in reg.versions(model)) or "none"
        raise BackendError(
            f"no version {version} of model {model!r} in environment {env!r}",
            hint=f"registered versions: {known} (see `mlstack models -e {env}`)",
        )
    lin = dict(v.get("lineage") or {})
    out: dict[str, Any] = {
        "model": f"{model}@{v['version']}",
        "digest": v["digest"],
        "aliases": ", ".join(v["aliases"]) or "-",
    }
    if lin.get("promoted_from"):
        src = lin["promoted_from"]
        out["promoted_from"] = (
            f"{src.get('environment', '?')}: {src.get('name')}@{src.get('version')}"
        )
    out["data_digest"] = lin.get("data_digest")
    ds = lin.get("dataset") or {}
    if ds:
        out["dataset"] = (
            f"{ds.get('source')} ({ds.get('rows')} rows, {len(ds.get('schema', {}))} columns)"
        )
    out["run"] = lin.get("run_id")
    out["pipeline_digest"] = lin.get("pipeline_digest")
    stages = lin.get("stages") or []
    if isinstance(stages, Mapping):
        stages = [{"name": n, **v} for n, v in stages.items()]
    out["stages"] = " -> ".join(
        f"{s['name']} ({s.get('status')}, {str(s.get('output') or '-').split(':')[-1][:12]})"
        for s in stages
    )
    out["metrics"] = ", ".join(
        f"{k}={float(x):.4f}" for k, x in sorted((v.get("metrics") or {}).items())
    )
    out["mlflow_run"] = v.get("mlflow_run_id")
    return out


def ui_command(workdir: str | Path, env: str) -> list[str]:
    """The MLflow UI on this environment's store, bound to loopback only."""
    import os
    import sys

    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    head = [exe] if os.path.exists(exe) else [sys.executable, "-m", "mlflow"]
    return [
        *head,
        "ui",
        "--backend-store-uri",
        tracking_uri(workdir, env),
        "--default-artifact-root",
        artifact_root(workdir, env),
        "--host",
        "127.0.0.1",
    ]
