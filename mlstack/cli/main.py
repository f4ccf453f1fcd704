"""Entry point. Commands are imported only when run, so `mlstack --help` stays fast."""

from __future__ import annotations

import os
import sys
from importlib import import_module
from typing import Any

import click

# pydantic scans every installed distribution for its own plugins on first use (~15 ms);
# mlstack uses none, and the CLI's start-up budget is tight.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

# name -> (module, function, short help). Help text lives here so --help imports nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("mlstack.cli.cmd_project", "init", "Create a new project from a template."),
    "validate": ("mlstack.cli.cmd_project", "validate", "Check mlstack.yaml; report every error."),
    "schema": ("mlstack.cli.cmd_project", "schema", "Print the JSON Schema of mlstack.yaml."),
    "plan": ("mlstack.cli.cmd_plan", "plan", "Show what apply would change."),
    "apply": ("mlstack.cli.cmd_plan", "apply", "Make the environment match the spec."),
    "destroy": ("mlstack.cli.cmd_plan", "destroy", "Remove everything an environment has."),
    "output": ("mlstack.cli.cmd_state", "output", "Show the outputs of an environment."),
    "state": ("mlstack.cli.cmd_state", "state", "Inspect recorded state (list, show, history)."),
    "force-unlock": ("mlstack.cli.cmd_state", "force_unlock", "Remove a stuck state lock."),
    "status": ("mlstack.cli.cmd_serve", "status", "Endpoint URL, versions, traffic, health."),
    "predict": ("mlstack.cli.cmd_serve", "predict", "Send a request to an endpoint."),
    "promote": ("mlstack.cli.cmd_release", "promote", "Promote a model from one env to the next."),
    "rollback": (
        "mlstack.cli.cmd_release",
        "rollback",
        "Restore the previous known-good deployment.",
    ),
    "monitor": (
        "mlstack.cli.cmd_monitor",
        "monitor",
        "Drift, data quality and live metrics of an endpoint.",
    ),
    "drift": ("mlstack.cli.cmd_monitor", "drift", "The same as monitor (its older name)."),
    "feedback": ("mlstack.cli.cmd_monitor", "feedback", "Store ground-truth labels of answers."),
    "report": ("mlstack.cli.cmd_monitor", "report", "Write an HTML monitoring report."),
    "schedule": ("mlstack.cli.cmd_monitor", "schedule", "Show monitoring.schedule for cron / CI."),
    "logs": ("mlstack.cli.cmd_ml", "logs", "Show the logs of the last pipeline run."),
    "models": ("mlstack.cli.cmd_ml", "models", "List registered model versions."),
    "lineage": ("mlstack.cli.cmd_ml", "lineage", "Trace a model version back to its data."),
    "ui": ("mlstack.cli.cmd_ml", "ui", "Start the MLflow UI on 127.0.0.1."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        cmd: click.Command = getattr(import_module(module), attr)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, _, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            import difflib

            close = difflib.get_close_matches(name, list(COMMANDS), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            ctx.fail(f"No such command '{name}'.{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlstack-core", message="mlstack %(version)s")
@click.option("--debug", is_flag=True, envvar="MLSTACK_DEBUG", help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """mlstack: plan and apply ML pipelines and model deployments, on any backend.

    \b
    Exit codes: 0 success; 1 error (bad input, failed gate, failed apply);
    2 changes present (plan --detailed-exitcode); 130 interrupted.
    """
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv or sys.argv) or os.environ.get("MLSTACK_DEBUG")
    try:
        rv = cli.main(args=argv, prog_name="mlstack", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):
            sys.exit(rv)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(1 if e.exit_code == 2 else e.exit_code)  # usage errors are errors: exit 1
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the one place that turns errors into exit codes
        from mlstack.errors import MlstackError

        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(e, MlstackError):
            from mlstack.cli.render import error

            error(e)
            sys.exit(e.exit_code)
        click.echo(f"Error: internal error: {type(e).__name__}: {e}", err=True)
        if not debug:
            click.echo(
                "This is a bug in mlstack; run again with --debug for the traceback.", err=True
            )
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
