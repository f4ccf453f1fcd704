"""The Azure ML backend: the seam's face over ``pipeline_job`` (compile), ``registry``
(workspace models, aliases as tags), ``endpoints`` (managed online endpoint, one deployment per
version, traffic and mirror traffic), ``monitor`` (Azure Monitor gate metrics) and ``invoke``.
None of them imports this module; ``azure.ai.ml`` is imported inside the functions that use it.

Rollouts are stepped by mlstack's controller (``native_progressive`` is False): each phase of
the strategy table becomes one ``deploy`` (weights to ``traffic``, shadow to
``mirror_traffic``), judged on ``metrics`` between phases, rolled back by another ``deploy``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlstack.engine import address
from mlstack.engine.address import Address
from mlstack.engine.backend import (
    Backend,
    CompiledPipeline,
    Context,
    EndpointState,
    EndpointView,
    Event,
    ModelVersion,
    PipelineRef,
    Prediction,
    Provisioned,
    RunRequest,
    RunResult,
    VersionMetrics,
)
from mlstack.errors import BackendError
from mlstack_azureml import endpoints, invoke, monitor, pipeline_run, registry
from mlstack_azureml import pipeline_job as pjob
from mlstack_azureml.platform import Platform
from mlstack_azureml.plugin import AzureMLConfig


class AzureMLBackend(Backend):
    config: AzureMLConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform = Platform(self.config, self.project, self.workdir)

    # --- infrastructure ---------------------------------------------------------------------
    def infrastructure(self) -> Mapping[str, Any]:
        c, project = self.config, self.project
        d = project.deployment
        return {
            "provider": "pulumi" if c.creates_workspace else "environment",
            "subscription_id": c.subscription_id,
            "resource_group": c.resource_group,
            "workspace": c.workspace,
            "region": c.region,
            "compute": c.compute,
            "compute_sku": c.compute_sku,
            "serving_sku": c.serving_sku,
            "endpoint": self.platform.endpoint_name(d.endpoint) if d else None,
            "gates": dict(d.gates) if d else {},
        }

    def provision(self, inputs: Mapping[str, Any], ctx: Context) -> Provisioned:
        if self.config.creates_workspace:
            raise BackendError(
                "`workspace: create` needs the Azure stack, which mlstack does not run yet",
                hint="run stacks/mlstack_stacks/azure.py with Pulumi yourself, then name the "
                "workspace it made in the environment block",
            )
        from azure.core.exceptions import HttpResponseError

        try:
            ws = self.platform.client.workspaces.get(self.config.workspace)
        except HttpResponseError as e:
            from mlstack_azureml.azure import arm_error

            raise arm_error(e, f"reading workspace {self.config.workspace}") from None
        ctx.emit(Event("log", address.infra(self.project.environment), str(ws.name)))
        return Provisioned({k: v for k, v in inputs.items() if k != "gates"}, "environment")

    # --- pipeline ---------------------------------------------------------------------------
    def compile(self) -> CompiledPipeline:
        definition = pjob.build(self.project, self.config)
        return CompiledPipeline(
            definition=definition,
            digest=pjob.definition_digest(definition),
            steps=tuple(definition["job"]["properties"]["jobs"]),
            format="azureml-pipeline-job",
        )

    def upsert_pipeline(self, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
        # Azure ML has no stored pipeline definition to update: the job carries the graph, and
        # its components are registered at run time under the stages' cache keys
        return pipeline_run.pipeline_ref(self.platform, compiled)

    def run_pipeline(
        self, compiled: CompiledPipeline, request: RunRequest, ctx: Context
    ) -> RunResult:
        return pipeline_run.run(self.platform, compiled, request, ctx)

    # --- registry ---------------------------------------------------------------------------
    def register(self, run: RunResult, ctx: Context) -> ModelVersion:
        return registry.register(self.platform, run, ctx)

    def import_version(self, source: ModelVersion, ctx: Context) -> ModelVersion:
        return registry.import_version(self.platform, source, ctx)

    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        registry.set_alias(self.platform, model, alias, version, ctx)

    def versions(self, model: str) -> list[ModelVersion]:
        return registry.versions(self.platform, model)

    # --- serving ----------------------------------------------------------------------------
    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        return endpoints.deploy(self.platform, desired, ctx)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        return monitor.metrics(self.platform, endpoint, since)

    def endpoint_status(self, endpoint: str) -> EndpointView | None:
        return endpoints.endpoint_status(self.platform, endpoint)

    def predict(self, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
        return invoke.predict(self.platform, endpoint, body, timeout)

    # --- teardown ---------------------------------------------------------------------------
    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        """Remove what Azure holds for ``address``; ``destroyed`` is reported only for what was
        there and is gone now, anything else is said as a log line."""
        p = self.platform
        name = Address.parse(address).name
        if kind == "endpoint":
            endpoint = str(outputs.get("endpoint_name") or p.endpoint_name(name))
            if endpoints.destroy_endpoint(p, endpoint):
                ctx.emit(Event("destroyed", address, f"online endpoint {endpoint} deleted"))
            else:
                ctx.emit(Event("log", address, f"online endpoint {endpoint} was already gone"))
        elif kind == "model":
            removed = registry.delete_all(p, p.model_name(name))
            if removed:
                ctx.emit(
                    Event(
                        "destroyed",
                        address,
                        f"model {name} versions {', '.join(removed)} deleted from workspace "
                        f"{p.config.workspace}",
                    )
                )
            else:
                ctx.emit(Event("log", address, f"model {name} had no versions left"))
        else:
            # pipeline: components are immutable versions other runs may share; run: job history;
            # infra: a workspace mlstack did not create. Nothing of these is removed.
            ctx.emit(Event("log", address, f"{kind}: nothing on Azure ML to remove"))
