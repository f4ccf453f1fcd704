"""SageMaker endpoints: a model per version, endpoint configs with production and shadow
variants, deploying one desired state, reading weights and per-version CloudWatch metrics, and
tearing an endpoint down with everything made for it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import (
    Backing,
    Context,
    EndpointState,
    EndpointView,
    Event,
    VersionMetrics,
    VersionServing,
)
from mlstack.errors import BackendError
from mlstack_sagemaker import alarms
from mlstack_sagemaker.alarms import PRIMARY_VARIANT
from mlstack_sagemaker.aws_names import sagemaker_name

# what deploy did to the endpoint -> the event that says so
_ENDPOINT_EVENTS: dict[str, EventKind] = {
    "created": "endpoint.created",
    "updated": "endpoint.updated",
    "weights": "endpoint.weights",
    "unchanged": "endpoint.unchanged",
}

if TYPE_CHECKING:
    from mlstack.engine.seam import EventKind
    from mlstack_sagemaker.platform import Platform


def deploy(
    platform: Platform,
    desired: EndpointState,
    ctx: Context,
    deployment_config: Mapping[str, Any] | None,
) -> EndpointView:
    aws, project = platform.aws, platform.project
    infra = platform.infra_outputs(ctx)
    name = platform.endpoint_name(desired.name)
    body = _config_body(platform, desired, infra["role_arn"])
    expected: str | None = None
    current = aws.exists("sagemaker", "describe_endpoint", EndpointName=name)
    if current is not None and current["EndpointStatus"] not in ("InService", "Failed"):
        current = wait_endpoint(platform, name, ctx)
    if current is None:
        config = _ensure_config(platform, name, body)
        aws.call(
            "sagemaker",
            "create_endpoint",
            EndpointName=name,
            EndpointConfigName=config,
            Tags=[
                {"Key": "mlstack:project", "Value": project.project},
                {"Key": "mlstack:environment", "Value": project.environment},
            ],
        )
        action = "created"
    elif _same_variants(current, body) and deployment_config is None:
        wanted = {v["VariantName"]: v["InitialVariantWeight"] for v in body["ProductionVariants"]}
        have = {
            v["VariantName"]: v.get("CurrentWeight", 0.0)
            for v in current.get("ProductionVariants", [])
        }
        if all(abs(float(have.get(k, -1)) - w) < 1e-6 for k, w in wanted.items()):
            action = "unchanged"
        else:
            aws.call(
                "sagemaker",
                "update_endpoint_weights_and_capacities",
                EndpointName=name,
                DesiredWeightsAndCapacities=[
                    {"VariantName": k, "DesiredWeight": w} for k, w in wanted.items()
                ],
            )
            action = "weights"
    else:
        config = _ensure_config(platform, name, body)
        if config == current.get("EndpointConfigName") and deployment_config is None:
            action = "unchanged"
        else:
            kwargs: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config}
            if deployment_config:
                kwargs["DeploymentConfig"] = dict(deployment_config)
            aws.call("sagemaker", "update_endpoint", **kwargs)
            expected = config
            action = "updated"
    # A guarded update lasts its planned waits: wait as long as SageMaker may take (plus time
    # to roll back), not only the environment's timeout.
    policy = (deployment_config or {}).get("BlueGreenUpdatePolicy") or {}
    limit = float(policy.get("MaximumExecutionTimeoutInSeconds", 0))
    timeout = max(platform.config.timeout, limit + 600 if limit else 0.0)
    state = wait_endpoint(platform, name, ctx, expected_config=expected, timeout=timeout)
    view = endpoint_view(platform, name, state)
    weights = view.weights()
    kind: EventKind = _ENDPOINT_EVENTS[action]
    ctx.emit(Event(kind, name, _describe_weights(weights), {"weights": weights}))
    return view


def _model_for(platform: Platform, endpoint: str, backing: Backing, role: str) -> str:
    aws = platform.aws
    # Named under the environment's endpoint: destroy finds it, environments never share it.
    name = sagemaker_name(
        platform.endpoint_name(endpoint), f"v{backing.version}", backing.digest[7:15]
    )
    if aws.exists("sagemaker", "describe_model", ModelName=name) is None:
        pkg = aws.call("sagemaker", "describe_model_package", ModelPackageName=backing.uri)
        c = pkg["InferenceSpecification"]["Containers"][0]
        container = {
            "Image": c["Image"],
            "ModelDataUrl": c["ModelDataUrl"],
            "Environment": dict(c.get("Environment") or {}),
        }
        kwargs: dict[str, Any] = {
            "ModelName": name,
            "ExecutionRoleArn": role,
            "PrimaryContainer": container,
            "Tags": [
                {"Key": "mlstack:version", "Value": backing.version},
                {"Key": "mlstack:package", "Value": backing.uri},
            ],
        }
        if platform.config.subnets:
            kwargs["VpcConfig"] = {
                "Subnets": platform.config.subnets,
                "SecurityGroupIds": platform.config.security_groups,
            }
        aws.call("sagemaker", "create_model", **kwargs)
    return name


def _config_body(platform: Platform, desired: EndpointState, role: str) -> dict[str, Any]:
    """Production and shadow variants. A version serving alone (first deploy, promotion, any
    rollback) is always the ``primary`` variant, so a guarded update keeps its variant name (as
    AWS requires) and the stack's alarms on ``primary`` always watch what serves; versions
    sharing traffic in a stepped rollout are ``v{N}``."""
    live = [b for b in desired.backings if b.weight > 0]
    shadows = [b for b in desired.backings if b.shadow > 0 and b.weight == 0]
    if not live:
        raise BackendError(
            f"endpoint {desired.name!r} would serve no traffic: every version has weight 0"
        )
    if len(shadows) > 1 or (shadows and len(live) > 1):
        raise BackendError(
            f"endpoint {desired.name!r} would mirror to {len(shadows)} shadow version(s) beside "
            f"{len(live)} live one(s); SageMaker accepts one production and one shadow variant",
            hint="mirror one version at a time to an endpoint that one version serves",
        )
    instance = desired.instance_type or platform.config.hosting_instance_type
    use_primary = len(live) == 1

    def variant(b: Backing, weight: float) -> dict[str, Any]:
        return {
            "VariantName": PRIMARY_VARIANT if use_primary and b in live else f"v{b.version}",
            "ModelName": _model_for(platform, desired.name, b, role),
            "InstanceType": instance,
            "InitialInstanceCount": desired.replicas,
            "InitialVariantWeight": round(weight, 4),
        }

    body: dict[str, Any] = {"ProductionVariants": [variant(b, b.weight / 100.0) for b in live]}
    if shadows:
        # The shadow's weight relative to production sets the share of requests mirrored.
        body["ShadowProductionVariants"] = [variant(b, b.shadow / 100.0) for b in shadows]
    return body


def _ensure_config(platform: Platform, endpoint: str, body: Mapping[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
    name = sagemaker_name(endpoint, h)
    if (
        platform.aws.exists("sagemaker", "describe_endpoint_config", EndpointConfigName=name)
        is None
    ):
        platform.aws.call(
            "sagemaker",
            "create_endpoint_config",
            EndpointConfigName=name,
            Tags=[{"Key": "mlstack:endpoint", "Value": endpoint}],
            **body,
        )
    return name


class UpdateFailed(BackendError):
    """An UpdateEndpoint that SageMaker undid: back to InService on the old config."""

    def __init__(self, name: str, described: Mapping[str, Any]) -> None:
        reason = described.get("FailureReason") or "no reason given"
        super().__init__(
            f"update of endpoint {name} failed: {reason}; it still serves "
            f"{described.get('EndpointConfigName')}",
            hint="see the endpoint's CloudWatch logs and events",
        )
        self.described = dict(described)


def wait_endpoint(
    platform: Platform,
    name: str,
    ctx: Context,
    expected_config: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Wait until the endpoint settles (at most ``timeout``, the environment's by default); with
    ``expected_config`` (an update was started), an endpoint back in service on another config
    (SageMaker undid the update) is a failure."""
    cfg = platform.config
    timeout = cfg.timeout if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        d = platform.aws.call("sagemaker", "describe_endpoint", EndpointName=name)
        status = d["EndpointStatus"]
        if status in ("InService", "Failed", "OutOfService"):
            if status == "Failed":
                raise BackendError(
                    f"endpoint {name} failed: {d.get('FailureReason', '?')}",
                    hint="see the endpoint's CloudWatch logs",
                )
            if expected_config is not None and d.get("EndpointConfigName") != expected_config:
                raise UpdateFailed(name, d)
            return dict(d)
        ctx.emit(Event("endpoint.status", name, status, {"weights": _weights(platform, d)}))
        if time.monotonic() > deadline:
            raise BackendError(
                f"endpoint {name} still {status} after {timeout:.0f}s",
                hint="raise `timeout:` in the environment block",
            )
        ctx.cancel.wait(cfg.poll_interval)


def _weights(platform: Platform, described: Mapping[str, Any]) -> dict[str, float]:
    """version -> percent of live traffic, from a DescribeEndpoint answer."""
    variants = described.get("ProductionVariants") or []
    total = sum(float(v.get("CurrentWeight", 0.0)) for v in variants) or 1.0
    out = {}
    for v in variants:
        version = _variant_version(platform, described, v["VariantName"])
        out[version] = round(100.0 * float(v.get("CurrentWeight", 0.0)) / total, 4)
    return out


def _variant_version(platform: Platform, described: Mapping[str, Any], variant: str) -> str:
    """The version a variant serves: ``v{N}`` says it; ``primary`` is looked up once per
    endpoint config (its model's ``mlstack:version`` tag) and remembered on the platform."""
    if variant != PRIMARY_VARIANT:
        return variant.removeprefix("v")
    config_name = str(described["EndpointConfigName"])
    known = platform.primary_versions.get(config_name)
    if known is not None:
        return known
    aws = platform.aws
    version = PRIMARY_VARIANT
    cfg = aws.call("sagemaker", "describe_endpoint_config", EndpointConfigName=config_name)
    for v in cfg.get("ProductionVariants", []):
        if v["VariantName"] == PRIMARY_VARIANT:
            model_arn = str(
                aws.call("sagemaker", "describe_model", ModelName=v["ModelName"])["ModelArn"]
            )
            tags = aws.call("sagemaker", "list_tags", ResourceArn=model_arn)
            version = next(
                (str(t["Value"]) for t in tags.get("Tags", []) if t["Key"] == "mlstack:version"),
                PRIMARY_VARIANT,
            )
            break
    platform.primary_versions[config_name] = version
    return version


def metrics(platform: Platform, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
    name = platform.endpoint_name(endpoint)
    described = platform.aws.exists("sagemaker", "describe_endpoint", EndpointName=name)
    if described is None:
        return {}
    import datetime as dt

    start = dt.datetime.fromtimestamp(since, tz=dt.timezone.utc)
    end = dt.datetime.now(tz=dt.timezone.utc)
    period = max(60, int((end - start).total_seconds() // 60 + 1) * 60)
    out: dict[str, VersionMetrics] = {}
    for v in described.get("ProductionVariants", []):
        dims = [
            {"Name": "EndpointName", "Value": name},
            {"Name": "VariantName", "Value": v["VariantName"]},
        ]

        def stat(metric: str, dims: list[dict[str, str]] = dims, **kw: Any) -> list[Any]:
            resp = platform.aws.call(
                "cloudwatch",
                "get_metric_statistics",
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=dims,
                StartTime=start,
                EndTime=end,
                Period=period,
                **kw,
            )
            return list(resp.get("Datapoints") or [])

        requests = sum(p.get("Sum", 0.0) for p in stat("Invocations", Statistics=["Sum"]))
        errors = sum(p.get("Sum", 0.0) for p in stat("Invocation5XXErrors", Statistics=["Sum"]))
        latency = stat("ModelLatency", ExtendedStatistics=["p50", "p90", "p95", "p99"])
        pct: dict[str, float | None] = {}
        for p in ("p50", "p90", "p95", "p99"):
            values = [
                d["ExtendedStatistics"][p] for d in latency if p in d.get("ExtendedStatistics", {})
            ]
            pct[p] = max(values) / 1e6 if values else None  # ModelLatency is microseconds
        out[_variant_version(platform, described, v["VariantName"])] = VersionMetrics(
            requests=int(requests),
            errors=int(errors),
            latency_p50=pct["p50"],
            latency_p90=pct["p90"],
            latency_p95=pct["p95"],
            latency_p99=pct["p99"],
        )
    return out


def endpoint_status(platform: Platform, endpoint: str) -> EndpointView | None:
    name = platform.endpoint_name(endpoint)
    d = platform.aws.exists("sagemaker", "describe_endpoint", EndpointName=name)
    return None if d is None else endpoint_view(platform, name, d)


def endpoint_view(platform: Platform, name: str, described: Mapping[str, Any]) -> EndpointView:
    """A DescribeEndpoint answer as the seam's view: variants per version, shadow shares."""
    weights = _weights(platform, described)
    production = described.get("ProductionVariants") or []
    total = sum(float(v.get("CurrentWeight", 0.0)) for v in production) or 1.0
    by_variant = {
        _variant_version(platform, described, v["VariantName"]): v["VariantName"]
        for v in production
    }
    versions = [
        VersionServing(
            version=version,
            weight=weight,
            healthy=described.get("EndpointStatus") == "InService",
            where=f"variant {by_variant.get(version, '?')}",
        )
        for version, weight in sorted(weights.items())
    ]
    for v in described.get("ShadowProductionVariants") or []:
        share = min(100.0, round(100.0 * float(v.get("CurrentWeight", 0.0)) / total, 4))
        versions.append(
            VersionServing(
                version=str(v["VariantName"]).removeprefix("v"),
                weight=0.0,
                mirrored=share,
                healthy=described.get("EndpointStatus") == "InService",
                where=f"shadow variant {v['VariantName']}",
            )
        )
    details = {
        "arn": str(described.get("EndpointArn", "")),
        "config": str(described.get("EndpointConfigName", "")),
    }
    if described.get("FailureReason"):
        details["last failure"] = str(described["FailureReason"])
    return EndpointView(
        name=name,
        url=_invocation_url(platform, name),
        status=str(described.get("EndpointStatus", "")),
        versions=tuple(versions),
        healthy=described.get("EndpointStatus") == "InService",
        details=details,
    )


def destroy_endpoint(platform: Platform, name: str) -> None:
    aws = platform.aws
    if aws.exists("sagemaker", "describe_endpoint", EndpointName=name) is not None:
        aws.call("sagemaker", "delete_endpoint", EndpointName=name)
    try:
        stack_made = set(platform.infra_outputs().get("alarms") or [])
    except BackendError:
        stack_made = set()
    ours = [
        a["AlarmName"]
        for a in alarms.mlstack_alarms(platform, name)
        if a["AlarmName"] not in stack_made
    ]
    if ours:
        aws.call("cloudwatch", "delete_alarms", AlarmNames=ours)
    configs = aws.call("sagemaker", "list_endpoint_configs", NameContains=name, MaxResults=100).get(
        "EndpointConfigs", []
    )
    for c in configs:
        if c["EndpointConfigName"].startswith(name + "-"):
            aws.call(
                "sagemaker",
                "delete_endpoint_config",
                EndpointConfigName=c["EndpointConfigName"],
            )
    models = aws.call("sagemaker", "list_models", NameContains=name, MaxResults=100).get(
        "Models", []
    )
    for m in models:
        if m["ModelName"].startswith(name + "-"):
            aws.call("sagemaker", "delete_model", ModelName=m["ModelName"])


def _invocation_url(platform: Platform, name: str) -> str:
    return (
        f"https://runtime.sagemaker.{platform.config.region}.amazonaws.com"
        f"/endpoints/{name}/invocations"
    )


def _same_variants(current: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    have = {v["VariantName"] for v in current.get("ProductionVariants", [])}
    want = {v["VariantName"] for v in body["ProductionVariants"]}
    shadow_have = {v["VariantName"] for v in current.get("ShadowProductionVariants", [])}
    shadow_want = {v["VariantName"] for v in body.get("ShadowProductionVariants", [])}
    return have == want and shadow_have == shadow_want and PRIMARY_VARIANT not in want


def _describe_weights(weights: Mapping[str, float]) -> str:
    return ", ".join(f"v{k}: {w:g}%" for k, w in sorted(weights.items())) or "no variants"
