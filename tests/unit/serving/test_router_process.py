"""The router process against stub backends (no model server): a reload waits for requests in
flight on versions leaving the table, pipelined requests are answered in order, Expect:
100-continue and oversized bodies are handled, unknown admin routes and no-traffic give 4xx/503.
A version with several workers: traffic spread over them, a killed one costs no request, weights
hold across versions with different worker counts, a dead worker is started again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlstack.local.serving import runtime

pytestmark = pytest.mark.timeout(60)


class StubBackend:
    """HTTP/1.1 keep-alive server answering {"from": name}; paths with "slow" take 1.5 s."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = runtime.free_port()
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port)
        )
        self.server = server
        self.ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split()[1]
                length = next(
                    (
                        int(x.split(":")[1])
                        for x in lines
                        if x.lower().startswith("content-length:")
                    ),
                    0,
                )
                if length:
                    await reader.readexactly(length)
                if "slow" in path:
                    await asyncio.sleep(1.5)
                body = json.dumps({"from": self.name, "path": path}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def close(self) -> None:
        """Stop as a killed process does: the listening socket and every connection close,
        requests in flight get no answer."""
        if self.loop.is_closed() or not self.thread.is_alive():
            return

        def stop() -> None:
            self.server.close()
            for w in self.writers:
                w.transport.abort()
            self.loop.stop()

        self.loop.call_soon_threadsafe(stop)
        self.thread.join(5)


@contextlib.contextmanager
def running_router(
    tmp_path: Path, backends: list[dict[str, Any]], **settings: Any
) -> Iterator[tuple[Path, int]]:
    """The router process on a free port with these backends; stopped whatever happens."""
    port = runtime.free_port()
    config = tmp_path / "router.json"
    config.write_text(
        json.dumps(
            {
                "endpoint": "ep",
                "model": "m",
                "host": "127.0.0.1",
                "port": port,
                "generation": 1,
                "backends": backends,
                "max_body_bytes": 1000,
                "health_interval": 0.2,
                **settings,
            }
        )
    )
    pid = runtime.spawn(
        ["-m", "mlstack.local.serving.router", "--config", str(config)], tmp_path / "router.log"
    )
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            if runtime.http_json(port, "GET", "/_mlstack/state", timeout=0.3):
                break
            time.sleep(0.05)
        yield config, port
    finally:  # whatever the outcome: the router does not outlive the test
        runtime.terminate(pid, "mlstack.local.serving.router")


@pytest.fixture()
def router(tmp_path: Path) -> Iterator[tuple[Path, int, StubBackend, StubBackend]]:
    a, b = StubBackend("a"), StubBackend("b")
    try:
        with running_router(tmp_path, [{"version": "a", "port": a.port, "weight": 100}]) as (
            config,
            port,
        ):
            yield config, port, a, b
    finally:
        a.close()
        b.close()


def test_reload_waits_for_in_flight_requests_of_retired_versions(router: tuple) -> None:
    config, port, a, b = router
    url = f"http://127.0.0.1:{port}"
    slow: dict[str, object] = {}

    def call() -> None:
        r = httpx.post(url + "/v1/models/m/slow:predict", content=b"{}", timeout=10)
        slow["status"], slow["from"] = r.status_code, r.json()["from"]

    t = threading.Thread(target=call)
    t.start()
    _wait_for(lambda: _state(url)["backends"]["a"]["inflight"] == 1)
    cfg = json.loads(config.read_text())
    cfg.update(generation=2, backends=[{"version": "b", "port": b.port, "weight": 100}])
    config.write_text(json.dumps(cfg))
    started = time.time()
    state = httpx.post(url + "/_mlstack/reload", timeout=10).json()
    waited = time.time() - started
    t.join(5)
    assert slow == {"status": 200, "from": "a"}
    assert state["generation"] == 2 and state["drained"] is True
    assert waited > 0.5  # the reload answered only after version a's request finished
    r = httpx.post(url + "/v1/models/m:predict", content=b"{}")
    assert r.json()["from"] == "b" and r.headers["x-mlstack-version"] == "b"


def test_pipelined_requests_are_answered_in_order(router: tuple) -> None:
    _, port, _, _ = router
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        reqs = b"".join(
            f"GET /v1/models/p{i} HTTP/1.1\r\nhost: x\r\n\r\n".encode() for i in range(5)
        )
        s.sendall(reqs)
        data = b""
        while data.count(b"HTTP/1.1 200") < 5:
            chunk = s.recv(65536)
            assert chunk
            data += chunk
    paths = [
        json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])["path"]
        for part in data.split(b"HTTP/1.1 200 OK")[1:]
    ]
    assert paths == [f"/v1/models/p{i}" for i in range(5)]


def test_expect_continue_and_body_limit(router: tuple) -> None:
    _, port, _, _ = router
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"POST /v1/models/m:predict HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
            b"expect: 100-continue\r\n\r\n"
        )
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(b"{}")
        assert b'"from": "a"' in s.recv(4096)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(
            b"POST /v1/models/m:predict HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n"
            b"expect: 100-continue\r\n\r\n"
        )
        assert s.recv(4096).startswith(b"HTTP/1.1 413")
    r = httpx.post(f"http://127.0.0.1:{port}/v1/models/m:predict", content=b"x" * 5000)
    assert r.status_code == 413 and "over the limit" in r.json()["error"]
    r = httpx.post(
        f"http://127.0.0.1:{port}/v1/models/m:predict", content=iter([b"x" * 600, b"y" * 600])
    )  # chunked, over the limit
    assert r.status_code == 413


def test_admin_and_no_traffic(router: tuple) -> None:
    config, port, _, _ = router
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(url + "/_mlstack/nope").status_code == 404
    cfg = json.loads(config.read_text())
    cfg.update(
        generation=5, backends=[{"version": "a", "port": cfg["backends"][0]["port"], "weight": 0}]
    )
    config.write_text(json.dumps(cfg))
    assert httpx.post(url + "/_mlstack/reload").json()["generation"] == 5
    r = httpx.post(url + "/v1/models/m:predict", content=b"{}")
    assert r.status_code == 503 and "no model version" in r.json()["error"]
    assert httpx.get(url + "/v2/health/ready").status_code == 503
    config.write_text("{not json")
    assert httpx.post(url + "/_mlstack/reload").status_code == 400
    assert httpx.get(url + "/v2/health/live").status_code == 200


def test_dead_backend_gives_502_and_is_marked_unhealthy(router: tuple) -> None:
    config, port, a, _ = router
    url = f"http://127.0.0.1:{port}"
    a.close()
    r = httpx.post(url + "/v1/models/m:predict", content=b"{}")
    assert r.status_code == 502 and "did not answer" in r.json()["error"]
    deadline = time.time() + 5
    while time.time() < deadline:
        if not httpx.get(url + "/_mlstack/state").json()["backends"]["a"]["healthy"]:
            break
        time.sleep(0.1)
    assert httpx.get(url + "/_mlstack/state").json()["backends"]["a"]["healthy"] is False
    errors = httpx.get(url + "/metrics").text
    assert 'mlstack_request_errors_total{endpoint="ep",version="a",role="primary"} 1' in errors


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.05)


def _hammer(url: str, n: int, threads: int = 4) -> list[tuple[int, str]]:
    """``n`` predictions over ``threads`` keep-alive clients: (status, who answered) each."""

    def one_client(count: int) -> list[tuple[int, str]]:
        out = []
        with httpx.Client(timeout=10) as c:
            for _ in range(count):
                r = c.post(url + "/v1/models/m:predict", content=b"{}")
                out.append((r.status_code, str(r.json().get("from", r.text))))
        return out

    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(one_client, [n // threads] * threads)
    return [x for part in parts for x in part]


def _state(url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(url + "/_mlstack/state").json()
    return data


def test_workers_share_a_version_and_a_killed_one_costs_no_request(tmp_path: Path) -> None:
    a1, a2, b1, b2, b3 = (StubBackend(n) for n in ("a1", "a2", "b1", "b2", "b3"))
    try:
        a = {"version": "a", "weight": 100, "workers": [{"port": a1.port}, {"port": a2.port}]}
        with running_router(tmp_path, [a]) as (config, port):
            url = f"http://127.0.0.1:{port}"
            answered = Counter(who for _, who in _hammer(url, 40, threads=1))
            assert set(answered) == {"a1", "a2"}  # one at a time: the idle workers alternate
            workers = _state(url)["backends"]["a"]["workers"]
            assert [w["port"] for w in workers] == [a1.port, a2.port]

            # kill a1 while four clients keep sending: every request is answered
            with ThreadPoolExecutor(1) as pool:
                load = pool.submit(_hammer, url, 400)
                _wait_for(lambda: _state(url)["answered"] > 80)
                a1.close()
                results = load.result(60)
            assert {status for status, _ in results} == {200}
            assert _state(url)["retried"] >= 1  # a request that found a1 dead went to a2
            _wait_for(lambda: not _state(url)["backends"]["a"]["workers"][0]["healthy"])

            # a canary between versions with 1 and 3 workers: the weights hold, nothing fails
            cfg = json.loads(config.read_text())
            b = {"version": "b", "weight": 50, "workers": [{"port": s.port} for s in (b1, b2, b3)]}
            a = {"version": "a", "weight": 50, "workers": [{"port": a2.port}]}
            cfg.update(generation=2, backends=[a, b])
            config.write_text(json.dumps(cfg))
            with ThreadPoolExecutor(1) as pool:
                load = pool.submit(_hammer, url, 400)
                assert httpx.post(url + "/_mlstack/reload").json()["generation"] == 2
                results = load.result(60)
            assert {status for status, _ in results} == {200}
            after = Counter(who for _, who in _hammer(url, 800))
            share_b = sum(n for who, n in after.items() if who.startswith("b")) / 800
            assert 0.4 < share_b < 0.6  # 50 %, although b has three workers to a's one
            assert {"b1", "b2", "b3"} <= set(after)
    finally:
        for stub in (a1, a2, b1, b2, b3):
            stub.close()


STUB_SERVER = """
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port = int(sys.argv[sys.argv.index("--port") + 1])
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def _send(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self._send({"ready": True})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self._send({"from": os.getpid()})
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def test_a_dead_worker_is_started_again_with_its_command(tmp_path: Path) -> None:
    wport = runtime.free_port()
    marker = ("mlstack.local.serving.model_server", f"--port {wport} ")
    # a stand-in model server: a command line the router recognises, a tiny HTTP server
    cmd = ["-c", STUB_SERVER, "mlstack.local.serving.model_server", "--port", str(wport), "--x"]
    log = tmp_path / "worker.log"
    pids = [runtime.spawn(cmd, log)]
    try:
        _wait_for(lambda: runtime.ready(wport))
        worker = {"port": wport, "pid": pids[0], "cmd": cmd, "log": str(log)}
        with running_router(tmp_path, [{"version": "a", "weight": 100, "workers": [worker]}]) as (
            _,
            port,
        ):
            url = f"http://127.0.0.1:{port}"
            first = httpx.post(url + "/v1/models/m:predict", content=b"{}").json()
            assert first == {"from": pids[0]}
            os.kill(pids[0], signal.SIGKILL)

            def restarted() -> bool:
                w = _state(url)["backends"]["a"]["workers"][0]
                if w["pid"] != pids[-1]:
                    pids.append(w["pid"])
                return bool(w["restarts"] == 1 and w["healthy"])

            _wait_for(restarted, timeout=20)
            answer = httpx.post(url + "/v1/models/m:predict", content=b"{}").json()
            assert answer == {"from": pids[-1]} and pids[-1] != pids[0]
    finally:
        for pid in pids:
            runtime.terminate(pid, marker)
