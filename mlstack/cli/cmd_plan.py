"""plan, apply, destroy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlstack.cli import render
from mlstack.cli.options import (
    confirm_or_refuse,
    env_option,
    lock_option,
    parse_vars,
    project_options,
    seconds,
    workspace,
)
from mlstack.errors import SpecError

if TYPE_CHECKING:
    from mlstack.engine.plan import Plan
    from mlstack.engine.release import Proposal


@click.command()
@project_options
@env_option
@click.option("-out", "--out", "out_file", default=None, help="Save the plan to FILE for apply.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown: a table and diffs for a pull-request comment.",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 0 with no changes, 1 on error, 2 with changes."
)
@click.option("--target", "targets", multiple=True, help="Plan only this address (repeatable).")
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Ask the backend what exists first, as Terraform does.",
)
@click.option("--refresh-only", is_flag=True, help="Only report drift from the recorded state.")
@click.option("--destroy", "destroy_", is_flag=True, help="Plan to destroy everything.")
def plan(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    out_file: str | None,
    as_json: bool,
    fmt: str,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    refresh: bool,
    refresh_only: bool,
    destroy_: bool,
) -> int:
    """Show what apply would change, attribute by attribute."""
    as_json = as_json or fmt == "json"
    ws = workspace(file, env, variables, files=not destroy_)
    p, _ = ws.plan(
        targets=list(targets) or None, destroy=destroy_, refresh=refresh, refresh_only=refresh_only
    )
    if out_file:
        from mlstack.engine import planfile

        if refresh_only:
            raise SpecError(
                "a --refresh-only plan changes nothing and cannot be saved",
                hint="drop -out, or plan without --refresh-only",
            )
        planfile.save(
            p,
            Path(out_file),
            project_file=ws.project_file.file,
            variables=parse_vars(variables),
            options={"targets": list(targets), "destroy": destroy_, "refresh": refresh},
        )
    if as_json:
        render.emit_json(p.to_json())
    elif fmt == "markdown":
        from mlstack.cli.render_markdown import plan_markdown

        render.out(plan_markdown(p, saved_as=out_file).rstrip("\n"))
    else:
        render.plan(p)
        if out_file:
            render.out(
                f"\nSaved the plan to {out_file}. To apply exactly it: mlstack apply {out_file}"
            )
    return 2 if detailed_exitcode and p.has_changes else 0


@click.command()
@click.argument("plan_file", required=False)
@project_options
@env_option
@lock_option
@click.option("--auto-approve", is_flag=True, help="Skip the confirmation.")
@click.option("--target", "targets", multiple=True, help="Apply only this address (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--refresh/--no-refresh",
    default=True,
    show_default=True,
    help="Ask the backend what exists first; recreate what is gone (a dead endpoint "
    "after a reboot, a resource deleted outside mlstack).",
)
def apply(
    plan_file: str | None,
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    lock_timeout: str,
    auto_approve: bool,
    targets: tuple[str, ...],
    as_json: bool,
    refresh: bool,
) -> int:
    """Make the environment match the spec (or apply exactly a saved PLAN_FILE)."""
    return _run(
        plan_file,
        file,
        variables,
        env,
        lock_timeout,
        auto_approve,
        targets,
        as_json,
        destroy=False,
        refresh=refresh,
    )


@click.command()
@project_options
@env_option
@lock_option
@click.option("--auto-approve", is_flag=True, help="Skip the confirmation.")
@click.option("--target", "targets", multiple=True, help="Destroy only this address.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def destroy(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    lock_timeout: str,
    auto_approve: bool,
    targets: tuple[str, ...],
    as_json: bool,
) -> int:
    """Remove everything the environment holds: endpoints, models, runs, infrastructure."""
    return _run(
        None, file, variables, env, lock_timeout, auto_approve, targets, as_json, destroy=True
    )


def _run(
    plan_file: str | None,
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    lock_timeout: str,
    auto_approve: bool,
    targets: tuple[str, ...],
    as_json: bool,
    destroy: bool,
    refresh: bool = False,
    *,
    proposal: Proposal | None = None,
    detailed_exitcode: bool = False,
) -> int:
    """plan → review (show, confirm) → apply under the lock: for apply, destroy, a saved plan,
    and the releases promote and rollback propose (``proposal``)."""
    from mlstack.engine import planfile
    from mlstack.engine.release_state import Release
    from mlstack.engine.workspace import raise_for

    saved = None
    release: Release | None = None
    at_once = False
    operation: str | None = None
    summary: dict[str, Any] | None = None
    view: dict[str, Any] | None = None
    if plan_file:
        saved = planfile.load(Path(plan_file))
        # CI applies in another checkout than the one that planned: -f, else the saved path if
        # it exists here, else ./mlstack.yaml; the plan's graph digest proves it is the same spec
        if file is None and Path(saved["project_file"]).exists():
            file = saved["project_file"]
        env = saved["plan"]["environment"]
        variables = tuple(f"{k}={v}" for k, v in saved["variables"].items())
        # replay the saved plan's options: the same targets, destroy and refresh
        options = saved.get("options", {})
        targets = tuple(options.get("targets", ()))
        destroy = bool(options.get("destroy", False))
        refresh = bool(options.get("refresh", False))
        # and, for a saved promote/rollback, exactly the release it proposed
        if options.get("release"):
            release = Release.from_dict(options["release"])
            at_once = bool(options.get("at_once", False))
            operation = options.get("operation")
            summary = options.get("summary")
            view = saved["plan"].get("release")
    if proposal is not None:
        ws = proposal.ws
        release = None if proposal.noop else proposal.release
        at_once, operation = proposal.at_once, proposal.operation
        summary, view = proposal.summary(), proposal.view()
    else:
        ws = workspace(file, env, variables, files=not destroy)
    timeout = seconds(lock_timeout)

    def waiting(holder: Any) -> None:
        who = holder.describe() if holder is not None else "another process"
        render.info(f"Waiting up to {timeout:g}s for the state lock held by {who}...")

    def stale(holder: Any) -> None:
        render.info(f"Note: took over a stale lock left by a dead process ({holder.describe()}).")

    def review(p: Plan) -> None:
        if not as_json:
            render.plan(p)
        if saved is None:
            what = {
                "promote": "promote this release",
                "rollback": "roll back to this release",
                "destroy": "destroy these resources",
            }.get(operation or ("destroy" if destroy else ""), "perform these actions")
            confirm_or_refuse(auto_approve, what)

    progress = render.LazyProgress(quiet=as_json)  # started after the review prompt

    try:
        p, result = ws.converge(
            targets=list(targets) or None,
            destroy=destroy,
            refresh=refresh,
            lock_timeout=timeout,
            emit=progress,
            review=review,
            saved=saved,
            on_wait=waiting,
            on_stale=stale,
            release=release,
            at_once=at_once,
            operation=operation,
            summary=summary,
            view=view,
        )
    finally:
        progress.stop()
    if result is None:
        if as_json:
            render.emit_json(
                {"summary": p.summary(), "changes": 0}
                | ({"release": p.release} if p.release is not None else {})
                | (proposal.result() if proposal is not None else {})
            )
        else:
            if p.release is not None:
                render.release(p.release)
            render.out(p.summary())
        return 0
    n = result.counts()
    if as_json:
        render.emit_json(
            {
                "counts": n,
                "outcomes": [
                    {
                        "address": o.address,
                        "action": o.action.value,
                        "status": o.status,
                        "seconds": round(o.seconds, 3),
                        "error": str(o.error) if o.error else None,
                    }
                    for o in result.outcomes
                ],
            }
            | ({"release": p.release} if p.release is not None else {})
            | (proposal.result() if proposal is not None and not result.failed else {})
        )
    if result.interrupted:
        render.info("Interrupted: finished resources are recorded; run apply again to resume.")
        return 130
    raise_for(result)
    if not as_json:
        word = "Destroy" if destroy else "Apply"
        render.out(
            f"{word} complete! Resources: {n['added']} added, {n['changed']} changed, "
            f"{n['destroyed']} destroyed.",
            style="bold green",
        )
        if proposal is not None:
            render.release_done(proposal.result())
        elif view is not None:  # a saved promote/rollback
            render.out(
                f"Released {view['model']} v{view['source_version']} of {view['source_env']} "
                f"to {view['environment']} ({view['operation']}), digest {view['digest'][:19]}.",
                style="bold green",
            )
        else:
            from mlstack.engine.address import Address

            for a, o in ws.outputs().items():
                if Address.parse(a).kind == "endpoint" and o.get("url"):
                    render.out(f"endpoint: {o['url']}")
    return 2 if detailed_exitcode else 0
