"""The SageMaker backend: Pipelines for runs, Model Package Groups as the registry, endpoints with
production/shadow variants and blue/green DeploymentConfig for rollouts.

This class is the seam's face and holds the per-backend state (AWS clients, the infrastructure's
outputs); the work lives in modules named for what they hold: ``aws`` (clients, errors),
``infra`` (given or Pulumi-provisioned infrastructure), ``pipelines`` (compile, upsert, runs),
``registry`` (model packages, aliases), ``endpoints`` (variants, deploy, metrics, teardown),
``rollout`` and ``alarms`` (progressive rollouts and their CloudWatch gates), ``observe``
(refresh). boto3, the SageMaker SDK and Pulumi are imported inside the functions that use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlstack.engine.backend import (
    Backend,
    CompiledPipeline,
    Context,
    EndpointState,
    Event,
    ModelVersion,
    Observed,
    RolloutPlan,
    RunRequest,
    RunResult,
    VersionMetrics,
)
from mlstack.errors import BackendError
from mlstack_sagemaker import endpoints, infra, pipelines, registry
from mlstack_sagemaker import pipeline_definition as pdef
from mlstack_sagemaker import rollout as rollouts
from mlstack_sagemaker.alarms import ALARM_MARK, PRIMARY_VARIANT, alarm_specs
from mlstack_sagemaker.aws import Aws
from mlstack_sagemaker.aws_names import sagemaker_name
from mlstack_sagemaker.observe import observe
from mlstack_sagemaker.pipelines import TERMINAL_RUN, artifact_digest
from mlstack_sagemaker.plugin import SageMakerConfig
from mlstack_sagemaker.registry import META_ALIAS, META_DIGEST, META_METRIC, META_RUN
from mlstack_sagemaker.rollout import deployment_config

# Names this module held before the split into the modules above.
__all__ = [
    "ALARM_MARK",
    "META_ALIAS",
    "META_DIGEST",
    "META_METRIC",
    "META_RUN",
    "PRIMARY_VARIANT",
    "TERMINAL_RUN",
    "SageMakerBackend",
    "alarm_specs",
    "artifact_digest",
    "deployment_config",
]


class SageMakerBackend(Backend):
    config: SageMakerConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aws = Aws(self.config)
        self.layout = pdef.Layout(self.project.project, self.project.environment)
        self._outputs: dict[str, Any] = {}

    # --- infrastructure ---------------------------------------------------------------------
    def infrastructure(self) -> Mapping[str, Any]:
        return infra.desired(self)

    def provision(self, inputs: Mapping[str, Any], ctx: Context) -> Mapping[str, Any]:
        outputs = infra.provision(self, inputs, ctx)
        self._outputs = outputs
        return outputs

    def infra_outputs(self, ctx: Context | None = None) -> dict[str, Any]:
        """The infrastructure's outputs: from the environment block, the apply, or state."""
        if ctx is not None:
            recorded = ctx.outputs.get(f"infra.{self.project.environment}")
            if recorded:
                self._outputs = dict(recorded)
        if self._outputs:
            return self._outputs
        given = infra.given_outputs(self)
        if given is not None:
            return given
        raise BackendError(
            "the SageMaker infrastructure of this environment has not been provisioned",
            hint="run `mlstack apply` (needs the pulumi CLI), or give `bucket:` and an existing "
            "`role:` ARN in the environment block",
        )

    # --- pipeline ---------------------------------------------------------------------------
    def compile(self) -> CompiledPipeline:
        return pipelines.compile_pipeline(self)

    def upsert_pipeline(self, compiled: CompiledPipeline, ctx: Context) -> Mapping[str, Any]:
        return pipelines.upsert_pipeline(self, compiled, ctx)

    def run_pipeline(
        self, compiled: CompiledPipeline, request: RunRequest, ctx: Context
    ) -> RunResult:
        return pipelines.run_pipeline(self, compiled, request, ctx)

    # --- registry ---------------------------------------------------------------------------
    def register(self, run: RunResult, ctx: Context) -> ModelVersion:
        return registry.register(self, run, ctx)

    def import_version(self, source: ModelVersion, ctx: Context) -> ModelVersion:
        return registry.import_version(self, source, ctx)

    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        registry.set_alias(self, model, alias, version, ctx)

    def versions(self, model: str) -> list[ModelVersion]:
        return registry.versions(self, self.infra_outputs()["model_package_group"])

    # --- serving ----------------------------------------------------------------------------
    def endpoint_name(self, endpoint: str) -> str:
        return sagemaker_name(endpoint, self.project.environment)

    def deploy(self, desired: EndpointState, ctx: Context) -> Mapping[str, Any]:
        return endpoints.deploy(self, desired, ctx, primary=False, deployment_config=None)

    def rollout(self, plan: RolloutPlan, ctx: Context) -> Mapping[str, Any]:
        return rollouts.rollout(self, plan, ctx)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        return endpoints.metrics(self, endpoint, since)

    def endpoint_status(self, endpoint: str) -> Mapping[str, Any]:
        return endpoints.endpoint_status(self, endpoint)

    # --- refresh / teardown -----------------------------------------------------------------
    def observe(self) -> Observed:
        """What exists, in the shape state records (only keys the apply's outputs also have)."""
        return observe(self)

    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        if kind == "endpoint":
            endpoints.destroy_endpoint(
                self,
                str(outputs.get("endpoint_name") or self.endpoint_name(address.split(".", 1)[-1])),
            )
        elif kind == "pipeline":
            name = str(outputs.get("pipeline_name") or pdef.pipeline_name(self.project))
            pipelines.delete_pipeline(self, name)
        elif kind == "model":
            registry.delete_all(self, self.infra_outputs(ctx)["model_package_group"])
        elif kind == "infra":
            if outputs.get("provisioned_by") == "pulumi":
                infra.pulumi_destroy(self, ctx)
        ctx.emit(Event("destroyed", address, kind))
