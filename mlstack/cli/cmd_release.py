"""promote, rollback: the engine proposes a release; it is planned, shown, confirmed and applied
exactly like `apply` (or saved with -out FILE for `apply FILE`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlstack.cli import render
from mlstack.cli.options import env_option, lock_option, parse_vars, project_options

if TYPE_CHECKING:
    from mlstack.engine.release import Proposal


def release_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options promote and rollback share with plan and apply."""
    for option in reversed(
        [
            click.option("--auto-approve", is_flag=True, help="Skip the confirmation."),
            click.option(
                "-out",
                "--out",
                "out_file",
                default=None,
                help="Only plan: save the release to FILE for `mlstack apply FILE`.",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print the plan/result as JSON."),
            click.option(
                "--detailed-exitcode",
                is_flag=True,
                help="Exit 0 when nothing changes, 1 on error, 2 when the release changes "
                "something (applied, or saved with -out).",
            ),
        ]
    ):
        f = option(f)
    return f


@click.command()
@project_options
@lock_option
@click.argument("source")
@click.argument("target")
@click.option("--approved-by", multiple=True, help="An approver's name (repeatable).")
@release_options
def promote(
    file: str | None,
    variables: tuple[str, ...],
    lock_timeout: str,
    source: str,
    target: str,
    approved_by: tuple[str, ...],
    auto_approve: bool,
    out_file: str | None,
    as_json: bool,
    detailed_exitcode: bool,
) -> int:
    """Promote the model that passed in SOURCE to TARGET (same artifact digest).

    Checks TARGET's promotion gates, then plans the release against TARGET's state (import,
    rollout with TARGET's strategy and gates), shows it and asks, as apply does."""
    from mlstack.engine.release import propose_promotion
    from mlstack.engine.workspace import Project

    project = Project(file, parse_vars(variables))
    proposal = propose_promotion(
        project.workspace(source), project.workspace(target), approved_by=list(approved_by)
    )
    return _release(
        proposal, variables, lock_timeout, auto_approve, out_file, as_json, detailed_exitcode
    )


@click.command()
@project_options
@env_option
@lock_option
@click.option(
    "--to",
    "to_version",
    default=None,
    help="Version to restore (default: the previous known-good one).",
)
@release_options
def rollback(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    lock_timeout: str,
    to_version: str | None,
    auto_approve: bool,
    out_file: str | None,
    as_json: bool,
    detailed_exitcode: bool,
) -> int:
    """Restore the previous known-good release at once (or abort a held rollout).

    The previous known-good release is the newest one in the endpoint's history that served all
    traffic, is not serving now and was not itself rolled back from."""
    from mlstack.cli.options import workspace
    from mlstack.engine.release import propose_rollback

    ws = workspace(file, env, variables)
    proposal = propose_rollback(ws, to_version=to_version)
    return _release(
        proposal, variables, lock_timeout, auto_approve, out_file, as_json, detailed_exitcode
    )


def _release(
    proposal: Proposal,
    variables: tuple[str, ...],
    lock_timeout: str,
    auto_approve: bool,
    out_file: str | None,
    as_json: bool,
    detailed_exitcode: bool,
) -> int:
    if out_file:
        return _save(proposal, variables, Path(out_file), as_json, detailed_exitcode)
    from mlstack.cli.cmd_plan import _run

    return _run(
        None,
        None,
        variables,
        proposal.ws.env,
        lock_timeout,
        auto_approve,
        (),
        as_json,
        destroy=False,
        refresh=True,
        proposal=proposal,
        detailed_exitcode=detailed_exitcode,
    )


def _save(
    proposal: Proposal, variables: tuple[str, ...], path: Path, as_json: bool, detailed: bool
) -> int:
    """-out FILE: plan the release (no lock, nothing applied) and save it for `apply FILE`."""
    from mlstack.engine import planfile

    ws = proposal.ws
    p, _ = ws.plan(
        refresh=True,
        release=None if proposal.noop else proposal.release,
        at_once=proposal.at_once,
    )
    p.release = proposal.view()
    planfile.save(
        p,
        path,
        project_file=ws.project_file.file,
        variables=parse_vars(variables),
        options={
            "targets": [],
            "destroy": False,
            "refresh": True,
            "operation": proposal.operation,
            "release": None if proposal.noop else proposal.release.to_dict(),
            "at_once": proposal.at_once,
            "summary": proposal.summary(),
        },
    )
    if as_json:
        render.emit_json(p.to_json())
    else:
        render.plan(p)
        render.out(
            f"\nSaved the {proposal.operation} to {path}. To apply exactly it: mlstack apply {path}"
        )
    return 2 if detailed and p.has_changes else 0
