"""init, validate, schema."""

from __future__ import annotations

import click

from mlstack.cli.options import parse_vars, project_options


@click.command()
@project_options
@click.option(
    "-e", "--env", "env", default=None, help="Check only this environment (default: all of them)."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@click.option(
    "--no-cache", is_flag=True, help="Validate from scratch even if the file passed before."
)
def validate(
    file: str | None, variables: tuple[str, ...], env: str | None, as_json: bool, no_cache: bool
) -> None:
    """Check the project file and every environment's backend settings; report every error."""
    from mlstack.manifest.source import find_project_file
    from mlstack.tooling import validate_cache as validation_cache

    path = find_project_file(file)
    cli_vars = parse_vars(variables)
    key = None if no_cache else validation_cache.key(path, cli_vars, env)
    result = validation_cache.lookup(path, key)
    if result is None:
        from mlstack.engine.project import Project

        project = Project(path, cli_vars, files=True)
        envs = [env] if env is not None else project.environments
        if env is not None:
            project.check_env(env)
        else:
            project.validate_all()
        result = {
            "valid": True,
            "file": project.file,
            "environments": envs,
            "project": project.loaded.project.project,
            "stages": len(project.loaded.project.pipeline.stages),
        }
        from mlstack.manifest.project_files import files_read

        read = files_read(project.loaded.project, str(project.root))
        validation_cache.store(path, key, result, read)
    from mlstack.cli import render

    if as_json:
        render.emit_json({k: result[k] for k in ("valid", "file", "environments")})
        return
    render.out(
        f"{result['file']} is valid: project {result['project']!r}, {result['stages']} stage(s), "
        f"environments {', '.join(result['environments'])}."
    )


@click.command()
def schema() -> None:
    """Print the JSON Schema of mlstack.yaml (for editors), with every installed backend's
    settings."""
    from mlstack.tooling.schema import full_schema

    s = full_schema()
    from mlstack.cli import render

    render.emit_json(s)


@click.command()
@click.argument("directory", default=".")
@click.option("--name", default=None, help="Project name (default: the folder's name).")
@click.option("--force", is_flag=True, help="Overwrite an existing mlstack.yaml.")
@click.option(
    "--template",
    type=click.Choice(["classification", "regression", "multiclass"]),
    default="classification",
    show_default=True,
    help="The kind of model: a binary classifier, a regressor, or a tuned multiclass forest.",
)
def init(directory: str, name: str | None, force: bool, template: str) -> None:
    """Create mlstack.yaml and a tiny example dataset in DIRECTORY."""
    from mlstack.tooling.scaffold import scaffold

    written = scaffold(directory, name, force, template)
    from mlstack.cli import render

    for path in written:
        render.out(f"created {path}")
    render.out("next: mlstack plan -e dev, then mlstack apply -e dev")
