"""A local endpoint whose version runs as two KServe model servers with adaptive batching, on
127.0.0.1: status shows each worker, concurrent V1 and V2 requests share prediction calls and
get their own answers, a bad request fails alone, the router reports batch sizes, a worker
killed under load costs no request and is started again, and a deploy adopts the new pid."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlstack_runtime import serving

from mlstack.engine.backend import Backing, Context, EndpointState
from mlstack.local.serving import api, loadgen
from mlstack.local.serving.sample import sample_rows, write_sample_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

MODEL = "churn-model"
ENDPOINT = "churn"
V1 = f"/v1/models/{MODEL}:predict"
V2 = f"/v2/models/{MODEL}/infer"


class Deployed:
    def __init__(self, root: Path, state: EndpointState) -> None:
        self.workdir = root / ".mlstack"
        self.state = state
        self.ctx = Context(workdir=self.workdir, environment="dev")
        self.outputs = self.deploy()

    def deploy(self) -> dict[str, Any]:
        return api.deploy(self.workdir, "dev", self.state, self.ctx, health_interval=0.3)

    @property
    def url(self) -> str:
        return str(self.outputs["url"])

    def status(self) -> dict[str, Any]:
        return api.status(self.workdir, "dev", ENDPOINT)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp("workers")
    model_dir = root / "models" / "1"
    digest = write_sample_model(model_dir, seed=0)
    state = EndpointState(
        ENDPOINT,
        MODEL,
        (Backing("1", str(model_dir), digest, 100.0),),
        replicas=2,
        max_batch=32,
        max_latency=0.02,
    )
    try:
        yield Deployed(root, state)
    finally:
        api.stop(root / ".mlstack", "dev", ENDPOINT)


def _v2_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "tenure", "shape": [len(rows)], "datatype": "INT64",
             "data": [r["tenure"] for r in rows]},
            {"name": "monthly_charges", "shape": [len(rows)], "datatype": "FP64",
             "data": [r["monthly_charges"] for r in rows]},
            {"name": "contract", "shape": [len(rows)], "datatype": "BYTES",
             "data": [r["contract"] for r in rows]},
        ]
    }  # fmt: skip


def _wait_for(condition: Any, timeout: float) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_status_shows_each_worker(endpoint: Deployed) -> None:
    st = endpoint.status()
    workers = st["versions"]["1"]["workers"]
    assert len(workers) == 2 and len({w["port"] for w in workers}) == 2
    assert all(w["alive"] and w["healthy"] for w in workers) and st["healthy"]
    assert [w["port"] for w in workers] == [
        w["port"] for w in endpoint.outputs["versions"]["1"]["workers"]
    ]


def test_concurrent_v1_and_v2_requests_are_batched_and_answered_each(endpoint: Deployed) -> None:
    rows = sample_rows(24, seed=3)
    expected = serving.predict(
        serving.load(Path(endpoint.state.backings[0].uri)),
        serving.rows_from_instances(
            rows, serving.ModelMeta.read(Path(endpoint.state.backings[0].uri))
        ),
    )

    def call(i: int) -> tuple[int, Any, str]:
        if i == 5:  # one bad request among them: a string where a number goes
            bad = dict(rows[i], tenure="many")
            r = httpx.post(endpoint.url + V1, json={"instances": [bad]}, timeout=30)
            return r.status_code, r.json(), ""
        if i % 2:
            r = httpx.post(endpoint.url + V2, json=_v2_body([rows[i]]), timeout=30)
            preds = r.json()["outputs"][0]["data"] if r.status_code == 200 else r.text
        else:
            r = httpx.post(endpoint.url + V1, json={"instances": [rows[i]]}, timeout=30)
            preds = r.json()["predictions"] if r.status_code == 200 else r.text
        return r.status_code, preds, r.headers.get("x-mlstack-batch", "")

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(call, range(24)))
    for i, (status, preds, _) in enumerate(results):
        if i == 5:
            assert status == 400 and "tenure" in json.dumps(preds)
        else:
            assert status == 200 and preds == [expected[i]], (i, status, preds)
    sizes = [int(h.split(";")[0]) for _, _, h in results if h]
    assert len(sizes) == 23 and max(sizes) > 1  # some requests shared a prediction call
    metrics = httpx.get(endpoint.url + "/metrics").text
    assert 'mlstack_batch_rows_count{endpoint="churn",version="1"}' in metrics
    batching = endpoint.status()["versions"]["1"]["batching"]
    assert batching["requests"] >= 23 and batching["mean_batch_rows"] > 1


def test_a_worker_killed_under_load_costs_no_request_and_is_started_again(
    endpoint: Deployed,
) -> None:
    body = json.dumps({"instances": sample_rows(1, seed=4)}).encode()
    victim = endpoint.status()["versions"]["1"]["workers"][0]
    with loadgen.Load(endpoint.url, V1, body, concurrency=8, duration=6) as load:
        before = httpx.get(endpoint.url + "/_mlstack/state").json()["answered"]
        _wait_for(
            lambda: httpx.get(endpoint.url + "/_mlstack/state").json()["answered"] > before + 50,
            timeout=30,
        )
        os.kill(victim["pid"], signal.SIGKILL)
    result = load.result
    assert result is not None and result.ok > 100
    assert result.failed == 0, result.failures[:3]

    def back() -> bool:
        w = endpoint.status()["versions"]["1"]["workers"][0]
        return bool(w["restarts"] == 1 and w["healthy"] and w["pid"] != victim["pid"])

    _wait_for(back, timeout=90)
    again = endpoint.deploy()  # nothing to change: processes kept, the new pid recorded
    assert again["router_pid"] == endpoint.outputs["router_pid"]
    assert (
        again["versions"]["1"]["workers"][0]["pid"]
        == endpoint.status()["versions"]["1"]["workers"][0]["pid"]
    )
    assert again["versions"]["1"]["workers"][1] == endpoint.outputs["versions"]["1"]["workers"][1]
