"""CloudWatch alarms for deployment gates: the requests that make them, and the ones a rollout
makes, finds, checks and prunes. Custom-metric gates have no alarm: mlstack's controller checks
those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Context, RolloutPlan
from mlstack_sagemaker.aws_names import sagemaker_name

if TYPE_CHECKING:
    from mlstack_sagemaker.platform import Platform

ALARM_MARK = "mlstack gate"  # starts the description of every alarm this backend makes
PRIMARY_VARIANT = "primary"  # the variant native rollouts shift; the stack's alarms watch it


def ensure_alarms(
    platform: Platform, plan: RolloutPlan, ctx: Context, variants: Sequence[str] = ()
) -> list[str]:
    """The CloudWatch alarms a rollout rolls back on: the stack's or made here for the
    ``primary`` variant, and one set per named variant (the stepped mode's new version)."""
    infra = platform.infra_outputs(ctx)
    names = list(infra.get("alarms") or []) + list(platform.config.alarms)
    name = platform.endpoint_name(plan.target.name)
    specs = []
    if not (infra.get("provisioned_by") == "pulumi" and infra.get("alarms")):
        specs += alarm_specs(name, plan.gates, PRIMARY_VARIANT)
    fresh = set()
    for variant in variants:
        for spec in alarm_specs(name, plan.gates, variant):
            # The variant does not serve yet: whatever state its alarm has is stale.
            fresh.add(spec["AlarmName"])
            specs.append(spec)
    existing = (
        {
            a["AlarmName"]: a
            for a in platform.aws.call(
                "cloudwatch", "describe_alarms", AlarmNames=[s["AlarmName"] for s in specs]
            ).get("MetricAlarms", [])
        }
        if specs
        else {}
    )
    for spec in specs:
        # PutMetricAlarm resets the state to INSUFFICIENT_DATA: a firing alarm would be
        # silenced by re-putting it, so only create what is missing or changed.
        have = existing.get(spec["AlarmName"])
        if spec["AlarmName"] in fresh or have is None or not _alarm_matches(have, spec):
            platform.aws.call("cloudwatch", "put_metric_alarm", **spec)
        names.append(spec["AlarmName"])
    return names


def firing(platform: Platform, alarms: list[str]) -> list[str]:
    if not alarms:
        return []
    resp = platform.aws.call("cloudwatch", "describe_alarms", AlarmNames=alarms)
    return [a["AlarmName"] for a in resp.get("MetricAlarms", []) if a.get("StateValue") == "ALARM"]


def mlstack_alarms(platform: Platform, endpoint_name: str) -> list[dict[str, Any]]:
    """Alarms this backend made for an endpoint (the stack's are Pulumi's to delete)."""
    resp = platform.aws.call("cloudwatch", "describe_alarms", AlarmNamePrefix=endpoint_name + "-")
    return [
        a
        for a in resp.get("MetricAlarms", [])
        if str(a.get("AlarmDescription", "")).startswith(ALARM_MARK)
    ]


def prune_variant_alarms(platform: Platform, endpoint_name: str, serving: set[str]) -> None:
    stale = [
        a["AlarmName"]
        for a in mlstack_alarms(platform, endpoint_name)
        if _alarm_variant(a) not in serving and _alarm_variant(a) != PRIMARY_VARIANT
    ]
    if stale:
        platform.aws.call("cloudwatch", "delete_alarms", AlarmNames=stale)


def alarm_specs(endpoint: str, gates: Mapping[str, str], variant: str) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for deployment gates (error_rate, latency_pNN) on one variant."""
    from mlstack.manifest.units import parse_threshold

    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    alarm_name_parts = (endpoint,) if variant == PRIMARY_VARIANT else (endpoint, variant)
    out = []
    for gate, rule in sorted(gates.items()):
        op, bound = parse_threshold(rule)
        # A gate says what is healthy; the alarm fires on the opposite.
        comparison = {
            "<": "GreaterThanOrEqualToThreshold",
            "<=": "GreaterThanThreshold",
            ">": "LessThanOrEqualToThreshold",
            ">=": "LessThanThreshold",
        }[op]
        base = {
            "AlarmName": sagemaker_name(*alarm_name_parts, gate.replace("_", "-")),
            "AlarmDescription": f"{ALARM_MARK} {gate} {rule} on {endpoint} variant {variant}",
            "ComparisonOperator": comparison,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "TreatMissingData": "notBreaching",
        }
        if gate == "error_rate":
            base.update(
                Threshold=bound,
                Metrics=[
                    {
                        "Id": "errors",
                        "ReturnData": False,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SageMaker",
                                "MetricName": "Invocation5XXErrors",
                                "Dimensions": dims,
                            },
                            "Period": 60,
                            "Stat": "Sum",
                        },
                    },
                    {
                        "Id": "requests",
                        "ReturnData": False,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SageMaker",
                                "MetricName": "Invocations",
                                "Dimensions": dims,
                            },
                            "Period": 60,
                            "Stat": "Sum",
                        },
                    },
                    {
                        "Id": "rate",
                        "ReturnData": True,
                        "Label": "error rate",
                        "Expression": "IF(requests > 0, errors / requests, 0)",
                    },
                ],
            )
        elif gate.startswith("latency_p"):
            base.update(
                Namespace="AWS/SageMaker",
                MetricName="ModelLatency",
                Dimensions=dims,
                ExtendedStatistic=gate.removeprefix("latency_"),
                Period=60,
                Threshold=bound * 1e6,
                Unit="Microseconds",
            )
        else:
            continue  # custom metrics are checked by mlstack's controller, not CloudWatch
        out.append(base)
    return out


def _alarm_variant(alarm: Mapping[str, Any]) -> str | None:
    dims = list(alarm.get("Dimensions") or [])
    for query in alarm.get("Metrics") or []:
        dims += (query.get("MetricStat") or {}).get("Metric", {}).get("Dimensions") or []
    return next((d["Value"] for d in dims if d["Name"] == "VariantName"), None)


def _alarm_matches(have: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    keys = ("ComparisonOperator", "Threshold", "MetricName", "ExtendedStatistic")
    return all(have.get(k) == spec.get(k) for k in keys if k in spec)
