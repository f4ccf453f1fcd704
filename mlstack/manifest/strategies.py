"""The deployment strategies, each defined once: name, parameters, how plan describes it, which
endpoint features it needs and the phases a rollout goes through.

Everything else derives from this table: the spec's accepted ``deployment.strategy`` values, the
backends' capability check at ``validate``/``plan`` (``Capabilities.explain_rollout``), plan's
description of a rollout, and the rollout controller's phases (``mlstack.engine.rollout``), which
backends with native rollouts receive whole (``RolloutPlan.phases``).

A phase here is platform-neutral: the new version's share of primary traffic, the share of
requests mirrored to it, whether the previous versions stay warm, the sticky key, how long the
phase holds and whether the gates are judged during the hold. The engine turns each into the
``EndpointState`` a backend deploys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from mlstack.manifest.fields import Duration, Strict

# Endpoint features a strategy may need; ``Capabilities`` says which a backend has.
Feature = Literal["weighted_traffic", "mirroring", "sticky_sessions"]


class Steps(Strict):
    steps: list[float] = Field(
        description="the new version's traffic share at each step, percent, increasing (100 is added last)",
        default_factory=lambda: [10.0, 50.0, 100.0],
    )
    interval: Duration = Field(
        default=60.0, description="how long each step below 100 % holds, gates checked"
    )

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < s <= 100 for s in v) or v != sorted(v):
            raise ValueError("steps are percentages in (0, 100], increasing, e.g. [10, 50, 100]")
        if v[-1] != 100:
            v = [*v, 100.0]
        return v


class Linear(Strict):
    step: float = Field(description="percent added at each step", default=20.0, gt=0, le=100)
    interval: Duration = Field(
        default=60.0, description="how long each step below 100 % holds, gates checked"
    )


class BlueGreen(Strict):
    bake: Duration = Field(
        default=60.0,
        description="how long the old version stays warm after the switch, gates checked",
    )


class Shadow(Strict):
    percent: float = Field(
        description="share of requests mirrored to the new version", default=100.0, gt=0, le=100
    )
    duration: Duration = Field(
        default=300.0, description="how long the mirroring lasts, gates checked"
    )


class AB(Strict):
    weights: dict[str, float] = Field(
        description="traffic weights of champion and challenger",
        default_factory=lambda: {"champion": 50.0, "challenger": 50.0},
    )
    # None: requests are split by weight only (no assignment by a request key)
    sticky_key: str | None = Field(
        default="x-user-id",
        description="request header that keeps a caller on one version; null: split by weight only",
    )
    duration: Duration = Field(
        default=0.0, description="how long the gates are judged on the split (0: not judged)"
    )

    @model_validator(mode="after")
    def _weights(self) -> AB:
        unknown = sorted(set(self.weights) - {"champion", "challenger"})
        if unknown:
            raise ValueError(f"ab.weights takes champion and challenger, not {', '.join(unknown)}")
        if any(w < 0 for w in self.weights.values()) or self.challenger_percent is None:
            raise ValueError(
                "ab.weights must give traffic to champion or challenger, "
                "e.g. {champion: 50, challenger: 50}"
            )
        return self

    @property
    def challenger_percent(self) -> float | None:
        champ = float(self.weights.get("champion", 0.0))
        chal = float(self.weights.get("challenger", 0.0))
        return None if champ + chal <= 0 else 100.0 * chal / (champ + chal)


@dataclass(frozen=True)
class PhaseSpec:
    """One planned position of the endpoint, relative to the versions serving before."""

    label: str
    new_share: float  # percent of primary traffic on the new version
    mirror: float = 0.0  # percent of requests mirrored to the new version (answers dropped)
    baseline_warm: bool = False  # previous versions stay deployed at weight 0 (blue/green)
    sticky_key: str | None = None
    hold: float = 0.0  # seconds
    check: bool = False  # the gates are judged during the hold

    @property
    def traffic(self) -> float:
        """The new version's share shown to people: primary share, or mirrored share."""
        return self.mirror if self.mirror and not self.new_share else self.new_share


_WEIGHTED: frozenset[Feature] = frozenset({"weighted_traffic"})
_AB_STICKY: frozenset[Feature] = frozenset({"weighted_traffic", "sticky_sessions"})
ALL_TRAFFIC = PhaseSpec("all traffic to new version", 100.0)


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str  # what it does, one sentence (docs, `mlstack schema`)
    params: type[Strict] | None  # the model of ``deployment.<name>``, if it takes parameters
    phases: Callable[[Any], list[PhaseSpec]]  # params -> phases
    describe: Callable[[Any], str]  # params -> how plan shows the rollout
    needs: Callable[[Any], frozenset[Feature]] = lambda p: frozenset()


def _linear_steps(step: float) -> list[float]:
    out, w = [], 0.0
    while w < 100.0:
        w = min(100.0, round(w + step, 6))
        out.append(w)
    return out


def _stepped(name: str, steps: list[float], interval: float) -> list[PhaseSpec]:
    return [
        PhaseSpec(f"{name} {s:g}%", float(s), hold=interval if s < 100 else 0.0, check=s < 100)
        for s in steps
    ]


def _steps_text(steps: list[float], interval: float) -> str:
    return " -> ".join(f"{s:g}%" for s in steps) + f", gates checked for {interval:g}s per step"


def _ab_phase(p: AB) -> PhaseSpec:
    pct = p.challenger_percent or 0.0
    sticky = f" sticky by {p.sticky_key}" if p.sticky_key else " (not sticky)"
    return PhaseSpec(
        f"a/b {100 - pct:g}/{pct:g}{sticky}",
        pct,
        sticky_key=p.sticky_key,
        hold=p.duration,
        check=p.duration > 0,
    )


TABLE: tuple[Strategy, ...] = (
    Strategy(
        "all_at_once",
        "the new version takes all traffic at once",
        None,
        lambda p: [ALL_TRAFFIC],
        lambda p: "all traffic to the new version at once",
    ),
    Strategy(
        "blue_green",
        "the new version starts beside the old with no traffic, takes all of it in one switch "
        "while the old stays warm for `bake` (gates checked), then the old is retired",
        BlueGreen,
        lambda p: [
            PhaseSpec("green up, no traffic", 0.0, baseline_warm=True),
            PhaseSpec(
                "switch to green, blue warm (bake)",
                100.0,
                baseline_warm=True,
                hold=p.bake,
                check=True,
            ),
            PhaseSpec("retire blue", 100.0),
        ],
        lambda p: f"blue/green: switch at once, old version warm for {p.bake:g}s (gates checked)",
    ),
    Strategy(
        "canary",
        "the new version takes each step's share of traffic, gates checked after every step "
        "below 100 %",
        Steps,
        lambda p: _stepped("canary", list(p.steps), p.interval),
        lambda p: "canary " + _steps_text(list(p.steps), p.interval),
        lambda p: _WEIGHTED,
    ),
    Strategy(
        "linear",
        "like canary, in equal steps of `step` percent",
        Linear,
        lambda p: _stepped("linear", _linear_steps(p.step), p.interval),
        lambda p: "linear " + _steps_text(_linear_steps(p.step), p.interval),
        lambda p: _WEIGHTED,
    ),
    Strategy(
        "shadow",
        "the new version receives a mirrored share of requests (its answers are dropped) for "
        "`duration`, gates checked on it; then it takes all traffic",
        Shadow,
        lambda p: [
            PhaseSpec(
                f"shadow {p.percent:g}% mirrored",
                0.0,
                mirror=p.percent,
                hold=p.duration,
                check=True,
            ),
            ALL_TRAFFIC,
        ],
        lambda p: (
            f"shadow: {p.percent:g}% of requests mirrored for {p.duration:g}s "
            "(gates checked), then all traffic"
        ),
        lambda p: frozenset({"mirroring"}),
    ),
    Strategy(
        "ab",
        "champion and challenger split traffic by `weights`, sticky by `sticky_key`; the split "
        "stays (gates checked over `duration` if set)",
        AB,
        lambda p: [_ab_phase(p)],
        lambda p: (
            _ab_phase(p).label + (f", gates checked for {p.duration:g}s" if p.duration > 0 else "")
        ),
        lambda p: _AB_STICKY if p.sticky_key else _WEIGHTED,
    ),
)
STRATEGIES: dict[str, Strategy] = {s.name: s for s in TABLE}
STRATEGY_HELP = "; ".join(f"{s.name}: {s.summary}" for s in TABLE)  # `mlstack schema` shows it

if TYPE_CHECKING:
    StrategyName = str
else:
    # The spec accepts exactly the table's names (an unknown one gets "is not one of ...").
    StrategyName = Literal[tuple(STRATEGIES)]


def strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown deployment strategy {name!r}; known: {', '.join(STRATEGIES)}"
        ) from None


def params_of(deployment: Any) -> Any:
    """The parameters of the deployment's strategy (``deployment.canary`` for canary, ...)."""
    s = strategy(deployment.strategy)
    return getattr(deployment, s.name) if s.params is not None else None


def phases_of(deployment: Any) -> list[PhaseSpec]:
    return strategy(deployment.strategy).phases(params_of(deployment))


def describe(deployment: Any) -> str:
    return strategy(deployment.strategy).describe(params_of(deployment))


def needs_of(deployment: Any) -> frozenset[Feature]:
    return strategy(deployment.strategy).needs(params_of(deployment))


def resumable(deployment: Any) -> bool:
    """A held rollout may resume at the share it reached: every phase is a plain weighted share
    (no mirror, no warm baseline, no sticky assignment), as canary and linear are."""
    return all(
        not p.mirror and not p.baseline_warm and p.sticky_key is None for p in phases_of(deployment)
    )


def judged(deployment: Any) -> bool:
    """Whether any phase judges the gates."""
    return any(p.check for p in phases_of(deployment))


def mirror_percent(deployment: Any) -> float:
    """The largest share of requests the rollout mirrors to the new version (0: none)."""
    return max((p.mirror for p in phases_of(deployment)), default=0.0)
