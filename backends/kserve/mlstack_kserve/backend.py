"""The KServe backend: the seam's face over ``registry``, ``endpoints``, ``invoke``,
``pipelines`` and ``observe``, which share one ``Platform`` (settings, cluster client, names).
The Kubernetes client is imported by ``cluster`` on the first call that needs the cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlstack.engine.address import Address
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
    RunRequest,
    RunResult,
    VersionMetrics,
)
from mlstack_kserve import endpoints, invoke, pipelines, registry
from mlstack_kserve.observe import metrics, observe
from mlstack_kserve.platform import Platform
from mlstack_kserve.plugin import KServeConfig


class KServeBackend(Backend):
    config: KServeConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform = Platform(self.config, self.project, self.workdir)

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
        registry.set_alias(self.platform, model, alias, version)

    def versions(self, model: str) -> list[ModelVersion]:
        return registry.versions(self.platform, model)

    # --- serving ----------------------------------------------------------------------------
    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        return endpoints.deploy(self.platform, desired, ctx)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        return metrics(self.platform, endpoint, since)

    def endpoint_status(self, endpoint: str) -> EndpointView | None:
        return endpoints.endpoint_status(self.platform, endpoint)

    def predict(self, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
        return invoke.predict(self.platform, endpoint, body, timeout)

    def logs(self, stage: str | None = None) -> str:
        return pipelines.logs(self.platform, stage)

    # --- refresh / teardown -----------------------------------------------------------------
    def observe(self) -> Observed:
        return observe(self.platform)

    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        p = self.platform
        if kind == "endpoint":
            endpoints.destroy_endpoint(p, Address.parse(address).name)
        elif kind == "pipeline":
            pipelines.delete_pipeline(p)
        elif kind == "model":
            registry.delete_all(p, p.model_name())
        ctx.emit(Event("destroyed", address, kind))
