"""Options every command shares, and how a command finds its workspace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mlstack.errors import SpecError


def parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name:
            raise SpecError(f"--var {v!r}: write it as NAME=VALUE")
        out[name] = value
    return out


def project_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "-f",
        "--file",
        "file",
        default=None,
        envvar="MLSTACK_FILE",
        help="Project file (default: ./mlstack.yaml).",
    )(f)
    f = click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set a ${var.NAME} value (repeatable).",
    )(f)
    return f


def env_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-e",
        "--env",
        "env",
        default=None,
        envvar="MLSTACK_ENV",
        help="Environment (default: dev, or the first declared).",
    )(f)


def lock_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--lock-timeout",
        default="0s",
        show_default=True,
        help="How long to wait for the state lock (e.g. 30s, 5m).",
    )(f)


def workspace(
    file: str | None, env: str | None, variables: tuple[str, ...], *, files: bool = False
) -> Any:
    """``files``: check the files the spec names too (plan and apply; see ``Project``)."""
    from mlstack.engine.workspace import Project

    return Project(file, parse_vars(variables), files=files).workspace(env)


def seconds(text: str) -> float:
    from mlstack.manifest.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise SpecError(f"--lock-timeout: {e}") from None


def confirm_or_refuse(auto_approve: bool, what: str) -> None:
    """As Terraform: ask on a terminal; without one, refuse unless --auto-approve."""
    import sys

    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise SpecError(
            f"refusing to {what} without confirmation: no terminal to ask on",
            hint="pass --auto-approve (as CI does) or run it in a terminal",
        )
    answer = click.prompt(
        f"Do you want to {what}? Only 'yes' will be accepted", default="", show_default=False
    )
    if answer.strip() != "yes":
        from mlstack.errors import MlstackError

        raise MlstackError(
            f"cancelled: nothing was changed (answered {answer.strip()!r}, not 'yes')",
            hint="answer yes to go ahead, or pass --auto-approve",
        )
