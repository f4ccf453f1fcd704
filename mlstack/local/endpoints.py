"""The `local` backend's endpoints: deploy, metrics, status and requests through
``mlstack.local.serving`` (imported only when an endpoint is touched), and the rows drift
monitoring compares.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import (
    Context,
    EndpointState,
    EndpointView,
    Prediction,
    VersionMetrics,
)
from mlstack.errors import BackendError
from mlstack.local.environment import LocalEnv
from mlstack.local.store import ArtifactStore

if TYPE_CHECKING:
    from mlstack_runtime.serving import ModelMeta

DEFAULT_SAMPLE_RATE = 0.1  # share of requests the router logs when the spec has no monitoring


def deploy(env: LocalEnv, desired: EndpointState, ctx: Context) -> EndpointView:
    from mlstack.local.serving import api, client

    host, port = env.serving_host_port()
    mon = env.project.monitoring
    rate = mon.sample_rate if mon is not None else DEFAULT_SAMPLE_RATE
    out = api.deploy(
        env.workdir,
        env.env,
        desired,
        ctx,
        host=host,
        port=port,
        sample_rate=rate,
        workers=env.serving_workers(desired.replicas),
    )
    return client.deployed(desired.name, out)


def metrics(env: LocalEnv, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
    from mlstack.local.serving import api

    result: Mapping[str, VersionMetrics] = api.metrics(env.workdir, env.env, endpoint, since)
    return result


def endpoint_status(env: LocalEnv, endpoint: str) -> EndpointView | None:
    from mlstack.local.serving import client

    return client.view(env.workdir, env.env, endpoint)


def predict(env: LocalEnv, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
    from mlstack.local.serving import client

    model = env.project.model.name if env.project.model else endpoint
    return client.predict(env.workdir, env.env, endpoint, model, body, timeout)


def drift_samples(
    env: LocalEnv, model: str, version: str, endpoint: str, since: float, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from mlstack_runtime.artifacts import TRAIN
    from mlstack_runtime.serving import ModelMeta, model_dir_from_uri

    from mlstack.local.serving.runtime import serving_dir

    entry = env.registry.find(model, version=version)
    if entry is None:
        raise BackendError(
            f"{model} v{version} is not registered in environment {env.env!r}",
            hint=f"mlstack models -e {env.env}",
        )
    try:
        meta = ModelMeta.read(model_dir_from_uri(str(entry["uri"])))
        columns = list(meta.columns)
    except (OSError, ValueError, KeyError) as e:
        raise BackendError(
            f"cannot read the input columns of {model} v{version}: {e}",
            hint=f"its artifact is {entry['uri']}",
        ) from None
    store = ArtifactStore(env.workdir)
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
        raise BackendError(f"the training split of {model} v{version} lacks column(s) {missing}")
    frame = frame[columns]
    if len(frame) > limit:
        frame = frame.sample(n=limit, random_state=0)
    reference: list[dict[str, Any]] = frame.to_dict("records")
    log = serving_dir(Path(env.workdir).resolve(), env.env, endpoint) / "requests.jsonl"
    live = _logged_rows([log.with_suffix(".1.jsonl"), log], meta, since)
    return reference, live[-limit:]


def _logged_rows(files: list[Path], meta: ModelMeta, since: float) -> list[dict[str, Any]]:
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
                rows.extend(_request_rows(body, meta))
    return rows


def _request_rows(body: dict[str, Any], meta: ModelMeta) -> list[dict[str, Any]]:
    """The rows of a logged V1 or V2 request body, decoded as the model server decoded them
    (``mlstack_runtime.serving``); a body it would refuse gives none."""
    from mlstack_runtime.serving import BadInput, decode_payload

    try:
        rows = decode_payload(body, meta)
    except BadInput:
        return []
    return [dict(zip(meta.columns, row, strict=True)) for row in rows]
