"""The KServe backend's descriptor: settings and capabilities, without the Kubernetes client.

``mlstack validate`` checks an environment with ``backend: kserve`` through this module alone
(pydantic and ``k8s_names``); the ``kubernetes`` client and the ``kserve`` SDK are imported by
``BackendPlugin.load`` only when work on the cluster starts.

What each serving mode can do (``capabilities_by``):

- Serverless (Knative): one InferenceService per endpoint; KServe splits traffic between the
  latest revision and the last one rolled out (``canaryTrafficPercent``), so canary, linear,
  blue/green and an unsticky A/B work; Knative does not mirror requests, so shadow does not.
- RawDeployment (no Knative): one InferenceService per version behind a Gateway API
  ``HTTPRoute`` whose backend weights split traffic and whose ``RequestMirror`` filter (with
  ``percent``, Gateway API v1.2+) mirrors a share of requests for shadow.

Neither routes a caller to a version by a request key, so sticky A/B is refused. Gates are read
from Prometheus (``prometheus_url``): error rate and latency quantiles of the predictor.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlstack.engine.backend import JOB_STAGE_KINDS, BackendPlugin, Capabilities
from mlstack_kserve.k8s_names import (
    label_problem,
    quantity_problem,
    storage_problem,
    subdomain_problem,
)

GATE_METRICS = frozenset(
    {"error_rate", "requests", "latency_p50", "latency_p90", "latency_p95", "latency_p99"}
)
DEFAULT_IMAGE = "ghcr.io/mlstack/kserve-runtime:0.1.0"


class Resources(BaseModel):
    """Requests and limits of the predictor and stage containers (Kubernetes quantities)."""

    model_config = ConfigDict(extra="forbid")

    cpu: str = Field(default="500m", description="CPU request, e.g. 500m or 2")
    memory: str = Field(default="512Mi", description="memory request, e.g. 512Mi or 2Gi")
    cpu_limit: str | None = Field(default=None, description="CPU limit; default: the request")
    memory_limit: str | None = Field(default=None, description="memory limit; default: request")

    @field_validator("cpu", "memory", "cpu_limit", "memory_limit")
    @classmethod
    def _quantity(cls, v: str | None, info: object) -> str | None:
        if v is not None:
            problem = quantity_problem(v, getattr(info, "field_name", "quantity"))
            if problem:
                raise ValueError(problem)
        return v

    def requirements(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {
                "cpu": self.cpu_limit or self.cpu,
                "memory": self.memory_limit or self.memory,
            },
        }


class GatewayRef(BaseModel):
    """The Gateway API ``Gateway`` an endpoint's ``HTTPRoute`` attaches to (RawDeployment)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the Gateway's name")
    namespace: str | None = Field(default=None, description="default: the environment's")
    section: str | None = Field(default=None, description="listener name (sectionName)")

    @field_validator("name", "namespace")
    @classmethod
    def _names(cls, v: str | None) -> str | None:
        if v is not None:
            problem = subdomain_problem(v, "gateway name") if "." in v else None
            problem = problem or label_problem(v, "gateway name/namespace")
            if problem:
                raise ValueError(problem)
        return v


class KServeConfig(BaseModel):
    """The keys an environment with ``backend: kserve`` accepts beside the common ones."""

    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(description="namespace the jobs and InferenceServices live in")
    storage_uri: str = Field(
        description="where artifacts live: s3://bucket/prefix (S3 or S3-compatible, e.g. MinIO)"
    )
    context: str | None = Field(default=None, description="kubeconfig context; default: current")
    kubeconfig: str | None = Field(default=None, description="kubeconfig file; default: ~/.kube")
    serving_mode: Literal["Serverless", "RawDeployment"] = Field(
        default="Serverless",
        description="Serverless (Knative revisions, canaryTrafficPercent) or RawDeployment "
        "(Deployments, a Gateway API HTTPRoute per endpoint)",
    )
    gateway: GatewayRef | None = Field(
        default=None, description="the HTTPRoute's parent Gateway (RawDeployment only)"
    )
    resources: Resources = Field(
        description="requests and limits of the predictor and stage containers",
        default_factory=Resources,
    )
    service_account: str = Field(
        default="mlstack", description="service account with the storage secret (see stacks)"
    )
    storage_secret: str | None = Field(
        default=None,
        description="Secret with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY the stage Jobs read "
        "storage with; default: SERVICE_ACCOUNT-storage (what the Kubernetes stack creates)",
    )
    image: str = Field(
        default=DEFAULT_IMAGE, description="image of the stage jobs and the predictor"
    )
    pipelines: Literal["auto", "kfp", "jobs"] = Field(
        default="auto",
        description="how stages run: Kubernetes Jobs (jobs, and auto for now); Kubeflow "
        "Pipelines (kfp) is not implemented yet and refused",
    )
    kfp_host: str | None = Field(
        default=None, description="Kubeflow Pipelines API URL (for pipelines: kfp, not yet)"
    )
    prometheus_url: str | None = Field(
        default=None, description="Prometheus that scrapes KServe's metrics (for gates)"
    )
    ingress_url: str | None = Field(
        default=None,
        description="the cluster's ingress (e.g. http://istio-ingressgateway...); predict sends "
        "the InferenceService's host as the Host header. Unset: use status.url directly",
    )
    domain: str = Field(
        default="example.com",
        description="the cluster's serving domain: endpoints answer at NAME.NAMESPACE.DOMAIN",
    )
    s3_endpoint: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, tests); default: AWS S3"
    )
    poll_interval: float = Field(default=2.0, gt=0, le=600, description="seconds between polls")
    timeout: float = Field(default=1800.0, gt=0, description="longest wait for a run/rollout")

    @field_validator("namespace", "service_account", "storage_secret")
    @classmethod
    def _label(cls, v: str | None, info: object) -> str | None:
        problem = label_problem(v, getattr(info, "field_name", "name")) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str) -> str:
        problem = subdomain_problem(v, "domain")
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("context")
    @classmethod
    def _context(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or v != v.strip()):
            raise ValueError(
                "context must be a kubeconfig context name (kubectl config get-contexts)"
            )
        return v

    @field_validator("storage_uri")
    @classmethod
    def _storage(cls, v: str) -> str:
        problem = storage_problem(v)
        if problem:
            raise ValueError(problem)
        return v.rstrip("/")

    @field_validator("pipelines")
    @classmethod
    def _pipelines(cls, v: str) -> str:
        if v == "kfp":
            raise ValueError(
                "pipelines: kfp (Kubeflow Pipelines) is not implemented yet; use jobs (one "
                "Kubernetes Job per stage), which is also what auto runs"
            )
        return v

    @field_validator("kfp_host")
    @classmethod
    def _kfp_host(cls, v: str | None) -> str | None:
        if v is not None:
            raise ValueError(
                "kfp_host is for pipelines: kfp (Kubeflow Pipelines), which is not implemented "
                "yet; remove it (stages run as Kubernetes Jobs)"
            )
        return v

    @field_validator("prometheus_url", "ingress_url", "s3_endpoint")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s):// URL")
        return v.rstrip("/") if v else v

    @model_validator(mode="after")
    def _cross(self) -> KServeConfig:
        if self.serving_mode == "RawDeployment" and self.gateway is None:
            raise ValueError(
                "serving_mode RawDeployment routes traffic with a Gateway API HTTPRoute: name its "
                "parent with `gateway: {name: GATEWAY, namespace: NAMESPACE}`"
            )
        if self.serving_mode == "Serverless" and self.gateway is not None:
            raise ValueError(
                "`gateway` is used only with serving_mode RawDeployment (Serverless routes "
                "through Knative)"
            )
        return self

    @property
    def job_storage_secret(self) -> str:
        return self.storage_secret or f"{self.service_account}-storage"

    @property
    def bucket(self) -> str:
        return self.storage_uri.split("://", 1)[1].split("/", 1)[0]

    @property
    def prefix(self) -> str:
        rest = self.storage_uri.split("://", 1)[1]
        return rest.split("/", 1)[1] if "/" in rest else ""


_NOTES_COMMON = {
    "sticky_sessions": "KServe routes each request by weight; neither Knative nor an HTTPRoute "
    "assigns a caller to a version by a request key",
    "hint:sticky_sessions": "set ab.sticky_key: null to split by weight only",
    "gates": "gates are read from Prometheus over KServe's predictor metrics (request counts "
    "by status, latency histograms); other metrics are not exported there",
    "hint:gates": "gate on error_rate, requests or latency_p50/p90/p95/p99, and set "
    "`prometheus_url`",
    "stage:function": "stage jobs run commands in the runtime image, not Python functions of "
    "your project; write the stage as `run: python -m your.module`",
}

SERVERLESS = Capabilities(
    batching=True,  # spec.predictor.batcher
    native_progressive=False,
    weighted_traffic=True,
    mirroring=False,
    sticky_sessions=False,
    gate_metrics=GATE_METRICS,
    stage_kinds=JOB_STAGE_KINDS,
    notes={
        **_NOTES_COMMON,
        "mirroring": "Knative, which routes Serverless InferenceServices, cannot mirror requests",
        "hint:mirroring": "use canary with a small first step, or serving_mode: RawDeployment "
        "with a Gateway API gateway",
        "canary": "canaryTrafficPercent on the InferenceService, stepped by mlstack; rollback "
        "to KServe's last ready revision",
        "linear": "canaryTrafficPercent stepped in equal steps",
        "blue_green": "the new revision at canaryTrafficPercent 0, then 100",
        "ab": "canaryTrafficPercent for the challenger, not sticky",
    },
)
RAW = Capabilities(
    batching=True,  # spec.predictor.batcher
    native_progressive=False,
    weighted_traffic=True,
    mirroring=True,
    max_mirror_percent=100.0,
    sticky_sessions=False,
    gate_metrics=GATE_METRICS,
    stage_kinds=JOB_STAGE_KINDS,
    notes={
        **_NOTES_COMMON,
        "canary": "one InferenceService per version, HTTPRoute backend weights stepped by mlstack",
        "linear": "HTTPRoute backend weights in equal steps",
        "blue_green": "both InferenceServices up, the HTTPRoute switched at once",
        "shadow": "an HTTPRoute RequestMirror filter (percent) to the new InferenceService",
        "ab": "HTTPRoute backend weights champion/challenger, not sticky",
    },
)

plugin = BackendPlugin(
    name="kserve",
    config_model=KServeConfig,
    capabilities=SERVERLESS,
    capabilities_by=("serving_mode", {"Serverless": SERVERLESS, "RawDeployment": RAW}),
    implementation="mlstack_kserve.backend:KServeBackend",
    description="KServe on your Kubernetes: a Kubernetes Job per stage, InferenceServices",
)
