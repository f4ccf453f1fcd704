"""monitor (and its older name, drift), feedback, report: parse and render only; the work is
``mlstack.monitoring``."""

from __future__ import annotations

from typing import Any

import click

from mlstack.cli import render
from mlstack.cli.options import env_option, project_options, workspace


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _p(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if v >= 1e-4 else "<1e-4"


def _window_options(f: Any) -> Any:
    f = click.option(
        "--limit",
        default=100_000,
        show_default=True,
        type=click.IntRange(min=1),
        help="At most this many rows from each side (the newest live rows).",
    )(f)
    return click.option(
        "--since",
        default="1h",
        show_default=True,
        help="Sampled requests newer than this (e.g. 30m, 1h, 7d).",
    )(f)


@click.command()
@project_options
@env_option
@_window_options
@click.option(
    "--act",
    is_flag=True,
    help="On drift with monitoring.drift.on_drift: retrain, retrain through apply's path.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def monitor(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    since: str,
    limit: int,
    act: bool,
    as_json: bool,
) -> int:
    """Input drift, prediction drift, data quality and live metrics of an endpoint.

    \b
    Compares the requests the endpoint sampled with the training split of the version it
    serves: PSI and two-sample KS (with p-value) per numeric feature, category shares per
    categorical one; the live requests against data.expectations; and, where labels came back
    (mlstack feedback), the live metric beside the version's evaluation metric.

    \b
    --act with monitoring.drift.on_drift: retrain runs the pipeline on the current data through
    apply's path (stage gates, the rollout strategy and its gates, auto-rollback), recorded in
    history as `retrain` with the reason.

    \b
    Exit codes: 0 nothing to act on; 2 drift or failed quality checks; 1 error (and a retrain
    that failed).
    """
    from mlstack.monitoring.run import act as run_act
    from mlstack.monitoring.run import monitor as run_monitor

    ws = workspace(file, env, variables, files=act)
    result = run_monitor(ws, since, limit)
    if not as_json:
        _render(result)
    acted = None
    if act:
        progress = render.LazyProgress(quiet=as_json)
        try:
            acted = run_act(ws, result, progress)
        finally:
            progress.stop()
        if not as_json:
            render.out(acted.message, style="green" if acted.action == "retrained" else None)
    if as_json:
        render.emit_json(result.to_dict() | ({"act": acted.to_dict()} if acted else {}))
    return result.exit_code


def _render(r: Any) -> None:
    cap = r.capture
    n_ref = len(next(iter(cap.reference.values()), ()))
    render.out(
        f"monitoring endpoint {r.endpoint} ({r.environment}), {r.model} v{r.version}: "
        f"{cap.n_live} live rows (last {r.since}) against {n_ref} training rows"
    )
    rows = []
    for f in [*r.features, *([r.prediction] if r.prediction else [])]:
        rows.append(
            [
                f.feature,
                f.kind,
                _fmt(f.psi),
                _fmt(f.ks),
                _p(f.p_value),
                str(f.n_live),
                {"drift": "DRIFT"}.get(f.verdict, f.verdict),
            ]
        )
    render.table(["feature", "kind", "psi", "ks", "p-value", "live rows", "verdict"], rows)
    s = r.settings
    rule = (
        f"PSI > {s.threshold:g}"
        if s.method == "psi"
        else f"KS > {s.threshold:g} with p < {s.alpha:g} (categorical: PSI > {s.threshold:g})"
    )
    render.out(f"drift when {rule}; fewer than {s.min_samples} live rows: not enough data")
    if r.not_enough_data:
        render.out(
            f"Not enough data for {', '.join(r.not_enough_data)}: fewer than "
            f"{s.min_samples} live rows. Check again with more traffic (--since).",
            style="yellow",
        )
    if r.quality:
        render.out("Data quality of live requests (data.expectations):", style="red")
        render.table(
            ["feature", "check", "rows", "detail"],
            [[q.feature, q.check, f"{q.rows}/{q.n_live}", q.detail] for q in r.quality],
        )
    if r.live_quality is not None:
        lq = r.live_quality
        render.table(
            ["metric", "live", "at evaluation", "labelled rows"],
            [
                [k, _fmt(v), _fmt(lq.evaluation.get(k)), str(lq.labelled)]
                for k, v in lq.metrics.items()
            ],
        )
    elif r.labels:
        render.out(f"{r.labels} label(s) stored, none matches a sampled answer in the window.")
    if not r.drifted:
        render.out("No drift.")
    else:
        render.out(
            f"Drift in {', '.join(r.drifted_features or [r.prediction.feature])}.", style="red"
        )
        render.out(r.reason())
        if s.on_drift == "retrain":
            render.out(
                f"on_drift: retrain. After adding recent data to the source, run: {r.retrain}"
            )


# `mlstack drift` is the command's first name; it is the same command.
drift = monitor


@click.command()
@project_options
@env_option
@click.argument("labels_file", metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def feedback(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    labels_file: str,
    as_json: bool,
) -> None:
    """Store ground-truth labels of an endpoint's answers.

    FILE is a CSV or Parquet file with the columns request_id and label; the id is the
    x-request-id header of the answer (ID/INDEX for a row of a request of several rows).
    """
    from mlstack.monitoring.run import record_feedback

    n, total, where = record_feedback(workspace(file, env, variables), labels_file)
    if as_json:
        render.emit_json({"labels": n, "stored": total, "path": where})
        return
    render.out(f"Stored {n} label(s) ({total} in all) in {where}.")


@click.command()
@project_options
@env_option
@_window_options
@click.option(
    "-o",
    "--output",
    default=None,
    help="Where to write the HTML file (default: mlstack-report-ENV.html).",
)
def report(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    since: str,
    limit: int,
    output: str | None,
) -> None:
    """Write one self-contained HTML report of an endpoint's monitoring.

    Per feature: live vs training distributions and drift scores; data quality; the live
    metric over time where labels came back. It opens offline (every plot is inline SVG).
    """
    from pathlib import Path

    from mlstack.monitoring import report as html_report
    from mlstack.monitoring.run import monitor as run_monitor

    result = run_monitor(workspace(file, env, variables), since, limit)
    path = html_report.write(result, Path(output or f"mlstack-report-{result.environment}.html"))
    verdict = "drift in " + ", ".join(result.drifted_features) if result.drifted else "no drift"
    render.out(f"Wrote {path} ({verdict}).")


@click.group()
def schedule() -> None:
    """Schedules of an environment (monitoring.schedule)."""


@schedule.command("show")
@project_options
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def schedule_show(
    file: str | None, variables: tuple[str, ...], env: str | None, as_json: bool
) -> None:
    """monitoring.schedule as a crontab line, a GitHub Actions and a GitLab CI schedule."""
    from mlstack.monitoring.schedule import show

    s = show(workspace(file, env, variables))
    if as_json:
        render.emit_json(s.to_dict())
        return
    render.out(f"monitoring.schedule of {s.environment}: {s.cron} (window --since {s.since})")
    render.out("\ncrontab (crontab -e; the machine's local time):")
    render.out(s.crontab)
    render.out("\nGitHub Actions (.github/workflows/monitor.yml):")
    render.out(s.github_actions.rstrip())
    render.out("\nGitLab CI (.gitlab-ci.yml):")
    render.out(s.gitlab_ci.rstrip())
