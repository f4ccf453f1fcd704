"""Refresh: what exists on AWS, in the shape state records (only keys the apply's outputs also
have), so plan can tell drift from what the last apply left.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlstack.engine import address
from mlstack.engine.backend import Observed
from mlstack.errors import BackendError
from mlstack_sagemaker import endpoints, registry
from mlstack_sagemaker import pipeline_definition as pdef

if TYPE_CHECKING:
    from mlstack_sagemaker.platform import Platform


def observe(platform: Platform) -> Observed:
    aws, project = platform.aws, platform.project
    resources: dict[str, dict[str, Any]] = {}
    try:
        infra = platform.infra_outputs()
    except BackendError:
        infra = None  # Pulumi's outputs are not known here: those kinds stay unobserved
    group = infra["model_package_group"] if infra else None
    if infra is not None and group is not None:
        bucket_ok = aws.exists("s3-probe", "head_bucket", Bucket=infra["bucket"]) is not None
        group_ok = (
            aws.exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group)
            is not None
        )
        if bucket_ok and group_ok:
            resources[address.infra(project.environment)] = {
                "bucket": infra["bucket"],
                "model_package_group": group,
            }
    pipe = aws.exists("sagemaker", "describe_pipeline", PipelineName=pdef.pipeline_name(project))
    if pipe is not None:
        definition = json.loads(pipe["PipelineDefinition"])
        resources[address.pipeline(project.project)] = {
            "location": pipe["PipelineArn"],
            "digest": pdef.digest(definition),
        }
    if group and project.model:
        latest = registry.latest_version(platform, group)
        if latest is not None:
            # the record is the version the last apply/promote registered: the newest one
            resources[address.model(project.model.name)] = {
                "version": latest.version,
                "uri": latest.uri,
                "digest": latest.digest,
            }
    if project.deployment:
        status = endpoints.endpoint_status(platform, project.deployment.endpoint)
        if status is not None:
            seen: dict[str, Any] = {"url": status.url}
            serving = [v for v, w in status.weights().items() if w >= 100.0]
            if serving:  # a split (ab) has no single champion to compare
                seen["champion"] = serving[0]
            resources[address.endpoint(project.deployment.endpoint)] = seen
    return Observed(resources=resources, complete=group is not None)
