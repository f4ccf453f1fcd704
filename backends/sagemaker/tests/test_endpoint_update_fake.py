"""The endpoint stand-ins (conftest.py) behave as AWS documents them: CreateEndpoint is Creating
then InService (or Failed), UpdateEndpointWeightsAndCapacities is refused unless InService and is
Updating before the weights apply, UpdateEndpoint has an Updating phase with alarms watched while
it lasts, automatic rollback, failed updates back on the old config, and the deployment
guardrails rules. Driven over HTTP with boto3 against the moto server."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/mlstack-sm"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/m:1"


def _clients(url: str) -> tuple[Any, Any]:
    import boto3

    return (
        boto3.client("sagemaker", endpoint_url=url, region_name="eu-west-1"),
        boto3.client("cloudwatch", endpoint_url=url, region_name="eu-west-1"),
    )


def _config(sm: Any, name: str, variants: list[str], shadows: tuple[str, ...] = ()) -> str:
    def variant(v: str) -> dict[str, Any]:
        sm.create_model(
            ModelName=f"{name}-{v}", ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE}
        )
        return {
            "VariantName": v,
            "ModelName": f"{name}-{v}",
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
            "InitialVariantWeight": 1.0,
        }

    kwargs: dict[str, Any] = {"ProductionVariants": [variant(v) for v in variants]}
    if shadows:
        kwargs["ShadowProductionVariants"] = [variant(v) for v in shadows]
    sm.create_endpoint_config(EndpointConfigName=name, **kwargs)
    return name


def _endpoint(sm: Any, name: str, variants: tuple[str, ...] = ("primary",)) -> None:
    sm.create_endpoint(
        EndpointName=name, EndpointConfigName=_config(sm, f"{name}-old", list(variants))
    )
    _settle(sm, name)


def _guarded(
    kind: str, size: int | None = None, wait: int = 60, timeout: int = 3600
) -> dict[str, Any]:
    routing: dict[str, Any] = {"Type": kind, "WaitIntervalInSeconds": wait}
    if kind == "CANARY":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": size}
    if kind == "LINEAR":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": size}
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "MaximumExecutionTimeoutInSeconds": timeout,
        }
    }


def _settle(sm: Any, name: str) -> tuple[list[str], dict[str, Any]]:
    statuses = []
    for _ in range(20):
        d = sm.describe_endpoint(EndpointName=name)
        statuses.append(d["EndpointStatus"])
        if d["EndpointStatus"] in ("InService", "Failed"):
            return statuses, d
    raise AssertionError(f"never settled: {statuses}")


def test_update_is_updating_then_in_service_on_the_new_config(
    aws_env: str, lifecycle: dict[str, int]
) -> None:
    sm, _ = _clients(aws_env)
    _endpoint(sm, "ep-a")
    new = _config(sm, "ep-a-new", ["primary"])
    sm.update_endpoint(
        EndpointName="ep-a", EndpointConfigName=new, DeploymentConfig=_guarded("CANARY", 10)
    )
    with pytest.raises(sm.exceptions.ClientError, match="in-progress"):
        sm.update_endpoint(EndpointName="ep-a", EndpointConfigName=new)
    statuses, d = _settle(sm, "ep-a")
    assert statuses == ["Updating"] * lifecycle["Updating"] + ["InService"]
    assert d["EndpointConfigName"] == new and not d.get("FailureReason")


@pytest.mark.parametrize(
    ("variants", "deployment", "refusal"),
    [
        (["v2"], _guarded("CANARY", 10), "same production variant names"),
        (["primary"], _guarded("CANARY", 51), "at most 50%"),
        (["primary"], _guarded("LINEAR", 5), "between 10% and 50%"),
        (["primary"], _guarded("LINEAR", 60), "between 10% and 50%"),
        (["primary"], _guarded("LINEAR", 10, wait=3600, timeout=3600), "must exceed"),
    ],
)
def test_guardrail_rules_refuse_what_aws_refuses(
    aws_env: str, variants: list[str], deployment: dict[str, Any], refusal: str
) -> None:
    sm, _ = _clients(aws_env)
    name = f"ep-g{abs(hash(refusal + str(deployment))) % 10**6}"
    _endpoint(sm, name)
    new = _config(sm, f"{name}-new", variants)
    with pytest.raises(sm.exceptions.ClientError, match=refusal):
        sm.update_endpoint(EndpointName=name, EndpointConfigName=new, DeploymentConfig=deployment)
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
    # an unguarded update may rename variants
    sm.update_endpoint(EndpointName=name, EndpointConfigName=new)
    assert _settle(sm, name)[1]["EndpointConfigName"] == new


def test_alarm_during_baking_rolls_back_to_the_old_config(aws_env: str) -> None:
    sm, cw = _clients(aws_env)
    _endpoint(sm, "ep-r")
    cw.put_metric_alarm(
        AlarmName="ep-r-errors",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    deployment = _guarded("LINEAR", 20)
    deployment["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": "ep-r-errors"}]}
    new = _config(sm, "ep-r-new", ["primary"])
    sm.update_endpoint(EndpointName="ep-r", EndpointConfigName=new, DeploymentConfig=deployment)
    assert sm.describe_endpoint(EndpointName="ep-r")["EndpointStatus"] == "Updating"  # baking
    cw.set_alarm_state(AlarmName="ep-r-errors", StateValue="ALARM", StateReason="test: 5xx")
    statuses, d = _settle(sm, "ep-r")
    assert statuses == ["RollingBack", "InService"]
    assert d["EndpointConfigName"] == "ep-r-old"
    assert "ep-r-errors" in d["FailureReason"]


def test_failed_update_returns_in_service_on_the_old_config(
    aws_env: str, fail_updates: dict[str, str]
) -> None:
    sm, _ = _clients(aws_env)
    _endpoint(sm, "ep-f")
    fail_updates["ep-f"] = "The primary container did not pass the ping health check."
    sm.update_endpoint(EndpointName="ep-f", EndpointConfigName=_config(sm, "ep-f-new", ["primary"]))
    statuses, d = _settle(sm, "ep-f")
    assert statuses[0] == "Updating" and d["EndpointConfigName"] == "ep-f-old"
    assert d["FailureReason"] == "The primary container did not pass the ping health check."


@pytest.mark.parametrize(("production", "shadows"), [(["a"], ("s1", "s2")), (["a", "b"], ("s1",))])
def test_shadow_configs_hold_one_production_and_one_shadow(
    aws_env: str, production: list[str], shadows: tuple[str, ...]
) -> None:
    sm, _ = _clients(aws_env)
    name = f"ep-s{len(production)}{len(shadows)}"
    with pytest.raises(
        sm.exceptions.ClientError, match="only one production variant and one shadow"
    ):
        _config(sm, name, production, shadows)
    _config(sm, f"{name}-ok", ["a"], ("s1",))


def test_create_is_creating_then_in_service_or_failed(
    aws_env: str, lifecycle: dict[str, int], fail_creates: dict[str, str]
) -> None:
    sm, _ = _clients(aws_env)
    sm.create_endpoint(EndpointName="ep-c", EndpointConfigName=_config(sm, "ep-c-1", ["primary"]))
    with pytest.raises(sm.exceptions.ClientError, match="already existing endpoint"):
        sm.create_endpoint(EndpointName="ep-c", EndpointConfigName="ep-c-1")
    with pytest.raises(sm.exceptions.ClientError, match="in-progress"):
        sm.update_endpoint(EndpointName="ep-c", EndpointConfigName="ep-c-1")
    statuses, d = _settle(sm, "ep-c")
    assert statuses == ["Creating"] * lifecycle["Creating"] + ["InService"]
    assert not d.get("FailureReason")

    fail_creates["ep-cf"] = "The primary container did not pass the ping health check."
    sm.create_endpoint(EndpointName="ep-cf", EndpointConfigName=_config(sm, "ep-cf-1", ["primary"]))
    statuses, d = _settle(sm, "ep-cf")
    assert statuses == ["Creating"] * lifecycle["Creating"] + ["Failed"]
    assert d["FailureReason"] == "The primary container did not pass the ping health check."


def test_weights_update_is_refused_unless_in_service_then_updating_before_it_applies(
    aws_env: str, lifecycle: dict[str, int]
) -> None:
    sm, _ = _clients(aws_env)
    sm.create_endpoint(EndpointName="ep-w", EndpointConfigName=_config(sm, "ep-w-1", ["v1", "v2"]))
    weights = [
        {"VariantName": "v1", "DesiredWeight": 0.9},
        {"VariantName": "v2", "DesiredWeight": 0.1},
    ]
    with pytest.raises(sm.exceptions.ClientError, match="in-progress"):  # still Creating
        sm.update_endpoint_weights_and_capacities(
            EndpointName="ep-w", DesiredWeightsAndCapacities=weights
        )
    _settle(sm, "ep-w")
    with pytest.raises(sm.exceptions.ClientError, match="not present"):
        sm.update_endpoint_weights_and_capacities(
            EndpointName="ep-w",
            DesiredWeightsAndCapacities=[{"VariantName": "v3", "DesiredWeight": 1.0}],
        )
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ep-w", DesiredWeightsAndCapacities=weights
    )
    during = sm.describe_endpoint(EndpointName="ep-w")
    assert during["EndpointStatus"] == "Updating"
    assert {v["VariantName"]: v["CurrentWeight"] for v in during["ProductionVariants"]} == {
        "v1": 1.0,
        "v2": 1.0,
    }
    with pytest.raises(sm.exceptions.ClientError, match="in-progress"):
        sm.update_endpoint_weights_and_capacities(
            EndpointName="ep-w", DesiredWeightsAndCapacities=weights
        )
    statuses, d = _settle(sm, "ep-w")
    assert statuses == ["Updating"] * (lifecycle["Updating"] - 1) + ["InService"]
    assert {v["VariantName"]: v["CurrentWeight"] for v in d["ProductionVariants"]} == {
        "v1": 0.9,
        "v2": 0.1,
    }
