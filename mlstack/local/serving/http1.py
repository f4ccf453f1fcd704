"""A small HTTP/1.1 client over asyncio protocols with keep-alive pools.

The router forwards every request through one of these pools, so it is written for the request
path: one write per request, httptools for parsing, no per-request objects beyond the response.
The load generator uses the same code so that both sides of a benchmark cost the same.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httptools


class ConnectionLost(ConnectionError):
    def __init__(self, message: str, got_bytes: bool) -> None:
        super().__init__(message)
        self.got_bytes = got_bytes


class Response:
    __slots__ = ("status", "headers", "body", "keep_alive")

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


class _Conn(asyncio.Protocol):
    __slots__ = (
        "transport",
        "parser",
        "fut",
        "closed",
        "got_bytes",
        "last_used",
        "headers",
        "body",
        "_timer",
    )

    def __init__(self) -> None:
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.fut: asyncio.Future[Response] | None = None
        self.closed = False
        self.got_bytes = False
        self.last_used = time.monotonic()
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(ConnectionLost(f"bad response from backend: {e}", True))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(
            ConnectionLost(
                f"backend closed the connection{f': {exc}' if exc else ''}", self.got_bytes
            )
        )

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        fut = self.fut
        if fut is not None and not fut.done():
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            fut.set_result(
                Response(
                    self.parser.get_status_code(),
                    self.headers,
                    body,
                    self.parser.should_keep_alive(),
                )
            )

    def _fail(self, exc: BaseException) -> None:
        fut = self.fut
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def _on_timeout(self) -> None:
        self._fail(TimeoutError("backend did not answer in time"))
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def roundtrip(self, data: bytes, timeout: float) -> Response:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Response] = loop.create_future()
        self.fut = fut
        self.headers = []
        self.body = []
        self.got_bytes = False
        self._timer = loop.call_later(timeout, self._on_timeout)
        try:
            self.transport.write(data)
            return await fut
        finally:
            self._timer.cancel()
            self.fut = None
            self.last_used = time.monotonic()


class Pool:
    """Keep-alive connections to one host:port. Counts requests in flight for draining."""

    def __init__(
        self, host: str, port: int, *, idle_timeout: float = 30.0, max_idle: int = 256
    ) -> None:
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self.idle: list[_Conn] = []
        self.inflight = 0
        self.closed = False
        self._drained: asyncio.Event | None = None

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        return conn

    def _take_idle(self) -> _Conn | None:
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and now - conn.last_used < self.idle_timeout:
                return conn
            conn.close()
        return None

    async def request(self, data: bytes, timeout: float = 60.0) -> Response:
        """Send one serialized request; retry once on a fresh connection if a reused one was
        already dead (the server closed it while idle), never after any answer came back."""
        self.inflight += 1
        try:
            conn = self._take_idle()
            if conn is not None:
                try:
                    resp = await conn.roundtrip(data, timeout)
                except ConnectionLost as e:
                    if e.got_bytes:
                        raise
                else:
                    self._release(conn, resp.keep_alive)
                    return resp
            conn = await asyncio.wait_for(self._connect(), timeout)
            resp = await conn.roundtrip(data, timeout)
            self._release(conn, resp.keep_alive)
            return resp
        finally:
            self.inflight -= 1
            if self.inflight == 0 and self._drained is not None:
                self._drained.set()

    def _release(self, conn: _Conn, keep_alive: bool) -> None:
        if keep_alive and not conn.closed and not self.closed and len(self.idle) < self.max_idle:
            self.idle.append(conn)
        else:
            conn.close()

    async def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight; True if drained within ``timeout``."""
        if self.inflight == 0:
            return True
        self._drained = asyncio.Event()
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def close(self) -> None:
        self.closed = True
        for conn in self.idle:
            conn.close()
        self.idle.clear()


HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
        b"proxy-authorization",
        b"proxy-authenticate",
    }
)


def build_request(
    method: bytes, target: bytes, host: bytes, header_block: bytes, body: bytes
) -> bytes:
    """``header_block`` holds already-filtered ``name: value\\r\\n`` lines."""
    return b"".join(
        (
            method,
            b" ",
            target,
            b" HTTP/1.1\r\nhost: ",
            host,
            b"\r\n",
            header_block,
            b"content-length: ",
            str(len(body)).encode(),
            b"\r\n\r\n",
            body,
        )
    )
