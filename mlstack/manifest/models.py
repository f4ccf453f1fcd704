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

    type: Literal["int", "float", "str", "bool", "datetime"] | None = Field(
        default=None, description="the values' type: int, float, str, bool or datetime"
    )
    min: float | None = Field(default=None, description="smallest value allowed")
    max: float | None = Field(default=None, description="largest value allowed")
    nullable: bool = Field(default=True, description="whether missing values are allowed")
    in_: list[Any] | None = Field(description="the only values allowed", default=None, alias="in")
    regex: str | None = Field(
        default=None, description="a regular expression every value must match (Python syntax)"
    )
    unique: bool = Field(default=False, description="whether every value must be different")

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

    min_rows: int | None = Field(description="fewest rows the data may have", default=None, ge=0)
    max_rows: int | None = Field(description="most rows the data may have", default=None, ge=0)
    unique: list[str] = Field(
        description="columns whose combined values must be unique per row", default_factory=list
    )
    columns_exactly: bool = Field(
        default=False,
        description="the data must have exactly the columns listed in `expectations` (no others)",
    )


class Split(Strict):
    strategy: Literal["random", "stratified", "time"] = Field(
        default="random",
        description="random; stratified (class shares kept, by the column `by`); time (the newest rows by `by` are the test rows)",
    )
    by: str | None = Field(default=None, description="the column a stratified or time split uses")
    test: float = Field(description="share of rows held out for evaluate", default=0.2, gt=0, lt=1)
    validation: float = Field(
        description="share of rows held out for tune (0: tune cross-validates on the training rows)",
        default=0.0,
        ge=0,
        lt=1,
    )
    seed: int = Field(default=0, description="random seed of the split")

    @model_validator(mode="after")
    def _by(self) -> Split:
        if self.strategy in ("stratified", "time") and not self.by:
            raise ValueError(f"split strategy {self.strategy!r} needs `by:` (a column name)")
        if self.test + self.validation >= 1:
            raise ValueError("test + validation must leave some rows for training")
        return self


def _table_among_expectations(schema: dict[str, Any]) -> None:
    """In the file, ``_table`` sits among the column expectations (``_lift_table``): say so in
    the JSON Schema too, or an editor flags every spec that uses it."""
    props = schema.get("properties", {})
    for key in ("_table", "table"):
        if key in props and "expectations" in props:
            props["expectations"]["properties"] = {"_table": props.pop(key)}


class Data(Strict):
    model_config = ConfigDict(json_schema_extra=_table_among_expectations)

    source: str = Field(
        description="the data: a path relative to mlstack.yaml (a glob matches several files), or a URL fsspec reads (s3://, gs://, ...)"
    )
    format: Literal["csv", "parquet", "json"] | None = Field(
        default=None, description="csv, parquet or json; default: from the file name"
    )
    target: str | None = Field(default=None, description="the column the model predicts")
    expectations: dict[str, Expectation] = Field(
        description="what each column must look like, checked by builtin/validate; `_table:` among them holds table rules",
        default_factory=dict,
    )
    table: TableExpectation = Field(
        description="table rules (written as `_table:` under `expectations:`)",
        default_factory=TableExpectation,
        alias="_table",
    )
    split: Split = Field(description="how builtin/split divides the rows", default_factory=Split)

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
    cpu: float = Field(description="CPUs a stage needs", default=1, gt=0)
    memory: str = Field(default="2Gi", description="memory a stage needs, e.g. 2Gi or 512Mi")
    gpu: int = Field(description="GPUs a stage needs", default=0, ge=0)
    instance_type: str | None = Field(
        default=None,
        description="the platform's machine type for this stage (cloud backends); default: the backend's",
    )

    @field_validator("memory")
    @classmethod
    def _mem(cls, v: str) -> str:
        parse_size(v)
        return v


class Stage(Strict):
    name: str = Field(description="the stage's name, unique in the pipeline", pattern=NAME_RE)
    uses: str | None = Field(
        default=None, description="a built-in stage, builtin/NAME (docs/reference/stages.md)"
    )
    run: str | None = Field(
        default=None,
        description="a shell command run in the project folder (inputs and outputs in MLSTACK_* variables)",
    )
    function: str | None = Field(
        default=None,
        description="a Python function, module.path:function_name (local backend only)",
    )
    needs: list[str] = Field(
        description="stages that must finish first; their outputs are this stage's inputs",
        default_factory=list,
    )
    with_: dict[str, Any] = Field(
        description="the stage's settings (a built-in's keys: docs/reference/stages.md)",
        default_factory=dict,
        alias="with",
    )
    env: dict[str, str] = Field(
        description="environment variables of the stage's process", default_factory=dict
    )
    gates: list[str] = Field(
        description="conditions on metrics that must hold for the run to go on, e.g. `accuracy >= 0.9` or `f1 >= champion.f1` (evaluate stages)",
        default_factory=list,
    )
    resources: Resources = Field(
        description="what the stage needs to run", default_factory=Resources
    )
    retries: int = Field(
        description="times a failed stage is run again (settings errors are never retried)",
        default=0,
        ge=0,
        le=10,
    )
    timeout: Duration | None = Field(
        default=None, description="longest a stage may run; unset: no limit"
    )
    code: list[str] = Field(
        description="files (globs) whose contents are part of the stage's cache key",
        default_factory=list,
    )

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
    stages: list[Stage] = Field(
        description="the stages, in any order (`needs:` orders them)", default_factory=list
    )
    parallelism: int = Field(description="most stages run at once", default=2, ge=1, le=64)


class Register(Strict):
    aliases: list[str] = Field(
        description="aliases a newly registered version gets",
        default_factory=lambda: ["challenger"],
    )


class Model(Strict):
    name: str = Field(
        description="the registered model's name", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
    )
    registration: Register = Field(
        description="how new versions are registered", default_factory=Register, alias="register"
    )


class DeployResources(Strict):
    replicas: int = Field(description="model server instances per version", default=1, ge=1, le=100)
    instance_type: str | None = Field(
        default=None,
        description="the platform's machine type for the endpoint; default: the backend's",
    )


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
    endpoint: str = Field(description="the endpoint's name", pattern=NAME_RE)
    strategy: StrategyName = Field(default="all_at_once", description=STRATEGY_HELP)
    canary: Steps = Field(description="parameters of strategy canary", default_factory=Steps)
    linear: Linear = Field(description="parameters of strategy linear", default_factory=Linear)
    blue_green: BlueGreen = Field(
        description="parameters of strategy blue_green", default_factory=BlueGreen
    )
    shadow: Shadow = Field(description="parameters of strategy shadow", default_factory=Shadow)
    ab: AB = Field(description="parameters of strategy ab", default_factory=AB)
    gates: dict[str, str] = Field(
        description='rollout gates on live metrics, metric: threshold, e.g. `error_rate: "< 1%"`, `latency_p99: "< 300ms"`',
        default_factory=dict,
    )
    min_requests: int = Field(
        description="requests the new version must receive before its gates are judged",
        default=20,
        ge=0,
    )
    # what a rollout does when a step's gates cannot be judged (fewer than min_requests reached
    # the new version): hold at that step and fail the command, or promote anyway
    on_inconclusive: Literal["hold", "promote"] = Field(
        default="hold",
        description="when a step's gates cannot be judged (fewer than min_requests): hold the rollout at that step and fail, or promote anyway",
    )
    resources: DeployResources = Field(
        description="replicas and machine type of the endpoint", default_factory=DeployResources
    )
    batching: Batching | None = Field(
        default=None,
        description="adaptive batching of concurrent requests to one version; off unless set",
    )
    port: int | None = Field(
        description="port of the local endpoint; unset: a free one", default=None, ge=1, le=65535
    )
    host: str = Field(default="127.0.0.1", description="address the local endpoint listens on")

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
    method: Literal["psi", "ks"] = Field(
        default="psi",
        description="psi (population stability index) or ks (Kolmogorov-Smirnov; categorical features use PSI)",
    )
    threshold: float = Field(
        description="a feature drifts when its PSI, or KS statistic, exceeds this",
        default=0.2,
        gt=0,
    )
    alpha: float = Field(
        description="ks only: the KS p-value must also be below this", default=0.05, gt=0, lt=1
    )
    # below this many live rows of a feature its verdict is "not enough data", never drift
    min_samples: int = Field(
        description="below this many live rows of a feature its verdict is `not enough data`, never drift",
        default=100,
        ge=1,
    )
    features: Literal["all"] | list[str] = Field(
        default="all", description="`all`, or the features to check"
    )
    on_drift: Literal["alert", "retrain"] = Field(
        default="alert",
        description="alert (exit 1 and report) or retrain (`mlstack monitor --act` runs apply)",
    )


class Monitoring(Strict):
    drift: Drift = Field(description="how drift is measured", default_factory=Drift)
    schedule: str | None = Field(
        default=None,
        description="when `mlstack monitor` runs, a cron expression (`mlstack schedule show`)",
    )
    sample_rate: float = Field(
        description="share of requests the endpoint logs for monitoring", default=0.1, ge=0, le=1
    )

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

    backend: Literal["local", "s3", "gcs", "azblob"] = Field(
        default="local",
        description="where state lives: local (SQLite under .mlstack/), s3, gcs or azblob",
    )
    bucket: str | None = Field(
        description="s3 / gcs: the bucket",
        default=None,
        pattern=r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$",
    )
    container: str | None = Field(
        description="azblob: the container",
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
    )
    account_url: str | None = Field(
        description="azblob: the storage account URL, unless AZURE_STORAGE_CONNECTION_STRING is set",
        default=None,
        pattern=r"^https?://",
    )
    prefix: str | None = Field(
        description="key prefix of the state objects; default: the project name",
        default=None,
        pattern=r"^[A-Za-z0-9_.\-/]{1,200}$",
    )
    region: str | None = Field(default=None, description="s3: the bucket's region")
    endpoint_url: str | None = Field(
        description="the store's API endpoint (S3-compatible stores, emulators)",
        default=None,
        pattern=r"^https?://",
    )
    kms_key: str | None = Field(
        default=None,
        description="key the state objects are encrypted with: an AWS KMS key (s3), a Cloud KMS key (gcs), an encryption scope (azblob)",
    )
    stale_after: Duration = Field(
        description="a lock whose heartbeat is older than this is reported stale (`mlstack force-unlock ID` breaks it)",
        default=120.0,
        gt=0,
    )

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

    min_approvals: int = Field(
        description="the environment's `approvals:` must be at least this", default=0, ge=0
    )
    forbid_strategies: list[StrategyName] = Field(
        description="deployment strategies the environment must not use", default_factory=list
    )
    require_gates: list[str] = Field(
        description="metrics the deployment's `gates:` must name, e.g. error_rate",
        default_factory=list,
    )
    promote_from: str | None = Field(
        default=None,
        description="the environment receives versions only by promotion from this one",
    )


SECTIONS = ("data", "pipeline", "model", "deployment", "monitoring", "state", "policies")
ENV_KEYS = ("backend", "promote_from", "approvals", "bake_time", "gates", *SECTIONS)


class Environment(Strict):
    """One workspace. Known keys are here; everything else is the backend's own settings."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    backend: str = Field(
        default="local",
        description="the platform: local, sagemaker, vertex, azureml, kserve (its own settings: below)",
    )
    promote_from: str | None = Field(
        default=None,
        description="the environment whose versions are promoted into this one",
    )
    approvals: int = Field(
        description="approvals a promotion into this environment needs", default=0, ge=0
    )
    bake_time: Duration = Field(
        default=0.0,
        description="how long a version must have served in the source environment before promotion",
    )
    gates: list[str] = Field(
        description="promotion gates on the metrics recorded in the source environment, e.g. `accuracy >= 0.9`",
        default_factory=list,
    )  # promotion gates on recorded metrics
    data: dict[str, Any] | None = Field(
        default=None, description="overrides of `data:` for this environment"
    )
    pipeline: dict[str, Any] | None = Field(
        default=None, description="overrides of `pipeline:` for this environment"
    )
    model: dict[str, Any] | None = Field(
        default=None, description="overrides of `model:` for this environment"
    )
    deployment: dict[str, Any] | None = Field(
        default=None, description="overrides of `deployment:` for this environment"
    )
    monitoring: dict[str, Any] | None = Field(
        default=None, description="overrides of `monitoring:` for this environment"
    )
    state: dict[str, Any] | None = Field(
        default=None, description="overrides of `state:` for this environment"
    )
    policies: dict[str, Any] | None = Field(
        default=None, description="overrides of `policies:` for this environment"
    )

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

    project: str = Field(description="the project's name", pattern=NAME_RE)
    vars: dict[str, Any] = Field(
        description="values `${var.NAME}` interpolates; --var NAME=VALUE overrides",
        default_factory=dict,
    )
    environments: dict[str, Environment] = Field(
        description="the environments (dev, staging, prod, ...), each with its backend",
        default_factory=lambda: {"dev": Environment(backend="local")},
    )
    data: Data | None = Field(
        default=None, description="the training data and what it must look like"
    )
    pipeline: Pipeline = Field(
        description="the stages that turn data into a model", default_factory=Pipeline
    )
    model: Model | None = Field(default=None, description="the registered model")
    deployment: Deployment | None = Field(
        default=None, description="the endpoint and how new versions roll out"
    )
    monitoring: Monitoring | None = Field(
        default=None, description="drift checks on what the endpoint receives"
    )
    state: StateConfig = Field(
        description="where state, its history and its lock live", default_factory=StateConfig
    )
    policies: Policies = Field(
        description="rules validate and plan enforce", default_factory=Policies
    )

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
