"""The Vertex AI backend: Vertex AI Pipelines (KFP v2) for runs, Model Registry versions and
aliases as the registry, endpoints with ``traffic_split`` stepped by mlstack's rollout
controller for serving.

This class is the seam's face only; it makes one ``Platform`` and hands it to the modules named
for what they hold: ``infra``, ``pipelines`` (with ``pipeline_spec``), ``registry``,
``endpoints``, ``monitoring``, ``observe``. Google's SDKs, KFP and Pulumi are imported inside
the functions that use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlstack.engine.backend import (
    Backend,
    CompiledPipeline,
    Context,
    EndpointState,
    EndpointView,
    Event,
    ModelVersion,
    Observed,
    PipelineRef,
    Prediction,
    Provisioned,
    RunRequest,
    RunResult,
    VersionMetrics,
)
from mlstack_vertex import endpoints, infra, monitoring, pipelines, registry
from mlstack_vertex.observe import observe
from mlstack_vertex.platform import Platform
from mlstack_vertex.plugin import VertexConfig


class VertexBackend(Backend):  # type: ignore[misc]
    config: VertexConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform = Platform(self.config, self.project, self.workdir)

    # --- infrastructure ---------------------------------------------------------------------
    def infrastructure(self) -> Mapping[str, Any]:
        return infra.desired(self.platform)

    def provision(self, inputs: Mapping[str, Any], ctx: Context) -> Provisioned:
        return infra.provision(self.platform, inputs, ctx)

    # --- pipeline ---------------------------------------------------------------------------
    def compile(self) -> CompiledPipeline:
        return pipelines.compile_pipeline(self.platform)

    def upsert_pipeline(self, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
        return pipelines.upsert_pipeline(self.platform, compiled, ctx)

    def run_pipeline(
        self, compiled: CompiledPipeline, request: RunRequest, ctx: Context
    ) -> RunResult:
        return pipelines.run_pipeline(self.platform, compiled, request, ctx)

    # --- registry ---------------------------------------------------------------------------
    def register(self, run: RunResult, ctx: Context) -> ModelVersion:
        return registry.register(self.platform, run, ctx)

    def import_version(self, source: ModelVersion, ctx: Context) -> ModelVersion:
        return registry.import_version(self.platform, source, ctx)

    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        registry.set_alias(self.platform, model, alias, version, ctx)

    def versions(self, model: str) -> list[ModelVersion]:
        return registry.versions(self.platform)

    # --- serving ----------------------------------------------------------------------------
    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        return endpoints.deploy(self.platform, desired, ctx)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        return monitoring.metrics(self.platform, endpoint, since)

    def endpoint_status(self, endpoint: str) -> EndpointView | None:
        return endpoints.endpoint_status(self.platform, endpoint)

    def predict(self, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
        return endpoints.predict(self.platform, endpoint, body, timeout)

    # --- people -----------------------------------------------------------------------------
    def logs(self, stage: str | None = None) -> str:
        return pipelines.logs(self.platform, stage)

    # --- refresh / teardown -----------------------------------------------------------------
    def observe(self) -> Observed:
        return observe(self.platform, self.compile().digest)

    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        p = self.platform
        if kind == "endpoint":
            endpoints.destroy_endpoint(p, address.split(".", 1)[-1], ctx)
        elif kind == "model":
            registry.delete_all(p)
        elif kind == "infra" and outputs.get("provisioned_by") == "pulumi":
            infra.pulumi_destroy(p, ctx)
        ctx.emit(Event("destroyed", address, kind))
