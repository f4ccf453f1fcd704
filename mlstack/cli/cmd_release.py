"""promote, rollback."""

from __future__ import annotations

import click

from mlstack.cli import render
from mlstack.cli.options import env_option, lock_option, parse_vars, project_options, seconds


@click.command()
@project_options
@lock_option
@click.argument("source")
@click.argument("target")
@click.option("--approved-by", multiple=True, help="An approver's name (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def promote(
    file: str | None,
    variables: tuple[str, ...],
    lock_timeout: str,
    source: str,
    target: str,
    approved_by: tuple[str, ...],
    as_json: bool,
) -> None:
    """Promote the model that passed in SOURCE to TARGET (same artifact digest)."""
    from mlstack.engine.release import promote as do_promote
    from mlstack.engine.workspace import Project

    project = Project(file, parse_vars(variables))
    progress = render.Progress() if not as_json else (lambda e: None)
    try:
        result = do_promote(
            project,
            source,
            target,
            approved_by=list(approved_by),
            emit=progress,
            lock_timeout=seconds(lock_timeout),
        )
    finally:
        if isinstance(progress, render.Progress):
            progress.stop()
    if as_json:
        render.emit_json(result)
        return
    for c in result["checks"]:
        render.out(f"  gate {c['gate']}: {'pass' if c['passed'] else 'FAIL'} ({c['detail']})")
    render.out(
        f"Promoted {result['model']} v{result['source_version']} ({source}) → "
        f"v{result['version']} ({target}), digest {result['digest'][:19]}.",
        style="bold green",
    )
    if result.get("url"):
        render.out(f"endpoint: {result['url']}")


@click.command()
@project_options
@env_option
@lock_option
@click.option("--to", "to_version", default=None, help="Version to restore (default: previous).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def rollback(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    lock_timeout: str,
    to_version: str | None,
    as_json: bool,
) -> None:
    """Restore the previous known-good deployment at once."""
    from mlstack.cli.options import workspace
    from mlstack.engine.release import rollback as do_rollback

    ws = workspace(file, env, variables)
    result = do_rollback(
        ws, to_version=to_version, emit=lambda e: None, lock_timeout=seconds(lock_timeout)
    )
    if as_json:
        render.emit_json(result)
        return
    render.out(
        f"Rolled back {result['endpoint']} in {ws.env}: v{result['from']} → v{result['to']}.",
        style="bold green",
    )
