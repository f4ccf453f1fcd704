"""The rollout controller: moves an endpoint to a new model version the way the spec says.

Core, platform-neutral. It steps traffic with ``backend.deploy``, waits (interruptibly), reads
``backend.metrics(endpoint, since=step_start)`` for the new version and checks the deployment's
gates — in the spirit of Argo Rollouts / Flagger analysis runs. The first breach rolls the
endpoint back to the previous state at once and the result says why. Backends whose platform
rolls out by itself (``capabilities.native_progressive``) get the whole plan instead.

The phases come from the strategy table (``mlstack.manifest.strategies``), made concrete here for
the versions serving before (the baseline B, which keeps its own proportions) and the new one.

The clock and the sleep are injectable so tests with a fake backend run in milliseconds.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from mlstack.engine.backend import (
    Backend,
    Backing,
    Context,
    EndpointState,
    EndpointView,
    Event,
    Phase,
    RolloutPlan,
    VersionMetrics,
)
from mlstack.errors import BackendError, GateFailed, MlstackError
from mlstack.manifest import strategies
from mlstack.manifest.strategies import PhaseSpec
from mlstack.manifest.units import parse_threshold

if TYPE_CHECKING:
    from mlstack.manifest.models import Deployment

Outcome = Literal["promoted", "rolled_back", "held"]
Verdict = Literal["passed", "failed", "insufficient", "unchecked"]
Sleep = Callable[[float, Context], bool]  # returns True when cancelled

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _default_sleep(seconds: float, ctx: Context) -> bool:
    return ctx.cancel.wait(max(0.0, seconds))


@dataclass(frozen=True)
class GateCheck:
    metric: str
    rule: str
    value: float | None
    passed: bool | None  # None: not enough data to judge

    def describe(self) -> str:
        if self.value is None:
            return f"{self.metric} {self.rule}: no data"
        shown = (
            f"{self.value * 100:.2f}%"
            if self.metric.endswith("_rate")
            else f"{self.value * 1000:.1f}ms"
            if self.metric.startswith("latency_")
            else f"{self.value:g}"
        )
        return f"{self.metric} = {shown} (needs {self.rule})"


@dataclass(frozen=True)
class RolloutStep:
    label: str
    traffic: float
    weights: Mapping[str, float]
    started: float
    ended: float
    verdict: Verdict
    gates: tuple[GateCheck, ...] = ()
    metrics: Mapping[str, VersionMetrics] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "traffic": self.traffic,
            "weights": dict(self.weights),
            "started": self.started,
            "ended": self.ended,
            "verdict": self.verdict,
            "gates": [
                {"metric": g.metric, "rule": g.rule, "value": g.value, "passed": g.passed}
                for g in self.gates
            ],
            "metrics": {
                v: {
                    "requests": m.requests,
                    "errors": m.errors,
                    "error_rate": m.error_rate,
                    "latency_p50": m.latency_p50,
                    "latency_p99": m.latency_p99,
                }
                for v, m in self.metrics.items()
            },
        }


@dataclass(frozen=True)
class RolloutResult:
    outcome: Outcome
    state: EndpointState  # what the endpoint holds now
    reason: str
    strategy: str
    version: str
    steps: tuple[RolloutStep, ...] = ()
    champion: str | None = None  # the version holding all traffic, if one does
    endpoint: EndpointView | None = None  # as the platform reported it after the last deploy
    started: float = 0.0
    finished: float = 0.0

    @property
    def promoted(self) -> bool:
        return self.outcome == "promoted"

    def raise_for_outcome(self) -> None:
        if self.outcome == "held":
            raise RolloutHeld(
                f"rollout of version {self.version} to endpoint {self.state.name} is held: "
                f"{self.reason}",
                hint="the endpoint keeps serving this split; send traffic and run `mlstack "
                "apply` (or promote again) to resume, `mlstack rollback` to abort, or set "
                "deployment.on_inconclusive: promote for this environment",
            )
        if self.outcome == "rolled_back":
            raise GateFailed(
                f"rollout of version {self.version} to endpoint {self.state.name} was rolled "
                f"back: {self.reason}",
                hint="the previous version serves all traffic again; see `mlstack status` "
                "and the state history for the metrics of each step",
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "strategy": self.strategy,
            "version": self.version,
            "champion": self.champion,
            "weights": self.state.weights(),
            "started": self.started,
            "finished": self.finished,
            "steps": [s.to_dict() for s in self.steps],
        }


class RolloutHeld(GateFailed):
    """A step's gates could not be judged and the environment holds on inconclusive gates."""


# --- planning (pure) ---------------------------------------------------------------------------


def _mix(base: tuple[Backing, ...], new: Backing, pct: float) -> tuple[Backing, ...]:
    """New version at ``pct`` percent, the baseline sharing the rest in its own proportions."""
    if pct >= 100 or not base:
        return (replace(new, weight=100.0, shadow=0.0),)
    total = sum(b.weight for b in base) or float(len(base))
    rest = 100.0 - pct
    scaled = tuple(
        replace(b, weight=round(rest * ((b.weight or (total / len(base))) / total), 4), shadow=0.0)
        for b in base
    )
    return (*scaled, replace(new, weight=float(pct), shadow=0.0))


def _realise(spec: PhaseSpec, base: tuple[Backing, ...], new: Backing) -> tuple[Backing, ...]:
    """The backings of one phase of the strategy table, for this baseline and new version."""
    if spec.mirror > 0:
        return (
            *(replace(b, shadow=0.0) for b in base),
            replace(new, weight=0.0, shadow=float(spec.mirror)),
        )
    if spec.baseline_warm:
        if spec.new_share <= 0:
            return (*base, replace(new, weight=0.0, shadow=0.0))
        return (
            *(replace(b, weight=0.0, shadow=0.0) for b in base),
            replace(new, weight=100.0, shadow=0.0),
        )
    return _mix(base, new, spec.new_share)


def baseline(previous: EndpointState | None, version: str) -> EndpointState | None:
    """What served before ``version`` was rolled out: ``previous`` without it (a held rollout
    leaves the new version in the endpoint; aborting it returns its share to the others)."""
    if previous is None or not any(b.version == version for b in previous.backings):
        return previous
    rest = tuple(b for b in previous.backings if b.version != version)
    total = sum(b.weight for b in rest)
    if not rest or total <= 0:
        return None
    scaled = tuple(replace(b, weight=round(100.0 * b.weight / total, 4)) for b in rest)
    return replace(previous, backings=scaled)


def plan_phases(
    deployment: Deployment, model: str, new: Backing, previous: EndpointState | None
) -> tuple[list[Phase], str]:
    """The positions the endpoint goes through (the strategy table's phases made concrete), and
    a note when the strategy is not used."""
    base = tuple(
        b
        for b in (previous.backings if previous else ())
        if b.version != new.version and (b.weight > 0)
    )

    def state(backings: tuple[Backing, ...], sticky: str | None = None) -> EndpointState:
        return EndpointState(
            name=deployment.endpoint,
            model=model,
            backings=backings,
            sticky_key=sticky,
            replicas=deployment.resources.replicas,
            instance_type=deployment.resources.instance_type,
            **deployment.batching_fields(),
        )

    if not base:
        note = (
            "first deployment"
            if previous is None or not previous.backings
            else f"version {new.version} already serves all traffic"
        )
        only_new = state(_mix((), new, 100.0))
        return [Phase(strategies.ALL_TRAFFIC.label, only_new, 0.0, False, 100.0)], note
    phases = [
        Phase(
            spec.label,
            state(_realise(spec, base, new), spec.sticky_key),
            spec.hold,
            spec.check,
            spec.traffic,
        )
        for spec in strategies.phases_of(deployment)
    ]
    # a held rollout of plain weighted steps (canary, linear) resumes at the step it holds
    reached = sum(
        b.weight for b in (previous.backings if previous else ()) if b.version == new.version
    )
    if reached > 0 and strategies.resumable(deployment):
        phases = [p for p in phases if p.traffic >= reached] or phases[-1:]
    return phases, ""


# --- gates -------------------------------------------------------------------------------------


def check_gates(
    gates: Mapping[str, str], metrics: VersionMetrics | None, min_requests: int
) -> tuple[Verdict, tuple[GateCheck, ...]]:
    """Judge the new version's metrics; "insufficient" until it has seen ``min_requests``."""
    if not gates:
        return "passed", ()
    requests = metrics.requests if metrics is not None else 0
    enough = metrics is not None and requests >= max(1, min_requests)
    checks = []
    for name, rule in gates.items():
        op, threshold = parse_threshold(rule)
        value = metrics.value(name) if metrics is not None else None
        if value is None or not enough:
            checks.append(GateCheck(name, rule, value, None))
        else:
            checks.append(GateCheck(name, rule, value, _OPS[op](value, threshold)))
    if any(c.passed is False for c in checks):
        return "failed", tuple(checks)
    if not enough or any(c.passed is None for c in checks):
        return "insufficient", tuple(checks)
    return "passed", tuple(checks)


# --- the controller ----------------------------------------------------------------------------


class RolloutController:
    def __init__(
        self,
        backend: Backend,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = _default_sleep,
        poll: float | None = None,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.sleep = sleep
        self.poll = poll  # how often gates are looked at during a hold; default: hold / 5

    def run(
        self,
        deployment: Deployment,
        model: str,
        new: Backing,
        previous: EndpointState | None,
        ctx: Context,
    ) -> RolloutResult:
        started = self.clock()
        phases, note = plan_phases(deployment, model, new, previous)
        strategy = deployment.strategy
        endpoint = deployment.endpoint
        caps = self.backend.capabilities
        if len(phases) > 1 or phases[0].check:  # the strategy is really used
            refused = caps.explain_rollout(deployment)
            if refused:
                raise BackendError(
                    f"endpoint {endpoint}: {refused[0].message}", hint=refused[0].hint
                )
        if caps.native_progressive and len(phases) > 1:
            return self._native(deployment, phases, new, previous, ctx, started)

        steps: list[RolloutStep] = []
        view: EndpointView | None = None

        known_good = baseline(previous, new.version)

        def abort(reason: str) -> RolloutResult:
            return self._rollback(deployment, new, known_good, ctx, steps, started, reason, view)

        for i, phase in enumerate(phases, 1):
            self._emit(
                ctx, endpoint, f"step {i}/{len(phases)}: {phase.label}", phase, i, len(phases)
            )
            try:
                view = self.backend.deploy(phase.state, ctx)
            except MlstackError as e:
                return abort(f"{phase.label}: deploy failed: {e}")
            step_start = self.clock()
            verdict: Verdict = "unchecked"
            checks: tuple[GateCheck, ...] = ()
            seen: Mapping[str, VersionMetrics] = {}
            if phase.hold > 0 or phase.check:
                verdict, checks, seen, cancelled = self._hold(
                    deployment, phase, new, ctx, step_start
                )
                if cancelled:
                    steps.append(self._step(phase, step_start, verdict, checks, seen))
                    return abort(f"{phase.label}: cancelled")
            step = self._step(phase, step_start, verdict, checks, seen)
            steps.append(step)
            if verdict == "failed":
                failed = "; ".join(c.describe() for c in checks if c.passed is False)
                return abort(f"{phase.label}: gate failed: {failed}")
            if verdict == "insufficient":
                got = seen[new.version].requests if new.version in seen else 0
                why = (
                    f"{phase.label}: {got} of the {deployment.min_requests} requests needed "
                    f"reached version {new.version}; its gates could not be judged"
                )
                if deployment.on_inconclusive == "promote":
                    ctx.emit(
                        Event(
                            "rollout.warning",
                            endpoint,
                            f"{why}; going on (deployment.on_inconclusive: promote)",
                            {"step": i},
                        )
                    )
                    continue
                ctx.emit(Event("rollout.held", endpoint, why, {"step": i}))
                return RolloutResult(
                    "held",
                    phase.state,
                    why,
                    strategy,
                    new.version,
                    tuple(steps),
                    None,
                    view,
                    started,
                    self.clock(),
                )
        final = phases[-1].state
        champion = next((b.version for b in final.backings if b.weight >= 100.0), None)
        reason = note or f"{strategy} completed in {len(steps)} step(s)"
        ctx.emit(
            Event(
                "rollout.done",
                endpoint,
                f"version {new.version}: {reason}",
                {"outcome": "promoted", "weights": final.weights()},
            )
        )
        return RolloutResult(
            "promoted",
            final,
            reason,
            strategy,
            new.version,
            tuple(steps),
            champion,
            view,
            started,
            self.clock(),
        )

    # internals ---------------------------------------------------------------------------
    def _hold(
        self, deployment: Deployment, phase: Phase, new: Backing, ctx: Context, step_start: float
    ) -> tuple[Verdict, tuple[GateCheck, ...], Mapping[str, VersionMetrics], bool]:
        """Hold the phase, looking at the gates as it goes; a breach ends the hold early."""
        gates = deployment.gates if phase.check else {}
        poll = self.poll if self.poll is not None else max(0.2, min(5.0, phase.hold / 5 or 1.0))
        deadline = step_start + phase.hold
        verdict: Verdict = "unchecked"
        checks: tuple[GateCheck, ...] = ()
        seen: Mapping[str, VersionMetrics] = {}
        while True:
            now = self.clock()
            remaining = deadline - now
            if remaining > 0 and self.sleep(min(poll, remaining), ctx):
                return verdict, checks, seen, True
            if ctx.cancel.is_set():
                return verdict, checks, seen, True
            if gates:
                seen = self._metrics(deployment.endpoint, step_start)
                verdict, checks = check_gates(gates, seen.get(new.version), deployment.min_requests)
                if verdict == "failed":
                    return verdict, checks, seen, False
            if self.clock() >= deadline:
                if not gates:
                    verdict = "passed" if phase.check else "unchecked"
                return verdict, checks, seen, False

    def _metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        try:
            return self.backend.metrics(endpoint, since)
        except MlstackError:
            return {}  # judged as "no data"; a rollout does not fail on a metrics hiccup

    def _step(
        self,
        phase: Phase,
        started: float,
        verdict: Verdict,
        checks: tuple[GateCheck, ...],
        seen: Mapping[str, VersionMetrics],
    ) -> RolloutStep:
        return RolloutStep(
            phase.label,
            phase.traffic,
            phase.state.weights(),
            started,
            self.clock(),
            verdict,
            checks,
            dict(seen),
        )

    def _rollback(
        self,
        deployment: Deployment,
        new: Backing,
        previous: EndpointState | None,
        ctx: Context,
        steps: list[RolloutStep],
        started: float,
        reason: str,
        view: EndpointView | None,
    ) -> RolloutResult:
        endpoint = deployment.endpoint
        ctx.emit(
            Event("rollout.rollback", endpoint, f"rolling back: {reason}", {"version": new.version})
        )
        if previous is None or not previous.backings:
            raise BackendError(
                f"endpoint {endpoint}: {reason}; there is no previous version to roll back to"
            )
        try:
            view = self.backend.deploy(previous, ctx)
        except MlstackError as e:
            raise BackendError(
                f"endpoint {endpoint}: {reason}; the rollback to the previous "
                f"state failed too: {e}",
                hint="run `mlstack rollback` once the cause is fixed",
            ) from None
        champion = next((b.version for b in previous.backings if b.weight >= 100.0), None)
        ctx.emit(
            Event(
                "rollout.done",
                endpoint,
                f"version {new.version} rolled back",
                {"outcome": "rolled_back", "reason": reason, "weights": previous.weights()},
            )
        )
        return RolloutResult(
            "rolled_back",
            previous,
            reason,
            deployment.strategy,
            new.version,
            tuple(steps),
            champion,
            view,
            started,
            self.clock(),
        )

    def _native(
        self,
        deployment: Deployment,
        phases: list[Phase],
        new: Backing,
        previous: EndpointState | None,
        ctx: Context,
        started: float,
    ) -> RolloutResult:
        plan = RolloutPlan(
            target=phases[-1].state,
            previous=previous,
            strategy=deployment.strategy,
            phases=tuple(phases),
            gates=dict(deployment.gates),
            min_requests=deployment.min_requests,
            on_inconclusive=deployment.on_inconclusive,
        )
        ctx.emit(
            Event(
                "rollout.step",
                deployment.endpoint,
                f"handing the {deployment.strategy} rollout to {self.backend.name}",
                {"native": True, "steps": list(plan.steps)},
            )
        )
        done = self.backend.rollout(plan, ctx)
        if done.outcome == "held":
            # the platform stopped at the last phase it went through, as the controller holds
            held = [p for p in phases if p.label in done.phases_done] or phases[:1]
            ctx.emit(Event("rollout.held", deployment.endpoint, done.reason, {"native": True}))
            return RolloutResult(
                "held",
                held[-1].state,
                done.reason,
                deployment.strategy,
                new.version,
                (),
                None,
                done.endpoint,
                started,
                self.clock(),
            )
        state = plan.target if done.outcome == "promoted" else (previous or plan.target)
        champion = next((b.version for b in state.backings if b.weight >= 100.0), None)
        reason = done.reason or f"{deployment.strategy} rolled out by {self.backend.name}"
        ctx.emit(
            Event(
                "rollout.done",
                deployment.endpoint,
                f"version {new.version}: {reason}",
                {"outcome": done.outcome, "weights": state.weights(), "phases": done.phases_done},
            )
        )
        return RolloutResult(
            done.outcome,
            state,
            reason,
            deployment.strategy,
            new.version,
            (),
            champion,
            done.endpoint,
            started,
            self.clock(),
        )

    @staticmethod
    def _emit(ctx: Context, endpoint: str, message: str, phase: Phase, i: int, n: int) -> None:
        ctx.emit(
            Event(
                "rollout.step",
                endpoint,
                message,
                {
                    "step": i,
                    "of": n,
                    "traffic": phase.traffic,
                    "weights": phase.state.weights(),
                    "hold": phase.hold,
                    "shadow": {b.version: b.shadow for b in phase.state.backings if b.shadow},
                },
            )
        )


def run_rollout(
    backend: Backend,
    deployment: Deployment,
    model: str,
    new: Backing,
    previous: EndpointState | None,
    ctx: Context,
    **kwargs: Any,
) -> RolloutResult:
    """Convenience: ``RolloutController(backend, **kwargs).run(...)``."""
    return RolloutController(backend, **kwargs).run(deployment, model, new, previous, ctx)
