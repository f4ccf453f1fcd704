"""What ``LocalBackend`` calls: deploy, metrics, status and stop for one endpoint.

Per-endpoint runtime files live in ``<workdir>/envs/<env>/serving/<endpoint>/``:
``runtime.json`` (what runs: the router, and each version's workers with their pids and ports),
``router.json`` (the router's configuration), ``router.log``, ``server-<version>-<n>.log`` (one
per worker) and ``requests.jsonl`` (sampled requests).

A version runs as ``workers`` model-server processes (the spec's ``replicas``, or the local
``workers`` setting). The router spreads a version's share of traffic over them and starts a dead
one again with the command recorded here, so the pids it reports are the current ones.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlstack_runtime.serving import META_FILE, MODEL_FILE, model_dir_from_uri

from mlstack.engine.backend import Backing, Context, EndpointState, Event, VersionMetrics
from mlstack.errors import BackendError
from mlstack.local.serving import runtime as rt

SERVER_MARK = "mlstack.local.serving.model_server"
ROUTER_MARK = "mlstack.local.serving.router"
READY_TIMEOUT = 90.0


def _dir(workdir: Path, env: str, endpoint: str) -> Path:
    return rt.serving_dir(Path(workdir).resolve(), env, endpoint)


def _server_mark(d: Path) -> tuple[str, ...]:
    """A model server of *this* endpoint folder (a copied project must not adopt another's)."""
    return (SERVER_MARK, f"--owner {d}")


def _router_mark(d: Path) -> tuple[str, ...]:
    return (ROUTER_MARK, f"--config {d / 'router.json'}")


def orphans(prefix: Path, keep: set[int]) -> list[tuple[int, tuple[str, str]]]:
    """Model servers and routers whose folder is ``prefix`` or under it, except ``keep``: the
    ones a killed apply started but never recorded in ``runtime.json`` (they hold a port and
    ~300 MB, and nothing else would ever stop them). Each with the marker that names it."""
    found: list[tuple[int, tuple[str, str]]] = []
    root = str(prefix)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found  # no /proc (macOS): recorded pids only
    for entry in entries:
        if not entry.isdigit() or int(entry) in keep or int(entry) == os.getpid():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        args = raw.decode(errors="replace").split("\0")
        for mark, flag in ((SERVER_MARK, "--owner"), (ROUTER_MARK, "--config")):
            if mark in args and flag in args[:-1]:
                where = args[args.index(flag) + 1]
                if where == root or where.startswith(root + os.sep):
                    if rt.alive(int(entry), (mark, f"{flag} {where}")):  # not a zombie
                        found.append((int(entry), (mark, f"{flag} {where}")))
    return found


def workers_of(info: dict[str, Any]) -> list[dict[str, Any]]:
    """A version's workers as ``runtime.json`` records them (one ``port``/``pid`` in files
    written before versions had several)."""
    if "workers" not in info and info.get("port"):
        info["workers"] = [{"port": info.pop("port"), "pid": info.pop("pid", None)}]
    return list(info.get("workers") or [])


def recorded_pids(state: dict[str, Any]) -> set[int]:
    pids = {
        int(w["pid"])
        for i in (state.get("versions") or {}).values()
        for w in workers_of(i)
        if w.get("pid")
    }
    router = (state.get("router") or {}).get("pid")
    return pids | ({int(router)} if router else set())


def reap(prefix: Path, keep: set[int]) -> list[int]:
    """Stop the ``orphans`` under ``prefix``; returns their pids."""
    found = orphans(prefix, keep)
    for pid, marker in found:
        rt.terminate(pid, marker)
    return [pid for pid, _ in found]


def runtime_state(workdir: Path, env: str, endpoint: str) -> dict[str, Any]:
    return rt.read_json(_dir(workdir, env, endpoint) / "runtime.json") or {}


def reap_env(workdir: Path, env: str) -> list[int]:
    """Every server and router of one environment's endpoints (destroying the environment)."""
    return reap(rt.serving_dir(Path(workdir).resolve(), env, "x").parent, set())


def _url(host: str, port: int) -> str:
    return f"http://{rt.admin_host(host)}:{port}"


def deploy(
    workdir: Path,
    env: str,
    desired: EndpointState,
    ctx: Context,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    sample_rate: float = 0.1,
    health_interval: float = 1.0,
    max_body_bytes: int = 8 * 1024 * 1024,
    workers: int | None = None,
) -> dict[str, Any]:
    """Make the endpoint hold exactly ``desired.backings``, each version as ``workers`` model
    servers (default: ``desired.replicas``); idempotent."""
    if not desired.backings:
        raise BackendError(
            f"endpoint {desired.name}: no model version to serve",
            hint="deploy at least one version, or destroy the endpoint",
        )
    d = _dir(workdir, env, desired.name)
    d.mkdir(parents=True, exist_ok=True)
    with rt.file_lock(d / "deploy.lock"):
        return _deploy_locked(
            d,
            desired,
            ctx,
            host,
            port,
            sample_rate,
            health_interval,
            max_body_bytes,
            max(1, workers if workers is not None else desired.replicas),
            workdir,
        )


def _deploy_locked(
    d: Path,
    desired: EndpointState,
    ctx: Context,
    host: str,
    port: int | None,
    sample_rate: float,
    health_interval: float,
    max_body_bytes: int,
    n_workers: int,
    workdir: Path,
) -> dict[str, Any]:
    state = rt.read_json(d / "runtime.json") or {}
    old_router = state.get("router", {})
    router_up = _router_alive(state, desired.name, d)
    chosen = port is not None
    if port is None:
        if state.get("port") and state.get("host") == host:
            port = int(state["port"])  # keep the endpoint's address across deploys and reboots
        else:
            port = rt.free_port(rt.admin_host(host))
    if router_up and (state.get("port") != port or state.get("host") != host):
        rt.terminate(old_router.get("pid"), _router_mark(d))  # the address changed
        router_up = False
    if not router_up and not chosen and not rt.port_free(host, port):
        port = rt.free_port(rt.admin_host(host))  # the remembered port went to someone else
    if not router_up and not rt.port_free(host, port):
        raise BackendError(
            f"endpoint {desired.name}: port {port} on {host} is taken by another program",
            hint="free the port or set deployment.port",
        )

    restarted = _adopt_restarts(state, d) if router_up else set()
    running: dict[str, dict[str, Any]] = {}
    for version, info in (state.get("versions") or {}).items():
        # a live process is kept even if it is slow to answer right now (busy under load):
        # restarting it would drop its requests; the router's health checks route around it,
        # and start a dead worker again
        if any(rt.alive(w.get("pid"), _server_mark(d)) for w in workers_of(info)):
            running[version] = info
    keep = {int(w["pid"]) for i in running.values() for w in workers_of(i) if w.get("pid")}
    for info in running.values():  # a worker the router just started again: let it come up
        for w in workers_of(info):
            if w["port"] in restarted:
                _wait_ready(w, d, ctx)
    if router_up:
        keep.add(int(old_router["pid"]))
    reap(d, keep)  # servers a killed deploy started without recording them
    replaced: list[dict[str, Any]] = []
    to_start: list[Backing] = []
    for b in desired.backings:
        info = running.get(b.version)
        if (
            info is not None
            and info.get("digest") == b.digest
            and info.get("uri") == b.uri
            and len(workers_of(info)) == n_workers
            and info.get("batching") == _batching(desired)
        ):
            continue
        if info is not None:
            replaced.append(running.pop(b.version))
        to_start.append(b)

    started = _start_servers(d, desired, to_start, ctx, n_workers, workdir)
    versions = {**running, **started}
    generation = int(state.get("generation", 0)) + 1
    config = {
        "endpoint": desired.name,
        "model": desired.model,
        "host": host,
        "port": port,
        "generation": generation,
        "sticky_key": desired.sticky_key,
        "backends": [
            {
                "version": b.version,
                "workers": workers_of(versions[b.version]),
                "weight": b.weight,
                "shadow": b.shadow,
            }
            for b in desired.backings
        ],
        "request_log": str(d / "requests.jsonl"),
        "sample_rate": sample_rate,
        "health_interval": health_interval,
        "max_body_bytes": max_body_bytes,
    }
    rt.write_json_atomic(d / "router.json", config)
    try:
        router_pid = _apply_router(
            d, desired.name, host, port, generation, old_router.get("pid") if router_up else None
        )
    except BackendError:
        for info in started.values():
            _stop_version(d, info)
        raise
    wanted = {b.version for b in desired.backings}
    for version, info in list(running.items()):
        if version not in wanted:
            ctx.emit(Event("log", desired.name, f"stopping version {version}"))
            _stop_version(d, info)
            del versions[version]
    for info in replaced:
        _stop_version(d, info)
    new_state = {
        "endpoint": desired.name,
        "model": desired.model,
        "host": host,
        "port": port,
        "generation": generation,
        "sticky_key": desired.sticky_key,
        "router": {"pid": router_pid},
        "versions": {v: versions[v] for v in wanted},
        "weights": desired.weights(),
        "shadow": {b.version: b.shadow for b in desired.backings if b.shadow},
        "updated": time.time(),
    }
    rt.write_json_atomic(d / "runtime.json", new_state)
    return _outputs(new_state)


def _batching(desired: EndpointState) -> list[float] | None:
    """What a version's servers were started with: [max_batch, max_latency], or None (off)."""
    if desired.max_batch > 1:
        return [desired.max_batch, desired.max_latency]
    return None


def _stop_version(d: Path, info: dict[str, Any]) -> None:
    for w in workers_of(info):
        rt.terminate(w.get("pid"), _server_mark(d))


def _wait_ready(worker: dict[str, Any], d: Path, ctx: Context) -> None:
    """Until the worker answers, exits, or ``READY_TIMEOUT`` passes (then the router's health
    checks keep routing around it)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and not ctx.cancel.is_set():
        if rt.ready(int(worker["port"]), timeout=1.0):
            return
        if not rt.alive(worker.get("pid"), _server_mark(d)):
            return
        time.sleep(0.1)


def _adopt_restarts(state: dict[str, Any], d: Path) -> set[int]:
    """Take the pids of workers the router started again into ``state`` (runtime.json still
    names the dead ones until a deploy writes it); the ports of those workers."""
    live = rt.http_json(
        int(state["port"]),
        "GET",
        "/_mlstack/state",
        host=rt.admin_host(state.get("host", "127.0.0.1")),
    )
    seen = (live or {}).get("backends") or {}
    restarted: set[int] = set()
    for version, info in (state.get("versions") or {}).items():
        pids = {w["port"]: w.get("pid") for w in (seen.get(version) or {}).get("workers") or []}
        for w in workers_of(info):
            if pids.get(w["port"]) and pids[w["port"]] != w.get("pid"):
                w["pid"] = pids[w["port"]]
                restarted.add(int(w["port"]))
    return restarted


def _outputs(state: dict[str, Any]) -> dict[str, Any]:
    host, port = state["host"], int(state["port"])
    return {
        "url": _url(host, port),
        "host": host,
        "port": port,
        "model": state["model"],
        "router_pid": state["router"]["pid"],
        "versions": {
            v: {
                # the first worker's, as before workers existed; every worker's below
                "port": workers_of(i)[0]["port"],
                "pid": workers_of(i)[0]["pid"],
                "digest": i.get("digest"),
                "workers": [{"port": w["port"], "pid": w["pid"]} for w in workers_of(i)],
            }
            for v, i in state["versions"].items()
        },
        "weights": state["weights"],
        "shadow": state.get("shadow", {}),
        "sticky_key": state.get("sticky_key"),
    }


def _router_alive(state: dict[str, Any], endpoint: str, d: Path) -> bool:
    pid = (state.get("router") or {}).get("pid")
    if not state.get("port") or not rt.alive(pid, _router_mark(d)):
        return False
    info = rt.http_json(
        int(state["port"]),
        "GET",
        "/_mlstack/state",
        host=rt.admin_host(state.get("host", "127.0.0.1")),
    )
    return bool(info and info.get("endpoint") == endpoint and info.get("pid") == pid)


def _check_artifact(b: Backing, workdir: Path) -> Path:
    model_dir = model_dir_from_uri(b.uri)
    if "://" in b.uri and not b.uri.startswith("file://"):
        # an `artifacts:` URL: served from the local cache, downloaded once by digest
        from mlstack.local.store import ArtifactStore

        found = ArtifactStore(workdir).local_dir(b.uri, b.digest)
        if found is None:
            raise BackendError(
                f"version {b.version}: its artifact {b.uri} is not in the artifacts store",
                hint="the run that trained it did not finish uploading; apply again to retrain",
            )
        model_dir = found
    missing = [f for f in (MODEL_FILE, META_FILE) if not (model_dir / f).is_file()]
    if missing:
        raise BackendError(
            f"version {b.version}: {model_dir} is not a model artifact "
            f"(missing {', '.join(missing)})",
            hint="the artifact is a folder with model.joblib and "
            "mlstack-model.json, as the train stage writes it",
        )
    return model_dir


def _start_servers(
    d: Path,
    desired: EndpointState,
    backings: list[Backing],
    ctx: Context,
    n_workers: int,
    workdir: Path,
) -> dict[str, dict[str, Any]]:
    """Start ``n_workers`` model servers per version, in parallel; all ready, or none left
    running."""
    if not backings:
        return {}
    dirs = {b.version: _check_artifact(b, Path(workdir)) for b in backings}
    batching = _batching(desired)

    def start(b: Backing, n: int) -> dict[str, Any]:
        log = d / f"server-{rt.safe_name(b.version)}-{n}.log"
        last_error = ""
        for _attempt in range(3):
            port = rt.free_port()
            args = [
                "-m",
                SERVER_MARK,
                "--model-dir",
                str(dirs[b.version]),
                "--name",
                desired.model,
                "--version",
                b.version,
                "--port",
                str(port),
                "--owner",
                str(d),
            ]
            if desired.name != desired.model:
                args += ["--alias", desired.name]
            if batching is not None:
                args += [
                    "--max-batch",
                    str(int(batching[0])),
                    "--max-latency-ms",
                    f"{batching[1] * 1000:g}",
                ]
            ctx.emit(
                Event(
                    "log",
                    desired.name,
                    f"starting model server {n + 1}/{n_workers} for version {b.version} "
                    f"on port {port}",
                )
            )
            pid = rt.spawn(args, log)
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if rt.ready(port, timeout=1.0):
                    return {"port": port, "pid": pid, "cmd": args, "log": str(log)}
                if not rt.alive(pid, _server_mark(d)):
                    break
                if ctx.cancel.is_set():
                    rt.terminate(pid, _server_mark(d))
                    raise BackendError(f"cancelled while starting version {b.version}")
                time.sleep(0.1)
            else:
                rt.terminate(pid, _server_mark(d))
                rt.raise_backend(
                    f"version {b.version}: model server not ready after {READY_TIMEOUT:.0f}s", log
                )
            last_error = rt.log_tail(log, 3)
            if "address already in use" not in last_error.lower():
                break
        rt.raise_backend(f"version {b.version}: model server exited while starting", log)
        raise AssertionError("unreachable")

    jobs = [(b, n) for b in backings for n in range(n_workers)]
    started: dict[tuple[str, int], dict[str, Any]] = {}
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=min(4, len(jobs))) as pool:
        futures = {(b.version, n): pool.submit(start, b, n) for b, n in jobs}
        for key, fut in futures.items():
            try:
                started[key] = fut.result()
            except BaseException as e:  # noqa: B036 - collected, re-raised below
                errors.append(e)
    if errors:
        for w in started.values():
            rt.terminate(w.get("pid"), _server_mark(d))
        raise errors[0]
    return {
        b.version: {
            "digest": b.digest,
            "uri": b.uri,
            "started": time.time(),
            "batching": batching,
            "workers": [started[(b.version, n)] for n in range(n_workers)],
        }
        for b in backings
    }


def _apply_router(
    d: Path, endpoint: str, host: str, port: int, generation: int, pid: int | None
) -> int:
    ahost = rt.admin_host(host)
    log = d / "router.log"
    if pid is not None:
        try:
            status, body = rt.http_call(
                port, "POST", "/_mlstack/reload", host=ahost, body=b"", timeout=60.0
            )
        except OSError as e:
            raise BackendError(
                f"endpoint {endpoint}: router did not take the new configuration: {e}"
            ) from None
        info = json.loads(body) if status == 200 else {}
        if info.get("generation") != generation:
            rt.raise_backend(
                f"endpoint {endpoint}: router refused the new configuration "
                f"({status}: {body[:300]!r})",
                log,
            )
        return pid
    pid = rt.spawn(["-m", ROUTER_MARK, "--config", str(d / "router.json")], log)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        info = rt.http_json(port, "GET", "/_mlstack/state", host=ahost, timeout=0.5)
        if info and info.get("pid") == pid and info.get("generation") == generation:
            return pid
        if not rt.alive(pid, _router_mark(d)):
            break
        time.sleep(0.05)
    rt.terminate(pid, _router_mark(d))
    rt.raise_backend(f"endpoint {endpoint}: router did not start on {host}:{port}", log)
    raise AssertionError("unreachable")


def metrics(workdir: Path, env: str, endpoint: str, since: float) -> dict[str, VersionMetrics]:
    """Per version, from the router: requests, server errors, latency percentiles since a time."""
    d = _dir(workdir, env, endpoint)
    state = rt.read_json(d / "runtime.json")
    if not state or not _router_alive(state, endpoint, d):
        raise BackendError(
            f"endpoint {endpoint} is not running in environment {env}",
            hint=f"mlstack apply -e {env}",
        )
    data = rt.http_json(
        int(state["port"]),
        "GET",
        f"/_mlstack/stats?since={since:.3f}",
        host=rt.admin_host(state["host"]),
        timeout=5.0,
    )
    if data is None:
        raise BackendError(f"endpoint {endpoint}: the router did not report metrics")
    merged: dict[str, dict[str, Any]] = {}
    for row in data["versions"]:
        m = merged.setdefault(
            row["version"], {"requests": 0, "errors": 0, "client_errors": 0, "roles": []}
        )
        m["roles"].append(row)
        m["requests"] += row["requests"]
        m["errors"] += row["errors"]
        m["client_errors"] += row["client_errors"]
    out: dict[str, VersionMetrics] = {}
    for version, m in merged.items():
        main = max(m["roles"], key=lambda r: r["requests"])
        n = m["requests"]
        out[version] = VersionMetrics(
            requests=n,
            errors=m["errors"],
            latency_p50=main["latency_p50"],
            latency_p90=main["latency_p90"],
            latency_p95=main["latency_p95"],
            latency_p99=main["latency_p99"],
            custom={
                "client_errors": float(m["client_errors"]),
                "client_error_rate": m["client_errors"] / n if n else 0.0,
                "shadow_requests": float(
                    sum(r["requests"] for r in m["roles"] if r["role"] == "shadow")
                ),
            },
        )
    return out


def status(workdir: Path, env: str, endpoint: str) -> dict[str, Any]:
    """URL, versions, traffic and the health of each process."""
    d = _dir(workdir, env, endpoint)
    state = rt.read_json(d / "runtime.json")
    if not state:
        return {"endpoint": endpoint, "running": False, "versions": {}}
    router_pid = (state.get("router") or {}).get("pid")
    router_ok = _router_alive(state, endpoint, d)
    live: dict[str, Any] = {}
    if router_ok:
        live = (
            rt.http_json(
                int(state["port"]), "GET", "/_mlstack/state", host=rt.admin_host(state["host"])
            )
            or {}
        )
    versions = {}
    for v, info in (state.get("versions") or {}).items():
        seen = (live.get("backends") or {}).get(v, {})
        by_port = {w["port"]: w for w in seen.get("workers") or []}
        workers = []
        for w in workers_of(info):
            router_view = by_port.get(w["port"], {})
            pid = router_view.get("pid") or w.get("pid")  # the router may have restarted it
            proc_ok = rt.alive(pid, _server_mark(d))
            workers.append(
                {
                    "port": w["port"],
                    "pid": pid,
                    "alive": proc_ok,
                    "healthy": proc_ok and rt.ready(int(w["port"])),
                    "router_sees_healthy": router_view.get("healthy"),
                    "inflight": router_view.get("inflight"),
                    "restarts": router_view.get("restarts", 0),
                }
            )
        versions[v] = {
            "port": workers[0]["port"] if workers else None,
            "pid": workers[0]["pid"] if workers else None,
            "digest": info.get("digest"),
            "workers": workers,
            "alive": any(w["alive"] for w in workers),
            "healthy": bool(workers) and all(w["healthy"] for w in workers),
            "router_sees_healthy": seen.get("healthy"),
            "weight": state.get("weights", {}).get(v, 0.0),
            "shadow": state.get("shadow", {}).get(v, 0.0),
            "batching": seen.get("batching"),
        }
    return {
        "endpoint": endpoint,
        "model": state.get("model"),
        "running": router_ok,
        "url": _url(state["host"], int(state["port"])),
        "host": state["host"],
        "port": state["port"],
        "router": {"pid": router_pid, "alive": router_ok},
        "generation": live.get("generation", state.get("generation")),
        "sticky_key": state.get("sticky_key"),
        "weights": state.get("weights", {}),
        "versions": versions,
        "healthy": router_ok and all(v["healthy"] for v in versions.values()),
    }


def stop(workdir: Path, env: str, endpoint: str) -> None:
    """Stop the router (it finishes requests in flight) and then every model server."""
    d = _dir(workdir, env, endpoint)
    if not d.exists():
        return
    with rt.file_lock(d / "deploy.lock"):
        state = rt.read_json(d / "runtime.json") or {}
        rt.terminate((state.get("router") or {}).get("pid"), _router_mark(d))
        for info in (state.get("versions") or {}).values():
            _stop_version(d, info)
        reap(d, set())  # and any a killed deploy left unrecorded
        for name in ("runtime.json", "router.json"):
            (d / name).unlink(missing_ok=True)
