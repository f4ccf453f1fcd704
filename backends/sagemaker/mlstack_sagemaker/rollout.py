"""Rollouts on SageMaker: every phase of the plan realised, never fewer.

A plan whose phases SageMaker's own blue/green deployment expresses exactly (blue/green, one
canary step, linear steps) goes through ``UpdateEndpoint`` with a ``DeploymentConfig`` and the
gates' CloudWatch alarms as ``AutoRollbackConfiguration``, unless the environment asks for
``traffic_shifting: variants``. Every other plan (shadow, canary with several steps) is stepped
here phase by phase: each phase's endpoint config (production variants per version; the shadow
phase's mirrored version as a ``ShadowProductionVariants`` entry), held for its time while the
new version's own alarms are watched; a firing alarm or a cancel restores the previous state.
Custom-metric gates and sticky A/B have no SageMaker equivalent: ``validate`` refuses them
(``Capabilities.gate_metrics``, ``sticky_sessions``), so they never reach this module.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Context, EndpointView, Event, NativeRollout, Phase, RolloutPlan
from mlstack_sagemaker import alarms, endpoints

if TYPE_CHECKING:
    from mlstack_sagemaker.platform import Platform


# What deployment guardrails accept (SageMaker API reference: TrafficRoutingConfig,
# CapacitySize; developer guide: canary and linear traffic shifting).
MAX_WAIT_SECONDS = 3600
CANARY_PERCENT = (1, 50)
LINEAR_PERCENT = (10, 50)
# BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 600-28,800 s, and more than the waits.
MIN_EXECUTION_SECONDS = 600
MAX_EXECUTION_SECONDS = 28800
# Left for SageMaker to provision the new fleet and shift traffic beside the planned waits; a
# plan whose waits leave less inside the 8-hour limit is stepped here phase by phase.
FLEET_SECONDS = 3600
# AutoRollbackConfiguration.Alarms: at most 10; a rollout watching more is stepped here.
MAX_ROLLBACK_ALARMS = 10


def rollout(platform: Platform, plan: RolloutPlan, ctx: Context) -> NativeRollout:
    aws = platform.aws
    name = platform.endpoint_name(plan.target.name)
    exists = aws.exists("sagemaker", "describe_endpoint", EndpointName=name) is not None
    if not exists or plan.previous is None:
        alarms.ensure_alarms(platform, plan, ctx)
        view = endpoints.deploy(platform, plan.target, ctx, deployment_config=None)
        return NativeRollout("promoted", "first deployment", view, (plan.phases[-1].label,))
    routing = native_routing(plan)
    if routing is None or platform.config.traffic_shifting == "variants":
        return _phased(platform, plan, ctx)
    if plan.gates and plan.on_inconclusive == "hold":
        # A guarded update's alarms treat missing data as healthy and it cannot stop half-way:
        # with too little traffic it would promote unjudged. Stepped here, it holds instead.
        return _phased(platform, plan, ctx)
    watched = alarms.ensure_alarms(platform, plan, ctx)
    if len(watched) > MAX_ROLLBACK_ALARMS:
        # SageMaker would watch only 10 of them: step the phases here, every alarm watched.
        return _phased(platform, plan, ctx)
    try:
        view = endpoints.deploy(
            platform,
            plan.target,
            ctx,
            deployment_config=deployment_config(plan, routing, watched, platform.config.timeout),
        )
    except endpoints.UpdateFailed as failed:
        fired = alarms.firing(platform, watched)
        if not fired:
            raise  # not an alarm's rollback: the update failed, and is reported as failed
        # The controller records a rolled-back outcome (history, state, the user's message).
        return NativeRollout(
            "rolled_back",
            f"SageMaker rolled {name} back to the previous version: "
            f"{failed.described.get('FailureReason') or 'an alarm fired'} (alarms: "
            f"{', '.join(fired)})",
            endpoints.endpoint_view(platform, name, failed.described),
            tuple(p.label for p in plan.phases),
        )
    labels = tuple(p.label for p in plan.phases)
    return NativeRollout(
        "promoted", f"{plan.strategy} by SageMaker's DeploymentConfig", view, labels
    )


def native_routing(plan: RolloutPlan) -> dict[str, Any] | None:
    """The plan as SageMaker's TrafficRoutingConfiguration, or None when the phases are not
    exactly what SageMaker would do (mirroring, stickiness, more than one canary step) or its
    waits do not fit in a guarded update's execution time limit."""
    routing = _routing(plan)
    if routing is None or guarded_waits(routing) + FLEET_SECONDS > MAX_EXECUTION_SECONDS:
        return None
    return routing


def guarded_waits(routing: dict[str, Any]) -> int:
    """The seconds SageMaker waits during a guarded update with this routing: once after all
    traffic moved, twice for a canary (after the canary, after the rest), once per linear step."""
    wait = int(routing["WaitIntervalInSeconds"])
    if routing["Type"] == "CANARY":
        return 2 * wait
    if routing["Type"] == "LINEAR":
        return -(-100 // int(routing["LinearStepSize"]["Value"])) * wait
    return wait


def _routing(plan: RolloutPlan) -> dict[str, Any] | None:
    if any(p.mirrored or p.state.sticky_key for p in plan.phases):
        return None
    checked = [p for p in plan.phases if p.check and p.traffic < 100]
    wait = int(plan.interval)
    if wait != plan.interval or not 0 <= wait <= MAX_WAIT_SECONDS:
        return None  # stepped here with the planned wait, never capped
    if plan.strategy in ("all_at_once", "blue_green"):
        return {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait}
    if plan.strategy == "canary" and len(checked) == 1:
        size = checked[0].traffic
        if int(size) != size or not CANARY_PERCENT[0] <= size <= CANARY_PERCENT[1]:
            return None
        return {
            "Type": "CANARY",
            "WaitIntervalInSeconds": wait,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": int(size)},
        }
    if plan.strategy == "linear" and checked:
        step = checked[0].traffic
        expected = [min(100.0, round(step * i, 6)) for i in range(1, len(plan.phases) + 1)]
        if int(step) != step or [p.traffic for p in plan.phases] != expected:
            return None
        if not LINEAR_PERCENT[0] <= step <= LINEAR_PERCENT[1]:
            return None
        return {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": wait,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": int(step)},
        }
    return None


def deployment_config(
    plan: RolloutPlan, routing: dict[str, Any], alarm_names: list[str], timeout: float
) -> dict[str, Any]:
    """The strategy as SageMaker's BlueGreenUpdatePolicy with alarm-driven auto-rollback. The
    execution time limit is the planned waits plus ``timeout`` for the fleet work (AWS refuses a
    limit that does not exceed the waits), within AWS's range."""
    execution = guarded_waits(routing) + int(timeout)
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        # The bake is the wait after the last shift (old fleet kept, alarms watched): once.
        "TerminationWaitInSeconds": 0,
        "MaximumExecutionTimeoutInSeconds": max(
            MIN_EXECUTION_SECONDS, min(MAX_EXECUTION_SECONDS, execution)
        ),
    }
    out: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if len(alarm_names) > MAX_ROLLBACK_ALARMS:
        raise ValueError(
            f"{len(alarm_names)} rollback alarms; SageMaker watches at most {MAX_ROLLBACK_ALARMS}"
        )
    if alarm_names:
        out["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarm_names]}
    return out


def _phased(platform: Platform, plan: RolloutPlan, ctx: Context) -> NativeRollout:
    """Each phase deployed and held in turn; the new version's alarms watched all along."""
    assert plan.previous is not None
    new = plan.target.backings[0].version
    name = platform.endpoint_name(plan.target.name)
    watched = alarms.ensure_alarms(platform, plan, ctx, variants=[f"v{new}"])
    done: list[str] = []
    view: EndpointView | None = None
    for i, phase in enumerate(plan.phases, 1):
        view = endpoints.deploy(platform, phase.state, ctx, deployment_config=None)
        done.append(phase.label)
        ctx.emit(
            Event(
                "rollout.step",
                name,
                f"step {i}/{len(plan.phases)}: {phase.label}",
                {
                    "step": i,
                    "of": len(plan.phases),
                    "traffic": phase.traffic,
                    "weights": view.weights(),
                    "shadow": phase.mirrored,
                    "hold": phase.hold,
                },
            )
        )
        stop = _hold(platform, phase, watched, ctx)
        if stop is not None:
            restored = endpoints.deploy(platform, plan.previous, ctx, deployment_config=None)
            return NativeRollout(
                "rolled_back",
                f"rollout of {plan.target.name} stopped at {phase.label}: {stop}; "
                "the previous version serves all traffic again",
                restored,
                tuple(done),
            )
        if phase.check and plan.gates:
            unjudged = _unjudged(platform, plan, phase, new)
            if unjudged and plan.on_inconclusive == "hold":
                return NativeRollout("held", unjudged, view, tuple(done))
            if unjudged:
                ctx.emit(
                    Event(
                        "rollout.warning",
                        name,
                        f"{unjudged}; going on (deployment.on_inconclusive: promote)",
                        {"step": i},
                    )
                )
    assert view is not None
    alarms.prune_variant_alarms(platform, name, {f"v{v}" for v in view.weights()})
    return NativeRollout(
        "promoted", f"{plan.strategy} in {len(done)} phase(s), alarms watched", view, tuple(done)
    )


def _hold(platform: Platform, phase: Phase, watched: list[str], ctx: Context) -> str | None:
    """Hold the phase; why it must stop (an alarm fired, cancelled), or None when it held."""
    deadline = time.monotonic() + phase.hold
    while True:
        fired = alarms.firing(platform, watched) if phase.check or phase.hold else []
        if fired:
            return f"alarm {', '.join(fired)} fired"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        if ctx.cancel.wait(min(platform.config.poll_interval, remaining)):
            return "cancelled"


def _unjudged(platform: Platform, plan: RolloutPlan, phase: Phase, version: str) -> str:
    """Why the gates could not be judged in this phase (too few requests reached the new
    version; its alarms treat missing data as healthy), or "" when they could."""
    seen = endpoints.metrics(platform, plan.target.name, time.time() - max(phase.hold, 60.0))
    got = seen.get(version)
    requests = got.requests if got is not None else 0
    if requests >= max(1, plan.min_requests):
        return ""
    return (
        f"{phase.label}: {requests} of the {plan.min_requests} requests needed reached version "
        f"{version}; its gates could not be judged"
    )
