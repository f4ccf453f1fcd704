"""The router process against stub backends (no model server): a reload waits for requests in
flight on versions leaving the table, pipelined requests are answered in order, Expect:
100-continue and oversized bodies are handled, unknown admin routes and no-traffic give 4xx/503."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

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
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture()
def router(tmp_path: Path) -> Iterator[tuple[Path, int, StubBackend, StubBackend]]:
    a, b = StubBackend("a"), StubBackend("b")
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
                "backends": [{"version": "a", "port": a.port, "weight": 100}],
                "max_body_bytes": 1000,
                "health_interval": 0.2,
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
        yield config, port, a, b
    finally:  # whatever the outcome: the router does not outlive the test
        runtime.terminate(pid, "mlstack.local.serving.router")
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
    time.sleep(0.3)
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
