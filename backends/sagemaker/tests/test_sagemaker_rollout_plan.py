"""Which rollout plans SageMaker's own DeploymentConfig expresses exactly, and which are stepped
phase by phase (pure: no AWS)."""

from __future__ import annotations

from typing import Any

import pytest
from mlstack_sagemaker.rollout import deployment_config, guarded_waits, native_routing

from mlstack.engine.backend import Backing, EndpointState, RolloutPlan
from mlstack.engine.rollout import plan_phases
from mlstack.manifest.models import Deployment

OLD = EndpointState("shop", "m", (Backing("1", "arn:1", "sha256:1", 100.0),))
NEW = Backing("2", "arn:2", "sha256:2", 100.0)


def _plan(strategy: str, **params: Any) -> RolloutPlan:
    spec: dict[str, Any] = {"endpoint": "shop", "strategy": strategy}
    if params:
        spec[strategy] = params
    phases, _ = plan_phases(Deployment.model_validate(spec), "m", NEW, OLD)
    return RolloutPlan(phases[-1].state, OLD, strategy, tuple(phases), {"error_rate": "< 1%"})


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
