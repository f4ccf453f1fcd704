"""Refresh: what exists on Vertex AI, in the shape state records (only keys the apply's outputs
also have), so plan can tell drift from what the last apply left."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlstack.engine import address
from mlstack.engine.backend import Observed
from mlstack.errors import BackendError
from mlstack_vertex import artifacts, endpoints, pipeline_spec, registry

if TYPE_CHECKING:
    from mlstack_vertex.platform import Platform


def observe(platform: Platform, pipeline_digest: str | None) -> Observed:
    project = platform.project
    resources: dict[str, dict[str, Any]] = {}
    kinds = {"model", "endpoint"}
    try:
        infra = platform.infra_outputs()
    except BackendError:
        infra = None  # Pulumi's outputs are unknown here: infra and pipeline stay unobserved
    if infra is not None:
        gcp = platform.gcp
        bucket = gcp.exists("get bucket", gcp.storage.get_bucket, infra["bucket"])
        if bucket is not None:
            resources[address.infra(project.environment)] = {"bucket": infra["bucket"]}
            if pipeline_digest is not None:
                layout = pipeline_spec.Layout(project, platform.config)
                uri = layout.spec(pipeline_digest.removeprefix("sha256:")[:32])
                if artifacts.exists(platform, uri):
                    resources[address.pipeline(project.project)] = {
                        "location": uri,
                        "digest": pipeline_digest,
                    }
    if project.model:
        known = registry.versions(platform)
        if known:
            latest = known[0]
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
            if serving:
                seen["champion"] = serving[0]
            resources[address.endpoint(project.deployment.endpoint)] = seen
    return Observed(resources=resources, complete=infra is not None, kinds=frozenset(kinds))
