"""The rollout controller driving real model servers and the router under a bounded load:
a canary 10 -> 50 -> 100 and a blue/green switch with zero failed requests, and a broken
release rolled back by the gates within one interval with no failures after the rollback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mlstack.engine.backend import (
    Backing,
    Context,
    EndpointState,
    EndpointView,
    Event,
    VersionMetrics,
)
from mlstack.engine.rollout import RolloutController, RolloutResult
from mlstack.local.plugin import plugin as local_plugin
from mlstack.local.serving import api, client, loadgen
from mlstack.local.serving.sample import sample_rows, write_sample_model
from mlstack.manifest.models import Deployment
from tests.fakes import ServingOnlyBackend

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

MODEL = "churn-model"
ENDPOINT = "churn-rollout"
PREDICT = f"/v1/models/{MODEL}:predict"
BODY = json.dumps({"instances": sample_rows(2, seed=3)}).encode()


class ServingBackend(ServingOnlyBackend):
    """Just the serving half of the local backend, over ``mlstack.local.serving.api``."""

    def __init__(self, workdir: Path) -> None:
        self.plugin = local_plugin
        self.workdir = workdir
        self.config = local_plugin.config_model()

    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        out = api.deploy(self.workdir, "dev", desired, ctx, health_interval=0.5)
        return client.deployed(desired.name, out)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        return api.metrics(self.workdir, "dev", endpoint, since)


class Setup:
    def __init__(self, root: Path) -> None:
        self.workdir = root / ".mlstack"
        self.backend = ServingBackend(self.workdir)
        self.events: list[Event] = []
        self.ctx = Context(workdir=self.workdir, environment="dev", emit=self.events.append)
        self.versions: dict[str, Backing] = {}
        for name, kw in (
            ("1", {"seed": 0}),
            ("2", {"seed": 1, "c": 0.05}),
            ("3-broken", {"seed": 2, "broken": True}),
        ):
            digest = write_sample_model(root / "models" / name, **kw)
            self.versions[name] = Backing(name, str(root / "models" / name), digest, 0.0)

    def baseline(self) -> EndpointState:
        """Version 1 alone, as the previous known-good deployment."""
        b = self.versions["1"]
        state = EndpointState(ENDPOINT, MODEL, (Backing(b.version, b.uri, b.digest, 100.0),))
        self.outputs = self.backend.deploy(state, self.ctx)
        return state

    @property
    def url(self) -> str:
        return self.outputs.url

    def rollout(self, version: str, previous: EndpointState, **deployment: Any) -> RolloutResult:
        dep = Deployment.model_validate({"endpoint": ENDPOINT, **deployment})
        return RolloutController(self.backend).run(
            dep, MODEL, self.versions[version], previous, self.ctx
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Any:
    s = Setup(tmp_path_factory.mktemp("rollout"))
    yield s
    api.stop(s.workdir, "dev", ENDPOINT)


GATES = {"error_rate": "< 1%", "latency_p99": "< 2s"}


@contextmanager
def under_load(url: str) -> Iterator[loadgen.Load]:
    """8 clients for as long as the block runs (not a fixed time: on a loaded machine starting
    the new version's model server can take longer than any fixed duration), then stopped."""
    load = loadgen.Load(url, PREDICT, BODY, concurrency=8, duration=loadgen.MAX_DURATION).start()
    try:
        yield load
    finally:
        load.stop()
        load.join(60)


def test_canary_10_50_100_under_8_clients_for_20s_drops_nothing(setup: Setup) -> None:
    previous = setup.baseline()
    with under_load(setup.url) as load:
        time.sleep(1.0)
        result = setup.rollout(
            "2",
            previous,
            strategy="canary",
            gates=GATES,
            min_requests=10,
            canary={"steps": [10, 50, 100], "interval": "3s"},
        )
    load_result = load.result
    assert load_result is not None
    assert result.outcome == "promoted", result.reason
    assert [s.label for s in result.steps] == ["canary 10%", "canary 50%", "canary 100%"]
    assert [s.verdict for s in result.steps] == ["passed", "passed", "unchecked"]
    assert result.steps[0].metrics["2"].requests >= 10
    assert load_result.failed == 0, load_result.failures[:5]
    assert load_result.versions["1"] > 0 and load_result.versions["2"] > 0
    assert load_result.ok > 500
    status = api.status(setup.workdir, "dev", ENDPOINT)
    assert status["weights"] == {"2": 100.0} and set(status["versions"]) == {"2"}
    kinds = [e.kind for e in setup.events]
    assert kinds.count("rollout.step") >= 3 and "rollout.done" in kinds


def test_blue_green_switch_under_load_drops_nothing(setup: Setup) -> None:
    previous = setup.baseline()
    with under_load(setup.url) as load:
        time.sleep(0.5)
        result = setup.rollout(
            "2",
            previous,
            strategy="blue_green",
            gates=GATES,
            min_requests=10,
            blue_green={"bake": "2s"},
        )
    load_result = load.result
    assert load_result is not None
    assert result.outcome == "promoted", result.reason
    assert [s.verdict for s in result.steps] == ["unchecked", "passed", "unchecked"]
    assert load_result.failed == 0, load_result.failures[:5]
    assert load_result.versions["1"] > 0 and load_result.versions["2"] > 0
    assert api.status(setup.workdir, "dev", ENDPOINT)["weights"] == {"2": 100.0}


def test_broken_canary_is_rolled_back_within_one_interval(setup: Setup) -> None:
    previous = setup.baseline()
    interval = 3.0
    with under_load(setup.url) as load:
        time.sleep(0.5)
        result = setup.rollout(
            "3-broken",
            previous,
            strategy="canary",
            gates=GATES,
            min_requests=10,
            canary={"steps": [20, 100], "interval": interval},
        )
        rolled_back_at = time.time()
    load_result = load.result
    assert load_result is not None
    assert result.outcome == "rolled_back", result.to_dict()
    assert "error_rate" in result.reason and "canary 20%" in result.reason
    (step,) = result.steps
    assert step.verdict == "failed"
    assert step.ended < step.started + interval  # judged before the interval was over
    assert step.metrics["3-broken"].errors > 0
    # the broken version did fail requests while it had traffic, and none failed afterwards
    assert load_result.failed > 0
    assert load_result.failed_after(rolled_back_at) == 0
    assert load_result.failed_after(result.finished) == 0
    assert all("HTTP 500" in why for _, why in load_result.failures)
    status = api.status(setup.workdir, "dev", ENDPOINT)
    assert status["weights"] == {"1": 100.0} and set(status["versions"]) == {"1"}
    assert result.state == previous
    assert any(e.kind == "rollout.rollback" for e in setup.events)
    # and the endpoint keeps serving version 1
    after = loadgen.run(setup.url, PREDICT, BODY, concurrency=4, count=100)
    assert after.failed == 0 and after.versions == {"1": 100}
