"""The AWS infrastructure a SageMaker environment runs on, as one Pulumi ComponentResource.

Artifact bucket (versioned, SSE-encrypted, public access blocked), a SageMaker execution role
whose inline policy reaches only that bucket and that Model Package Group, the Model Package
Group, and the CloudWatch alarms deployment gates map to (error_rate -> Invocation5XXErrors /
Invocations, latency_pNN -> ModelLatency pNN) on the endpoint's ``primary`` variant, which
SageMaker's blue/green rollouts shift and roll back on. Outputs are what the backend consumes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

PRIMARY_VARIANT = "primary"
_ALARM_WHEN = {
    "<": "GreaterThanOrEqualToThreshold",
    "<=": "GreaterThanThreshold",
    ">": "LessThanOrEqualToThreshold",
    ">=": "LessThanThreshold",
}


@dataclass(frozen=True)
class SageMakerStackArgs:
    name: str  # e.g. mlstack-churn-staging
    model_package_group: str
    endpoint: str | None = None
    # deployment gates: metric -> (operator, bound in base units: a fraction, seconds), as
    # mlstack.manifest.units.parse_threshold reads the spec's rules (this package does not
    # depend on mlstack: the caller parses)
    gates: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    bucket: str | None = None  # an existing bucket: not created, the role is scoped to it
    role_arn: str | None = None  # an existing role: no role is created
    tags: Mapping[str, str] = field(default_factory=dict)
    subnets: tuple[str, ...] = ()  # jobs run in these subnets: the role needs ENI permissions
    job_types: tuple[str, ...] = ("processing", "training")  # the jobs the pipeline starts


_JOB_ACTIONS = {
    "processing": ("ProcessingJob", "processing-job"),
    "training": ("TrainingJob", "training-job"),
    "transform": ("TransformJob", "transform-job"),
}


def execution_policy(
    bucket_arn: str,
    group_arn: str,
    package_arn_prefix: str,
    region: str,
    account: str,
    role_arn: str,
    job_types: tuple[str, ...] = ("processing", "training"),
    subnets: bool = False,
) -> str:
    """Least privilege for the jobs and endpoints the pipeline runs as this role, and for the
    pipeline itself, which runs as the same role: it passes the role on to the jobs it starts."""
    jobs = [_JOB_ACTIONS[t] for t in job_types]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "PassSelf",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": [role_arn],
            "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        },
        {
            "Sid": "Jobs",
            "Effect": "Allow",
            "Action": [
                f"sagemaker:{verb}{kind}"
                for kind, _ in jobs
                for verb in ("Create", "Describe", "Stop")
            ]
            + ["sagemaker:AddTags"],
            "Resource": [f"arn:aws:sagemaker:{region}:{account}:{res}/*" for _, res in jobs],
        },
        {
            "Sid": "Artifacts",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
            ],
            "Resource": [f"{bucket_arn}/*"],
        },
        {
            "Sid": "ListArtifacts",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": [bucket_arn],
        },
        {
            "Sid": "Registry",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:UpdateModelPackage",
                "sagemaker:ListModelPackages",
                "sagemaker:DescribeModelPackageGroup",
            ],
            "Resource": [group_arn, f"{package_arn_prefix}/*"],
        },
        {
            "Sid": "Images",
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            "Resource": ["*"],
        },  # ecr:GetAuthorizationToken has no resource-level scoping
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            "Resource": [f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*"],
        },
        {
            "Sid": "Metrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricData"],
            "Resource": ["*"],
            "Condition": {
                "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "mlstack/*"]}
            },
        },
    ]
    if subnets:
        # Jobs in a VPC attach network interfaces; these EC2 actions take no resource scoping.
        statements.append(
            {
                "Sid": "Network",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:CreateNetworkInterfacePermission",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DeleteNetworkInterfacePermission",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeVpcs",
                    "ec2:DescribeDhcpOptions",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeSecurityGroups",
                ],
                "Resource": ["*"],
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def alarm_args(endpoint: str, gate: str, threshold: tuple[str, float]) -> dict[str, Any] | None:
    """Inputs of one aws.cloudwatch.MetricAlarm for a deployment gate (its parsed threshold:
    operator and bound), or None if not mappable."""
    op, bound = threshold
    if op not in _ALARM_WHEN:
        raise ValueError(f"gate {gate}: operator {op!r} is not one of {', '.join(_ALARM_WHEN)}")
    dims = {"EndpointName": endpoint, "VariantName": PRIMARY_VARIANT}
    common: dict[str, Any] = {
        "name": f"{endpoint}-{gate.replace('_', '-')}",
        "alarm_description": f"mlstack gate {gate} {op} {bound:g} on {endpoint}",
        "comparison_operator": _ALARM_WHEN[op],
        "evaluation_periods": 1,
        "datapoints_to_alarm": 1,
        "treat_missing_data": "notBreaching",
    }
    if gate == "error_rate":

        def stat(metric: str) -> aws.cloudwatch.MetricAlarmMetricQueryMetricArgs:
            return aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace="AWS/SageMaker",
                metric_name=metric,
                dimensions=dims,
                period=60,
                stat="Sum",
            )

        common.update(
            threshold=bound,
            metric_queries=[
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="errors", return_data=False, metric=stat("Invocation5XXErrors")
                ),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="requests", return_data=False, metric=stat("Invocations")
                ),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate",
                    return_data=True,
                    label="error rate",
                    expression="IF(requests > 0, errors / requests, 0)",
                ),
            ],
        )
        return common
    if gate.startswith("latency_p"):
        common.update(
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions=dims,
            extended_statistic=gate.removeprefix("latency_"),
            period=60,
            threshold=bound * 1e6,
            unit="Microseconds",
        )  # ModelLatency: microseconds
        return common
    return None


def _sse_default() -> Any:
    return aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
        sse_algorithm="aws:kms"
    )


class SageMakerStack(pulumi.ComponentResource):
    """Everything a SageMaker environment needs before mlstack's first run."""

    bucket_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    model_package_group_name: pulumi.Output[str]
    alarm_names: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: SageMakerStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlstack:aws:SageMakerStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {"mlstack:stack": args.name, **dict(args.tags)}
        caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self))

        if args.bucket:
            bucket_name: pulumi.Output[str] = pulumi.Output.from_input(args.bucket)
            bucket_arn = pulumi.Output.from_input(f"arn:aws:s3:::{args.bucket}")
        else:
            bucket = aws.s3.Bucket(
                f"{name}-artifacts",
                bucket_prefix=f"{args.name[:36]}-",
                force_destroy=True,  # versioned: destroy must delete every object version
                tags=tags,
                opts=child,
            )
            aws.s3.BucketVersioning(
                f"{name}-versioning",
                bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                    status="Enabled"
                ),
                opts=child,
            )
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption",
                bucket=bucket.id,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=_sse_default(),
                        bucket_key_enabled=True,
                    )
                ],
                opts=child,
            )
            aws.s3.BucketPublicAccessBlock(
                f"{name}-public-access",
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child,
            )
            bucket_name, bucket_arn = bucket.bucket, bucket.arn

        group = aws.sagemaker.ModelPackageGroup(
            f"{name}-models",
            model_package_group_name=args.model_package_group,
            model_package_group_description=f"mlstack {args.name}",
            tags=tags,
            opts=child,
        )

        if args.role_arn:
            role_arn: pulumi.Output[str] = pulumi.Output.from_input(args.role_arn)
        else:
            trust = json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            )
            role = aws.iam.Role(
                f"{name}-execution",
                name_prefix=f"{args.name[:30]}-",
                assume_role_policy=trust,
                tags=tags,
                opts=child,
            )
            policy = pulumi.Output.all(
                bucket_arn, group.arn, caller.account_id, region.region, role.arn
            ).apply(
                lambda v: execution_policy(
                    v[0],
                    v[1],
                    f"arn:aws:sagemaker:{v[3]}:{v[2]}:model-package/{args.model_package_group}",
                    v[3],
                    v[2],
                    v[4],
                    job_types=tuple(args.job_types),
                    subnets=bool(args.subnets),
                )
            )
            aws.iam.RolePolicy(f"{name}-execution-policy", role=role.id, policy=policy, opts=child)
            role_arn = role.arn

        alarms = []
        if args.endpoint:
            for gate, threshold in sorted(args.gates.items()):
                spec = alarm_args(args.endpoint, gate, threshold)
                if spec is not None:
                    alarms.append(
                        aws.cloudwatch.MetricAlarm(
                            f"{name}-{gate.replace('_', '-')}", tags=tags, opts=child, **spec
                        )
                    )

        self.bucket_name = bucket_name
        self.role_arn = role_arn
        self.model_package_group_name = group.model_package_group_name
        self.alarm_names = pulumi.Output.all(*[a.name for a in alarms]).apply(list)
        self.register_outputs(
            {
                "bucket": bucket_name,
                "role_arn": role_arn,
                "model_package_group": self.model_package_group_name,
                "alarms": self.alarm_names,
            }
        )


def program(args: SageMakerStackArgs) -> Any:
    """An inline program for Pulumi's Automation API."""

    def run() -> None:
        stack = SageMakerStack(args.name, args)
        pulumi.export("bucket", stack.bucket_name)
        pulumi.export("role_arn", stack.role_arn)
        pulumi.export("model_package_group", stack.model_package_group_name)
        pulumi.export("alarms", stack.alarm_names)

    return run
