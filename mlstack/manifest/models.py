"""The schema of ``mlstack.yaml`` as pydantic models.

Every field has a default a newcomer would pick; unknown keys are errors (with a did-you-mean),
because a typo that is silently ignored is the most expensive kind of bug in a deployment file.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from mlstack.manifest.builtins import BUILTIN_STAGES
from mlstack.manifest.fields import Duration, Strict
from mlstack.manifest.gates import Gate, parse_gate
from mlstack.manifest.strategies import (
    AB,
    STRATEGY_HELP,
    BlueGreen,
    Linear,
    Shadow,
    Steps,
    StrategyName,
)
from mlstack.manifest.units import parse_size, parse_threshold

NAME_RE = r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$"
MAX_ENVIRONMENTS = 100


class Expectation(Strict):
    """What one column must look like."""

    type: Literal["int", "float", "str", "bool", "datetime"] | None = None
    min: float | None = None
    max: float | None = None
    nullable: bool = True
    in_: list[Any] | None = Field(default=None, alias="in")
    regex: str | None = None
    unique: bool = False

    @model_validator(mode="after")
    def _range(self) -> Expectation:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as e:
                raise ValueError(f"regex {self.regex!r} does not compile: {e}") from None
        return self


class TableExpectation(Strict):
    """What the whole table must look like."""

    min_rows: int | None = Field(default=None, ge=0)
    max_rows: int | None = Field(default=None, ge=0)
    unique: list[str] = Field(default_factory=list)
    columns_exactly: bool = False


class Split(Strict):
    strategy: Literal["random", "stratified", "time"] = "random"
    by: str | None = None
    test: float = Field(default=0.2, gt=0, lt=1)
    validation: float = Field(default=0.0, ge=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _by(self) -> Split:
        if self.strategy in ("stratified", "time") and not self.by:
            raise ValueError(f"split strategy {self.strategy!r} needs `by:` (a column name)")
        if self.test + self.validation >= 1:
            raise ValueError("test + validation must leave some rows for training")
        return self


class Data(Strict):
    source: str
    format: Literal["csv", "parquet", "json"] | None = None
    target: str | None = None
    expectations: dict[str, Expectation] = Field(default_factory=dict)
    table: TableExpectation = Field(default_factory=TableExpectation, alias="_table")
    split: Split = Field(default_factory=Split)

    @model_validator(mode="before")
    @classmethod
    def _lift_table(cls, data: Any) -> Any:
        # `_table` sits among the column expectations in the file; it is a table rule.
        if isinstance(data, dict):
            exp = data.get("expectations")
            if isinstance(exp, dict) and "_table" in exp:
                data = dict(data)
                exp = dict(exp)
                data["_table"] = exp.pop("_table")
                data["expectations"] = exp
        return data


class Resources(Strict):
    cpu: float = Field(default=1, gt=0)
    memory: str = "2Gi"
    gpu: int = Field(default=0, ge=0)
    instance_type: str | None = None

    @field_validator("memory")
    @classmethod
    def _mem(cls, v: str) -> str:
        parse_size(v)
        return v


class Stage(Strict):
    name: str = Field(pattern=NAME_RE)
    uses: str | None = None
    run: str | None = None
    function: str | None = None
    needs: list[str] = Field(default_factory=list)
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    env: dict[str, str] = Field(default_factory=dict)
    gates: list[str] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    retries: int = Field(default=0, ge=0, le=10)
    timeout: Duration | None = None
    code: list[str] = Field(default_factory=list)

    @field_validator("gates")
    @classmethod
    def _gates(cls, v: list[str]) -> list[str]:
        for g in v:
            parse_gate(g)
        return v

    @field_validator("uses")
    @classmethod
    def _uses(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith("builtin/"):
            raise ValueError(
                f"{v!r}: `uses` takes builtin/NAME; for your own code use `run:` "
                "(a command) or `function:` (module:function)"
            )
        kind = v.split("/", 1)[1]
        if kind not in BUILTIN_STAGES:
            from mlstack.manifest.suggest import did_you_mean

            raise ValueError(
                f"unknown built-in stage {kind!r}{did_you_mean(kind, BUILTIN_STAGES)}"
                f" (built-ins: {', '.join(BUILTIN_STAGES)})"
            )
        return v

    @field_validator("function")
    @classmethod
    def _function(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", v):
            raise ValueError(f"{v!r}: write a function as module.path:function_name")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> Stage:
        if bool(self.uses) + bool(self.run) + bool(self.function) == 1:
            return self  # the common case, kept cheap for pipelines of 10,000s of stages
        kinds = [k for k in ("uses", "run", "function") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(
                "a stage needs exactly one of `uses:` (a built-in), `run:` (a command) or "
                f"`function:` (module:function); this one has {', '.join(kinds) or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        if self.uses:
            return self.uses.split("/", 1)[1]
        return "command" if self.run else "function"

    def parsed_gates(self) -> list[Gate]:
        return [parse_gate(g) for g in self.gates]


class Pipeline(Strict):
    stages: list[Stage] = Field(default_factory=list)
    parallelism: int = Field(default=2, ge=1, le=64)


class Register(Strict):
    aliases: list[str] = Field(default_factory=lambda: ["challenger"])


class Model(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    registration: Register = Field(default_factory=Register, alias="register")


class DeployResources(Strict):
    replicas: int = Field(default=1, ge=1, le=100)
    instance_type: str | None = None


class Batching(Strict):
    """Adaptive batching: concurrent requests to one version share a prediction call of at most
    ``max_batch`` rows, each waiting at most ``max_latency`` for others to join it."""

    max_batch: int = Field(default=32, description="rows per prediction call (2 to 1024)")
    max_latency: Duration = Field(
        default=0.005, description="longest a request waits for its batch (above 0, at most 1s)"
    )

    @field_validator("max_batch")
    @classmethod
    def _max_batch(cls, v: int) -> int:
        if not 2 <= v <= 1024:
            raise ValueError(
                f"max_batch {v}: a batch holds 2 to 1024 rows (32 is a good start; "
                "remove `batching:` to predict each request on its own)"
            )
        return v

    @field_validator("max_latency")
    @classmethod
    def _max_latency(cls, v: float) -> float:
        if not 0 < v <= 1.0:
            raise ValueError(
                f"max_latency {v:g}s: the longest a request waits for others to join its batch "
                "must be above 0 and at most 1s (a few ms, e.g. 5ms, is usual)"
            )
        return v


class Deployment(Strict):
    endpoint: str = Field(pattern=NAME_RE)
    strategy: StrategyName = Field(default="all_at_once", description=STRATEGY_HELP)
    canary: Steps = Field(default_factory=Steps)
    linear: Linear = Field(default_factory=Linear)
    blue_green: BlueGreen = Field(default_factory=BlueGreen)
    shadow: Shadow = Field(default_factory=Shadow)
    ab: AB = Field(default_factory=AB)
    gates: dict[str, str] = Field(default_factory=dict)
    min_requests: int = Field(default=20, ge=0)
    # what a rollout does when a step's gates cannot be judged (fewer than min_requests reached
    # the new version): hold at that step and fail the command, or promote anyway
    on_inconclusive: Literal["hold", "promote"] = "hold"
    resources: DeployResources = Field(default_factory=DeployResources)
    # off unless set: requests are predicted one call each
    batching: Batching | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    host: str = "127.0.0.1"

    def batching_fields(self) -> dict[str, Any]:
        """The endpoint's batching settings as ``EndpointState`` fields (off: zeros)."""
        if self.batching is None:
            return {"max_batch": 0, "max_latency": 0.0}
        return {"max_batch": self.batching.max_batch, "max_latency": self.batching.max_latency}

    @field_validator("gates")
    @classmethod
    def _gates(cls, v: dict[str, str]) -> dict[str, str]:
        for metric, rule in v.items():
            if not re.match(r"^[a-z][a-z0-9_]*$", metric):
                raise ValueError(
                    f"gate name {metric!r}: use error_rate, latency_p50/p90/p95/p99 "
                    "or a custom metric name in snake_case"
                )
            try:
                parse_threshold(rule)
            except ValueError as e:
                raise ValueError(f"gate {metric}: {e}") from None
        return v


class Drift(Strict):
    # psi: a feature drifts when its PSI exceeds `threshold`; ks: when its KS statistic exceeds
    # `threshold` and the KS p-value is below `alpha` (categorical features always use PSI)
    method: Literal["psi", "ks"] = "psi"
    threshold: float = Field(default=0.2, gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    # below this many live rows of a feature its verdict is "not enough data", never drift
    min_samples: int = Field(default=100, ge=1)
    features: Literal["all"] | list[str] = "all"
    on_drift: Literal["alert", "retrain"] = "alert"


class Monitoring(Strict):
    drift: Drift = Field(default_factory=Drift)
    schedule: str | None = None
    sample_rate: float = Field(default=0.1, ge=0, le=1)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None and len(v.split()) != 5:
            raise ValueError(f"{v!r} is not a cron expression (5 fields: min hour dom mon dow)")
        return v


STATE_BACKENDS = ("local", "s3", "gcs", "azblob")


class StateConfig(Strict):
    """Where state, its history and its lock live (Terraform's `backend` block).

    Credentials are never written here: each store reads its SDK's usual environment
    (AWS_*, GOOGLE_APPLICATION_CREDENTIALS / STORAGE_EMULATOR_HOST, AZURE_STORAGE_*).
    """

    backend: Literal["local", "s3", "gcs", "azblob"] = "local"
    bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
    container: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    account_url: str | None = Field(default=None, pattern=r"^https?://")
    prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-/]{1,200}$")
    region: str | None = None
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    kms_key: str | None = None
    stale_after: Duration = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _needs(self) -> StateConfig:
        need = {"s3": "bucket", "gcs": "bucket", "azblob": "container"}.get(self.backend)
        if need and getattr(self, need) is None:
            raise ValueError(f"state backend {self.backend!r} needs `{need}:`")
        if self.backend != "azblob" and (self.container or self.account_url):
            raise ValueError("`container` and `account_url` are for state backend azblob")
        if self.backend == "azblob" and self.bucket:
            raise ValueError("state backend azblob takes `container:`, not `bucket:`")
        if self.backend == "local" and any(
            (self.bucket, self.region, self.endpoint_url, self.kms_key)
        ):
            raise ValueError("state backend local takes no bucket, region, endpoint or key")
        return self


class Policies(Strict):
    """Rules `validate` and `plan` enforce for an environment; a violation names the rule."""

    min_approvals: int = Field(default=0, ge=0)
    forbid_strategies: list[StrategyName] = Field(default_factory=list)
    require_gates: list[str] = Field(default_factory=list)
    promote_from: str | None = None


SECTIONS = ("data", "pipeline", "model", "deployment", "monitoring", "state", "policies")
ENV_KEYS = ("backend", "promote_from", "approvals", "bake_time", "gates", *SECTIONS)


class Environment(Strict):
    """One workspace. Known keys are here; everything else is the backend's own settings."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    backend: str = "local"
    promote_from: str | None = None
    approvals: int = Field(default=0, ge=0)
    bake_time: Duration = 0.0
    gates: list[str] = Field(default_factory=list)  # promotion gates on recorded metrics
    data: dict[str, Any] | None = None
    pipeline: dict[str, Any] | None = None
    model: dict[str, Any] | None = None
    deployment: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None
    state: dict[str, Any] | None = None
    policies: dict[str, Any] | None = None

    @field_validator("gates")
    @classmethod
    def _gates(cls, v: list[str]) -> list[str]:
        for g in v:
            parse_gate(g)
        return v

    def backend_settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Project(Strict):
    """The whole file, before an environment is chosen."""

    project: str = Field(pattern=NAME_RE)
    vars: dict[str, Any] = Field(default_factory=dict)
    environments: dict[str, Environment] = Field(
        default_factory=lambda: {"dev": Environment(backend="local")}
    )
    data: Data | None = None
    pipeline: Pipeline = Field(default_factory=Pipeline)
    model: Model | None = None
    deployment: Deployment | None = None
    monitoring: Monitoring | None = None
    state: StateConfig = Field(default_factory=StateConfig)
    policies: Policies = Field(default_factory=Policies)

    @field_validator("environments")
    @classmethod
    def _envs(cls, v: dict[str, Environment]) -> dict[str, Environment]:
        if not v:
            raise ValueError("declare at least one environment, e.g. `dev: {backend: local}`")
        if len(v) > MAX_ENVIRONMENTS:
            raise ValueError(
                f"{len(v):,} environments; a project has at most {MAX_ENVIRONMENTS} "
                "(dev, staging, prod, ...)"
            )
        for name in v:
            if not re.match(NAME_RE, name):
                raise ValueError(
                    f"environment name {name!r}: use lowercase letters, digits, - and _"
                )
        return v


class ResolvedProject(Strict):
    """The project as one environment sees it: overrides merged, interpolation done."""

    project: str
    environment: str
    backend: str
    settings: dict[str, Any] = Field(default_factory=dict)
    promote_from: str | None = None
    approvals: int = 0
    bake_time: Duration = 0.0
    promotion_gates: list[str] = Field(default_factory=list)
    data: Data | None = None
    pipeline: Pipeline = Field(default_factory=Pipeline)
    model: Model | None = None
    deployment: Deployment | None = None
    monitoring: Monitoring | None = None
    state: StateConfig = Field(default_factory=StateConfig)
    policies: Policies = Field(default_factory=Policies)
    root: str = "."
    file: str = "mlstack.yaml"
