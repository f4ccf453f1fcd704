"""The `local` backend: pipelines, registry, tracking and serving on this machine.

This class is the seam's face only. It makes one ``LocalEnv`` (the environment's project,
settings, folders, model index and MLflow worker) and hands it to the modules that do the work,
named for what they hold: ``pipelines`` (compile to the ``mlstack-dag`` JSON DAG, run it with
``runner.Runner``, logs), ``versions`` (register, import, aliases, lineage, the MLflow UI),
``endpoints`` (deploy, metrics, status, predict over ``mlstack.local.serving``), ``capture`` (what
monitoring reads) and
``observe`` (folders, refresh, teardown). None of them imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlstack.engine.backend import (
    Backend,
    Capture,
    CompiledPipeline,
    Context,
    EndpointState,
    EndpointView,
    Lineage,
    ModelVersion,
    Observed,
    PipelineRef,
    Prediction,
    Provisioned,
    RunRequest,
    RunResult,
    VersionMetrics,
)
from mlstack.local import capture, endpoints, observe, pipelines, versions
from mlstack.local.environment import LocalEnv


class LocalBackend(Backend):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.local = LocalEnv(self.project, self.config, self.workdir)

    # --- infrastructure -----------------------------------------------------------------------
    def infrastructure(self) -> Mapping[str, Any]:
        return observe.infrastructure(self.local)

    def provision(self, inputs: Mapping[str, Any], ctx: Context) -> Provisioned:
        return observe.provision(self.local, inputs, ctx)

    # --- pipeline -----------------------------------------------------------------------------
    def compile(self) -> CompiledPipeline:
        return pipelines.compile_pipeline(self.local)

    def upsert_pipeline(self, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
        return pipelines.upsert_pipeline(self.local, compiled, ctx)

    def run_pipeline(
        self, compiled: CompiledPipeline, request: RunRequest, ctx: Context
    ) -> RunResult:
        return pipelines.run_pipeline(self.local, compiled, request, ctx)

    # --- registry -----------------------------------------------------------------------------
    def register(self, run: RunResult, ctx: Context) -> ModelVersion:
        return versions.register(self.local, run, ctx)

    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        versions.set_alias(self.local, model, alias, version, ctx)

    def versions(self, model: str) -> list[ModelVersion]:
        return versions.versions(self.local, model)

    def import_version(self, source: ModelVersion, ctx: Context) -> ModelVersion:
        return versions.import_version(self.local, source, ctx)

    # --- serving ------------------------------------------------------------------------------
    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        return endpoints.deploy(self.local, desired, ctx)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        return endpoints.metrics(self.local, endpoint, since)

    def endpoint_status(self, endpoint: str) -> EndpointView | None:
        return endpoints.endpoint_status(self.local, endpoint)

    def predict(self, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
        return endpoints.predict(self.local, endpoint, body, timeout)

    def capture(self, model: str, version: str, endpoint: str, since: float, limit: int) -> Capture:
        return capture.capture(self.local, model, version, endpoint, since, limit)

    # --- views for people ---------------------------------------------------------------------
    def logs(self, stage: str | None = None) -> str:
        return pipelines.logs(self.local, stage)

    def lineage(self, model: str, version: str) -> Lineage:
        return versions.lineage(self.local, model, version)

    def ui_command(self) -> list[str]:
        return versions.ui_command(self.local)

    # --- refresh / teardown -------------------------------------------------------------------
    def observe(self) -> Observed:
        return observe.observe(self.local)

    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        observe.destroy(self.local, address, kind, outputs, ctx)
