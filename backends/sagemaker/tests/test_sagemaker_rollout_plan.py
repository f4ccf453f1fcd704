"""Which rollout plans SageMaker's own DeploymentConfig expresses exactly, and which are stepped
phase by phase (pure: no AWS)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mlstack_sagemaker import alarms as sm_alarms
from mlstack_sagemaker import endpoints as sm_endpoints
from mlstack_sagemaker import rollout as sm_rollout
from mlstack_sagemaker.rollout import deployment_config, guarded_waits, native_routing

from mlstack.engine.backend import Backing, Context, EndpointState, EndpointView, RolloutPlan
from mlstack.engine.rollout import plan_phases
from mlstack.manifest.models import Deployment

OLD = EndpointState("shop", "m", (Backing("1", "arn:1", "sha256:1", 100.0),))
NEW = Backing("2", "arn:2", "sha256:2", 100.0)


def _plan(strategy: str, on_inconclusive: str = "promote", **params: Any) -> RolloutPlan:
    """The plan; ``on_inconclusive: promote`` unless said (an environment that opted in), so
    the guarded update is SageMaker's own; the default ``hold`` is tested on its own below."""
    spec: dict[str, Any] = {"endpoint": "shop", "strategy": strategy}
    if params:
        spec[strategy] = params
    phases, _ = plan_phases(Deployment.model_validate(spec), "m", NEW, OLD)
    return RolloutPlan(
        phases[-1].state,
        OLD,
        strategy,
        tuple(phases),
        {"error_rate": "< 1%"},
        min_requests=20,
        on_inconclusive=on_inconclusive,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("strategy", "params", "routing"),
    [
        (
            "canary",
            {"steps": [10, 100], "interval": "5m"},
            {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
        ),
        (
            "linear",
            {"step": 30, "interval": 60},
            {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 60,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 30},
            },
        ),
        ("blue_green", {"bake": "2m"}, {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 120}),
        # SageMaker's CANARY has one step; mirroring is no TrafficRoutingConfiguration at all
        ("canary", {"steps": [10, 50, 100]}, None),
        ("canary", {"steps": [12.5, 100]}, None),
        ("linear", {"step": 12.5}, None),
        ("shadow", {"percent": 20}, None),
        # outside what deployment guardrails accept (canary <= 50 %, linear steps 10-50 %, waits
        # <= 3,600 s): stepped phase by phase, exactly as planned, never clamped or capped
        ("canary", {"steps": [60, 100]}, None),
        ("linear", {"step": 5}, None),
        ("linear", {"step": 60}, None),
        ("canary", {"steps": [10, 100], "interval": "2h"}, None),
        ("blue_green", {"bake": "2h"}, None),
        # ten waits of an hour (or 45 minutes) leave no time for the fleet inside the 8-hour
        # MaximumExecutionTimeoutInSeconds a guarded update may have: stepped phase by phase
        ("linear", {"step": 10, "interval": "1h"}, None),
        ("linear", {"step": 10, "interval": "45m"}, None),
    ],
)
def test_native_only_when_sagemaker_does_exactly_the_phases(
    strategy: str, params: dict[str, Any], routing: dict[str, Any] | None
) -> None:
    assert native_routing(_plan(strategy, **params)) == routing


def test_blue_green_bakes_once() -> None:
    """The bake is the wait after all traffic moved (alarms watched, old fleet kept); a
    termination wait as long again would bake a second time."""
    plan = _plan("blue_green", bake="2m")
    routing = native_routing(plan)
    assert routing is not None
    policy = deployment_config(plan, routing, ["a1"], 3600)
    assert (
        policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["WaitIntervalInSeconds"]
        == 120
    )
    assert policy["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 0
    assert policy["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "a1"}]}


@pytest.mark.parametrize("timeout", [600, 4 * 3600.0, 8 * 3600.0])
def test_execution_limit_exceeds_the_planned_waits(timeout: float) -> None:
    """AWS refuses a guarded update whose MaximumExecutionTimeoutInSeconds (600-28,800 s) does
    not exceed its waits: ten 30-minute waits are 5 hours, more than the default 4-hour timeout."""
    plan = _plan("linear", step=10, interval="30m")
    routing = native_routing(plan)
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 1800,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    assert guarded_waits(routing) == 10 * 1800
    limit = deployment_config(plan, routing, [], timeout)["BlueGreenUpdatePolicy"][
        "MaximumExecutionTimeoutInSeconds"
    ]
    assert 10 * 1800 < limit <= 28800
    assert limit == min(28800, 10 * 1800 + int(timeout))


@pytest.mark.parametrize("extra", [10, 11])
def test_more_rollback_alarms_than_sagemaker_watches_are_stepped_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, extra: int
) -> None:
    """AutoRollbackConfiguration takes at most 10 alarms: with more, every phase is stepped
    here and every alarm watched, never some of them dropped."""
    names = [f"alarm-{i}" for i in range(extra)]
    deployed: list[Any] = []
    watched: list[list[str]] = []

    def ensure_alarms(platform: Any, plan: Any, ctx: Any, variants: Any = ()) -> list[str]:
        return names + [f"{v}-error-rate" for v in variants]

    def deploy(platform: Any, state: Any, ctx: Any, deployment_config: Any) -> EndpointView:
        deployed.append(deployment_config)
        return EndpointView("shop-dev", "https://x", "InService")

    def firing(platform: Any, alarms: list[str]) -> list[str]:
        watched.append(list(alarms))
        return []

    monkeypatch.setattr(sm_alarms, "ensure_alarms", ensure_alarms)
    monkeypatch.setattr(sm_alarms, "firing", firing)
    monkeypatch.setattr(sm_alarms, "prune_variant_alarms", lambda *a: None)
    monkeypatch.setattr(sm_endpoints, "deploy", deploy)
    monkeypatch.setattr(sm_endpoints, "metrics", lambda *a: {})
    platform = SimpleNamespace(
        aws=SimpleNamespace(exists=lambda *a, **kw: {"EndpointStatus": "InService"}),
        endpoint_name=lambda name: f"{name}-dev",
        config=SimpleNamespace(traffic_shifting="native", timeout=3600.0, poll_interval=0.0),
    )
    plan = _plan("canary", steps=[10, 100], interval=0)
    out = sm_rollout.rollout(platform, plan, Context(tmp_path, "dev"))  # type: ignore[arg-type]
    assert out.outcome == "promoted"
    if extra <= 10:
        # one guarded update watching every alarm
        assert len(deployed) == 1
        assert deployed[0]["AutoRollbackConfiguration"]["Alarms"] == [
            {"AlarmName": a} for a in names
        ]
    else:
        assert deployed == [None] * len(plan.phases)
        assert watched and all(set(names) <= set(w) for w in watched)
    with pytest.raises(ValueError, match="at most 10"):
        deployment_config(plan, {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}, names * 2, 60)


@pytest.mark.parametrize(("requests", "outcome"), [(0, "held"), (19, "held"), (20, "promoted")])
def test_a_gated_rollout_too_few_requests_judged_holds_unless_opted_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, requests: int, outcome: str
) -> None:
    """A guarded update's alarms take missing data as healthy and cannot stop half-way, so a
    gated plan that must hold on too little traffic is stepped here: it stops at the canary
    (the canary weights stay) and says why, unless the environment opted in to promote."""
    from mlstack.engine.seam import VersionMetrics

    deployed: list[Any] = []

    def deploy(platform: Any, state: Any, ctx: Any, deployment_config: Any) -> EndpointView:
        deployed.append((state.weights(), deployment_config))
        return EndpointView("shop-dev", "https://x", "InService")

    monkeypatch.setattr(sm_alarms, "ensure_alarms", lambda *a, **kw: ["shop-dev-error-rate"])
    monkeypatch.setattr(sm_alarms, "firing", lambda *a: [])
    monkeypatch.setattr(sm_alarms, "prune_variant_alarms", lambda *a: None)
    monkeypatch.setattr(sm_endpoints, "deploy", deploy)
    monkeypatch.setattr(
        sm_endpoints,
        "metrics",
        lambda *a: {"2": VersionMetrics(requests=requests, errors=0)},
    )
    platform = SimpleNamespace(
        aws=SimpleNamespace(exists=lambda *a, **kw: {"EndpointStatus": "InService"}),
        endpoint_name=lambda name: f"{name}-dev",
        config=SimpleNamespace(traffic_shifting="native", timeout=3600.0, poll_interval=0.0),
    )
    plan = _plan("canary", on_inconclusive="hold", steps=[10, 100], interval=0)
    out = sm_rollout.rollout(platform, plan, Context(tmp_path, "dev"))  # type: ignore[arg-type]
    assert out.outcome == outcome
    assert all(config is None for _, config in deployed)  # stepped here, not a guarded update
    if outcome == "held":
        assert deployed == [(plan.phases[0].state.weights(), None)]  # stays at the canary
        assert f"{requests} of the 20 requests needed reached version 2" in out.reason
    else:
        assert [w for w, _ in deployed] == [p.state.weights() for p in plan.phases]
    opted_in = sm_rollout.rollout(
        platform,  # type: ignore[arg-type]
        _plan("canary", steps=[10, 100], interval=0),
        Context(tmp_path, "dev"),
    )
    assert opted_in.outcome == "promoted"
