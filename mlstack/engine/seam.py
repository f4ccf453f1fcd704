"""The values that flow through the backend seam (requests, results, endpoint states, events).

Kept apart from ``mlstack.engine.backend`` so that looking up a backend's descriptor (what
`validate` and `--help` do) does not pay for building these classes; ``backend`` re-exports
them, so ``from mlstack.engine.backend import RunResult`` keeps working.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlstack.errors import BackendError


@dataclass(frozen=True)
class CompiledPipeline:
    """The platform's own pipeline definition and a digest of it, so plan needs no platform call."""

    definition: Mapping[str, Any]
    digest: str
    steps: tuple[str, ...]
    format: str  # "mlstack-dag", "sagemaker-pipeline", "kfp-v2", "azureml-pipeline-job"


@dataclass(frozen=True)
class RunRequest:
    """Run these stages (the rest are cached and reused)."""

    stages: tuple[str, ...]
    reasons: Mapping[str, str]
    cache_keys: Mapping[str, str]
    data_digest: str | None


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: Literal["succeeded", "failed", "cancelled"]
    metrics: Mapping[str, float]
    model_uri: str | None  # where the trained model artifact lives on the platform
    model_digest: str | None  # sha256 of the artifact: the identity that promote carries
    stages: Mapping[str, str]  # stage -> "ran" | "cached" | "failed" | "skipped"
    detail: str = ""


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    digest: str
    uri: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    lineage: Mapping[str, Any] = field(default_factory=dict)
    approved: bool = True


@dataclass(frozen=True)
class Backing:
    """One model version behind an endpoint, with its share of live traffic."""

    version: str
    uri: str
    digest: str
    weight: float  # percent of primary traffic, 0..100
    shadow: float = 0.0  # percent of requests mirrored to it (its answers are dropped)


@dataclass(frozen=True)
class EndpointState:
    """Exactly what the endpoint must hold. ``deploy`` makes it so, idempotently."""

    name: str
    model: str
    backings: tuple[Backing, ...]
    sticky_key: str | None = None
    replicas: int = 1
    instance_type: str | None = None
    max_batch: int = 0  # adaptive batching: rows per prediction call; 0 = off
    max_latency: float = 0.0  # seconds a request may wait for its batch

    def weights(self) -> dict[str, float]:
        return {b.version: b.weight for b in self.backings}


@dataclass(frozen=True)
class Provisioned:
    """The infrastructure's outputs, which later operations consume (bucket, role, ...), and
    what made it: ``"mlstack"`` (folders), ``"environment"`` (given), ``"pulumi"``."""

    outputs: Mapping[str, Any]
    provisioned_by: str

    def record(self) -> dict[str, Any]:
        """What state records for the infrastructure resource."""
        return {**self.outputs, "provisioned_by": self.provisioned_by}


@dataclass(frozen=True)
class PipelineRef:
    """Where the platform holds a pipeline definition after ``upsert_pipeline``."""

    name: str  # the platform's name for it
    location: str  # a path, an ARN, a URL
    steps: tuple[str, ...]
    action: Literal["created", "updated", "unchanged"] = "updated"


@dataclass(frozen=True)
class VersionServing:
    """One version behind an endpoint as the platform reports it."""

    version: str
    weight: float  # percent of primary traffic
    mirrored: float = 0.0  # percent of requests mirrored to it
    healthy: bool | None = None  # None: the platform does not say
    where: str = ""  # where it runs, for people: "port 5001, pid 42", "variant v2 (ml.m5.large)"


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as its platform reports it: what ``deploy`` returns and ``status`` shows."""

    name: str  # the platform's name for the endpoint
    url: str
    status: str  # the platform's word: "healthy", "DOWN", "InService", "Updating", ...
    versions: tuple[VersionServing, ...] = ()
    healthy: bool | None = None
    sticky_key: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)  # more fields, label -> text

    def weights(self) -> dict[str, float]:
        return {v.version: v.weight for v in self.versions if v.weight > 0}


@dataclass(frozen=True)
class Prediction:
    """A deployed model's answer to ``Backend.predict``."""

    body: Any  # the decoded JSON answer (V1: {"predictions": [...]}, V2: {"outputs": [...]})
    version: str | None = None  # which version answered, when the platform says
    target: str = ""  # what was called, for people: a URL, an endpoint name


@dataclass(frozen=True)
class Capture:
    """A sample of what an endpoint was asked and answered, beside what its model learnt from.

    Columnar, for monitoring (``mlstack.monitoring``): ``reference`` maps each input column, and
    the target when it is known, to its values in the version's training split; ``live`` maps
    each input column to its values in the sampled requests, one per scored row, oldest first.
    ``predictions``, ``request_ids`` and ``timestamps`` are aligned with ``live``'s rows (None
    where not captured). A request of several rows gives its rows the ids ``ID/0``, ``ID/1``...
    """

    columns: tuple[str, ...]
    reference: Mapping[str, Sequence[Any]]
    live: Mapping[str, Sequence[Any]]
    predictions: Sequence[Any] = ()
    request_ids: Sequence[str | None] = ()
    timestamps: Sequence[float] = ()
    target: str | None = None
    task: str | None = None  # "classification" | "regression" when the model says
    source: str = ""  # where the live sample was read, for messages

    @property
    def n_live(self) -> int:
        return len(next(iter(self.live.values()), ()))


@dataclass(frozen=True)
class VersionMetrics:
    requests: int
    errors: int
    latency_p50: float | None = None  # seconds
    latency_p90: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    custom: Mapping[str, float] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def value(self, name: str) -> float | None:
        if name == "error_rate":
            return self.error_rate
        if name == "requests":
            return float(self.requests)
        if name.startswith("latency_"):
            v = getattr(self, name, None)
            return None if v is None else float(v)
        return self.custom.get(name)


@dataclass(frozen=True)
class Phase:
    """One planned position of an endpoint during a rollout (from the strategy table's phases):
    what it holds, how long, and whether the deployment's gates are judged during the hold."""

    label: str
    state: EndpointState
    hold: float  # seconds
    check: bool
    traffic: float  # percent of primary traffic on the new version (shadow: mirrored percent)

    @property
    def mirrored(self) -> dict[str, float]:
        """version -> percent of requests mirrored to it in this phase."""
        return {b.version: b.shadow for b in self.state.backings if b.shadow > 0}


@dataclass(frozen=True)
class RolloutPlan:
    """A whole strategy, handed to backends whose platform rolls out natively: every phase (so
    mirroring, each canary step, stickiness and the holds reach the platform) and the gates."""

    target: EndpointState
    previous: EndpointState | None
    strategy: str
    phases: tuple[Phase, ...]
    gates: Mapping[str, str]
    min_requests: int = 0
    # too few requests to judge the gates: hold at the phase reached (the default) or go on
    on_inconclusive: Literal["hold", "promote"] = "hold"

    @property
    def steps(self) -> tuple[float, ...]:
        """The new version's share of traffic in each phase."""
        return tuple(p.traffic for p in self.phases)

    @property
    def interval(self) -> float:
        """The hold of the first phase whose gates are judged (0 when none is)."""
        return next((p.hold for p in self.phases if p.check), 0.0)


@dataclass(frozen=True)
class NativeRollout:
    """What a platform's own rollout (``Backend.rollout``) did with a ``RolloutPlan``."""

    # held: the gates could not be judged (too few requests) and the plan says hold; the
    # endpoint stays at the last phase done, and a later apply/promote resumes
    outcome: Literal["promoted", "rolled_back", "held"]
    reason: str
    endpoint: EndpointView  # what the endpoint holds afterwards
    phases_done: tuple[str, ...] = ()  # labels of the plan's phases the platform went through


@dataclass(frozen=True)
class Lineage:
    """Data digest -> pipeline run -> stages -> model version, for ``mlstack lineage``."""

    model: str
    version: str
    digest: str
    data_digest: str | None
    run_id: str | None
    stages: tuple[str, ...] = ()  # in run order, each "name (status, output)"
    details: Mapping[str, str] = field(default_factory=dict)  # aliases, source, metrics, ...


# Every kind of event the engine and the backends emit. The CLI has one renderer per kind
# (``mlstack.cli.render.EVENT_LINES``); a test fails when a kind has none, and mypy refuses an
# event whose kind is not listed here.
EventKind = Literal[
    "resource.start",
    "resource.done",
    "resource.failed",
    "stage.start",
    "stage.done",
    "stage.cached",
    "stage.failed",
    "stage.cancelled",
    "stage.retry",
    "run.started",
    "run.done",
    "pipeline.created",
    "pipeline.updated",
    "model.registered",
    "model.imported",
    "model.alias",
    "endpoint.created",
    "endpoint.updated",
    "endpoint.weights",
    "endpoint.unchanged",
    "endpoint.status",
    "rollout.step",
    "rollout.warning",
    "rollout.held",
    "rollout.rollback",
    "rollout.done",
    "destroyed",
    "log",
    "interrupt",
]


@dataclass(frozen=True)
class Event:
    """Progress from long work; the CLI renders it, library code never prints."""

    kind: EventKind
    subject: str
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What an operation may use: where to write, how to report, when to stop."""

    workdir: Path
    environment: str
    emit: Callable[[Event], None] = lambda e: None
    cancel: threading.Event = field(default_factory=threading.Event)
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # address -> outputs

    def secret(self, name: str) -> str:
        """Resolve a ``${secret:NAME}`` reference at the moment of use; never stored."""
        import os

        value = os.environ.get(name)
        if value is None:
            raise BackendError(
                f"secret {name!r} is not set",
                hint=f"export {name}=... in the environment that runs mlstack",
            )
        return value


@dataclass(frozen=True)
class Observed:
    """What exists on the platform now, by resource address, for refresh and drift."""

    resources: Mapping[str, Mapping[str, Any]]
    complete: bool = True  # False when the backend could only look at some kinds
    # kinds listed exhaustively even when ``complete`` is False: a recorded resource of such a
    # kind that is absent from ``resources`` was deleted outside mlstack
    kinds: frozenset[str] = frozenset()
    # why a recorded resource counts as absent when it is not simply deleted (e.g. an endpoint
    # whose processes are not running): address -> reason shown by drift
    absent: Mapping[str, str] = field(default_factory=dict)
