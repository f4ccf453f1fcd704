"""status, predict."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from mlstack.cli import render
from mlstack.cli.options import env_option, project_options, workspace
from mlstack.engine import address
from mlstack.errors import MlstackError


@click.command()
@project_options
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(file: str | None, variables: tuple[str, ...], env: str | None, as_json: bool) -> int:
    """Endpoint URL, versions, traffic, health, and the last rollout's outcome.

    Exit codes: 0 serving as recorded (or not deployed); 3 down or degraded; 1 error."""
    ws = workspace(file, env, variables)
    d = ws.resolved.deployment
    if d is None:
        raise MlstackError(f"environment {ws.env!r} has no deployment")
    rec = ws.state.get(address.endpoint(d.endpoint))
    live = ws.backend.endpoint_status(d.endpoint) if rec else None
    recorded = dict(rec.outputs) if rec else {}
    # recorded but missing, or the platform says it is not healthy: a script must see it
    code = DOWN_EXIT if rec is not None and (live is None or live.healthy is False) else 0
    if as_json:
        render.emit_json(
            {
                "environment": ws.env,
                "endpoint": d.endpoint,
                "recorded": recorded,
                "live": {**asdict(live), "weights": live.weights()} if live else None,
            }
        )
        return code
    if rec is None:
        render.out(f"{ws.env}: endpoint {d.endpoint} is not deployed (mlstack apply -e {ws.env}).")
        return 0
    render.out(f"endpoint {d.endpoint} ({ws.env}, backend {ws.plugin.name})")
    render.out(f"  url: {(live.url if live else None) or recorded.get('url')}")
    state = live.status if live else "not found on the platform"
    render.out(f"  state: {state}", style=_STATE_STYLE.get(state.split(" ")[0]))
    render.out(f"  champion: v{recorded.get('champion')}")
    serving = {v.version: v for v in live.versions} if live else {}
    rows = []
    for b in (recorded.get("state") or {}).get("backings", []):
        info = serving.get(str(b["version"]))
        health = {True: "healthy", False: "NOT HEALTHY", None: "-"}[info.healthy] if info else "-"
        rows.append(
            [
                f"v{b['version']}",
                f"{b['weight']:g}%" + (f" (+{b['shadow']:g}% shadow)" if b.get("shadow") else ""),
                health,
                (info.where if info else "") or "-",
            ]
        )
    if rows:
        render.table(["version", "traffic", "health", "where"], rows)
    if live is not None:
        if live.sticky_key:
            render.out(f"  sticky by: {live.sticky_key}")
        for label, text in live.details.items():
            render.out(f"  {label}: {text}")
    last = recorded.get("last_rollout") or {}
    if last:
        render.out(
            f"  last rollout: v{last.get('version')} {last.get('outcome')}"
            + (f" ({last['reason']})" if last.get("reason") else "")
        )
    return code


DOWN_EXIT = 3  # the endpoint is recorded but does not serve as recorded (down or degraded)
_STATE_STYLE = {"healthy": "green", "DEGRADED": "yellow", "DOWN": "red"}


@click.command()
@project_options
@env_option
@click.option(
    "--data",
    "data",
    default=None,
    help='JSON: a row object, a list of rows, or {"instances": [...]}; default: read stdin.',
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait.")
def predict(
    file: str | None, variables: tuple[str, ...], env: str | None, data: str | None, timeout: float
) -> None:
    """Send rows to the environment's endpoint through its backend and print the answer.

    A row object or a list of rows is sent as V1 (``{"instances": [...]}``); a body with
    ``inputs`` is sent as V2. Local endpoints are called over HTTP, SageMaker endpoints with a
    signed InvokeEndpoint."""
    ws = workspace(file, env, variables)
    d = ws.resolved.deployment
    if d is None or ws.resolved.model is None:
        raise MlstackError(f"environment {ws.env!r} has no deployment")
    if ws.state.get(address.endpoint(d.endpoint)) is None:
        raise MlstackError(
            f"endpoint {d.endpoint} is not deployed in {ws.env}", hint=f"mlstack apply -e {ws.env}"
        )
    raw = data if data is not None else sys.stdin.read()
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise MlstackError(
            f"--data is not JSON: {e}", hint="e.g. --data '{\"mean_radius\": 14.1, ...}'"
        ) from None
    if isinstance(body, dict) and "instances" not in body and "inputs" not in body:
        body = {"instances": [body]}
    elif isinstance(body, list):
        body = {"instances": body}
    elif not isinstance(body, dict):
        raise MlstackError(
            f"--data must be a JSON object or a list of rows, not {type(body).__name__}",
            hint="e.g. --data '{\"mean_radius\": 14.1, ...}'",
        )
    answer = ws.backend.predict(d.endpoint, body, timeout)
    render.emit_json(answer.body)
