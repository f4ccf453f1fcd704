"""The rollout controller against a fake backend and a fake clock: every strategy, gates,
rollback on a breach, cancellation, deploy failures, and hand-off to native rollouts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mlstack.engine.backend import (
    BackendPlugin,
    Backing,
    Capabilities,
    Context,
    EndpointState,
    EndpointView,
    Event,
    NativeRollout,
    RolloutPlan,
    VersionMetrics,
    VersionServing,
)
from mlstack.engine.rollout import RolloutController, check_gates, plan_phases
from mlstack.errors import BackendError, GateFailed
from mlstack.manifest.models import Deployment
from tests.fakes import ServingOnlyBackend

OLD = Backing("1", "/m/1", "sha256:1", 100.0)
NEW = Backing("2", "/m/2", "sha256:2", 0.0)
PREVIOUS = EndpointState("churn", "churn-model", (OLD,))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float, ctx: Context) -> bool:
        self.slept.append(seconds)
        self.now += seconds
        return ctx.cancel.is_set()


MetricsFn = Callable[[EndpointState, float, float], Mapping[str, VersionMetrics]]


class FakeBackend(ServingOnlyBackend):
    def __init__(
        self,
        clock: FakeClock,
        metrics_fn: MetricsFn | None = None,
        caps: Capabilities | None = None,
        fail_on: int | None = None,
    ) -> None:
        self.plugin = BackendPlugin(
            "fake",
            BaseModel,
            caps or Capabilities(mirroring=True, sticky_sessions=True),
            "nowhere:Fake",
        )
        self.clock = clock
        self.deployed: list[EndpointState] = []
        self.metric_calls: list[float] = []
        self.metrics_fn = metrics_fn or (lambda s, since, now: {})
        self.fail_on = fail_on
        self.plans: list[RolloutPlan] = []

    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        if self.fail_on is not None and len(self.deployed) + 1 == self.fail_on:
            self.fail_on = None
            raise BackendError("model server exited while starting")
        self.deployed.append(desired)
        return self.view(desired)

    @staticmethod
    def view(state: EndpointState) -> EndpointView:
        return EndpointView(
            name=state.name,
            url=f"fake://{state.name}",
            status="serving",
            versions=tuple(VersionServing(b.version, b.weight, b.shadow) for b in state.backings),
        )

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        self.metric_calls.append(since)
        return self.metrics_fn(self.deployed[-1], since, self.clock.now)

    def rollout(self, plan: RolloutPlan, ctx: Context) -> NativeRollout:
        self.plans.append(plan)
        done = tuple(p.label for p in plan.phases)
        return NativeRollout("promoted", "", self.view(plan.target), done)


def healthy(state: EndpointState, since: float, now: float) -> Mapping[str, VersionMetrics]:
    return {
        b.version: VersionMetrics(requests=100, errors=0, latency_p99=0.05) for b in state.backings
    }


def failing_new(state: EndpointState, since: float, now: float) -> Mapping[str, VersionMetrics]:
    out = dict(healthy(state, since, now))
    out["2"] = VersionMetrics(requests=50, errors=25, latency_p99=0.05)
    return out


def ctx_with(events: list[Event]) -> Context:
    return Context(workdir=Path("/nonexistent"), environment="dev", emit=events.append)


def deployment(**kw: Any) -> Deployment:
    base: dict[str, Any] = {
        "endpoint": "churn",
        "gates": {"error_rate": "< 1%", "latency_p99": "< 200ms"},
        "min_requests": 20,
    }
    base.update(kw)
    return Deployment.model_validate(base)


def run(
    backend: FakeBackend,
    clock: FakeClock,
    dep: Deployment,
    previous: EndpointState | None = PREVIOUS,
    events: list[Event] | None = None,
    ctx: Context | None = None,
) -> Any:
    ctl = RolloutController(backend, clock=clock.time, sleep=clock.sleep)
    return ctl.run(
        dep, "churn-model", NEW, previous, ctx or ctx_with(events if events is not None else [])
    )


def test_canary_steps_through_and_promotes() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    events: list[Event] = []
    result = run(
        backend,
        clock,
        deployment(strategy="canary", canary={"steps": [10, 50, 100], "interval": "60s"}),
        events=events,
    )
    assert result.outcome == "promoted"
    assert result.champion == "2"
    assert [s.weights() for s in backend.deployed] == [
        {"1": 90.0, "2": 10.0},
        {"1": 50.0, "2": 50.0},
        {"2": 100.0},
    ]
    assert [s.verdict for s in result.steps] == ["passed", "passed", "unchecked"]
    assert sum(clock.slept) == pytest.approx(120.0)
    assert result.steps[0].gates[0].metric == "error_rate"
    assert any(e.kind == "rollout.step" and e.data["traffic"] == 50.0 for e in events)
    assert result.to_dict()["steps"][0]["metrics"]["2"]["requests"] == 100
    result.raise_for_outcome()  # promoted: no error


def test_canary_breach_rolls_back_before_the_interval_ends() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, failing_new)
    result = run(
        backend, clock, deployment(strategy="canary", canary={"steps": [10, 50], "interval": "5m"})
    )
    assert result.outcome == "rolled_back"
    assert backend.deployed[-1] == PREVIOUS
    assert [s.weights() for s in backend.deployed] == [{"1": 90.0, "2": 10.0}, {"1": 100.0}]
    assert "error_rate = 50.00%" in result.reason and "canary 10%" in result.reason
    assert sum(clock.slept) < 300.0  # judged at the first look, not at the end of the interval
    assert result.state == PREVIOUS and result.champion == "1"
    with pytest.raises(GateFailed, match="rolled back"):
        result.raise_for_outcome()


def test_metrics_are_read_since_the_step_started() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    result = run(
        backend,
        clock,
        deployment(strategy="canary", canary={"steps": [20, 100], "interval": "10s"}),
    )
    assert backend.metric_calls and all(s == result.steps[0].started for s in backend.metric_calls)


def test_latency_gate_breach() -> None:
    clock = FakeClock()

    def slow(state: EndpointState, since: float, now: float) -> Mapping[str, VersionMetrics]:
        return {"2": VersionMetrics(requests=100, errors=0, latency_p99=0.35)}

    result = run(
        FakeBackend(clock, slow),
        clock,
        deployment(strategy="linear", linear={"step": 25, "interval": 10}),
    )
    assert result.outcome == "rolled_back"
    assert "latency_p99 = 350.0ms (needs < 200ms)" in result.reason


def _quiet(state: EndpointState, since: float, now: float) -> Mapping[str, VersionMetrics]:
    return {"2": VersionMetrics(requests=3, errors=0, latency_p99=0.01)}


def test_too_few_requests_holds_the_rollout_at_its_step_and_says_why() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, _quiet)
    events: list[Event] = []
    result = run(
        backend,
        clock,
        deployment(strategy="canary", canary={"steps": [10, 50, 100], "interval": 10}),
        events=events,
    )
    assert result.outcome == "held"
    assert [s.verdict for s in result.steps] == ["insufficient"]
    # still serving the split it holds: no later step, no rollback
    assert [s.weights() for s in backend.deployed] == [{"1": 90.0, "2": 10.0}]
    assert result.state.weights() == {"1": 90.0, "2": 10.0} and result.champion is None
    assert "3 of the 20 requests needed reached version 2" in result.reason
    held = [e for e in events if e.kind == "rollout.held"]
    assert len(held) == 1 and "could not be judged" in held[0].message
    with pytest.raises(GateFailed) as e:
        result.raise_for_outcome()
    assert "is held" in str(e.value) and "rollback" in str(e.value.problems[0].hint)


def test_an_environment_that_opts_in_promotes_on_inconclusive_gates_with_a_warning() -> None:
    clock = FakeClock()
    events: list[Event] = []
    result = run(
        FakeBackend(clock, _quiet),
        clock,
        deployment(
            strategy="canary",
            canary={"steps": [50, 100], "interval": 10},
            on_inconclusive="promote",
        ),
        events=events,
    )
    assert result.outcome == "promoted"
    assert result.steps[0].verdict == "insufficient"
    warnings = [e.message for e in events if e.kind == "rollout.warning"]
    assert len(warnings) == 1 and "on_inconclusive: promote" in warnings[0]


def test_a_held_rollout_resumes_at_its_step() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    held = EndpointState(
        "churn", "churn-model", (replace(OLD, weight=50.0), replace(NEW, weight=50.0))
    )
    result = run(
        backend,
        clock,
        deployment(strategy="canary", canary={"steps": [10, 50, 100], "interval": 10}),
        previous=held,
    )
    assert result.outcome == "promoted"
    assert [s.weights() for s in backend.deployed] == [{"1": 50.0, "2": 50.0}, {"2": 100.0}]


def test_a_breach_after_resuming_restores_the_version_that_served_before() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, failing_new)
    held = EndpointState(
        "churn", "churn-model", (replace(OLD, weight=90.0), replace(NEW, weight=10.0))
    )
    result = run(
        backend,
        clock,
        deployment(strategy="canary", canary={"steps": [10, 50, 100], "interval": 10}),
        previous=held,
    )
    assert result.outcome == "rolled_back"
    assert backend.deployed[-1].weights() == {"1": 100.0}
    assert result.champion == "1"


def test_linear_steps() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    run(backend, clock, deployment(strategy="linear", linear={"step": 25, "interval": 1}))
    assert [s.weights().get("2") for s in backend.deployed] == [25.0, 50.0, 75.0, 100.0]


def test_blue_green_switches_keeps_blue_warm_then_retires_it() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    result = run(backend, clock, deployment(strategy="blue_green", blue_green={"bake": "30s"}))
    assert [s.weights() for s in backend.deployed] == [
        {"1": 100.0, "2": 0.0},
        {"1": 0.0, "2": 100.0},
        {"2": 100.0},
    ]
    assert result.outcome == "promoted" and sum(clock.slept) == pytest.approx(30.0)


def test_blue_green_breach_during_bake_switches_back() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, failing_new)
    result = run(backend, clock, deployment(strategy="blue_green", blue_green={"bake": 60}))
    assert result.outcome == "rolled_back"
    assert backend.deployed[-1] == PREVIOUS
    assert "switch to green" in result.reason


def test_shadow_mirrors_then_promotes() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    result = run(
        backend, clock, deployment(strategy="shadow", shadow={"percent": 25, "duration": 20})
    )
    first = backend.deployed[0]
    assert {b.version: (b.weight, b.shadow) for b in first.backings} == {
        "1": (100.0, 0.0),
        "2": (0.0, 25.0),
    }
    assert backend.deployed[-1].weights() == {"2": 100.0}
    assert result.outcome == "promoted"


def test_shadow_needs_a_backend_that_mirrors() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy, caps=Capabilities(mirroring=False))
    with pytest.raises(BackendError, match="mirror"):
        run(backend, clock, deployment(strategy="shadow"))


def test_unsupported_strategy_is_refused_before_any_deploy() -> None:
    clock = FakeClock()
    caps = Capabilities(weighted_traffic=False, notes={"weighted_traffic": "no weighted traffic"})
    backend = FakeBackend(clock, healthy, caps=caps)
    with pytest.raises(BackendError, match="no weighted traffic"):
        run(backend, clock, deployment(strategy="canary"))
    assert backend.deployed == []


def test_ab_split_is_sticky_and_stays() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    result = run(
        backend,
        clock,
        deployment(
            strategy="ab",
            ab={
                "weights": {"champion": 70, "challenger": 30},
                "sticky_key": "x-user",
                "duration": "10s",
            },
        ),
    )
    assert result.state.weights() == {"1": 70.0, "2": 30.0}
    assert result.state.sticky_key == "x-user"
    assert result.outcome == "promoted" and result.champion is None


def test_first_deployment_goes_straight_to_all_traffic() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    result = run(backend, clock, deployment(strategy="canary"), previous=None)
    assert [s.weights() for s in backend.deployed] == [{"2": 100.0}]
    assert result.reason == "first deployment" and clock.slept == []


def test_redeploying_the_serving_version_is_a_single_idempotent_deploy() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    serving = EndpointState("churn", "churn-model", (Backing("2", "/m/2", "sha256:2", 100.0),))
    result = run(backend, clock, deployment(strategy="canary"), previous=serving)
    assert len(backend.deployed) == 1 and "already serves" in result.reason


def test_cancel_during_a_hold_rolls_back() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy)
    ctx = ctx_with([])

    def sleep(seconds: float, c: Context) -> bool:
        c.cancel.set()
        return True

    ctl = RolloutController(backend, clock=clock.time, sleep=sleep)
    result = ctl.run(deployment(strategy="canary"), "churn-model", NEW, PREVIOUS, ctx)
    assert result.outcome == "rolled_back" and "cancelled" in result.reason
    assert backend.deployed[-1] == PREVIOUS


def test_failed_deploy_mid_rollout_rolls_back() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy, fail_on=2)
    result = run(
        backend, clock, deployment(strategy="canary", canary={"steps": [10, 50], "interval": 1})
    )
    assert result.outcome == "rolled_back"
    assert "deploy failed: model server exited" in result.reason
    assert backend.deployed[-1] == PREVIOUS


def test_empty_previous_state_deploys_at_once_without_gates() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, failing_new)
    prev = EndpointState("churn", "churn-model", ())
    result = run(backend, clock, deployment(strategy="canary"), previous=prev)
    assert result.outcome == "promoted"  # nothing to compare against: all at once, no gates


def test_native_progressive_backends_get_the_whole_plan() -> None:
    clock = FakeClock()
    backend = FakeBackend(clock, healthy, caps=Capabilities(native_progressive=True))
    result = run(
        backend, clock, deployment(strategy="canary", canary={"steps": [10, 100], "interval": "2m"})
    )
    assert backend.deployed == []
    (plan,) = backend.plans
    assert plan.steps == (10.0, 100.0) and plan.interval == 120.0
    assert plan.gates == {"error_rate": "< 1%", "latency_p99": "< 200ms"}
    assert plan.target.weights() == {"2": 100.0} and result.outcome == "promoted"
    assert [p.state.weights() for p in plan.phases] == [{"1": 90.0, "2": 10.0}, {"2": 100.0}]


def test_native_plans_carry_mirroring_and_stickiness() -> None:
    clock = FakeClock()
    caps = Capabilities(native_progressive=True, mirroring=True, sticky_sessions=True)
    backend = FakeBackend(clock, healthy, caps=caps)
    run(backend, clock, deployment(strategy="shadow", shadow={"percent": 40, "duration": "1m"}))
    (plan,) = backend.plans
    shadow, final = plan.phases
    assert shadow.mirrored == {"2": 40.0} and shadow.state.weights() == {"1": 100.0, "2": 0.0}
    assert (shadow.hold, shadow.check) == (60.0, True) and final.state.weights() == {"2": 100.0}
    assert plan.min_requests == deployment().min_requests


def test_a_native_backend_is_refused_what_it_cannot_realise() -> None:
    clock = FakeClock()
    caps = Capabilities(native_progressive=True, gate_metrics=frozenset({"error_rate"}))
    backend = FakeBackend(clock, healthy, caps=caps)
    with pytest.raises(BackendError, match="gate 'latency_p99' cannot be checked"):
        run(backend, clock, deployment(strategy="canary"))
    assert backend.plans == [] and backend.deployed == []


def test_custom_metric_gate() -> None:
    m = VersionMetrics(requests=100, errors=0, custom={"agreement": 0.8})
    verdict, checks = check_gates({"agreement": ">= 0.9"}, m, 10)
    assert verdict == "failed" and checks[0].value == 0.8
    verdict, _ = check_gates(
        {"agreement": ">= 0.9", "unknown_metric": "< 1"},
        VersionMetrics(requests=100, errors=0, custom={"agreement": 0.95}),
        10,
    )
    assert verdict == "insufficient"


def test_plan_keeps_the_baseline_proportions() -> None:
    prev = EndpointState("churn", "m", (Backing("a", "u", "d", 75.0), Backing("b", "u", "d", 25.0)))
    phases, _ = plan_phases(
        deployment(strategy="canary", canary={"steps": [20, 100]}), "m", NEW, prev
    )
    assert phases[0].state.weights() == {"a": 60.0, "b": 20.0, "2": 20.0}
