"""The AWS component under Pulumi's unit-test mocks: resources, their key inputs, the outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_aws")


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ == "aws:s3/bucket:Bucket":
            state.update(
                bucket=f"{args.inputs.get('bucketPrefix', '')}abc123",
                arn=f"arn:aws:s3:::{args.inputs.get('bucketPrefix', '')}abc123",
            )
        if args.typ == "aws:iam/role:Role":
            state["arn"] = f"arn:aws:iam::123456789012:role/{args.name}"
        if args.typ == "aws:sagemaker/modelPackageGroup:ModelPackageGroup":
            state["arn"] = (
                "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/"
                + args.inputs["modelPackageGroupName"]
            )
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": "123456789012",
                "arn": "arn:aws:iam::123456789012:user/t",
                "userId": "t",
                "id": "123456789012",
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "name": "eu-west-1",
                "region": "eu-west-1",
                "id": "eu-west-1",
                "description": "Europe (Ireland)",
                "endpoint": "ec2.eu-west-1.amazonaws.com",
            }, []
        return {}, []


def _run(args: Any) -> tuple[Mocks, dict[str, Any]]:
    """Build the component under mocks and resolve its outputs."""
    from mlstack_stacks.aws import SageMakerStack

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="mlstack", stack="test", preview=False)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test
    def build() -> Any:
        stack = SageMakerStack(args.name, args)
        return pulumi.Output.all(
            stack.bucket_name, stack.role_arn, stack.model_package_group_name, stack.alarm_names
        ).apply(lambda v: outputs.update(bucket=v[0], role_arn=v[1], group=v[2], alarms=v[3]))

    build()
    return mocks, outputs


def _by_type(mocks: Mocks, typ: str) -> list[Any]:
    return [r for r in mocks.resources if r.typ == typ]


def test_full_stack_creates_bucket_role_group_and_alarms() -> None:
    from mlstack_stacks.aws import SageMakerStackArgs

    args = SageMakerStackArgs(
        name="mlstack-churn-staging",
        model_package_group="churn-staging",
        endpoint="churn-staging",
        gates={"error_rate": ("<", 0.01), "latency_p99": ("<", 0.2), "conversion": (">", 0.1)},
    )
    mocks, out = _run(args)

    (bucket,) = _by_type(mocks, "aws:s3/bucket:Bucket")
    assert bucket.inputs["bucketPrefix"] == "mlstack-churn-staging-"
    (versioning,) = _by_type(mocks, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (sse,) = _by_type(
        mocks,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    rule = sse.inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    (block,) = _by_type(mocks, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        block.inputs[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )

    (group,) = _by_type(mocks, "aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert group.inputs["modelPackageGroupName"] == "churn-staging"

    (role,) = _by_type(mocks, "aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    (policy,) = _by_type(mocks, "aws:iam/rolePolicy:RolePolicy")
    doc = json.loads(policy.inputs["policy"])
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["Artifacts"]["Resource"] == ["arn:aws:s3:::mlstack-churn-staging-abc123/*"]
    assert by_sid["ListArtifacts"]["Resource"] == ["arn:aws:s3:::mlstack-churn-staging-abc123"]
    assert by_sid["Registry"]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/churn-staging",
        "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-staging/*",
    ]
    # least privilege: no wildcard action, and "*" resources only where AWS allows nothing else
    assert not any(a.endswith(":*") or a == "*" for s in doc["Statement"] for a in s["Action"])
    assert {s["Sid"] for s in doc["Statement"] if "*" in s["Resource"]} == {"Images", "Metrics"}

    alarms = {
        a.inputs["name"]: a.inputs
        for a in _by_type(mocks, "aws:cloudwatch/metricAlarm:MetricAlarm")
    }
    assert set(alarms) == {"churn-staging-error-rate", "churn-staging-latency-p99"}
    err = alarms["churn-staging-error-rate"]
    assert err["threshold"] == pytest.approx(0.01)
    assert err["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    metrics = {q["id"]: q for q in err["metricQueries"]}
    assert metrics["errors"]["metric"]["metricName"] == "Invocation5XXErrors"
    assert metrics["errors"]["metric"]["dimensions"] == {
        "EndpointName": "churn-staging",
        "VariantName": "primary",
    }
    assert metrics["rate"]["returnData"] is True
    lat = alarms["churn-staging-latency-p99"]
    assert (lat["metricName"], lat["extendedStatistic"]) == ("ModelLatency", "p99")
    assert lat["threshold"] == pytest.approx(200_000)  # microseconds

    assert out == {
        "bucket": "mlstack-churn-staging-abc123",
        "role_arn": "arn:aws:iam::123456789012:role/mlstack-churn-staging-execution",
        "group": "churn-staging",
        "alarms": ["churn-staging-error-rate", "churn-staging-latency-p99"],
    }


def test_existing_bucket_and_role_are_used_not_created() -> None:
    from mlstack_stacks.aws import SageMakerStackArgs

    args = SageMakerStackArgs(
        name="mlstack-q-dev",
        model_package_group="q-dev",
        bucket="my-existing-bucket",
        role_arn="arn:aws:iam::123456789012:role/existing",
    )
    mocks, out = _run(args)
    types = {r.typ for r in mocks.resources}
    assert "aws:s3/bucket:Bucket" not in types
    assert "aws:iam/role:Role" not in types
    assert "aws:sagemaker/modelPackageGroup:ModelPackageGroup" in types
    assert out["bucket"] == "my-existing-bucket"
    assert out["role_arn"] == "arn:aws:iam::123456789012:role/existing"
    assert out["alarms"] == []


def test_alarm_fires_on_the_opposite_of_the_gate_and_refuses_unknown_operators() -> None:
    from mlstack_stacks.aws import alarm_args

    for op, when in [("<", "GreaterThanOrEqualToThreshold"), (">=", "LessThanThreshold")]:
        spec = alarm_args("e", "error_rate", (op, 0.05))
        assert spec is not None
        assert (spec["comparison_operator"], spec["threshold"]) == (when, 0.05)
        assert spec["alarm_description"] == f"mlstack gate error_rate {op} 0.05 on e"
    with pytest.raises(ValueError, match="operator '~' is not one of"):
        alarm_args("e", "error_rate", ("~", 0.01))


def _policy(mocks: Mocks) -> dict[str, Any]:
    (policy,) = _by_type(mocks, "aws:iam/rolePolicy:RolePolicy")
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def test_created_role_may_run_the_pipeline_it_is_the_role_of() -> None:
    """`role: create` is also the pipeline's role: it passes itself to the jobs it starts and
    may create/describe/stop each job type; ENI permissions only when jobs run in subnets."""
    from mlstack_stacks.aws import SageMakerStackArgs

    mocks, out = _run(SageMakerStackArgs(name="mlstack-p-dev", model_package_group="p-dev"))
    by_sid = _policy(mocks)
    assert by_sid["PassSelf"]["Action"] == ["iam:PassRole"]
    assert by_sid["PassSelf"]["Resource"] == [out["role_arn"]]
    assert by_sid["PassSelf"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert set(by_sid["Jobs"]["Action"]) >= {
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
    }
    assert by_sid["Jobs"]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:123456789012:processing-job/*",
        "arn:aws:sagemaker:eu-west-1:123456789012:training-job/*",
    ]
    assert "Network" not in by_sid

    mocks, _ = _run(
        SageMakerStackArgs(name="mlstack-p-dev", model_package_group="p-dev", subnets=("subnet-1",))
    )
    network = _policy(mocks)["Network"]
    assert {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface"} <= set(network["Action"])
    assert "ec2:CreateNetworkInterfacePermission" in network["Action"]


def test_created_bucket_can_be_destroyed_once_written() -> None:
    """A versioned bucket holding objects (and their versions) is only deletable with
    force_destroy; without it `destroy` fails as soon as a run wrote anything."""
    from mlstack_stacks.aws import SageMakerStackArgs

    mocks, _ = _run(SageMakerStackArgs(name="mlstack-b-dev", model_package_group="b-dev"))
    (bucket,) = _by_type(mocks, "aws:s3/bucket:Bucket")
    assert bucket.inputs["forceDestroy"] is True


def test_declared_pulumi_aws_has_get_region_result_region() -> None:
    """The stack reads GetRegionResult.region, which pulumi-aws has from v7 on."""
    from pathlib import Path

    import tomllib
    from packaging.requirements import Requirement

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    (req,) = [
        Requirement(r)
        for extra in meta["project"]["optional-dependencies"].values()
        for r in extra
        if Requirement(r).name == "pulumi-aws"
    ]
    assert not req.specifier.contains("6.99.0")
    assert req.specifier.contains("7.0.0")
