"""drift: compare what an endpoint is asked about with what its model was trained on."""

from __future__ import annotations

import time
from typing import Any

import click

from mlstack.cli import render
from mlstack.cli.options import env_option, project_options, workspace
from mlstack.engine import address
from mlstack.errors import MlstackError, SpecError

DRIFT_EXIT = 2  # as plan --detailed-exitcode: 0 nothing to act on, 1 error, 2 act on it


def _served_version(outputs: dict[str, Any]) -> str | None:
    """The champion, or during an A/B split the version taking the most traffic."""
    if outputs.get("champion"):
        return str(outputs["champion"])
    backings = (outputs.get("state") or {}).get("backings") or []
    live = [b for b in backings if float(b.get("weight") or 0) > 0]
    if not live:
        return None
    return str(max(live, key=lambda b: float(b["weight"]))["version"])


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


@click.command()
@project_options
@env_option
@click.option(
    "--since",
    default="1h",
    show_default=True,
    help="Sampled requests newer than this (e.g. 30m, 1h, 7d).",
)
@click.option(
    "--limit",
    default=5000,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most this many rows from each side.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def drift(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    since: str,
    limit: int,
    as_json: bool,
) -> int:
    """Data drift of live requests against the champion's training data.

    \b
    Exit codes: 0 no feature drifted; 2 a feature drifted; 1 error.
    """
    from mlstack.engine.drift import compute_drift
    from mlstack.manifest.models import Drift
    from mlstack.manifest.units import parse_duration

    try:
        window = parse_duration(since)
    except ValueError as e:
        raise SpecError(f"--since: {e}", hint="e.g. --since 30m") from None
    ws = workspace(file, env, variables)
    d, m = ws.resolved.deployment, ws.resolved.model
    if d is None or m is None:
        raise MlstackError(
            f"environment {ws.env!r} has no deployment to monitor",
            hint="add `model:` and `deployment:` to mlstack.yaml",
        )
    rec = ws.state.get(address.endpoint(d.endpoint))
    version = _served_version(dict(rec.outputs)) if rec else None
    if version is None:
        raise MlstackError(
            f"endpoint {d.endpoint} is not deployed in {ws.env}", hint=f"mlstack apply -e {ws.env}"
        )
    monitoring = ws.resolved.monitoring
    settings = monitoring.drift if monitoring is not None else Drift()
    reference, live = ws.backend.drift_samples(
        m.name, version, d.endpoint, time.time() - window, limit
    )
    if not reference:
        raise MlstackError(f"{m.name} v{version}: its training split has no rows to compare with")
    if not live:
        rate = monitoring.sample_rate if monitoring is not None else None
        rate_note = f" (monitoring.sample_rate is {rate:g})" if rate is not None else ""
        raise MlstackError(
            f"no sampled requests to endpoint {d.endpoint} in the last {since}{rate_note}",
            hint="send traffic to the endpoint, or widen the window (e.g. --since 24h); "
            "set monitoring.sample_rate to log a larger share of requests",
        )
    report = compute_drift(reference, live, settings)
    retrain = f"mlstack apply -e {ws.env}"
    if as_json:
        render.emit_json(
            {
                "environment": ws.env,
                "endpoint": d.endpoint,
                "model": m.name,
                "version": version,
                "since": since,
                "on_drift": settings.on_drift,
                **report.to_dict(),
                **(
                    {"retrain": retrain}
                    if report.drifted and settings.on_drift == "retrain"
                    else {}
                ),
            }
        )
        return DRIFT_EXIT if report.drifted else 0
    render.out(
        f"drift of endpoint {d.endpoint} ({ws.env}) against {m.name} v{version}'s training "
        f"data: {len(live)} live rows (last {since}), {len(reference)} reference rows"
    )
    render.table(
        ["feature", "method", "value", "threshold", "verdict"],
        [
            [
                f.feature,
                f.method,
                _fmt(f.value),
                f"{f.threshold:g}",
                "DRIFT" if f.drifted else ("no data" if f.value is None else "ok"),
            ]
            for f in report.features
        ],
    )
    if report.small_sample:
        from mlstack.engine.drift import MIN_LIVE_ROWS

        render.out(
            f"Warning: only {report.fewest_live_rows} live rows; drift measured on fewer than "
            f"{MIN_LIVE_ROWS} rows is mostly noise. Treat the verdict as a hint and check "
            "again with more traffic (--since).",
            style="yellow",
        )
    if not report.drifted:
        render.out("No drift.")
        return 0
    render.out(f"Drift in {', '.join(report.drifted_features)}.", style="red")
    if settings.on_drift == "retrain":
        render.out(f"on_drift: retrain. After adding recent data to the source, run: {retrain}")
    return DRIFT_EXIT
