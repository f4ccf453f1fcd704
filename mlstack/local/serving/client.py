"""The local endpoint seen from outside: its view for ``status`` and a request to its router,
V1 (``/v1/models/<model>:predict``) or V2 (``/v2/models/<model>/infer``) over HTTP.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlstack.engine.backend import EndpointView, Prediction, VersionServing
from mlstack.errors import BackendError
from mlstack.local.serving import api
from mlstack.local.serving import runtime as rt


def view(workdir: Path, env: str, endpoint: str) -> EndpointView | None:
    """What ``status`` shows: URL, versions with their share, health, process of each."""
    st = api.status(workdir, env, endpoint)
    if "url" not in st:
        return None
    running = bool(st.get("running"))
    versions = tuple(
        VersionServing(
            version=v,
            weight=float(info.get("weight") or 0.0),
            mirrored=float(info.get("shadow") or 0.0),
            healthy=bool(info.get("healthy")),
            where=_where(info.get("workers") or []),
        )
        for v, info in sorted((st.get("versions") or {}).items())
    )
    router = st.get("router") or {}
    return EndpointView(
        name=endpoint,
        url=str(st["url"]),
        status=_state(st, running),
        versions=versions,
        healthy=bool(st.get("healthy")),
        sticky_key=st.get("sticky_key"),
        details={
            "router": f"port {st['port']}" + ("" if router.get("alive") else " (not running)"),
            "router pid": str(router.get("pid")),
            "generation": str(st.get("generation")),
        },
    )


def _where(workers: list[Mapping[str, Any]]) -> str:
    """Each worker of a version: its port and pid, and what is wrong with it if anything."""
    parts = []
    for w in workers:
        part = f"port {w['port']}, pid {w['pid']}"
        if "healthy" in w and not w["healthy"]:
            part += " (not answering)" if w.get("alive") else " (exited)"
        if w.get("restarts"):
            part += f" (restarted {w['restarts']}x)"
        parts.append(part)
    return "; ".join(parts)


def _state(st: Mapping[str, Any], running: bool) -> str:
    """healthy, DEGRADED (some version does not answer) or DOWN, with the reason."""
    if st.get("healthy"):
        return "healthy"
    if not running:
        return "DOWN (the router is not running; `mlstack apply` starts it again)"
    versions = st.get("versions") or {}

    def answering(i: Mapping[str, Any]) -> bool:  # some worker of the version answers
        return bool(i.get("healthy")) or any(w.get("healthy") for w in i.get("workers") or [])

    bad = [f"v{v}" for v, i in versions.items() if not answering(i)]
    partly = [f"v{v}" for v, i in versions.items() if answering(i) and not i.get("healthy")]
    serving = [v for v, i in versions.items() if answering(i) and i.get("weight")]
    whys = []
    if bad:
        whys.append(f"{', '.join(bad)} not answering; requests routed there fail")
    if partly:
        whys.append(
            f"a worker of {', '.join(partly)} not answering; the router sends its requests to "
            "the others and starts a dead one again"
        )
    why = "; ".join(whys) or "a version not answering; requests routed there fail"
    word = "DEGRADED" if serving else "DOWN"
    return f"{word} ({why}; `mlstack apply` restarts it)"


def deployed(endpoint: str, out: Mapping[str, Any]) -> EndpointView:
    """The view of an endpoint ``api.deploy`` just brought up (it waits until all are ready)."""
    weights, shadow = out.get("weights") or {}, out.get("shadow") or {}
    return EndpointView(
        name=endpoint,
        url=str(out["url"]),
        status="healthy",
        versions=tuple(
            VersionServing(
                version=v,
                weight=float(weights.get(v, 0.0)),
                mirrored=float(shadow.get(v, 0.0)),
                healthy=True,
                where=_where(info.get("workers") or [info]),
            )
            for v, info in sorted((out.get("versions") or {}).items())
        ),
        healthy=True,
        sticky_key=out.get("sticky_key"),
        details={"router": f"port {out['port']}", "router pid": str(out["router_pid"])},
    )


def predict(
    workdir: Path, env: str, endpoint: str, model: str, body: Mapping[str, Any], timeout: float
) -> Prediction:
    """POST the request to the endpoint's router: V2 when ``body`` has ``inputs``, else V1.

    The router's address comes from ``runtime.json``; nothing else is asked first (a request
    that finds no router says the endpoint is not running)."""
    st = api.runtime_state(workdir, env, endpoint)
    not_running = BackendError(
        f"endpoint {endpoint} is not running in {env}",
        hint=f"mlstack status -e {env}; mlstack apply -e {env} brings it back",
    )
    if not st.get("port"):
        raise not_running
    host, port = rt.admin_host(str(st.get("host", "127.0.0.1"))), int(st["port"])
    path = f"/v2/models/{model}/infer" if "inputs" in body else f"/v1/models/{model}:predict"
    target = f"http://{host}:{port}{path}"
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        resp = conn.getresponse()
        raw, status, version = resp.read(), resp.status, resp.getheader("x-mlstack-version")
    except ConnectionRefusedError:
        raise not_running from None
    except (OSError, http.client.HTTPException) as e:
        raise BackendError(
            f"cannot reach {target}: {e}", hint=f"is it running? mlstack status -e {env}"
        ) from None
    finally:
        conn.close()
    if status != 200:
        raise BackendError(f"the endpoint answered {status}: {raw.decode(errors='replace')[:500]}")
    try:
        answer = json.loads(raw)
    except ValueError:
        raise BackendError(
            f"the endpoint answered with something that is not JSON: {raw[:200]!r}"
        ) from None
    return Prediction(body=answer, version=version, target=target)
