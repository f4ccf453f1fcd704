"""The backend seam: one narrow interface every platform implements.

A backend is described by a light ``BackendPlugin`` (name, config model, capabilities, and the
import path of its implementation), registered under the entry-point group ``mlstack.backends``.
``validate`` and ``plan`` use the plugin's config model and capabilities without importing the
platform's SDK; the implementation is imported only when work on that platform starts.

The operations are shaped by the mapping table in ARCHITECTURE.md so that SageMaker (pipelines,
model package groups, production variants, native canary + auto-rollback), Vertex AI (KFP,
registry aliases, traffic_split), Azure ML (pipeline jobs, online endpoints with traffic and
mirror_traffic) and KServe (InferenceService revisions) all fit, not only ``local``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.engine.entry_points import ENTRY_POINT_GROUP, scan_entry_points
from mlstack.errors import BackendError
from mlstack.manifest.builtins import BUILTIN_STAGES

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlstack.manifest.models import Deployment, ResolvedProject

# Why a backend lacks an endpoint feature a strategy needs, and what to do instead, unless the
# backend's ``Capabilities.notes`` says it better (keys: the feature, and ``hint:<feature>``).
_FEATURE_WHY: dict[str, tuple[str, str]] = {
    "weighted_traffic": (
        "the endpoint cannot split traffic between versions by weight",
        "use all_at_once or blue_green",
    ),
    "mirroring": (
        "the endpoint cannot mirror requests to a version",
        "use canary with a small first step, e.g. canary: {steps: [5, 100]}",
    ),
    "sticky_sessions": (
        "the endpoint cannot assign a caller to a version by a request key",
        "set ab.sticky_key: null to split by weight only, or run this environment on a "
        "backend with sticky sessions (local)",
    ),
}


@dataclass(frozen=True)
class Refusal:
    """Why a deployment cannot roll out on a backend: where in ``deployment:``, why, what instead."""

    path: tuple[str | int, ...]  # inside the deployment block, e.g. ("strategy",), ("gates", "x")
    message: str
    hint: str


# What a platform that runs each stage as a container job can run: every built-in stage and `run:`
# commands, not `function:` stages (those are called inside the local runner's process).
JOB_STAGE_KINDS: frozenset[str] = frozenset({*BUILTIN_STAGES, "command"})


@dataclass(frozen=True)
class Capabilities:
    """What a platform's endpoints can do; a strategy needing what is missing is refused at
    ``validate``/``plan`` with the reason and an alternative (never degraded silently)."""

    # the platform realises the rollout phases itself: the controller hands it the whole plan
    native_progressive: bool = False
    weighted_traffic: bool = True  # endpoint splits traffic between versions by weight
    mirroring: bool = False  # endpoint mirrors a share of requests to a version
    max_mirror_percent: float = 100.0
    sticky_sessions: bool = False  # A/B assignment by a request key
    # the endpoint gathers concurrent requests into one prediction call (`batching:`)
    batching: bool = False
    # metrics deployment gates can be judged on; None: any (error_rate, latency_*, custom ones)
    gate_metrics: frozenset[str] | None = None
    # stage kinds the platform can run (builtin names, "command", "function"); None: all of them
    stage_kinds: frozenset[str] | None = None
    # why a feature is missing / how the platform realises a strategy, keyed by feature name,
    # ``hint:<feature>``, ``gates``, ``hint:gates``, ``stage:<kind>`` or a strategy name
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def features(self) -> frozenset[str]:
        have = {
            "weighted_traffic": self.weighted_traffic,
            "mirroring": self.mirroring,
            "sticky_sessions": self.sticky_sessions,
        }
        return frozenset(k for k, v in have.items() if v)

    def explain_stage(self, kind: str) -> str | None:
        """None when this kind of stage runs here; otherwise why not."""
        if self.stage_kinds is not None and kind not in self.stage_kinds:
            why = self.notes.get(f"stage:{kind}", "the platform cannot run it")
            return f"{kind!r} stages are not available on this backend: {why}"
        return None

    def explain_rollout(self, deployment: Deployment) -> list[Refusal]:
        """Everything in ``deployment`` this backend cannot realise; empty when it can."""
        from mlstack.manifest import strategies

        out: list[Refusal] = []
        name = deployment.strategy
        for feature in sorted(strategies.needs_of(deployment) - self.features):
            why, hint = _FEATURE_WHY[feature]
            out.append(
                Refusal(
                    ("strategy",),
                    f"strategy {name!r} is not available on this backend: "
                    f"{self.notes.get(feature, why)}",
                    self.notes.get(f"hint:{feature}", hint),
                )
            )
        mirror = strategies.mirror_percent(deployment)
        # (without mirroring at all, the refusal above already says why; no "percent <= 0")
        if self.mirroring and mirror > self.max_mirror_percent:
            out.append(
                Refusal(
                    (name, "percent"),
                    f"{name}.percent {mirror:g} is more than this backend "
                    f"mirrors ({self.max_mirror_percent:g}%)",
                    f"use {name}.percent <= {self.max_mirror_percent:g}",
                )
            )
        if deployment.batching is not None and not self.batching:
            out.append(
                Refusal(
                    ("batching",),
                    "adaptive batching (`batching:`) is not available on this backend: "
                    + self.notes.get("batching", "its endpoints predict each request on its own"),
                    self.notes.get(
                        "hint:batching", "remove `batching:` from this environment's deployment"
                    ),
                )
            )
        if self.gate_metrics is not None:
            known = ", ".join(sorted(self.gate_metrics))
            for gate in deployment.gates:
                if gate not in self.gate_metrics:
                    why = self.notes.get("gates", "the platform does not report it")
                    out.append(
                        Refusal(
                            ("gates", gate),
                            f"gate {gate!r} cannot be checked on this backend: {why}",
                            self.notes.get("hint:gates", f"gate on {known}"),
                        )
                    )
        return out


@dataclass(frozen=True)
class BackendPlugin:
    """How core finds a backend without importing it: Metaflow/ZenML-style flavour."""

    name: str
    config_model: type[BaseModel]
    capabilities: Capabilities
    implementation: str  # "package.module:Class", imported on first real use
    description: str = ""
    # capabilities that depend on one setting: (setting, {value: capabilities}); a value not
    # listed (or the setting unset) falls back to ``capabilities``
    capabilities_by: tuple[str, Mapping[str, Capabilities]] | None = None

    def capabilities_for(self, settings: Mapping[str, Any]) -> Capabilities:
        """What the platform can do as an environment block configures it (e.g. a serving mode)."""
        if self.capabilities_by is None:
            return self.capabilities
        key, table = self.capabilities_by
        return table.get(str(settings.get(key, "")), self.capabilities)

    def load(self, project: ResolvedProject, workdir: Path) -> Backend:
        module_name, _, attr = self.implementation.partition(":")
        try:
            cls = getattr(import_module(module_name), attr)
        except ImportError as e:
            raise BackendError(
                f"backend {self.name!r} cannot start: {e}",
                hint=f"install its dependencies: {install_hint(self.name)}",
            ) from None
        config = self.config_model.model_validate(project.settings)
        backend: Backend = cls(project=project, config=config, workdir=workdir, plugin=self)
        return backend


# The values that flow through the seam live in mlstack.engine.seam (imported on first use).
_SEAM = frozenset(
    {
        "CompiledPipeline",
        "RunRequest",
        "RunResult",
        "ModelVersion",
        "Backing",
        "EndpointState",
        "VersionMetrics",
        "RolloutPlan",
        "Phase",
        "Provisioned",
        "PipelineRef",
        "VersionServing",
        "EndpointView",
        "Prediction",
        "Capture",
        "NativeRollout",
        "Lineage",
        "Event",
        "Context",
        "Observed",
    }
)
if TYPE_CHECKING:
    from mlstack.engine.seam import Capture as Capture
    from mlstack.engine.seam import CompiledPipeline as CompiledPipeline
    from mlstack.engine.seam import Context as Context
    from mlstack.engine.seam import EndpointState as EndpointState
    from mlstack.engine.seam import EndpointView as EndpointView
    from mlstack.engine.seam import Lineage as Lineage
    from mlstack.engine.seam import ModelVersion as ModelVersion
    from mlstack.engine.seam import NativeRollout as NativeRollout
    from mlstack.engine.seam import Observed as Observed
    from mlstack.engine.seam import Phase as Phase
    from mlstack.engine.seam import PipelineRef as PipelineRef
    from mlstack.engine.seam import Prediction as Prediction
    from mlstack.engine.seam import Provisioned as Provisioned
    from mlstack.engine.seam import RolloutPlan as RolloutPlan
    from mlstack.engine.seam import RunRequest as RunRequest
    from mlstack.engine.seam import RunResult as RunResult
    from mlstack.engine.seam import VersionMetrics as VersionMetrics
    from mlstack.engine.seam import VersionServing as VersionServing


def __getattr__(name: str) -> Any:
    if name in _SEAM:
        from mlstack.engine import seam

        return getattr(seam, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Backend(ABC):
    """One platform. Small on purpose: every method must make sense on all five platforms."""

    def __init__(
        self, *, project: ResolvedProject, config: BaseModel, workdir: Path, plugin: BackendPlugin
    ) -> None:
        self.project = project
        self.config = config
        self.workdir = workdir
        self.plugin = plugin

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def capabilities(self) -> Capabilities:
        if self.plugin.capabilities_by is None:
            return self.plugin.capabilities
        return self.plugin.capabilities_for(self.project.settings)

    # infrastructure: storage, identities, registry, endpoint host -----------------------------
    def infrastructure(self) -> Mapping[str, Any]:
        """Desired infrastructure inputs (diffed by plan). Local: folders; clouds: a Pulumi stack."""
        return {}

    def provision(self, inputs: Mapping[str, Any], ctx: Context) -> Provisioned:
        """Create or update the infrastructure; return outputs later operations consume."""
        from mlstack.engine.seam import Provisioned

        return Provisioned(outputs=dict(inputs), provisioned_by="mlstack")

    # pipeline -------------------------------------------------------------------------------
    @abstractmethod
    def compile(self) -> CompiledPipeline:
        """The platform's pipeline definition. Pure: no network, no platform calls."""

    @abstractmethod
    def upsert_pipeline(self, compiled: CompiledPipeline, ctx: Context) -> PipelineRef:
        """Create or update the pipeline definition on the platform."""

    @abstractmethod
    def run_pipeline(
        self, compiled: CompiledPipeline, request: RunRequest, ctx: Context
    ) -> RunResult:
        """Run (or submit and follow) a pipeline run, emitting stage events as it goes."""

    # registry -------------------------------------------------------------------------------
    @abstractmethod
    def register(self, run: RunResult, ctx: Context) -> ModelVersion:
        """Register the run's model as a new version, with metrics and lineage."""

    @abstractmethod
    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        """Point ``alias`` (champion, challenger) at ``version``; approval on SageMaker."""

    @abstractmethod
    def versions(self, model: str) -> list[ModelVersion]:
        """Registered versions, newest first."""

    def import_version(self, source: ModelVersion, ctx: Context) -> ModelVersion:
        """Register an artifact promoted from another environment (same digest)."""
        raise BackendError(f"backend {self.name!r} cannot import model versions")

    # serving --------------------------------------------------------------------------------
    @abstractmethod
    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        """Make the endpoint hold exactly these versions with these weights. Idempotent."""

    def rollout(self, plan: RolloutPlan, ctx: Context) -> NativeRollout:
        """Whole-strategy rollout for platforms with native guardrails: realise every phase of
        ``plan`` (mirroring, each step, stickiness, holds, gates) or refuse it; never less."""
        raise BackendError(f"backend {self.name!r} has no native rollout")

    @abstractmethod
    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        """Per-version requests, errors and latency since a time (epoch seconds), for gates."""

    def endpoint_status(self, endpoint: str) -> EndpointView | None:
        """URL, versions, traffic, health: what `status` shows; None when it does not exist."""
        return None

    @abstractmethod
    def predict(self, endpoint: str, body: Mapping[str, Any], timeout: float) -> Prediction:
        """Send a request to the deployed model and return its answer. ``body`` is V1
        (``{"instances": [...]}``) or V2 (``{"inputs": [...]}``); the backend speaks its
        platform's protocol (local: HTTP to the router; SageMaker: a signed InvokeEndpoint)."""

    def capture(self, model: str, version: str, endpoint: str, since: float, limit: int) -> Capture:
        """What monitoring compares: the training split of ``version`` (at most ``limit`` rows)
        and the requests sampled at ``endpoint`` since ``since`` (epoch seconds; the newest
        ``limit`` rows) with their answers and request ids."""
        raise BackendError(
            f"request capture for monitoring is not supported by this backend ({self.name!r})",
            hint="use the platform's model monitoring",
        )

    # views for people: logs, lineage, a tracking UI --------------------------------------------
    def logs(self, stage: str | None = None) -> str:
        """Logs of the latest pipeline run (one stage, or all)."""
        raise BackendError(
            f"backend {self.name!r} cannot show run logs", hint="use the platform's console"
        )

    def lineage(self, model: str, version: str) -> Lineage:
        """Data digest → pipeline run → stages → model version."""
        raise BackendError(
            f"backend {self.name!r} cannot trace lineage", hint="use the platform's console"
        )

    def ui_command(self) -> list[str]:
        """A command that serves the tracking UI on 127.0.0.1."""
        raise BackendError(
            f"backend {self.name!r} has no local tracking UI", hint="use the platform's console"
        )

    # refresh / teardown ---------------------------------------------------------------------
    def observe(self) -> Observed:
        """What exists now, for refresh and drift. Default: nothing can be observed."""
        from mlstack.engine.seam import Observed

        return Observed(resources={}, complete=False)

    @abstractmethod
    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        """Remove one resource this backend created."""


# --- discovery ---------------------------------------------------------------------------------

_PLUGINS: dict[str, BackendPlugin] | None = None


def _entry_points() -> dict[str, Any]:
    """Backends registered under the entry-point group.

    ``importlib.metadata.entry_points`` parses every installed distribution (~25 ms in a venv
    with the cloud SDKs); the CLI's start-up budget is 150 ms, so we read only the
    ``entry_points.txt`` files that mention our group, and fall back to importlib otherwise.
    """
    found = scan_entry_points()
    if found is not None:
        return found
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    return sorted(_entry_points())


def get_plugin(name: str) -> BackendPlugin:
    """The plugin descriptor for ``name`` (imports only the light descriptor module)."""
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = {}
    if name in _PLUGINS:
        return _PLUGINS[name]
    eps = _entry_points()
    if name not in eps:
        from mlstack.manifest.suggest import did_you_mean

        known = sorted(eps) + [k for k in KNOWN_BACKENDS if k not in eps]
        installed = ", ".join(sorted(eps)) or "none"
        hint = install_hint(name) if name in KNOWN_BACKENDS else f"installed backends: {installed}"
        raise BackendError(f"unknown backend {name!r}{did_you_mean(name, known)}", hint=hint)
    try:
        plugin = eps[name].load()
    except ImportError as e:
        raise BackendError(
            f"backend {name!r} is registered but cannot be imported: {e}",
            hint=f"reinstall it: {install_hint(name).replace('install', 'install --force-reinstall', 1)}",
        ) from None
    if not isinstance(plugin, BackendPlugin):
        raise BackendError(f"entry point {name!r} in {ENTRY_POINT_GROUP} is not a BackendPlugin")
    _PLUGINS[name] = plugin
    return plugin


KNOWN_BACKENDS = ("local", "sagemaker", "vertex", "azureml", "kserve")
# The distribution that provides each backend (names checked free on the package index; the
# bare name "mlstack" there is an unrelated project).
DISTRIBUTIONS = {
    "local": "mlstack-core[local]",
    "sagemaker": "mlstack-sagemaker",
    "vertex": "mlstack-vertex",
    "azureml": "mlstack-azureml",
    "kserve": "mlstack-kserve",
}


def install_hint(name: str) -> str:
    dist = DISTRIBUTIONS.get(name)
    if dist is None:
        return f"backend {name!r} is planned but not released yet"
    return f"pip install '{dist}'"
