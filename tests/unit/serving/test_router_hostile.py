"""A hostile corpus for the endpoint: raw requests a careless or hostile client could send to
the router (malformed, oversized, slow, idle), over loopback only.

Each case sends its bytes on a fresh connection and reads until the router closes it or has
answered; it must answer with the expected status (or close an idle/slow client), never hang
and never stop serving. The router runs as a real process against a stub backend with short
client timeouts from its config file; afterwards a normal request still works and the
router's resident memory stays bounded (a 32 MiB header must not grow it for good).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlstack.local.serving import runtime
from tests.unit.serving.test_router_process import StubBackend

pytestmark = pytest.mark.timeout(240)

PREDICT = b"POST /v1/models/m:predict HTTP/1.1\r\nhost: x\r\n"


@dataclass(frozen=True)
class Req:
    name: str
    data: bytes | list[bytes]  # a list is sent piece by piece
    status: int | None  # None: the router closes without an answer (idle client)
    pause: bool = False  # stop sending and wait for the router's timeout


def _r(name: str, data: bytes | list[bytes], status: int | None, pause: bool = False) -> Req:
    return Req(name, data, status, pause)


CASES: list[Req] = [
    # well-formed, as a baseline on the same code path
    _r("get_health", b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n", 200),
    _r("predict_ok", PREDICT + b"content-length: 2\r\n\r\n{}", 200),
    _r("http10", b"GET /v2/health/live HTTP/1.0\r\n\r\n", 200),
    _r("chunked_ok", PREDICT + b"transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 200),
    _r("unknown_admin", b"GET /_mlstack/nope HTTP/1.1\r\nhost: x\r\n\r\n", 404),
    _r("dot_dot_path", b"GET /../../etc/passwd HTTP/1.1\r\nhost: x\r\n\r\n", 200),
    _r("utf8_header_value", PREDICT + "x-name: é\r\ncontent-length: 2\r\n\r\n{}".encode(), 200),
    _r(
        "100_headers_ok",
        PREDICT + b"".join(b"x-h%d: v\r\n" % i for i in range(90)) + b"content-length: 2\r\n\r\n{}",
        200,
    ),
    # malformed
    _r("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, 400),
    _r("http09_request_line", b"GET /\r\n\r\n", 200),
    _r("lowercase_method", b"get / HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    _r("space_in_header_name", b"GET / HTTP/1.1\r\nbad header: x\r\n\r\n", 400),
    _r("nul_in_url", b"GET /a\x00b HTTP/1.1\r\nhost: x\r\n\r\n", 400),
    _r("bare_lf_garbage", b"GET / HTTP/1.1\nhost: x\n\x01\x02\n\n", 400),
    _r("obs_fold", b"GET / HTTP/1.1\r\nx-a: 1\r\n  continued\r\n\r\n", 400),
    _r("http2_preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    _r(
        "websocket_upgrade",
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n",
        400,
    ),
    _r("negative_length", PREDICT + b"content-length: -5\r\n\r\n", 400),
    _r("length_not_a_number", PREDICT + b"content-length: ten\r\n\r\n", 400),
    _r("two_lengths", PREDICT + b"content-length: 2\r\ncontent-length: 3\r\n\r\n{}x", 400),
    _r(
        "length_and_chunked",
        PREDICT + b"content-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        400,
    ),
    _r("bad_chunk_size", PREDICT + b"transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
    _r(
        "huge_chunk_size",
        PREDICT + b"transfer-encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
        400,
    ),
    # oversized
    _r("body_over_limit", PREDICT + b"content-length: 5000\r\n\r\n" + b"x" * 5000, 413),
    _r("length_1e20", PREDICT + b"content-length: 100000000000000000000\r\n\r\n", 400),
    _r(
        "length_over_limit_expect",
        PREDICT + b"content-length: 9000\r\nexpect: 100-continue\r\n\r\n",
        413,
    ),
    _r(
        "chunked_over_limit",
        PREDICT
        + b"transfer-encoding: chunked\r\n\r\n"
        + b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(10))
        + b"0\r\n\r\n",
        413,
    ),
    _r("url_100k", b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", 431),
    _r("header_1mib", b"GET / HTTP/1.1\r\nx-big: " + b"a" * (1 << 20) + b"\r\n\r\n", 431),
    _r("header_32mib_streamed", [b"GET / HTTP/1.1\r\nx-big: "] + [b"a" * (1 << 20)] * 32, 431),
    _r(
        "headers_5000",
        b"GET / HTTP/1.1\r\n" + b"".join(b"x-%d: v\r\n" % i for i in range(5000)) + b"\r\n",
        431,
    ),
    _r(
        "headers_101_small",
        b"GET / HTTP/1.1\r\n" + b"".join(b"h%d: v\r\n" % i for i in range(101)) + b"\r\n",
        431,
    ),
    _r("header_name_64k", b"GET / HTTP/1.1\r\n" + b"x" * 70_000 + b": v\r\n\r\n", 431),
    _r(
        "pipelined_200",
        b"".join(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n" for _ in range(200)),
        200,
    ),
    # slow and idle
    _r("slowloris_head", [b"GET / HTTP/1.1\r\n", b"x-a: 1\r\n"], 408, pause=True),
    _r("head_never_ends", [b"GET / HTTP/1.1\r\nhost: x\r\n"], 408, pause=True),
    _r("body_stalls", [PREDICT + b"content-length: 100\r\n\r\n", b'{"a":'], 408, pause=True),
    _r(
        "chunked_stalls",
        [PREDICT + b"transfer-encoding: chunked\r\n\r\n", b"2\r\n{}\r\n"],
        408,
        pause=True,
    ),
    _r("idle_after_connect", [], None, pause=True),
    _r("idle_after_request", [b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n"], 200, pause=True),
    _r("one_byte_then_idle", [b"G"], 408, pause=True),
]


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    tmp = tmp_path_factory.mktemp("router")
    backend = StubBackend("a")
    port = runtime.free_port()
    config = tmp / "router.json"
    config.write_text(
        json.dumps(
            {
                "endpoint": "ep",
                "model": "m",
                "host": "127.0.0.1",
                "port": port,
                "generation": 1,
                "backends": [{"version": "a", "port": backend.port, "weight": 100}],
                "max_body_bytes": 2000,
                "health_interval": 0.5,
                "header_timeout": 0.5,
                "body_timeout": 0.5,
                "idle_timeout": 1.0,
            }
        )
    )
    pid = runtime.spawn(
        ["-m", "mlstack.local.serving.router", "--config", str(config)], tmp / "router.log"
    )
    try:
        deadline = time.monotonic() + 30
        while not runtime.http_json(port, "GET", "/_mlstack/state", timeout=0.5):
            assert time.monotonic() < deadline, (tmp / "router.log").read_text()
            time.sleep(0.05)
        yield port, pid
    finally:
        runtime.terminate(pid, "mlstack.local.serving.router")
        backend.close()


def _exchange(port: int, case: Req) -> tuple[bytes, bool]:
    """Send the case; return what came back and whether the router closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        pieces = case.data if isinstance(case.data, list) else [case.data]
        try:
            for piece in pieces:
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the router refused mid-send: read its answer
        data = b""
        closed = False
        want = 200 if case.name == "pipelined_200" else 1
        while True:
            try:
                chunk = s.recv(1 << 16)
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
            if not case.pause and data.count(b"HTTP/1.1 ") >= want and _complete(data, want):
                break
        return data, closed


def _complete(data: bytes, want: int) -> bool:
    """Whether the last of ``want`` responses has its whole body."""
    last = data.rsplit(b"HTTP/1.1 ", 1)[1]
    if b"\r\n\r\n" not in last:
        return False
    head, body = last.split(b"\r\n\r\n", 1)
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_request(case: Req, router: tuple[int, int]) -> None:
    port, _ = router
    data, closed = _exchange(port, case)
    if case.status is None:
        assert data == b"" and closed, data[:200]
    else:
        first = data.split(b"\r\n", 1)[0]
        if case.status == 200 and case.name != "pipelined_200":
            assert first.startswith(b"HTTP/1.1 200"), data[:300]
        else:
            assert first.startswith(f"HTTP/1.1 {case.status}".encode()), data[:300]
        if case.name == "pipelined_200":
            assert data.count(b"HTTP/1.1 200") == 200
    if case.pause:
        assert closed, "the router left a slow or idle client connected"


def test_router_still_serves_and_memory_stays_bounded(router: tuple[int, int]) -> None:
    port, pid = router
    before = _rss_kb(pid)
    for _ in range(3):
        data, _ = _exchange(
            port, Req("big", [b"GET / HTTP/1.1\r\nx-big: "] + [b"a" * (1 << 20)] * 32, 431)
        )
        assert data.startswith(b"HTTP/1.1 431"), data[:200]
    after = _rss_kb(pid)
    assert after - before < 20 * 1024, f"RSS {before} -> {after} KiB"
    data, _ = _exchange(port, CASES[1])
    assert data.startswith(b"HTTP/1.1 200")
