"""The SageMaker backend: Pipelines for runs, Model Package Groups as the registry, endpoints with
production/shadow variants and blue/green DeploymentConfig for rollouts.

This class is the seam's face only. It makes one ``Platform`` (settings, AWS clients, names,
the infrastructure's outputs) and hands it to the modules that do the work, named for what they
hold: ``infra`` (given or Pulumi-provisioned infrastructure), ``pipelines`` (compile, upsert,
runs), ``registry`` (model packages, aliases), ``endpoints`` (variants, deploy, metrics,
teardown), ``rollout`` and ``alarms`` (every phase of a rollout and its CloudWatch gates),
``invoke`` (InvokeEndpoint), ``observe`` (refresh). None of them imports this module. boto3, the
SageMaker SDK and Pulumi are imported inside the functions that use them.
"""

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
    NativeRollout,
    Observed,
    PipelineRef,
    Prediction,
    Provisioned,
    RolloutPlan,
    RunRequest,
    RunResult,
    VersionMetrics,
)
from mlstack_sagemaker import endpoints, infra, invoke, pipelines, registry
from mlstack_sagemaker import pipeline_definition as pdef
from mlstack_sagemaker import rollout as rollouts
from mlstack_sagemaker.aws import Aws
from mlstack_sagemaker.observe import observe
from mlstack_sagemaker.platform import Platform
from mlstack_sagemaker.plugin import SageMakerConfig


class SageMakerBackend(Backend):
    config: SageMakerConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.platform = Platform(self.config, self.project, self.workdir)

    @property
    def aws(self) -> Aws:
        return self.platform.aws

    def infra_outputs(self, ctx: Context | None = None) -> dict[str, Any]:
        return self.platform.infra_outputs(ctx)

    def endpoint_name(self, endpoint: str) -> str:
        return self.platform.endpoint_name(endpoint)

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
        return registry.versions(self.platform, self.infra_outputs()["model_package_group"])

    # --- serving ----------------------------------------------------------------------------
    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        return endpoints.deploy(self.platform, desired, ctx, deployment_config=None)

    def rollout(self, plan: RolloutPlan, ctx: Context) -> NativeRollout:
        return rollouts.rollout(self.platform, plan, ctx)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        return endpoints.metrics(self.platform, endpoint, since)

    def endpoint_status(self, endpoint: str) -> EndpointView | None:
        return endpoints.endpoint_status(self.platform, endpoint)

    def predict(self, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
        return invoke.predict(self.platform, endpoint, body, timeout)

    # --- refresh / teardown -----------------------------------------------------------------
    def observe(self) -> Observed:
        """What exists, in the shape state records (only keys the apply's outputs also have)."""
        return observe(self.platform)

    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        p = self.platform
        if kind == "endpoint":
            name = outputs.get("endpoint_name") or p.endpoint_name(Address.parse(address).name)
            endpoints.destroy_endpoint(p, str(name))
        elif kind == "pipeline":
            name = outputs.get("pipeline_name") or pdef.pipeline_name(self.project)
            pipelines.delete_pipeline(p, str(name))
        elif kind == "model":
            registry.delete_all(p, p.infra_outputs(ctx)["model_package_group"])
        elif kind == "infra":
            if outputs.get("provisioned_by") == "pulumi":
                infra.pulumi_destroy(p, ctx)
        ctx.emit(Event("destroyed", address, kind))
