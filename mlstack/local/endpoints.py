"""The `local` backend's endpoints: deploy, metrics, status and requests through
``mlstack.local.serving`` (imported only when an endpoint is touched). What monitoring reads
(the router's sampled request log) is ``mlstack.local.capture``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlstack.engine.backend import (
    Context,
    EndpointState,
    EndpointView,
    Prediction,
    VersionMetrics,
)
from mlstack.local.environment import LocalEnv

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
