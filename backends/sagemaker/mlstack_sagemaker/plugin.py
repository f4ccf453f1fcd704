"""The SageMaker backend's descriptor: config model and capabilities, with no boto3 or SDK import.

``mlstack validate`` checks an environment block against ``SageMakerConfig`` through this module
alone, so it must stay as light as pydantic. The implementation (boto3, the SageMaker SDK,
Pulumi) is imported by ``BackendPlugin.load`` only when work on SageMaker starts.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlstack.engine.backend import JOB_STAGE_KINDS, BackendPlugin, Capabilities
from mlstack.manifest.suggest import did_you_mean
from mlstack_sagemaker import instance_types
from mlstack_sagemaker.aws_names import (
    GATE_METRICS,
    INSTANCE_RE,
    REGIONS,
    ROLE_ARN_RE,
    SAGEMAKER_NAME_RE,
    SECURITY_GROUP_RE,
    SUBNET_RE,
    bucket_problem,
)

CREATE_ROLE = "create"


_ALL_TYPES = instance_types.PROCESSING | instance_types.TRAINING | instance_types.HOSTING
_FAMILIES = sorted({t.split(".")[1] for t in _ALL_TYPES})
_SIZES = sorted({t.split(".")[2] for t in _ALL_TYPES})
JOB_TYPES = instance_types.PROCESSING & instance_types.TRAINING  # `instance_type` runs both


def check_instance_type(
    value: str,
    allow_unknown: bool = False,
    accepted: frozenset[str] = JOB_TYPES,
    what: str = "processing and training jobs",
) -> str:
    """``value`` if SageMaker accepts it for ``what`` (``accepted``: from botocore's API model,
    see ``instance_types``); otherwise a ValueError saying what is wrong."""
    m = INSTANCE_RE.match(value)
    if not m:
        hint = f"; did you mean 'ml.{value}'?" if INSTANCE_RE.match(f"ml.{value}") else ""
        raise ValueError(
            f"{value!r} is not a SageMaker instance type (they look like ml.m5.large){hint}"
        )
    if allow_unknown:
        return value
    family, size = m.groups()
    if family not in _FAMILIES:
        raise ValueError(
            f"unknown SageMaker instance family {family!r} in {value!r}"
            f"{did_you_mean(family, _FAMILIES)}"
        )
    if size not in _SIZES:
        raise ValueError(f"unknown instance size {size!r} in {value!r}{did_you_mean(size, _SIZES)}")
    if value not in accepted:
        same = sorted(t for t in accepted if t.split(".")[1] == family)
        raise ValueError(
            f"SageMaker does not run {what} on {value!r} (AWS's API model, botocore "
            f"{instance_types.BOTOCORE_VERSION})"
            + (f"; {family} offers {', '.join(same)}" if same else "")
        )
    return value


class SageMakerConfig(BaseModel):
    """The keys an environment with ``backend: sagemaker`` accepts beside the common ones.

    With ``bucket`` and an existing ``role`` ARN given, the infrastructure is taken as it is and
    Pulumi is never needed; otherwise mlstack's AWS stack (Pulumi) creates what is missing.
    """

    model_config = ConfigDict(extra="forbid")

    region: str = Field(description="AWS region, e.g. eu-west-1")
    role: str = Field(
        description="SageMaker execution role ARN, or `create` to have the AWS "
        "stack create a least-privilege one"
    )
    bucket: str | None = Field(default=None, description="artifact bucket; created when unset")
    model_package_group: str | None = Field(
        default=None, description="Model Package Group; default: the model name"
    )
    allow_unknown_instance_types: bool = Field(
        default=False, description="accept ml.* types newer than mlstack's list"
    )
    instance_type: str = Field(
        default="ml.m5.large", description="instance type of processing and training jobs"
    )
    serving_instance_type: str | None = Field(
        default=None, description="instance type of endpoint variants; default instance_type"
    )
    subnets: list[str] = Field(default_factory=list, description="VPC subnets for jobs/endpoints")
    security_groups: list[str] = Field(
        description="VPC security groups for jobs/endpoints", default_factory=list
    )
    sklearn_version: str = Field(
        default="1.2-1", description="SageMaker scikit-learn container version"
    )
    traffic_shifting: Literal["native", "variants"] = Field(
        default="native",
        description="native: SageMaker blue/green DeploymentConfig with alarm auto-rollback; "
        "variants: both versions as production variants, weights stepped by mlstack",
    )
    alarms: list[str] = Field(
        default_factory=list, description="extra CloudWatch alarm names that roll a deployment back"
    )
    endpoint_url: str | None = Field(
        default=None, description="AWS API endpoint override (tests, LocalStack)"
    )
    pulumi_backend_url: str | None = Field(
        default=None, description="where Pulumi keeps stack state, e.g. s3://bucket/pulumi"
    )
    poll_interval: float = Field(
        default=15.0, gt=0, le=600, description="seconds between status checks"
    )
    timeout: float = Field(default=4 * 3600.0, gt=0, description="longest wait for a run/rollout")

    @field_validator("instance_type")
    @classmethod
    def _instance(cls, v: str, info: ValidationInfo) -> str:
        return check_instance_type(v, bool(info.data.get("allow_unknown_instance_types")))

    @field_validator("serving_instance_type")
    @classmethod
    def _serving_instance(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        allow = bool(info.data.get("allow_unknown_instance_types"))
        return check_instance_type(v, allow, instance_types.HOSTING, "endpoints")

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if v not in REGIONS:
            raise ValueError(f"unknown AWS region {v!r}{did_you_mean(v, REGIONS)}")
        return v

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v != CREATE_ROLE and not ROLE_ARN_RE.match(v):
            raise ValueError(
                f"role {v!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME); "
                f"write `role: {CREATE_ROLE}` to have mlstack's AWS stack create one"
            )
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str | None) -> str | None:
        if v is not None:
            problem = bucket_problem(v)
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("model_package_group")
    @classmethod
    def _group(cls, v: str | None) -> str | None:
        if v is not None and not SAGEMAKER_NAME_RE.match(v):
            raise ValueError(
                f"model_package_group {v!r}: use letters, digits and single "
                "hyphens, at most 63 characters"
            )
        return v

    @field_validator("subnets")
    @classmethod
    def _subnets(cls, v: list[str]) -> list[str]:
        for s in v:
            if not SUBNET_RE.match(s):
                raise ValueError(f"{s!r} is not a subnet id (subnet-0123abcd...)")
        return v

    @field_validator("security_groups")
    @classmethod
    def _sgs(cls, v: list[str]) -> list[str]:
        for s in v:
            if not SECURITY_GROUP_RE.match(s):
                raise ValueError(f"{s!r} is not a security group id (sg-0123abcd...)")
        return v

    @model_validator(mode="after")
    def _cross(self) -> SageMakerConfig:
        if bool(self.subnets) != bool(self.security_groups):
            raise ValueError("a VPC needs both `subnets` and `security_groups` (or neither)")
        if self.serving_instance_type is None and not self.allow_unknown_instance_types:
            if self.instance_type not in instance_types.HOSTING:
                raise ValueError(
                    f"endpoints serve on instance_type {self.instance_type!r}, which SageMaker "
                    "does not offer for endpoints; set serving_instance_type (e.g. ml.m5.large)"
                )
        return self

    @property
    def infrastructure_given(self) -> bool:
        """True when the environment block names existing infrastructure: no Pulumi needed."""
        return self.bucket is not None and self.role != CREATE_ROLE

    @property
    def hosting_instance_type(self) -> str:
        return self.serving_instance_type or self.instance_type


plugin = BackendPlugin(
    name="sagemaker",
    config_model=SageMakerConfig,
    capabilities=Capabilities(
        native_progressive=True,
        weighted_traffic=True,
        mirroring=True,
        max_mirror_percent=100.0,
        sticky_sessions=False,
        gate_metrics=frozenset(GATE_METRICS),
        stage_kinds=JOB_STAGE_KINDS,
        notes={
            "batching": (
                "backend 'sagemaker': SageMaker real-time endpoints have no request "
                "batching (batch transform is for offline scoring)"
            ),
            "stage:function": "the job containers run commands, not Python functions of your "
            "project; write the stage as `run: python -m your.module`",
            "sticky_sessions": "SageMaker routes each request to a production variant by weight; "
            "only a client that sends TargetVariant picks one, so an A/B split cannot be sticky",
            "hint:sticky_sessions": "set ab.sticky_key: null to split by weight only (not "
            "sticky), or route callers yourself with InvokeEndpoint's TargetVariant",
            "gates": "SageMaker judges rollouts by CloudWatch alarms on the endpoint's own "
            "metrics (Invocations, Invocation5XXErrors, ModelLatency); a custom metric has none",
            "hint:gates": "gate on error_rate or latency_p50/p90/p95/p99, or make a CloudWatch "
            "alarm on your metric and list it under `alarms:` in the environment block",
            "canary": "endpoint variants stepped through every canary step with the gates' "
            "CloudWatch alarms watched; one step below 100 % uses DeploymentConfig CANARY",
            "linear": "DeploymentConfig LINEAR (equal steps) with alarm auto-rollback",
            "all_at_once": "DeploymentConfig ALL_AT_ONCE",
            "blue_green": "DeploymentConfig ALL_AT_ONCE with a bake (TerminationWaitInSeconds)",
            "shadow": "a ShadowProductionVariant on the endpoint config for the shadow phase, "
            "its alarms watched, then the new version as the production variant",
            "ab": "production variants weighted champion/challenger, not sticky",
        },
    ),
    implementation="mlstack_sagemaker.backend:SageMakerBackend",
    description="Amazon SageMaker: Pipelines, Model Registry, endpoints with guarded rollouts",
)
