"""The Azure ML backend's descriptor: config model and capabilities, with no Azure SDK import.

``mlstack validate`` checks an environment block against ``AzureMLConfig`` through this module
alone (pydantic and the name rules in ``azure_names``); ``azure.ai.ml`` is imported by
``BackendPlugin.load`` only when work on Azure starts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mlstack.engine.backend import JOB_STAGE_KINDS, BackendPlugin, Capabilities
from mlstack.manifest.suggest import did_you_mean
from mlstack_azureml.azure_names import (
    COMPUTE_RE,
    ENDPOINT_RE,
    GATE_METRICS,
    MAX_MIRROR_PERCENT,
    REGIONS,
    SUBSCRIPTION_RE,
    WORKSPACE_RE,
    resource_group_problem,
    sku_problem,
)

CREATE = "create"
# The curated scikit-learn environment in Microsoft's `azureml` registry the stages run in.
CURATED_SKLEARN = "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"


class AzureMLConfig(BaseModel):
    """The keys an environment with ``backend: azureml`` accepts beside the common ones.

    With an existing ``workspace`` named, the infrastructure is taken as it is; with
    ``workspace: create`` mlstack's Azure stack (Pulumi) creates the workspace and what it needs.
    """

    model_config = ConfigDict(extra="forbid")

    subscription_id: str = Field(description="Azure subscription id (a GUID)")
    resource_group: str = Field(description="resource group holding the workspace")
    workspace: str = Field(
        description="Azure ML workspace name, or `create` to have the Azure stack create one"
    )
    region: str = Field(description="Azure region, e.g. westeurope")
    compute: str = Field(default="cpu-cluster", description="compute cluster the stages run on")
    allow_unknown_skus: bool = Field(
        default=False, description="accept VM sizes newer than mlstack's list"
    )
    compute_sku: str = Field(default="Standard_DS3_v2", description="VM size of the cluster")
    max_nodes: int = Field(default=2, ge=1, le=100, description="cluster's most nodes")
    serving_sku: str = Field(default="Standard_DS3_v2", description="VM size of online deployments")
    registry: str | None = Field(
        default=None,
        description="shared Azure ML registry that promotion copies models through; "
        "unset: models are copied workspace to workspace",
    )
    environment: str = Field(
        default=CURATED_SKLEARN, description="Azure ML environment the stages and scoring run in"
    )
    base_url: str | None = Field(
        default=None, description="Azure Resource Manager endpoint override (tests)"
    )
    blob_url: str | None = Field(
        default=None,
        description="Blob service URL of the default datastore's storage account instead of "
        "https://ACCOUNT.blob.core.windows.net (tests: Azurite)",
    )
    poll_interval: float = Field(default=15.0, gt=0, le=600, description="seconds between polls")
    timeout: float = Field(default=4 * 3600.0, gt=0, description="longest wait for a run/rollout")

    @field_validator("subscription_id")
    @classmethod
    def _subscription(cls, v: str) -> str:
        if not SUBSCRIPTION_RE.match(v):
            raise ValueError(
                f"subscription_id {v!r} is not a GUID "
                "(00000000-0000-0000-0000-000000000000); `az account show --query id` prints it"
            )
        return v.lower()

    @field_validator("resource_group")
    @classmethod
    def _group(cls, v: str) -> str:
        problem = resource_group_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("workspace")
    @classmethod
    def _workspace(cls, v: str) -> str:
        if v != CREATE and not WORKSPACE_RE.match(v):
            raise ValueError(
                f"workspace {v!r}: use 3 to 33 letters, digits, hyphens and underscores, "
                f"starting with a letter or digit; or `workspace: {CREATE}`"
            )
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if v not in REGIONS:
            raise ValueError(f"unknown Azure region {v!r}{did_you_mean(v, REGIONS)}")
        return v

    @field_validator("compute")
    @classmethod
    def _compute(cls, v: str) -> str:
        if not COMPUTE_RE.match(v):
            raise ValueError(
                f"compute {v!r}: cluster names are 2 to 16 letters, digits and hyphens, "
                "starting with a letter"
            )
        return v

    @field_validator("compute_sku", "serving_sku")
    @classmethod
    def _sku(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("allow_unknown_skus"):
            return v
        problem = sku_problem(v, serving=info.field_name == "serving_sku")
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("registry")
    @classmethod
    def _registry(cls, v: str | None) -> str | None:
        if v is not None and not WORKSPACE_RE.match(v):
            raise ValueError(
                f"registry {v!r}: use 3 to 33 letters, digits, hyphens and underscores"
            )
        return v

    @property
    def creates_workspace(self) -> bool:
        return self.workspace == CREATE


def endpoint_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an online endpoint (or deployment) name, or None."""
    if ENDPOINT_RE.match(name):
        return None
    return (
        f"{name!r} cannot name an Azure ML online endpoint: use 3 to 32 letters, digits and "
        "hyphens, starting with a letter and not ending with a hyphen"
    )


plugin = BackendPlugin(
    name="azureml",
    config_model=AzureMLConfig,
    capabilities=Capabilities(
        native_progressive=False,
        weighted_traffic=True,
        mirroring=True,
        max_mirror_percent=MAX_MIRROR_PERCENT,
        sticky_sessions=False,
        gate_metrics=frozenset(GATE_METRICS),
        stage_kinds=JOB_STAGE_KINDS,
        notes={
            "batching": (
                "backend 'azureml': Azure ML managed online deployments have no request "
                "batching (batch endpoints are for offline scoring)"
            ),
            "stage:function": "pipeline steps are command components; write the stage as "
            "`run: python -m your.module`",
            "sticky_sessions": "a managed online endpoint picks a deployment for each request "
            "by the `traffic` weights; only a caller sending azureml-model-deployment picks "
            "one, so an A/B split cannot be sticky",
            "hint:sticky_sessions": "set ab.sticky_key: null to split by weight only (not "
            "sticky), or route callers yourself with the azureml-model-deployment header",
            "mirroring": "mirror_traffic sends at most 50% of requests to one deployment",
            "gates": "rollouts are judged on the endpoint's Azure Monitor metrics "
            "(RequestsPerMinute by status class, RequestLatency_P50/P90/P95/P99); a custom "
            "metric has none",
            "hint:gates": "gate on error_rate or latency_p50/p90/p95/p99",
            "canary": "one deployment per version; mlstack steps the endpoint's `traffic`",
            "linear": "one deployment per version; mlstack steps the endpoint's `traffic`",
            "blue_green": "the new deployment at 0%, then `traffic` switched whole",
            "all_at_once": "the new deployment takes 100% of `traffic`",
            "shadow": "the endpoint's `mirror_traffic` (at most 50%) to the new deployment "
            "while it has no live traffic, then `traffic` switched",
            "ab": "deployments weighted champion/challenger by `traffic`, not sticky",
        },
    ),
    implementation="mlstack_azureml.backend:AzureMLBackend",
    description="Azure Machine Learning: pipeline jobs, workspace models, managed online endpoints",
)
