"""The endpoint's traffic router: one process on the endpoint's address, in front of the model
servers of every version.

Run as ``python -m mlstack.local.serving.router --config FILE``. What it does per request: parse
with httptools, pick a version (weighted, or sticky by a request header), forward over a
keep-alive pool, answer, count. Optionally mirror the request to a shadow version after the
primary's answer is written (its answer is counted and dropped) and append a sampled line to a
JSONL request log for drift monitoring.

Configuration is a JSON file written by ``api.deploy``. A reload (``POST /_mlstack/reload`` from
loopback, or SIGHUP) builds a new routing table and swaps one reference: requests already routed
finish on the backend they were given, and the reload answers only when versions that left the
table have no request in flight, so the caller may stop their servers without dropping any.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import deque
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from zlib import crc32

import httptools

from mlstack.local.serving import runtime as rt
from mlstack.local.serving.http1 import HOP_BY_HOP, Pool, Response, build_request
from mlstack.local.serving.stats import BatchStats, VersionStats, prometheus_text

DEFAULT_MAX_BODY = 8 * 1024 * 1024
# What one client may hold: the request line and headers (bytes and count), and how long it may
# take to send them, to send the body, and to stay idle between requests (slowloris and
# forgotten keep-alives). The router's config file may override each.
LIMITS: dict[str, float] = {
    "max_header_bytes": 64 * 1024,
    "max_headers": 100,
    "header_timeout": 10.0,
    "body_timeout": 30.0,
    "idle_timeout": 30.0,
}
MAX_SHADOW_INFLIGHT = 64
REQUEST_LOG_MAX_BYTES = 64 * 1024 * 1024
SAMPLE_BODY_LIMIT = 64 * 1024
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}
SERVER_MODULE = "mlstack.local.serving.model_server"
BATCH_HEADER = b"x-mlstack-batch"  # "<rows in the batch>;<ms the request queued>"


def _is_inference(method: bytes, path: bytes) -> bool:
    return method == b"POST" and (path.endswith(b"/infer") or path.endswith(b":predict"))


class Backend:
    """One model-server process (a worker) of one version, with its keep-alive pool.

    ``cmd`` and ``log`` (what started it) let the router start it again on the same port when
    it died; without them (a server the router did not get a command for) it is only avoided.
    """

    __slots__ = (
        "version",
        "port",
        "pool",
        "host",
        "healthy",
        "failures",
        "last_check",
        "pid",
        "cmd",
        "log",
        "restarts",
    )

    def __init__(
        self,
        version: str,
        port: int,
        pid: int | None = None,
        cmd: list[str] | None = None,
        log: str | None = None,
    ) -> None:
        self.version = version
        self.host = (f"127.0.0.1:{port}").encode()
        self.port = port
        self.pool = Pool("127.0.0.1", port)
        self.healthy = True  # deploy checked readiness before putting it in the table
        self.failures = 0
        self.last_check = 0.0
        self.pid = pid
        self.cmd = cmd
        self.log = log
        self.restarts = 0

    def marker(self) -> tuple[str, ...]:
        """What its command line holds: the model server module and its port."""
        return (SERVER_MODULE, f"--port {self.port} ")

    def view(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "pid": self.pid,
            "healthy": self.healthy,
            "inflight": self.pool.inflight,
            "restarts": self.restarts,
            "last_check": self.last_check,
        }


class Version:
    """The workers of one version. Weights choose the version; then the healthy worker with
    the fewest requests in flight takes the request (ties go round-robin)."""

    __slots__ = ("version", "workers", "_next")

    def __init__(self, version: str, workers: list[Backend]) -> None:
        self.version = version
        self.workers = workers
        self._next = 0

    @property
    def healthy(self) -> bool:
        return any(w.healthy for w in self.workers)

    @property
    def inflight(self) -> int:
        return sum(w.pool.inflight for w in self.workers)

    def choose(self, exclude: tuple[Backend, ...] = ()) -> Backend | None:
        workers = self.workers
        n = len(workers)
        if n == 1:
            return None if workers[0] in exclude else workers[0]
        start = self._next
        self._next = (start + 1) % n
        best: Backend | None = None
        for i in range(n):
            w = workers[(start + i) % n]
            if w in exclude:
                continue
            if (
                best is None
                or (w.healthy and not best.healthy)
                or (w.healthy == best.healthy and w.pool.inflight < best.pool.inflight)
            ):
                best = w
        return best


class Table:
    """One immutable routing decision table; a reload replaces the whole object."""

    def __init__(self, config: dict[str, Any], backends: dict[str, Version]) -> None:
        self.generation = int(config.get("generation", 0))
        sticky = config.get("sticky_key")
        self.sticky_key: bytes | None = sticky.lower().encode() if sticky else None
        self.backends = backends
        self.primaries: list[tuple[float, Version]] = []
        total = 0.0
        for b in sorted(config.get("backends", []), key=lambda x: str(x["version"])):
            w = float(b.get("weight", 0))
            if w > 0:
                total += w
                self.primaries.append((total, backends[str(b["version"])]))
        self.total = total
        self.weights = {
            str(b["version"]): float(b.get("weight", 0)) for b in config.get("backends", [])
        }
        self.shadows = [
            (float(b["shadow"]) / 100.0, backends[str(b["version"])])
            for b in config.get("backends", [])
            if float(b.get("shadow", 0)) > 0
        ]

    def pick(self, sticky_value: bytes | None) -> Version | None:
        """The version a request goes to, by weight alone: how many workers each version has
        does not change its share."""
        if not self.primaries:
            return None
        if sticky_value is not None:
            point = (crc32(sticky_value) % 10000) / 10000.0 * self.total
        else:
            point = random.random() * self.total
        chosen = self.primaries[-1][1]
        for upper, b in self.primaries:
            if point < upper:
                chosen = b
                break
        if not chosen.healthy:
            alive = [(u, b) for u, b in self.primaries if b.healthy]
            if alive:
                # keep the weights' proportions among the healthy ones
                prev, spans = 0.0, []
                for u, b in self.primaries:
                    if b.healthy:
                        spans.append((u - prev, b))
                    prev = u
                r = random.random() * sum(s for s, _ in spans)
                for s, b in spans:
                    if r < s:
                        return b
                    r -= s
                return spans[-1][1]
        return chosen


def worker_configs(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """A config entry's workers: ``workers: [{port, pid, cmd, log}]``, or one ``port``."""
    workers = entry.get("workers")
    if workers:
        return [dict(w) for w in workers]
    return [{"port": int(entry["port"])}]


class RequestLog:
    """Sampled requests as JSON lines, buffered, flushed once a second, rotated by size."""

    def __init__(self, path: Path | None, sample_rate: float) -> None:
        self.path = path
        self.sample_rate = sample_rate if path else 0.0
        self.buffer: list[str] = []

    def maybe(
        self,
        version: str,
        role: str,
        path: bytes,
        status: int,
        latency: float,
        request: bytes,
        response: bytes,
        request_id: str | None = None,
    ) -> None:
        if self.sample_rate <= 0 or random.random() >= self.sample_rate:
            return
        entry = {
            "ts": round(time.time(), 3),
            "id": request_id,
            "version": version,
            "role": role,
            "path": path.decode("latin-1"),
            "status": status,
            "latency_ms": round(latency * 1000, 3),
            "request": _json_or_text(request),
            "response": _json_or_text(response),
        }
        self.buffer.append(json.dumps(entry, separators=(",", ":")))

    def flush(self) -> None:
        if not self.buffer or self.path is None:
            return
        lines, self.buffer = self.buffer, []
        try:
            if self.path.exists() and self.path.stat().st_size > REQUEST_LOG_MAX_BYTES:
                os.replace(self.path, self.path.with_suffix(".1.jsonl"))
            with self.path.open("a") as f:
                f.write("\n".join(lines) + "\n")
        except OSError:
            pass  # a full disk must not take serving down


def _json_or_text(body: bytes) -> Any:
    if len(body) > SAMPLE_BODY_LIMIT:
        return {"truncated": True, "bytes": len(body)}
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


class Router:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config: dict[str, Any] = {}
        self.workers: dict[tuple[str, int], Backend] = {}
        self.table = Table({}, {})
        self.stats: dict[tuple[str, str], VersionStats] = {}
        self.batching: dict[str, BatchStats] = {}
        self.retried = 0  # requests answered by another worker after one failed to connect
        self.endpoint = ""
        self.model = ""
        self.max_body = DEFAULT_MAX_BODY
        self.limits = dict(LIMITS)
        self.timeout = 60.0
        self.health_interval = 1.0
        self.request_log = RequestLog(None, 0.0)
        self.shadow_inflight = 0
        self.shadow_dropped = 0
        self.shadow_sent = 0
        self.answered = 0  # inference requests answered by a primary
        # the event loop keeps only weak references to tasks: hold the mirrors until they end,
        # or a collected task silently loses its shadow copy
        self._mirrors: set[asyncio.Future[None]] = set()
        self.started = time.time()
        self.connections: set[ClientConnection] = set()
        self.active = 0
        self.closing = False
        self._reload_lock: asyncio.Lock | None = None

    # configuration ----------------------------------------------------------------------
    def load(self) -> list[Backend]:
        """Read the config file and swap the table; returns backends that left it."""
        config = json.loads(self.config_path.read_text())
        self.config = config
        self.endpoint = str(config.get("endpoint", ""))
        self.model = str(config.get("model", ""))
        self.max_body = int(config.get("max_body_bytes", DEFAULT_MAX_BODY))
        self.limits = {k: float(config.get(k, v)) for k, v in LIMITS.items()}
        self.timeout = float(config.get("timeout", 60.0))
        self.health_interval = float(config.get("health_interval", 1.0))
        log_path = config.get("request_log")
        rate = float(config.get("sample_rate", 0.0))
        if log_path != str(self.request_log.path or "") or rate != self.request_log.sample_rate:
            self.request_log.flush()
            self.request_log = RequestLog(Path(log_path) if log_path else None, rate)
        wanted: dict[tuple[str, int], Backend] = {}
        versions: dict[str, Version] = {}
        for b in config.get("backends", []):
            v = str(b["version"])
            group: list[Backend] = []
            for w in worker_configs(b):
                port = int(w["port"])
                worker = self.workers.get((v, port))
                if worker is None:
                    worker = Backend(v, port)
                worker.pid = w.get("pid") or worker.pid
                worker.cmd = w.get("cmd")
                worker.log = w.get("log")
                wanted[(v, port)] = worker
                group.append(worker)
            versions[v] = Version(v, group)
        retired = [w for k, w in self.workers.items() if wanted.get(k) is not w]
        self.workers = wanted
        self.table = Table(config, versions)  # the atomic switch
        return retired

    def stats_for(self, version: str, role: str) -> VersionStats:
        key = (version, role)
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = VersionStats(version, role)
        return s

    async def reload(self) -> dict[str, Any]:
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            retired = self.load()
            drained = True
            for b in retired:
                drained = await b.pool.drain(30.0) and drained
                b.pool.close()
            state = self.state()
            state["drained"] = drained
            return state

    def state(self) -> dict[str, Any]:
        t = self.table
        batching = {v: s.summary() for v, s in self.batching.items() if v in t.backends}
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "pid": os.getpid(),
            "generation": t.generation,
            "started": self.started,
            "sticky_key": self.config.get("sticky_key"),
            "shadow_dropped": self.shadow_dropped,
            "shadow_sent": self.shadow_sent,
            "answered": self.answered,
            "retried": self.retried,
            "table_shadows": len(t.shadows),
            "shadow_inflight": self.shadow_inflight,
            "backends": {
                v: {
                    "port": b.workers[0].port,
                    "healthy": b.healthy,
                    "weight": t.weights.get(v, 0.0),
                    "shadow": next((p * 100 for p, sb in t.shadows if sb is b), 0.0),
                    "inflight": b.inflight,
                    "workers": [w.view() for w in b.workers],
                    "batching": batching.get(v),
                }
                for v, b in t.backends.items()
            },
        }

    # health -----------------------------------------------------------------------------
    async def health_loop(self) -> None:
        while not self.closing:
            await asyncio.sleep(self.health_interval)
            for group in list(self.table.backends.values()):
                for b in group.workers:
                    asyncio.ensure_future(self._check(b))
            self.request_log.flush()

    async def _check(self, b: Backend) -> None:
        data = build_request(b"GET", b"/v2/health/ready", b.host, b"", b"")
        try:
            ok = (await b.pool.request(data, timeout=2.0)).status == 200
        except (OSError, TimeoutError, asyncio.TimeoutError):
            ok = False
        b.last_check = time.time()
        if ok:
            b.failures = 0
            b.healthy = True
        else:
            b.failures += 1
            if b.failures >= 2:
                b.healthy = False
                self._restart_if_dead(b)

    def _restart_if_dead(self, b: Backend) -> None:
        """Start a worker again, on its port, with the command that started it, when its
        process is gone (one that is alive but not answering is busy or stuck: left alone)."""
        if self.closing or not (b.cmd and b.log and b.pid) or rt.alive(b.pid, b.marker()):
            return
        if self.workers.get((b.version, b.port)) is not b:
            return  # left the table meanwhile
        try:
            b.pid = rt.spawn(list(b.cmd), Path(b.log))
        except OSError as e:
            print(f"cannot restart version {b.version} on port {b.port}: {e}", flush=True)
            return
        b.restarts += 1
        print(
            f"restarted a worker of version {b.version} on port {b.port} (pid {b.pid})", flush=True
        )

    # request handling -------------------------------------------------------------------
    async def handle(self, conn: ClientConnection, req: _Request) -> None:
        path = req.path
        method = req.method
        if method == b"GET":
            if path == b"/v2/health/live":
                return conn.respond(200, b'{"live":true}', req.keep_alive)
            if path == b"/v2/health/ready":
                ready = any(g.healthy for _, g in self.table.primaries)
                return conn.respond(
                    200 if ready else 503,
                    b'{"ready":true}' if ready else b'{"ready":false}',
                    req.keep_alive,
                )
            if path == b"/metrics":
                text = prometheus_text(
                    self.endpoint,
                    list(self.stats.values()),
                    self.table.weights,
                    {v: g.healthy for v, g in self.table.backends.items()},
                    self.batching,
                )
                return conn.respond(
                    200, text.encode(), req.keep_alive, b"text/plain; version=0.0.4; charset=utf-8"
                )
            if path == b"/v2":
                body = json.dumps(
                    {
                        "name": "mlstack-router",
                        "version": "1",
                        "extensions": [],
                        "endpoint": self.endpoint,
                    }
                ).encode()
                return conn.respond(200, body, req.keep_alive)
        if path.startswith(b"/_mlstack/"):
            return await self.admin(conn, req)
        table = self.table
        group = table.pick(req.sticky)
        if group is None:
            return conn.respond(
                503, _error("no model version receives traffic on this endpoint"), req.keep_alive
            )
        backend = group.choose()
        assert backend is not None  # a version has at least one worker
        inference = _is_inference(method, path)
        loop_time = time.perf_counter
        t0 = loop_time()
        tried: tuple[Backend, ...] = ()
        while True:
            data = build_request(method, req.url, backend.host, req.header_block, req.body)
            try:
                resp = await backend.pool.request(data, self.timeout)
                break
            except (OSError, asyncio.TimeoutError) as e:
                other = self._retry_on(group, backend, e, tried, inference or method == b"GET")
                if other is not None:
                    tried += (backend,)
                    backend = other
                    self.retried += 1
                    continue
                if inference:
                    self.stats_for(group.version, "primary").record(
                        time.time(), loop_time() - t0, 0
                    )
                status = 504 if isinstance(e, (TimeoutError, asyncio.TimeoutError)) else 502
                return conn.respond(
                    status,
                    _error(f"version {group.version} did not answer: {e}"),
                    req.keep_alive,
                    version=group.version,
                )
        latency = loop_time() - t0
        # an inference answer carries an id, the key of its ground-truth label (`mlstack feedback`)
        rid = os.urandom(8).hex() if inference else None
        conn.respond_with(resp, req.keep_alive, group.version, rid)
        if inference:
            self.answered += 1
            self.stats_for(group.version, "primary").record(time.time(), latency, resp.status)
            batch = resp.header(BATCH_HEADER)
            if batch is not None:
                self._count_batch(group.version, batch)
            if self.request_log.sample_rate:
                self.request_log.maybe(
                    backend.version, "primary", path, resp.status, latency, req.body, resp.body, rid
                )
            for share, shadow in table.shadows:
                if shadow is not group and (share >= 1.0 or random.random() < share):
                    if self.shadow_inflight >= MAX_SHADOW_INFLIGHT:
                        self.shadow_dropped += 1
                        continue
                    self.shadow_inflight += 1
                    self.shadow_sent += 1
                    # build the copy now: the connection may reuse or drop `req` once the
                    # primary's answer is sent, before the mirror task first runs
                    worker = shadow.choose()
                    assert worker is not None
                    copy = build_request(
                        req.method, req.url, worker.host, req.header_block, req.body
                    )
                    task = asyncio.ensure_future(self._mirror(worker, copy, req.path, req.body))
                    self._mirrors.add(task)
                    task.add_done_callback(self._mirrors.discard)

    def _retry_on(
        self,
        group: Version,
        failed: Backend,
        error: BaseException,
        tried: tuple[Backend, ...],
        idempotent: bool,
    ) -> Backend | None:
        """Another worker of the same version for a request whose connection failed before a
        complete answer came back (the worker died or restarts); None when there is none."""
        if isinstance(error, TimeoutError) or not idempotent:
            return None  # a slow answer may still come: never sent twice
        # a connection lost after part of an answer arrived counts too: the router forwards only
        # complete answers, so the client has seen nothing, and a prediction repeated on
        # another worker of the same version gives the same answer
        failed.healthy = False  # the next health check that passes brings it back
        failed.failures = max(failed.failures, 2)
        self._restart_if_dead(failed)
        other = group.choose(tried + (failed,))
        return other if other is not None and other.healthy else None

    def _count_batch(self, version: str, value: bytes) -> None:
        size, _, queued = value.partition(b";")
        try:
            rows, ms = int(size), float(queued or 0)
        except ValueError:
            return
        s = self.batching.get(version)
        if s is None:
            s = self.batching[version] = BatchStats(version)
        s.record(rows, ms / 1000.0)

    async def _mirror(self, backend: Backend, data: bytes, path: bytes, req_body: bytes) -> None:
        t0 = time.perf_counter()
        try:
            resp = await backend.pool.request(data, self.timeout)
            status = resp.status
            body = resp.body
        except Exception:  # noqa: BLE001 - any failure of a shadow copy is counted, never raised
            status, body = 0, b""
        finally:
            self.shadow_inflight -= 1
        latency = time.perf_counter() - t0
        self.stats_for(backend.version, "shadow").record(time.time(), latency, status)
        self.request_log.maybe(backend.version, "shadow", path, status, latency, req_body, body)

    async def admin(self, conn: ClientConnection, req: _Request) -> None:
        if not conn.loopback:
            return conn.respond(
                403, _error("admin routes answer loopback clients only"), req.keep_alive
            )
        path = req.path
        if path == b"/_mlstack/state" and req.method == b"GET":
            return conn.respond(200, json.dumps(self.state()).encode(), req.keep_alive)
        if path == b"/_mlstack/reload" and req.method == b"POST":
            try:
                state = await self.reload()
            except (OSError, ValueError, KeyError) as e:
                return conn.respond(400, _error(f"bad router config: {e}"), req.keep_alive)
            return conn.respond(200, json.dumps(state).encode(), req.keep_alive)
        if path == b"/_mlstack/stats" and req.method == b"GET":
            q = parse_qs(req.query.decode())
            since = float(q.get("since", ["0"])[0])
            until = float(q["until"][0]) if "until" in q else None
            body = json.dumps(
                {
                    "now": time.time(),
                    "versions": [s.window(since, until) for s in self.stats.values()],
                }
            ).encode()
            return conn.respond(200, body, req.keep_alive)
        return conn.respond(404, _error(f"no admin route {path.decode('latin-1')}"), req.keep_alive)


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class _Request:
    __slots__ = ("method", "url", "path", "query", "header_block", "body", "keep_alive", "sticky")

    def __init__(
        self,
        method: bytes,
        url: bytes,
        header_block: bytes,
        body: bytes,
        keep_alive: bool,
        sticky: bytes | None,
    ) -> None:
        self.method = method
        self.url = url
        path, _, query = url.partition(b"?")
        self.path = path
        self.query = query
        self.header_block = header_block
        self.body = body
        self.keep_alive = keep_alive
        self.sticky = sticky


class ClientConnection(asyncio.Protocol):
    """One client connection; requests on it are answered in order (pipelining-safe)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.transport: Any = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: deque[_Request] = deque()
        self.busy = False
        self.closed = False
        self.loopback = False
        self.in_head = True  # between requests or inside a request's head
        self.head_bytes = 0
        self.header_count = 0
        self.head_size = 0
        self.timer: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[bytes] = []
        self.body: list[bytes] = []
        self.size = 0
        self.too_big = False
        self.sticky: bytes | None = None
        self.expect = False

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        host = peer[0] if peer else ""
        self.loopback = host.startswith("127.") or host in ("::1", "localhost")
        self.router.connections.add(self)
        self._arm("idle_timeout")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        self.router.connections.discard(self)

    # timeouts: one timer per connection, for the phase it is in
    def _arm(self, which: str) -> None:
        self._disarm()
        if not self.closed:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(self.router.limits[which], self._expired, which)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expired(self, which: str) -> None:
        self.timer = None
        if self.closed:
            return
        if which == "idle_timeout":
            self.closed = True
            self.transport.close()  # nothing asked: close quietly, as HTTP/1.1 allows
        else:
            what = "headers" if which == "header_timeout" else "body"
            self._fatal(
                408, f"the request's {what} did not arrive within {self.router.limits[which]:g} s"
            )

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.in_head:
            if self.head_bytes == 0 and not self.busy:
                self._arm("header_timeout")  # the first byte of a request starts its clock
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fatal(400, "protocol upgrades are not supported")
            return
        except httptools.HttpParserError as e:
            self._fatal(400, f"malformed HTTP request: {e}")
            return
        # httptools buffers a header until it ends: bound what a head may hold before that
        if self.in_head and self.head_bytes > self.router.limits["max_header_bytes"]:
            self._fatal(431, self._head_too_big())

    def _head_too_big(self) -> str:
        limits = self.router.limits
        return (
            f"request line and headers are over the limit of {limits['max_header_bytes']:.0f} bytes "
            f"or {limits['max_headers']:.0f} headers"
        )

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._reset()
        self.header_count = 0
        self.head_size = 0  # what the parser handed us; head_bytes counts what arrived

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        self.head_size += len(name) + len(value) + 4
        if self.header_count > self.router.limits["max_headers"]:
            self.head_bytes = int(self.router.limits["max_header_bytes"]) + 1  # refused after feed
            return
        lname = name.lower()
        if lname in HOP_BY_HOP:
            if lname == b"content-length":
                try:
                    if int(value) > self.router.max_body:
                        self.too_big = True
                except ValueError:
                    pass
            elif lname == b"expect" and value.lower() == b"100-continue":
                self.expect = True
            return
        sticky = self.router.table.sticky_key
        if sticky is not None and lname == sticky:
            self.sticky = value
        self.headers.append(lname + b": " + value + b"\r\n")

    def on_headers_complete(self) -> None:
        limits = self.router.limits
        if self.header_count > limits["max_headers"] or self.head_size > limits["max_header_bytes"]:
            self._fatal(431, self._head_too_big())
            return
        self.in_head = False
        self.head_bytes = 0
        self._arm("body_timeout")
        if self.expect:
            if self.too_big:
                # the client has not sent the body yet: refuse now and close
                self._fatal(413, self._too_big_message())
                return
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self.too_big:
            return
        self.size += len(body)
        if self.size > self.router.max_body:
            self.too_big = True
            self.body = []
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.closed:
            return
        self._disarm()  # answering is the router's job now; the backend timeout applies
        self.in_head = True
        self.head_bytes = 0
        keep_alive = self.parser.should_keep_alive() and not self.router.closing
        if self.too_big:
            self.queue.append(_Request(b"!413", self.url, b"", b"", False, None))
        else:
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            self.queue.append(
                _Request(
                    self.parser.get_method(),
                    self.url,
                    b"".join(self.headers),
                    body,
                    keep_alive,
                    self.sticky,
                )
            )
        if not self.busy:
            self.busy = True
            asyncio.ensure_future(self._serve_queue())
        elif len(self.queue) > 32:
            self.transport.pause_reading()

    def _too_big_message(self) -> str:
        return f"request body is over the limit of {self.router.max_body} bytes"

    def _fatal(self, status: int, message: str) -> None:
        if not self.closed:
            self._disarm()
            self.respond(status, _error(message), False)
            self.closed = True

    async def _serve_queue(self) -> None:
        router = self.router
        router.active += 1
        try:
            while self.queue and not self.closed:
                req = self.queue.popleft()
                if req.method == b"!413":
                    self.respond(413, _error(self._too_big_message()), False)
                    break
                try:
                    await router.handle(self, req)
                except Exception as e:  # never leave a client without an answer
                    self.respond(500, _error(f"router error: {type(e).__name__}: {e}"), False)
                    break
                if not req.keep_alive:
                    break
                if len(self.queue) <= 8:
                    self.transport.resume_reading()
        finally:
            self.busy = False
            router.active -= 1
            if not self.closed and self.in_head and self.head_bytes == 0:
                self._arm("idle_timeout")

    # responses
    def respond(
        self,
        status: int,
        body: bytes,
        keep_alive: bool,
        content_type: bytes = b"application/json",
        version: str | None = None,
    ) -> None:
        if self.closed:
            return
        head = [
            b"HTTP/1.1 ",
            str(status).encode(),
            b" ",
            _REASONS.get(status, b"Unknown"),
            b"\r\ncontent-type: ",
            content_type,
            b"\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\n",
        ]
        if version is not None:
            head += [b"x-mlstack-version: ", version.encode(), b"\r\n"]
        if not keep_alive:
            head.append(b"connection: close\r\n")
        head += [b"\r\n", body]
        self.transport.write(b"".join(head))
        if not keep_alive:
            self.transport.close()
            self.closed = True

    def respond_with(
        self, resp: Response, keep_alive: bool, version: str, request_id: str | None = None
    ) -> None:
        if self.closed:
            return
        parts = [
            b"HTTP/1.1 ",
            str(resp.status).encode(),
            b" ",
            _REASONS.get(resp.status, b"Unknown"),
            b"\r\n",
        ]
        for k, v in resp.headers:
            lk = k.lower()
            if lk not in HOP_BY_HOP and lk != b"date" and lk != b"server":
                parts += [k, b": ", v, b"\r\n"]
        parts += [
            b"content-length: ",
            str(len(resp.body)).encode(),
            b"\r\nx-mlstack-version: ",
            version.encode(),
            b"\r\n",
        ]
        if request_id is not None:
            parts += [b"x-request-id: ", request_id.encode(), b"\r\n"]
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", resp.body]
        self.transport.write(b"".join(parts))
        if not keep_alive:
            self.transport.close()
            self.closed = True


async def run(config_path: Path) -> None:
    router = Router(config_path)
    router.load()
    host = str(router.config.get("host", "127.0.0.1"))
    port = int(router.config["port"])
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ClientConnection(router), host, port, reuse_address=True, backlog=1024
    )
    stop = asyncio.Event()

    def on_hup() -> None:
        asyncio.ensure_future(router.reload())

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    health = asyncio.ensure_future(router.health_loop())
    print(
        f"mlstack router for {router.endpoint} on http://{host}:{port} (pid {os.getpid()})",
        flush=True,
    )
    await stop.wait()
    # graceful: stop accepting, let in-flight requests finish, close idle keep-alives
    router.closing = True
    server.close()
    deadline = time.monotonic() + 10.0
    while router.active and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for c in list(router.connections):
        if c.transport is not None:
            c.transport.close()
    health.cancel()
    router.request_log.flush()
    for b in router.workers.values():
        b.pool.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="mlstack-router", allow_abbrev=False)
    p.add_argument("--config", required=True, type=Path)
    a = p.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(a.config))
    else:
        uvloop.run(run(a.config))
    sys.exit(0)


if __name__ == "__main__":
    main()
