"""init, validate, schema."""

from __future__ import annotations

import click

from mlstack.cli import render
from mlstack.cli.options import parse_vars, project_options


@click.command()
@project_options
@click.option(
    "-e", "--env", "env", default=None, help="Check only this environment (default: all of them)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def validate(file: str | None, variables: tuple[str, ...], env: str | None, as_json: bool) -> None:
    """Check the project file and every environment's backend settings; report every error."""
    from mlstack.engine.project import Project

    project = Project(file, parse_vars(variables))
    if env is not None:
        project.check_env(env)
        envs = [env]
    else:
        envs = project.validate_all()
    if as_json:
        render.emit_json({"valid": True, "file": project.file, "environments": envs})
        return
    render.out(
        f"{project.file} is valid: project {project.loaded.project.project!r}, "
        f"{len(project.loaded.project.pipeline.stages)} stage(s), environments "
        f"{', '.join(envs)}."
    )


@click.command()
def schema() -> None:
    """Print the JSON Schema of mlstack.yaml (for editors)."""
    from mlstack.spec.models import Project

    s = Project.model_json_schema(by_alias=True)
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["title"] = "mlstack.yaml"
    render.emit_json(s)


@click.command()
@click.argument("directory", default=".")
@click.option("--name", default=None, help="Project name (default: the folder's name).")
@click.option("--force", is_flag=True, help="Overwrite an existing mlstack.yaml.")
def init(directory: str, name: str | None, force: bool) -> None:
    """Create mlstack.yaml and a tiny example dataset in DIRECTORY."""
    from mlstack.engine.scaffold import scaffold

    written = scaffold(directory, name, force)
    for path in written:
        render.out(f"created {path}")
    render.out("next: mlstack plan -e dev, then mlstack apply -e dev")
