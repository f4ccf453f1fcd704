"""A small bounded load generator: N keep-alive clients on loopback for a fixed time or count.

Used by the tests (zero failed requests during a canary) and by the router benchmark. It runs its
own event loop in a thread, so a test can drive a rollout while load is running::

    with Load(url, path, body, concurrency=8, duration=20) as load:
        controller.run(...)
    result = load.result
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mlstack.local.serving.http1 import Pool, build_request

MAX_DURATION = 600.0
MAX_FAILURES_KEPT = 1000


@dataclass
class LoadResult:
    ok: int = 0
    failed: int = 0
    elapsed: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)  # (epoch time sent, why)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    @property
    def rps(self) -> float:
        return self.total / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(q * len(s)))]

    def failed_after(self, t: float) -> int:
        """Failed requests sent at or after epoch time ``t``."""
        return sum(1 for sent, _ in self.failures if sent >= t)

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed": self.failed,
            "rps": round(self.rps, 1),
            "p50_ms": _ms(self.percentile(0.5)),
            "p90_ms": _ms(self.percentile(0.9)),
            "p99_ms": _ms(self.percentile(0.99)),
            "statuses": dict(self.statuses),
            "versions": dict(self.versions),
        }


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 3)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


HeaderFn = Callable[[int, int], dict[str, str]]  # (client index, request number) -> headers


async def run_async(
    url: str,
    path: str,
    body: bytes,
    *,
    concurrency: int = 8,
    duration: float | None = None,
    count: int | None = None,
    headers: dict[str, str] | None = None,
    header_fn: HeaderFn | None = None,
    method: str = "POST",
    timeout: float = 30.0,
    stop: threading.Event | None = None,
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if not _loopback(host):
        raise ValueError(f"the load generator only targets loopback addresses, not {host}")
    if duration is None and count is None:
        raise ValueError("give a duration or a count")
    duration = min(duration if duration is not None else MAX_DURATION, MAX_DURATION)
    static = {"content-type": "application/json", **(headers or {})}
    host_b = f"{host}:{port}".encode()

    def block(extra: dict[str, str] | None) -> bytes:
        h = {**static, **(extra or {})}
        return "".join(f"{k}: {v}\r\n" for k, v in h.items()).encode()

    fixed = build_request(method.encode(), path.encode(), host_b, block(None), body)
    result = LoadResult()
    remaining = [count if count is not None else -1]
    t_start = time.perf_counter()
    deadline = t_start + duration

    async def client(i: int) -> None:
        pool = Pool(host, port, idle_timeout=3600.0, max_idle=1)
        n = 0
        while time.perf_counter() < deadline and not (stop and stop.is_set()):
            if remaining[0] == 0:
                break
            if remaining[0] > 0:
                remaining[0] -= 1
            data = (
                fixed
                if header_fn is None
                else build_request(
                    method.encode(), path.encode(), host_b, block(header_fn(i, n)), body
                )
            )
            n += 1
            sent = time.time()
            t0 = time.perf_counter()
            try:
                resp = await pool.request(data, timeout)
            except (OSError, TimeoutError, asyncio.TimeoutError) as e:
                result.failed += 1
                result.statuses[0] += 1
                if len(result.failures) < MAX_FAILURES_KEPT:
                    result.failures.append((sent, f"{type(e).__name__}: {e}"))
                await asyncio.sleep(0.01)
                continue
            result.latencies.append(time.perf_counter() - t0)
            result.statuses[resp.status] += 1
            v = resp.header(b"x-mlstack-version")
            if v is not None:
                result.versions[v.decode()] += 1
            if 200 <= resp.status < 300:
                result.ok += 1
            else:
                result.failed += 1
                if len(result.failures) < MAX_FAILURES_KEPT:
                    result.failures.append((sent, f"HTTP {resp.status}: {resp.body[:200]!r}"))
        pool.close()

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    result.elapsed = time.perf_counter() - t_start
    return result


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def run(url: str, path: str, body: bytes, **kwargs: Any) -> LoadResult:
    """Blocking: run the load and return its result."""
    loop = _new_loop()
    try:
        return loop.run_until_complete(run_async(url, path, body, **kwargs))
    finally:
        loop.close()


class Load:
    """Load running in a background thread; ``stop()`` ends it early, ``result`` after join."""

    def __init__(self, url: str, path: str, body: bytes, **kwargs: Any) -> None:
        self._stop = threading.Event()
        self._kwargs = dict(kwargs, stop=self._stop)
        self._args = (url, path, body)
        self.result: LoadResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mlstack-loadgen", daemon=True)

    def _run(self) -> None:
        try:
            self.result = run(*self._args, **self._kwargs)
        except BaseException as e:  # surfaced by join()
            self.error = e

    def start(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> LoadResult:
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise TimeoutError("load generator did not finish")
        return self.result

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.join()
