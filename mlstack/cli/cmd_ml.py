"""logs, models, lineage, ui: views of the ML side that only some backends can give."""

from __future__ import annotations

from dataclasses import asdict

import click

from mlstack.cli import render
from mlstack.cli.options import env_option, project_options, workspace
from mlstack.errors import MlstackError


@click.command()
@project_options
@env_option
@click.argument("stage", required=False)
def logs(file: str | None, variables: tuple[str, ...], env: str | None, stage: str | None) -> None:
    """Show the logs of the last pipeline run (one STAGE, or all)."""
    ws = workspace(file, env, variables)
    click.echo(ws.backend.logs(stage), nl=False)


@click.command()
@project_options
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def models(file: str | None, variables: tuple[str, ...], env: str | None, as_json: bool) -> None:
    """List registered model versions with metrics and aliases."""
    ws = workspace(file, env, variables)
    if ws.resolved.model is None:
        raise MlstackError(f"environment {ws.env!r} declares no model:")
    versions = ws.backend.versions(ws.resolved.model.name)
    rows = [
        {
            "version": v.version,
            "aliases": list(v.aliases),
            "digest": v.digest,
            "metrics": dict(v.metrics),
        }
        for v in versions
    ]
    if as_json:
        render.emit_json(rows)
        return
    if not rows:
        render.out(f"No versions of {ws.resolved.model.name} in {ws.env} yet.")
        return
    render.table(
        ["version", "aliases", "digest", "metrics"],
        [
            [
                f"v{r['version']}",
                ", ".join(r["aliases"]),
                r["digest"][:19],
                ", ".join(f"{k}={v:.4g}" for k, v in sorted(r["metrics"].items())),
            ]
            for r in rows
        ],
        indent=0,
    )


@click.command()
@project_options
@env_option
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def lineage(
    file: str | None, variables: tuple[str, ...], env: str | None, ref: str, as_json: bool
) -> None:
    """Trace MODEL@VERSION back: data digest → pipeline run → stages → model version."""
    name, sep, version = ref.partition("@")
    if not sep or not version:
        raise MlstackError(f"{ref!r}: write MODEL@VERSION, e.g. churn-classifier@3")
    ws = workspace(file, env, variables)
    lin = ws.backend.lineage(name, version)
    if as_json:
        render.emit_json(asdict(lin))
        return
    render.out(f"model: {lin.model}@{lin.version}")
    render.out(f"digest: {lin.digest}")
    render.out(f"data_digest: {lin.data_digest or '-'}")
    render.out(f"run: {lin.run_id or '-'}")
    render.out(f"stages: {' -> '.join(lin.stages) or '-'}")
    for k, v in lin.details.items():
        render.out(f"{k}: {render.human(v)}")


@click.command()
@project_options
@env_option
@click.option("--port", default=5000, show_default=True)
def ui(file: str | None, variables: tuple[str, ...], env: str | None, port: int) -> None:
    """Start the MLflow UI for this environment on 127.0.0.1."""
    import os

    ws = workspace(file, env, variables)
    cmd = ws.backend.ui_command() + ["--port", str(port)]
    render.info(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
    os.execvp(cmd[0], cmd)
