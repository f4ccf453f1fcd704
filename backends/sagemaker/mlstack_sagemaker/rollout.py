"""Progressive rollouts on SageMaker: natively through DeploymentConfig (blue/green traffic
shifting with alarm-driven AutoRollbackConfiguration) on the ``primary`` variant, or, with
``traffic_shifting: variants``, one variant per version whose weights mlstack steps while it
watches each new version's own alarms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Backing, Context, EndpointState, Event, RolloutPlan
from mlstack_sagemaker import alarms, endpoints

if TYPE_CHECKING:
    from mlstack_sagemaker.backend import SageMakerBackend


def rollout(backend: SageMakerBackend, plan: RolloutPlan, ctx: Context) -> Mapping[str, Any]:
    if plan.strategy in ("shadow", "ab"):
        return backend.deploy(plan.target, ctx)
    aws = backend.aws
    name = backend.endpoint_name(plan.target.name)
    exists = aws.exists("sagemaker", "describe_endpoint", EndpointName=name) is not None
    stepped = backend.config.traffic_shifting == "variants" and exists and plan.previous
    if stepped:
        # Each version is its own variant: the alarms watch the new version's variant, so a
        # bad canary is caught even while the old version's traffic dilutes its errors.
        canary = [f"v{b.version}" for b in plan.target.backings if b.weight > 0]
        watched = alarms.ensure_alarms(backend, plan, ctx, variants=canary)
        out = _stepped(backend, plan, watched, ctx)
        if out["outcome"] == "promoted":
            alarms.prune_variant_alarms(backend, name, {f"v{v}" for v in out["weights"]})
        return out
    watched = alarms.ensure_alarms(backend, plan, ctx)
    if not exists or plan.previous is None:
        return endpoints.deploy(backend, plan.target, ctx, primary=True, deployment_config=None)
    before = aws.call("sagemaker", "describe_endpoint", EndpointName=name)
    out = endpoints.deploy(
        backend,
        plan.target,
        ctx,
        primary=True,
        deployment_config=deployment_config(plan, watched, backend.config.timeout),
    )
    if out["endpoint_config"] == before.get("EndpointConfigName"):
        after = aws.call("sagemaker", "describe_endpoint", EndpointName=name)
        # The controller records a rolled-back outcome (history, state, the user's message).
        return {
            **out,
            "outcome": "rolled_back",
            "reason": f"SageMaker rolled {name} back to the previous version: "
            f"{after.get('FailureReason') or 'an alarm fired'} (alarms: "
            f"{', '.join(watched) or 'none'})",
        }
    return {**out, "outcome": "promoted"}


def _stepped(
    backend: SageMakerBackend, plan: RolloutPlan, watched: list[str], ctx: Context
) -> dict[str, Any]:
    """Both versions as variants; mlstack steps the weights and watches the alarms."""
    assert plan.previous is not None
    new = [b for b in plan.target.backings if b.weight > 0]
    old = [
        b
        for b in plan.previous.backings
        if b.weight > 0 and b.version not in {n.version for n in new}
    ]
    out: dict[str, Any] = {}
    for step in plan.steps:
        backings = tuple(
            [*(_scaled(b, 100.0 - step) for b in old), *(_scaled(b, step) for b in new)]
        )
        state = EndpointState(
            plan.target.name,
            plan.target.model,
            tuple(b for b in backings if b.weight > 0),
            replicas=plan.target.replicas,
            instance_type=plan.target.instance_type,
        )
        out = endpoints.deploy(backend, state, ctx, primary=False, deployment_config=None)
        ctx.emit(
            Event(
                "rollout.step",
                out["endpoint_name"],
                f"{step:g}% to the new version",
                {"step": step, "weights": out["weights"]},
            )
        )
        if step < 100:
            ctx.cancel.wait(plan.interval)
        fired = alarms.firing(backend, watched)
        if fired:
            restored = endpoints.deploy(
                backend, plan.previous, ctx, primary=False, deployment_config=None
            )
            return {
                **restored,
                "outcome": "rolled_back",
                "reason": f"rollout of {plan.target.name} stopped at {step:g}%: alarm "
                f"{', '.join(fired)} fired; traffic restored",
            }
    return {**out, "outcome": "promoted"}


def deployment_config(plan: RolloutPlan, alarms: list[str], timeout: float) -> dict[str, Any]:
    """The strategy as SageMaker's BlueGreenUpdatePolicy with alarm-driven auto-rollback."""
    interval = max(0, min(3600, int(plan.interval)))
    if plan.strategy == "canary":
        first = plan.steps[0] if plan.steps else 10.0
        routing: dict[str, Any] = {
            "Type": "CANARY",
            "WaitIntervalInSeconds": interval,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": int(max(1, min(99, first)))},
        }
    elif plan.strategy == "linear":
        step = plan.steps[0] if plan.steps else 20.0
        routing = {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": interval,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": int(max(1, min(99, step)))},
        }
    else:  # all_at_once, blue_green
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": interval}
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        "TerminationWaitInSeconds": interval if plan.strategy == "blue_green" else 0,
        "MaximumExecutionTimeoutInSeconds": int(max(600, min(28800, timeout))),
    }
    out: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if alarms:
        out["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms[:10]]}
    return out


def _scaled(b: Backing, weight: float) -> Backing:
    return Backing(version=b.version, uri=b.uri, digest=b.digest, weight=weight, shadow=0.0)
