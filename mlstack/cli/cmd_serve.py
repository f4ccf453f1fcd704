"""status, predict."""

from __future__ import annotations

import json
import sys

import click

from mlstack.cli import render
from mlstack.cli.options import env_option, project_options, workspace
from mlstack.errors import MlstackError


@click.command()
@project_options
@env_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def status(file: str | None, variables: tuple[str, ...], env: str | None, as_json: bool) -> None:
    """Endpoint URL, versions, traffic, health, and the last rollout's outcome."""
    ws = workspace(file, env, variables)
    d = ws.resolved.deployment
    if d is None:
        raise MlstackError(f"environment {ws.env!r} has no deployment")
    rec = ws.state.get(f"endpoint.{d.endpoint}")
    live = dict(ws.backend.endpoint_status(d.endpoint)) if rec else {}
    recorded = dict(rec.outputs) if rec else {}
    data = {"environment": ws.env, "endpoint": d.endpoint, "recorded": recorded, "live": live}
    if as_json:
        render.emit_json(data)
        return
    if rec is None:
        render.out(f"{ws.env}: endpoint {d.endpoint} is not deployed (mlstack apply -e {ws.env}).")
        return
    render.out(f"endpoint {d.endpoint} ({ws.env}, backend {ws.plugin.name})")
    render.out(f"  url: {live.get('url') or recorded.get('url')}")
    if "healthy" in live or "running" in live:
        state = "healthy" if live.get("healthy") else ("running" if live.get("running") else "DOWN")
        render.out(f"  state: {state}")
    render.out(f"  champion: v{recorded.get('champion')}")
    live_versions = live.get("versions") if isinstance(live.get("versions"), dict) else {}
    for b in (recorded.get("state") or {}).get("backings", []):
        line = f"  v{b['version']}: {b['weight']:g}% traffic"
        if b.get("shadow"):
            line += f", {b['shadow']:g}% shadow"
        info = live_versions.get(str(b["version"])) or {}
        if info:
            health = "healthy" if info.get("healthy") else "NOT HEALTHY"
            where = f"port {info['port']}, pid {info['pid']}" if "port" in info else ""
            line += f" ({health}{', ' + where if where else ''})"
        render.out(line)
    shown = {
        "url",
        "healthy",
        "running",
        "versions",
        "weights",
        "endpoint",
        "model",
        "host",
        "port",
        "generation",
        "sticky_key",
    }
    for k, v in live.items():
        if k in shown or v is None:
            continue
        text = json.dumps(v, default=str) if isinstance(v, (dict, list)) else v
        render.out(f"  {k}: {text}")
    last = recorded.get("last_rollout") or {}
    if last:
        render.out(
            f"  last rollout: v{last.get('version')} {last.get('outcome')}"
            + (f" ({last['reason']})" if last.get("reason") else "")
        )


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
    """Send rows to the environment's endpoint (V1 protocol) and print the answer."""
    import urllib.error
    import urllib.request

    ws = workspace(file, env, variables)
    d = ws.resolved.deployment
    if d is None or ws.resolved.model is None:
        raise MlstackError(f"environment {ws.env!r} has no deployment")
    rec = ws.state.get(f"endpoint.{d.endpoint}")
    url = rec.outputs.get("url") if rec else None
    if not url:
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
    target = f"{url.rstrip('/')}/v1/models/{ws.resolved.model.name}:predict"
    req = urllib.request.Request(
        target, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise MlstackError(f"the endpoint answered {e.code}: {e.read().decode()[:500]}") from None
    except (urllib.error.URLError, OSError) as e:
        raise MlstackError(
            f"cannot reach {target}: {e}", hint=f"is it running? mlstack status -e {ws.env}"
        ) from None
    render.emit_json(answer)
