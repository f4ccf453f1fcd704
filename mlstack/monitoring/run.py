"""One environment's monitoring pass: the one place `monitor`, `drift` and `report` get it from.

Find the version the endpoint serves (recorded state), ask the backend for a ``Capture`` of its
training split and sampled requests, then compute input drift, prediction drift, data quality
of the live rows against ``data.expectations`` and, where labels came back, the live metric
beside the version's evaluation metric.

Exit codes as ``plan --detailed-exitcode``: 0 nothing to act on, 2 drift or failed quality
checks, 1 error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mlstack.engine import address
from mlstack.engine.backend import Capture, Event
from mlstack.engine.workspace import Workspace
from mlstack.errors import MlstackError
from mlstack.manifest.models import Drift
from mlstack.monitoring import checks, feedback

ACT_EXIT = 2


def served_version(outputs: dict[str, Any]) -> str | None:
    """The champion, or during an A/B split the version taking the most traffic."""
    if outputs.get("champion"):
        return str(outputs["champion"])
    backings = (outputs.get("state") or {}).get("backings") or []
    live = [b for b in backings if float(b.get("weight") or 0) > 0]
    if not live:
        return None
    return str(max(live, key=lambda b: float(b["weight"]))["version"])


@dataclass(frozen=True)
class MonitorResult:
    environment: str
    endpoint: str
    model: str
    version: str
    since: str
    settings: Drift
    capture: Capture
    features: list[checks.FeatureDrift]
    prediction: checks.FeatureDrift | None
    quality: list[checks.QualityIssue]
    live_quality: feedback.LiveQuality | None
    labels: int  # labels stored for this endpoint
    label_values: dict[str, Any] = field(default_factory=dict)  # request id -> label

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drifted(self) -> bool:
        return bool(self.drifted_features) or bool(self.prediction and self.prediction.drifted)

    @property
    def not_enough_data(self) -> list[str]:
        return [f.feature for f in self.features if f.verdict == "not enough data"]

    @property
    def act(self) -> bool:
        """Something to act on: drift, or live requests failing the data's expectations."""
        return self.drifted or bool(self.quality)

    @property
    def exit_code(self) -> int:
        return ACT_EXIT if self.act else 0

    @property
    def retrain(self) -> str:
        return f"mlstack apply -e {self.environment}"

    def reason(self) -> str:
        """What drifted, for people and for history: "drift in mean_radius, PSI 0.31"."""
        parts = [
            f"{f.feature}, {f.method.upper()} {f.value:.2f}"
            for f in self.features
            if f.drifted and f.value is not None
        ]
        if self.prediction is not None and self.prediction.drifted and self.prediction.value:
            parts.append(f"{self.prediction.feature}, PSI {self.prediction.value:.2f}")
        return "drift in " + "; ".join(parts) if parts else "no drift"

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {
            "environment": self.environment,
            "endpoint": self.endpoint,
            "model": self.model,
            "version": self.version,
            "since": self.since,
            "n_live": self.capture.n_live,
            "n_reference": len(next(iter(self.capture.reference.values()), ())),
            "method": s.method,
            "threshold": s.threshold,
            "alpha": s.alpha,
            "min_samples": s.min_samples,
            "on_drift": s.on_drift,
            "drifted": self.drifted,
            "drifted_features": self.drifted_features,
            "not_enough_data": self.not_enough_data,
            "reason": self.reason(),
            "features": [f.to_dict() for f in self.features],
            "prediction_drift": self.prediction.to_dict() if self.prediction else None,
            "quality": [q.to_dict() for q in self.quality],
            "live_quality": self.live_quality.to_dict() if self.live_quality else None,
            "labels": self.labels,
            "exit_code": self.exit_code,
        }
        if self.drifted and s.on_drift == "retrain":
            out["retrain"] = self.retrain
        return out


def monitor(ws: Workspace, since: str, limit: int) -> MonitorResult:
    from mlstack.errors import SpecError
    from mlstack.manifest.units import parse_duration

    try:
        window = parse_duration(since)
    except ValueError as e:
        raise SpecError(f"--since: {e}", hint="e.g. --since 30m") from None
    d, m = ws.resolved.deployment, ws.resolved.model
    if d is None or m is None:
        raise MlstackError(
            f"environment {ws.env!r} has no deployment to monitor",
            hint="add `model:` and `deployment:` to mlstack.yaml",
        )
    rec = ws.state.get(address.endpoint(d.endpoint))
    version = served_version(dict(rec.outputs)) if rec else None
    if version is None:
        raise MlstackError(
            f"endpoint {d.endpoint} is not deployed in {ws.env}", hint=f"mlstack apply -e {ws.env}"
        )
    monitoring = ws.resolved.monitoring
    settings = monitoring.drift if monitoring is not None else Drift()
    cap = checks.as_arrays(
        ws.backend.capture(m.name, version, d.endpoint, time.time() - window, limit)
    )
    if not cap.reference or not len(next(iter(cap.reference.values()), ())):
        raise MlstackError(f"{m.name} v{version}: its training split has no rows to compare with")
    if cap.n_live == 0:
        rate = monitoring.sample_rate if monitoring is not None else None
        rate_note = f" (monitoring.sample_rate is {rate:g})" if rate is not None else ""
        raise MlstackError(
            f"no sampled requests to endpoint {d.endpoint} in the last {since}{rate_note}",
            hint="send traffic to the endpoint, or widen the window (e.g. --since 24h); "
            "set monitoring.sample_rate to log a larger share of requests",
        )
    labels = feedback.load(ws.workdir, ws.env, d.endpoint)
    live_q = None
    if labels:
        evaluation: dict[str, float] = {}
        for v in ws.backend.versions(m.name):
            if v.version == version:
                evaluation = dict(v.metrics)
        live_q = feedback.live_quality(
            cap.task, cap.predictions, cap.request_ids, labels, evaluation
        )
    expectations = ws.resolved.data.expectations if ws.resolved.data is not None else {}
    return MonitorResult(
        environment=ws.env,
        endpoint=d.endpoint,
        model=m.name,
        version=version,
        since=since,
        settings=settings,
        capture=cap,
        features=checks.input_drift(cap, settings),
        prediction=checks.prediction_drift(cap, settings),
        quality=checks.quality(cap, expectations),
        live_quality=live_q,
        labels=len(labels),
        label_values=labels,
    )


def record_feedback(ws: Workspace, file: str) -> tuple[int, int, str]:
    """Store the labels of ``file`` for the environment's endpoint: (labels, stored in total,
    where)."""
    from pathlib import Path

    d = ws.resolved.deployment
    if d is None:
        raise MlstackError(
            f"environment {ws.env!r} has no deployment to send labels for",
            hint="add `deployment:` to mlstack.yaml",
        )
    labels = feedback.read_labels(Path(file))
    if not labels:
        raise MlstackError(f"{file}: no labels", hint="write rows of request_id,label")
    path = feedback.store(ws.workdir, ws.env, d.endpoint, labels)
    return len(labels), len(feedback.load(ws.workdir, ws.env, d.endpoint)), str(path)


@dataclass(frozen=True)
class Acted:
    """What ``monitor --act`` did."""

    action: Literal["none", "alert", "unchanged", "retrained"]
    message: str
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "message": self.message, "counts": self.counts}


def act(ws: Workspace, result: MonitorResult, emit: Callable[[Event], None]) -> Acted:
    """``monitoring.drift.on_drift: retrain``: run the pipeline on the current data through the
    same path as ``apply`` (lock, plan, stage gates including "no worse than the champion",
    the environment's rollout strategy, its gates and auto-rollback), recording the reason in
    history as operation ``retrain``. A failure raises as apply's does; nothing that serves
    changes unless every gate passed."""
    from mlstack.engine.workspace import raise_for

    if not result.drifted:
        return Acted("none", "No drift: nothing to retrain.")
    if result.settings.on_drift != "retrain":
        return Acted(
            "alert",
            "on_drift is alert: not retraining (set monitoring.drift.on_drift: retrain).",
        )
    reason = result.reason()
    plan, applied = ws.converge(
        targets=None,
        destroy=False,
        refresh=True,
        lock_timeout=0.0,
        emit=emit,
        review=lambda _plan: None,  # on_drift: retrain in the spec is the approval
        operation="retrain",
        summary={"reason": reason, "trigger": "monitor --act"},
    )
    if applied is None:
        return Acted(
            "unchanged",
            f"{reason}, but nothing changed since the last run ({plan.summary()}): "
            "add recent data to data.source; the serving version stays.",
        )
    raise_for(applied)
    return Acted("retrained", f"Retrained ({reason}).", dict(applied.counts()))
