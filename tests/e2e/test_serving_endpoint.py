"""The local endpoint with real processes: KServe model servers per version behind the router,
on 127.0.0.1. V1 with httpx and curl, V2 with tritonclient, bad inputs, weighted split, sticky
assignment, shadow mirroring, config switches under load, status, metrics, restart and stop."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlstack.engine.backend import Backing, Context, EndpointState
from mlstack.local.serving import api, loadgen
from mlstack.local.serving.sample import sample_rows, write_sample_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

MODEL = "churn-model"
ENDPOINT = "churn"
PREDICT = f"/v1/models/{MODEL}:predict"
ROWS = sample_rows(3, seed=5)


class Endpoint:
    def __init__(self, workdir: Path, v1: Backing, v2: Backing) -> None:
        self.workdir = workdir
        self.v1 = v1
        self.v2 = v2
        self.ctx = Context(workdir=workdir, environment="dev")
        self.outputs: dict[str, Any] = {}

    def deploy(self, *backings: Backing, sticky: str | None = None) -> dict[str, Any]:
        state = EndpointState(ENDPOINT, MODEL, tuple(backings), sticky_key=sticky)
        self.outputs = api.deploy(self.workdir, "dev", state, self.ctx, health_interval=0.5)
        return self.outputs

    @property
    def url(self) -> str:
        return str(self.outputs["url"])


def weighted(b: Backing, weight: float, shadow: float = 0.0) -> Backing:
    return Backing(b.version, b.uri, b.digest, weight, shadow)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("serving")
    d1 = write_sample_model(root / "models" / "1", seed=0)
    d2 = write_sample_model(root / "models" / "2", seed=1, c=0.05)
    ep = Endpoint(
        root / ".mlstack",
        Backing("1", str(root / "models" / "1"), d1, 100.0),
        Backing("2", str(root / "models" / "2"), d2, 0.0),
    )
    try:  # a deploy that fails half-way has started processes too: stop them all the same
        ep.deploy(weighted(ep.v1, 100), weighted(ep.v2, 0))
        yield ep
    finally:
        api.stop(ep.workdir, "dev", ENDPOINT)


def predict_body(rows: list[dict[str, Any]] = ROWS) -> bytes:
    return json.dumps({"instances": rows}).encode()


def test_v1_predict_with_httpx_through_the_router(endpoint: Endpoint) -> None:
    endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    r = httpx.post(endpoint.url + PREDICT, json={"instances": ROWS})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 3
    assert r.headers["x-mlstack-version"] == "1"
    # rows may also be lists in column order; the endpoint name works as a model name too
    as_lists = [[row["tenure"], row["monthly_charges"], row["contract"]] for row in ROWS]
    r2 = httpx.post(endpoint.url + f"/v1/models/{ENDPOINT}:predict", json={"instances": as_lists})
    assert r2.status_code == 200 and r2.json()["predictions"] == r.json()["predictions"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_v1_predict_with_curl(endpoint: Endpoint) -> None:
    out = subprocess.run(
        [
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
            "-X",
            "POST",
            endpoint.url + PREDICT,
            "-d",
            json.dumps({"instances": ROWS[:1]}),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    body, code = out.rsplit("\n", 1)
    assert code == "200" and json.loads(body)["predictions"] in ([0], [1])


def test_v2_infer_with_the_triton_client(endpoint: Endpoint) -> None:
    import numpy as np
    import tritonclient.http as triton

    host = endpoint.url.removeprefix("http://")
    client = triton.InferenceServerClient(url=host)
    try:
        assert client.is_server_live() and client.is_server_ready()
        meta = client.get_model_metadata(MODEL)
        assert [i["name"] for i in meta["inputs"]] == ["tenure", "monthly_charges", "contract"]
        inputs = []
        for name, dtype, values in (
            ("tenure", "INT64", np.array([r["tenure"] for r in ROWS], dtype=np.int64)),
            (
                "monthly_charges",
                "FP64",
                np.array([r["monthly_charges"] for r in ROWS], dtype=np.float64),
            ),
            ("contract", "BYTES", np.array([r["contract"] for r in ROWS], dtype=object)),
        ):
            inp = triton.InferInput(name, [len(ROWS)], dtype)
            inp.set_data_from_numpy(values, binary_data=False)
            inputs.append(inp)
        result = client.infer(MODEL, inputs)
        preds = result.as_numpy("predict")
        assert preds is not None and preds.shape == (3,)
        v1 = httpx.post(endpoint.url + PREDICT, json={"instances": ROWS}).json()["predictions"]
        assert preds.tolist() == v1
        # binary tensors (the client's default) work as well
        binary = []
        for inp, values in zip(
            inputs,
            (
                np.array([r["tenure"] for r in ROWS], dtype=np.int64),
                np.array([r["monthly_charges"] for r in ROWS]),
                np.array([r["contract"].encode() for r in ROWS], dtype=object),
            ),
            strict=True,
        ):
            b = triton.InferInput(inp.name(), [len(ROWS)], inp.datatype())
            b.set_data_from_numpy(values, binary_data=True)
            binary.append(b)
        assert client.infer(MODEL, binary).as_numpy("predict").tolist() == v1
    finally:
        client.close()


def test_v2_single_2d_tensor(endpoint: Endpoint) -> None:
    body = {
        "inputs": [
            {"name": "rows", "shape": [1, 3], "datatype": "BYTES", "data": [12, 70.5, "monthly"]}
        ]
    }
    r = httpx.post(endpoint.url + f"/v2/models/{MODEL}/infer", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["shape"] == [1]


def test_endpoint_health_and_metadata_routes(endpoint: Endpoint) -> None:
    assert httpx.get(endpoint.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(endpoint.url + "/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(endpoint.url + f"/v2/models/{MODEL}")
    assert meta.status_code == 200 and meta.json()["name"] == MODEL


BAD_INPUTS = {
    "malformed json": (PREDICT, b'{"instances": [{"tenure": 3,'),
    "wrong shape v1": (PREDICT, b'{"instances": [[1, 2]]}'),
    "missing column": (PREDICT, b'{"instances": [{"tenure": 1, "contract": "monthly"}]}'),
    "wrong dtype v1": (
        PREDICT,
        b'{"instances": [{"tenure": "ten", "monthly_charges": 1.0, "contract": "monthly"}]}',
    ),
    "not instances": (PREDICT, b'{"rows": []}'),
    "json array": (PREDICT, b"[1, 2, 3]"),
    "wrong shape v2": (
        f"/v2/models/{MODEL}/infer",
        b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}',
    ),
    "wrong dtype v2": (
        f"/v2/models/{MODEL}/infer",
        b'{"inputs": [{"name": "tenure", "shape": [1], "datatype": "INT64", '
        b'"data": ["x"]}, {"name": "monthly_charges", "shape": [1], '
        b'"datatype": "FP64", "data": [1.0]}, {"name": "contract", "shape": [1], '
        b'"datatype": "BYTES", "data": ["monthly"]}]}',
    ),
    "unknown datatype v2": (
        f"/v2/models/{MODEL}/infer",
        b'{"inputs": [{"name": "tenure", "shape": [1], "datatype": "WHAT64", '
        b'"data": [1]}, {"name": "monthly_charges", "shape": [1], '
        b'"datatype": "FP64", "data": [1.0]}, {"name": "contract", "shape": [1], '
        b'"datatype": "BYTES", "data": ["monthly"]}]}',
    ),
    "v2 no inputs": (f"/v2/models/{MODEL}/infer", b'{"id": "1"}'),
    "unknown model": ("/v1/models/nope:predict", b'{"instances": []}'),
}


@pytest.mark.parametrize("target", ["router", "model server"])
def test_bad_inputs_get_4xx_with_a_message_and_serving_continues(
    endpoint: Endpoint, target: str
) -> None:
    endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    base = (
        endpoint.url
        if target == "router"
        else f"http://127.0.0.1:{endpoint.outputs['versions']['1']['port']}"
    )
    with httpx.Client(base_url=base, timeout=30) as client:
        for name, (path, body) in BAD_INPUTS.items():
            r = client.post(path, content=body, headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500, f"{name}: {r.status_code} {r.text}"
            assert r.text, name
            ok = client.post(PREDICT, json={"instances": ROWS[:1]})
            assert ok.status_code == 200, f"after {name}: {ok.text}"
        big = b'{"instances": [' + b",".join([b'[1, 2.0, "monthly"]'] * 1_100_000) + b"]}"
        assert len(big) > 20_000_000
        r = client.post(PREDICT, content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in r.json()["error"]
    assert httpx.post(base + PREDICT, json={"instances": ROWS[:1]}).status_code == 200


def test_malformed_http_gets_400_from_the_router(endpoint: Endpoint) -> None:
    import socket

    port = int(endpoint.outputs["port"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 400")
    assert httpx.get(endpoint.url + "/v2/health/live").status_code == 200


def test_weighted_split_follows_the_weights(endpoint: Endpoint) -> None:
    endpoint.deploy(weighted(endpoint.v1, 80), weighted(endpoint.v2, 20))
    result = loadgen.run(endpoint.url, PREDICT, predict_body(), concurrency=8, count=1200)
    assert result.failed == 0
    share = result.versions["2"] / result.total
    assert 0.15 < share < 0.25, result.versions  # 20 % +- 5 points (> 5 sigma at n=1200)


def test_sticky_assignment_by_header(endpoint: Endpoint) -> None:
    endpoint.deploy(weighted(endpoint.v1, 50), weighted(endpoint.v2, 50), sticky="x-user-id")
    seen: dict[str, set[str]] = {}
    with httpx.Client(base_url=endpoint.url) as client:
        for _rep in range(3):
            for user in range(40):
                r = client.post(
                    PREDICT, json={"instances": ROWS[:1]}, headers={"x-user-id": f"user-{user}"}
                )
                assert r.status_code == 200
                seen.setdefault(f"user-{user}", set()).add(r.headers["x-mlstack-version"])
    assert all(len(v) == 1 for v in seen.values()), "a user moved between versions"
    split = Counter(next(iter(v)) for v in seen.values())
    assert split["1"] > 5 and split["2"] > 5, split


def test_shadow_gets_mirrored_copies_and_primary_answers_are_unchanged(endpoint: Endpoint) -> None:
    endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    before = httpx.post(endpoint.url + PREDICT, json={"instances": ROWS}).json()
    since = time.time()
    endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0, shadow=100))
    result = loadgen.run(endpoint.url, PREDICT, predict_body(), concurrency=4, count=200)
    assert result.failed == 0 and result.versions == Counter({"1": 200})
    assert httpx.post(endpoint.url + PREDICT, json={"instances": ROWS}).json() == before
    # every request is mirrored unless the shadow falls too far behind (then the copy is
    # dropped and counted, so a slow shadow can never hold the primary back): the 200 of the
    # load plus the one comparison request above. Every copy sent is answered and recorded.
    # (metrics windows are whole seconds, so count the shadow role only: an earlier test's
    # primary traffic to v2 may share the first second)
    deadline = time.time() + 30
    while time.time() < deadline:
        st = httpx.get(endpoint.url + "/_mlstack/state").json()
        m = api.metrics(endpoint.workdir, "dev", ENDPOINT, since)
        recorded = m["2"].custom["shadow_requests"] if m.get("2") else 0
        if recorded + st["shadow_dropped"] >= 201:
            break
        time.sleep(0.2)
    assert st["shadow_sent"] + st["shadow_dropped"] == 201, st
    assert recorded == st["shadow_sent"], (recorded, st)
    assert m["2"].custom["shadow_requests"] >= 100 and m["2"].errors == 0
    assert m["1"].requests >= 200


def test_config_switches_under_load_drop_nothing(endpoint: Endpoint) -> None:
    endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    with loadgen.Load(endpoint.url, PREDICT, predict_body(), concurrency=8, duration=6) as load:
        time.sleep(0.5)
        for w in (10, 50, 100, 0, 100, 0):
            endpoint.deploy(weighted(endpoint.v1, 100 - w), weighted(endpoint.v2, w))
            time.sleep(0.4)
    result = load.result
    assert result is not None
    assert result.failed == 0, result.failures[:5]
    assert result.versions["1"] > 0 and result.versions["2"] > 0


def test_status_metrics_prometheus_and_request_log(endpoint: Endpoint) -> None:
    endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    since = time.time() - 1
    loadgen.run(endpoint.url, PREDICT, predict_body(), concurrency=2, count=50)
    st = api.status(endpoint.workdir, "dev", ENDPOINT)
    assert st["running"] and st["healthy"] and st["url"] == endpoint.url
    assert st["weights"] == {"1": 100.0, "2": 0.0}
    assert {v: (i["alive"], i["healthy"]) for v, i in st["versions"].items()} == {
        "1": (True, True),
        "2": (True, True),
    }
    m = api.metrics(endpoint.workdir, "dev", ENDPOINT, since)["1"]
    assert m.requests >= 50 and m.errors == 0
    assert m.latency_p50 is not None and 0 < m.latency_p50 <= (m.latency_p99 or 0)
    text = httpx.get(endpoint.url + "/metrics").text
    assert 'mlstack_requests_total{endpoint="churn",version="1",role="primary",code="200"}' in text
    assert "mlstack_request_duration_seconds_bucket" in text
    time.sleep(1.2)  # the router flushes its request log once a second
    log = endpoint.workdir / "envs/dev/serving/churn/requests.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines and {"ts", "version", "request", "response", "status"} <= set(lines[-1])


def test_admin_routes_refuse_nothing_from_loopback_and_deploy_is_idempotent(
    endpoint: Endpoint,
) -> None:
    first = endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    again = endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    assert again["versions"] == first["versions"] and again["router_pid"] == first["router_pid"]
    assert httpx.get(endpoint.url + "/_mlstack/state").json()["endpoint"] == ENDPOINT


def test_a_dead_router_comes_back_on_the_same_address(endpoint: Endpoint) -> None:
    out = endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    os.kill(out["router_pid"], signal.SIGKILL)
    deadline = time.time() + 5
    while api.status(endpoint.workdir, "dev", ENDPOINT)["running"] and time.time() < deadline:
        time.sleep(0.05)
    assert not api.status(endpoint.workdir, "dev", ENDPOINT)["running"]
    back = endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    assert back["port"] == out["port"] and back["router_pid"] != out["router_pid"]
    assert back["versions"] == out["versions"]  # model servers were left running
    assert httpx.post(endpoint.url + PREDICT, json={"instances": ROWS}).status_code == 200


def test_removing_a_version_stops_its_server_and_stop_cleans_up(endpoint: Endpoint) -> None:
    out = endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    pid2 = out["versions"]["2"]["pid"]
    endpoint.deploy(weighted(endpoint.v1, 100))
    assert not _alive(pid2)
    api.stop(endpoint.workdir, "dev", ENDPOINT)
    assert not _alive(out["router_pid"]) and not _alive(out["versions"]["1"]["pid"])
    assert api.status(endpoint.workdir, "dev", ENDPOINT)["running"] is False
    with pytest.raises(httpx.ConnectError):
        httpx.get(endpoint.url + "/v2/health/live")
    endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))  # for later tests


def _alive(pid: int) -> bool:
    from mlstack.local.serving import runtime

    return runtime.alive(pid)


def test_a_copied_project_never_adopts_the_original_processes(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    out = endpoint.deploy(weighted(endpoint.v1, 100), weighted(endpoint.v2, 0))
    copy = tmp_path / ".mlstack"
    shutil.copytree(endpoint.workdir / "envs", copy / "envs")
    assert api.status(copy, "dev", ENDPOINT)["running"] is False
    other = api.deploy(
        copy,
        "dev",
        EndpointState(ENDPOINT, MODEL, (weighted(endpoint.v1, 100),)),
        Context(workdir=copy, environment="dev"),
    )
    try:
        assert other["port"] != out["port"] and other["router_pid"] != out["router_pid"]
        assert other["versions"]["1"]["pid"] != out["versions"]["1"]["pid"]
        # the original endpoint still holds both versions
        st = api.status(endpoint.workdir, "dev", ENDPOINT)
        assert st["running"] and set(st["versions"]) == {"1", "2"}
        assert all(v["alive"] for v in st["versions"].values())
    finally:
        api.stop(copy, "dev", ENDPOINT)
    assert api.status(endpoint.workdir, "dev", ENDPOINT)["healthy"]
