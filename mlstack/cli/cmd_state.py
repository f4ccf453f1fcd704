"""output, state list/show/history, force-unlock."""

from __future__ import annotations

import time

import click

from mlstack.cli import render
from mlstack.cli.options import env_option, lock_option, project_options, seconds, workspace
from mlstack.errors import StateError


@click.command()
@project_options
@env_option
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def output(
    file: str | None, variables: tuple[str, ...], env: str | None, name: str | None, as_json: bool
) -> None:
    """Show outputs: endpoint URL, model version, run id...

    NAME is an address (endpoint.churn) or an address and an attribute (endpoint.churn.url),
    which prints the bare value, for scripts: curl "$(mlstack output endpoint.churn.url)/..."
    """
    ws = workspace(file, env, variables)
    outs = ws.outputs()
    if name is not None:
        parts = name.split(".")
        address = ".".join(parts[:2])
        attr = ".".join(parts[2:]) or None
        if address not in outs:
            from mlstack.manifest.suggest import did_you_mean

            raise StateError(
                f"no resource {address!r} in state of {ws.env}{did_you_mean(address, outs)}",
                hint=f"recorded: {', '.join(sorted(outs)) or 'nothing yet'}",
            )
        if attr is not None:
            value = outs[address].get(attr)
            if attr not in outs[address]:
                raise StateError(
                    f"{address} has no output {attr!r}",
                    hint=f"outputs: {', '.join(sorted(outs[address]))}",
                )
            if as_json:
                render.emit_json(value)
            else:
                render.out(render.human(value))
            return
        outs = {address: outs[address]}
    if as_json:
        render.emit_json(outs)
        return
    if not outs:
        render.out(f"No outputs: environment {ws.env} has no resources yet.")
    for addr, o in outs.items():
        render.out(addr)
        for k, v in o.items():
            text = render.human(v)
            if isinstance(v, (dict, list)) and len(text) > 100:
                text = f"({len(v)} {'entries' if isinstance(v, dict) else 'items'}; see --json)"
            render.out(f"  {k} = {text}")


@click.group()
def state() -> None:
    """Inspect recorded state."""


@state.command("list")
@project_options
@env_option
def state_list(file: str | None, variables: tuple[str, ...], env: str | None) -> None:
    """List the addresses recorded in state."""
    ws = workspace(file, env, variables)
    for addr in sorted(ws.state.records()):
        render.out(addr)


@state.command("show")
@project_options
@env_option
@click.argument("address")
def state_show(file: str | None, variables: tuple[str, ...], env: str | None, address: str) -> None:
    """Show one recorded resource: inputs and outputs."""
    ws = workspace(file, env, variables)
    rec = ws.state.get(address)
    if rec is None:
        from mlstack.manifest.suggest import did_you_mean

        known = list(ws.state.records())
        raise StateError(
            f"no resource {address!r} in state of {ws.env}{did_you_mean(address, known)}",
            hint=f"recorded: {', '.join(sorted(known)) or 'nothing yet'}",
        )
    render.emit_json(
        {
            "address": rec.address,
            "kind": rec.kind,
            "serial": rec.serial,
            "updated": rec.updated,
            "depends_on": list(rec.depends_on),
            "inputs": rec.inputs,
            "outputs": rec.outputs,
        }
    )


@state.command("history")
@project_options
@env_option
@click.option("-n", "limit", default=20, show_default=True, help="How many entries.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def state_history(
    file: str | None, variables: tuple[str, ...], env: str | None, limit: int, as_json: bool
) -> None:
    """Every apply, promote and rollback, newest first."""
    ws = workspace(file, env, variables)
    entries = ws.state.history(limit)
    if as_json:
        render.emit_json([e.__dict__ for e in entries])
        return
    if not entries:
        render.out(f"No history: nothing was applied in {ws.env} yet.")
        return
    rows = []
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time))
        detail = e.summary.get("reason") or e.summary.get("counts") or ""
        rows.append([f"#{e.id}", when, str(e.serial), e.operation, e.status, render.human(detail)])
    render.table(["id", "time", "serial", "operation", "status", "detail"], rows)


@state.command("migrate")
@project_options
@env_option
@click.option(
    "--from",
    "source",
    required=True,
    help="Where state is now: local, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX.",
)
@click.option("--to", "target", default=None, help="Where to put it (default: the spec's state:).")
@click.option("--all-envs", is_flag=True, help="Every environment of the project.")
@click.option("--force", is_flag=True, help="Overwrite state already at the target.")
@lock_option
def state_migrate(
    file: str | None,
    variables: tuple[str, ...],
    env: str | None,
    source: str,
    target: str | None,
    all_envs: bool,
    force: bool,
    lock_timeout: str,
) -> None:
    """Copy state, history and serial from one store to another, holding both locks.

    Typical use: add a `state:` block to the spec, then `mlstack state migrate --from local`.
    """
    from mlstack.engine.state_backend import StateBackend, config_from_url, migrate

    ws = workspace(file, env, variables)
    project = ws.project_file
    envs = project.environments if all_envs else [ws.env]
    for name in envs:
        spec = ws.resolved.state if name == ws.env else project.workspace(name).resolved.state
        src_cfg = config_from_url(source, spec)
        dst_cfg = config_from_url(target, spec) if target else spec
        src = StateBackend(src_cfg, ws.resolved.project, name, ws.workdir)
        dst = StateBackend(dst_cfg, ws.resolved.project, name, ws.workdir)
        serial = migrate(src, dst, lock_timeout=seconds(lock_timeout), force=force)
        render.out(f"{name}: state (serial {serial}) copied from {src.where} to {dst.where}.")
    render.out("The old copy is left in place; remove it once you have checked the new one.")


@click.command("force-unlock")
@project_options
@env_option
@click.argument("lock_id")
def force_unlock(
    file: str | None, variables: tuple[str, ...], env: str | None, lock_id: str
) -> None:
    """Remove the state lock LOCK_ID (only when you know its holder is gone)."""
    ws = workspace(file, env, variables)
    info = ws.state_backend.force_unlock(lock_id)
    render.out(f"Lock {info.id} removed ({info.describe()}).")
