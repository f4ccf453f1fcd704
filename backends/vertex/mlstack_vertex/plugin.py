"""The Vertex AI backend's descriptor: config model and capabilities, with no Google SDK import.

``mlstack validate`` checks an environment block against ``VertexConfig`` through this module
alone (pydantic and ``gcp_names``). ``google-cloud-aiplatform``, KFP and Pulumi are imported by
the implementation, which ``BackendPlugin.load`` imports only when work on Vertex starts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from mlstack.engine.backend import JOB_STAGE_KINDS, BackendPlugin, Capabilities
from mlstack.manifest.suggest import did_you_mean
from mlstack_vertex.gcp_names import (
    GATE_METRICS,
    NETWORK_RE,
    PROJECT_ID_RE,
    REGIONS,
    SERVICE_ACCOUNT_RE,
    bucket_problem,
    machine_problem,
)

CREATE = "create"


class VertexConfig(BaseModel):
    """The keys an environment with ``backend: vertex`` accepts beside the common ones.

    With a ``bucket`` name and an existing ``service_account`` given, the infrastructure is taken
    as it is and Pulumi is never needed; ``create`` in either has mlstack's GCP stack make it.
    """

    model_config = ConfigDict(extra="forbid")

    project: str = Field(description="Google Cloud project ID, e.g. shop-ml-prod")
    region: str = Field(description="Vertex AI region, e.g. europe-west4")
    bucket: str = Field(
        description="Cloud Storage bucket for pipeline_root and artifacts, or `create`"
    )
    service_account: str = Field(
        description="service account e-mail the pipeline jobs and endpoints run as, or `create`"
    )
    allow_unknown_machine_types: bool = Field(
        default=False, description="accept machine types newer than mlstack's list"
    )
    machine_type: str = Field(
        default="n1-standard-4", description="machine type of the pipeline's tasks"
    )
    serving_machine_type: str = Field(
        default="n1-standard-2", description="machine type of deployed models"
    )
    serving_image: str | None = Field(
        default=None,
        description="the mlstack serving image (a Custom Prediction Routine over the shared "
        "runtime's serving hooks) in Artifact Registry; default "
        "REGION-docker.pkg.dev/PROJECT/mlstack/mlstack-serving:latest",
    )
    network: str | None = Field(
        default=None,
        description="VPC peered with Vertex: projects/PROJECT_NUMBER/global/networks/NAME",
    )
    sklearn_version: str = Field(
        default="1-5", description="Vertex prebuilt scikit-learn container version, e.g. 1-5"
    )
    api_endpoint: str | None = Field(
        default=None, description="Vertex API host override (tests): host:port or http://host:port"
    )
    storage_endpoint: str | None = Field(
        default=None, description="Cloud Storage API override (tests, a local emulator)"
    )
    pulumi_backend_url: str | None = Field(
        default=None, description="where Pulumi keeps stack state, e.g. gs://bucket/pulumi"
    )
    poll_interval: float = Field(default=15.0, gt=0, le=600, description="seconds between polls")
    timeout: float = Field(default=4 * 3600.0, gt=0, description="longest wait for a run/rollout")

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        if not PROJECT_ID_RE.match(v):
            raise ValueError(
                f"project {v!r} is not a Google Cloud project ID (6 to 30 lowercase letters, "
                "digits and hyphens, starting with a letter); use the ID, not the display name"
            )
        return v

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if v not in REGIONS:
            hint = did_you_mean(v, REGIONS)
            if not hint and v in ("us", "eu", "asia", "global"):
                hint = "; Vertex AI needs a region such as us-central1 or europe-west4"
            raise ValueError(f"Vertex AI is not offered in {v!r}{hint}")
        return v

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        name = v.removeprefix("gs://").rstrip("/")
        if v != CREATE:
            if "/" in name:
                raise ValueError(f"bucket {v!r}: give the bucket name only, without a path")
            problem = bucket_problem(name)
            if problem:
                raise ValueError(problem)
        return name

    @field_validator("service_account")
    @classmethod
    def _service_account(cls, v: str) -> str:
        if v != CREATE and not SERVICE_ACCOUNT_RE.match(v):
            raise ValueError(
                f"service_account {v!r} is not a service account e-mail "
                "(NAME@PROJECT.iam.gserviceaccount.com); write `service_account: create` to have "
                "mlstack's GCP stack create one with the least roles"
            )
        return v

    @field_validator("machine_type", "serving_machine_type")
    @classmethod
    def _machine(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("allow_unknown_machine_types"):
            return v
        problem = machine_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("network")
    @classmethod
    def _network(cls, v: str | None) -> str | None:
        if v is not None and not NETWORK_RE.match(v):
            raise ValueError(
                f"network {v!r} must be projects/PROJECT_NUMBER/global/networks/NAME "
                "(Vertex takes the project number, not the ID)"
            )
        return v

    @property
    def infrastructure_given(self) -> bool:
        """True when the block names existing infrastructure: no Pulumi needed."""
        return self.bucket != CREATE and self.service_account != CREATE


plugin = BackendPlugin(
    name="vertex",
    config_model=VertexConfig,
    capabilities=Capabilities(
        native_progressive=False,
        weighted_traffic=True,
        mirroring=False,
        max_mirror_percent=0.0,
        sticky_sessions=False,
        gate_metrics=frozenset(GATE_METRICS),
        stage_kinds=JOB_STAGE_KINDS,
        notes={
            "batching": (
                "backend 'vertex': Vertex AI online prediction has no request batching "
                "on a deployed model"
            ),
            "stage:function": "Vertex pipeline tasks run container commands, not Python "
            "functions of your project; write the stage as `run: python -m your.module`",
            "mirroring": "a Vertex endpoint splits traffic between deployed models by "
            "traffic_split; it has no request mirroring",
            "hint:mirroring": "use canary with a small first step, e.g. canary: {steps: [5, 100]}",
            "sticky_sessions": "a Vertex endpoint picks a deployed model per request by "
            "traffic_split; there is no assignment by a request key",
            "hint:sticky_sessions": "set ab.sticky_key: null to split by weight only (not sticky)",
            "gates": "mlstack judges Vertex rollouts on Cloud Monitoring's prediction metrics "
            "per deployed model (prediction_count, error_count, prediction_latencies); a "
            "custom metric has none",
            "hint:gates": "gate on error_rate, requests or latency_p50/p90/p95/p99",
            "canary": "traffic_split stepped by mlstack's rollout controller, gates read from "
            "Cloud Monitoring after every step",
            "linear": "traffic_split in equal steps by mlstack's rollout controller",
            "all_at_once": "the new deployed model takes 100 of traffic_split, the old undeployed",
            "blue_green": "both deployed, traffic_split switched at once, old undeployed after "
            "the bake",
            "ab": "traffic_split champion/challenger, not sticky",
        },
    ),
    implementation="mlstack_vertex.backend:VertexBackend",
    description="Google Cloud Vertex AI: Pipelines (KFP v2), Model Registry, traffic_split rollouts",
)
