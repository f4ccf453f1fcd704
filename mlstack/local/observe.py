"""The `local` backend's infrastructure (folders), refresh (what exists on this machine, in the
shape state records) and teardown.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from typing import Any

from mlstack.engine import address
from mlstack.engine.address import Address
from mlstack.engine.backend import (
    Context,
    Observed,
    Provisioned,
)
from mlstack.local.environment import RECORDS, LocalEnv


def infrastructure(env: LocalEnv) -> Mapping[str, Any]:
    inputs = {"root": f"envs/{env.env}", "tracking": "mlflow+sqlite"}
    if env.remote is not None:  # moving the artifacts elsewhere is a change plan shows
        inputs["artifacts"] = str(env.remote)
    return inputs


def provision(env: LocalEnv, inputs: Mapping[str, Any], ctx: Context) -> Provisioned:
    from mlstack.local.tracking import tracking_uri

    for d in (env.env_dir / "logs", env.env_dir / "runs"):
        d.mkdir(parents=True, exist_ok=True)
    env.store().ensure()
    outputs = {
        **inputs,
        "path": str(env.env_dir),
        "tracking_uri": tracking_uri(env.workdir, env.env),
    }
    return Provisioned(outputs=outputs, provisioned_by="mlstack")


def observe(env: LocalEnv) -> Observed:
    """Infrastructure, pipeline, models and endpoints as they are on this machine.

    Each kind is listed exhaustively, and only with facts that state records in the same
    shape, so a recorded resource is drift only when it really changed: an environment
    folder removed, a pipeline definition rewritten, a model's versions gone, an endpoint
    whose router or model servers are not running (``apply --refresh`` deploys it again).
    """
    resources: dict[str, dict[str, Any]] = {}
    absent: dict[str, str] = {}
    env.sync_records()  # with an `artifacts:` URL, another machine's records count
    if env.env_dir.is_dir():
        # with an `artifacts:` URL this folder is a per-machine cache: its path is no fact to
        # compare (another runner's differs), only that it exists
        resources[address.infra(env.env)] = (
            {} if env.remote is not None else {"path": str(env.env_dir)}
        )
    pipe = env.env_dir / "pipeline.json"
    if pipe.exists():
        try:
            resources[address.pipeline(env.project.project)] = {
                "digest": json.loads(pipe.read_text())["digest"]
            }
        except (OSError, ValueError, KeyError):
            pass
    for name in env.registry.load()["models"]:
        vs = env.registry.versions(name)
        if vs:  # the newest version is the one the last apply registered
            resources[address.model(name)] = {
                "version": str(vs[0]["version"]),
                "digest": vs[0]["digest"],
            }
    serving = env.env_dir / "serving"
    if serving.is_dir():
        from mlstack.local.serving import api

        for d in sorted(p for p in serving.iterdir() if (p / "runtime.json").exists()):
            addr = address.endpoint(d.name)
            st = api.status(env.workdir, env.env, d.name)
            down = [
                f"model server of version {v} (pid {i.get('pid')})"
                for v, i in (st.get("versions") or {}).items()
                if not i.get("alive")
            ]
            if not st.get("running"):
                pid = (st.get("router") or {}).get("pid")
                down.insert(0, f"router (pid {pid})" if pid else "router")
            # processes an interrupted deploy started and never recorded: the next deploy
            # of this endpoint stops them, so the endpoint needs one
            recorded = api.recorded_pids(api.runtime_state(env.workdir, env.env, d.name))
            # and workers the router started again after one died (status has their pids)
            recorded |= {
                int(w["pid"])
                for i in (st.get("versions") or {}).values()
                for w in i.get("workers") or []
                if w.get("pid")
            }
            stray = [pid for pid, _ in api.orphans(d.resolve(), recorded)]
            if down:
                absent[addr] = "not running: " + ", ".join(down) + " down"
            elif stray:
                absent[addr] = (
                    f"unrecorded model server or router process(es) {stray} left by an "
                    "interrupted deploy"
                )
            else:
                resources[addr] = {"url": st.get("url")}
    return Observed(
        resources=resources,
        complete=False,  # runs and datasets are the engine's records, not looked at here
        kinds=frozenset({"infra", "pipeline", "model", "endpoint"}),
        absent=absent,
    )


def destroy(
    env: LocalEnv, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context
) -> None:
    parsed = Address.parse(address)
    kind = kind or parsed.kind
    name = parsed.name
    if kind == "endpoint":
        from mlstack.local.serving import api

        api.stop(env.workdir, env.env, name)
    elif kind == "pipeline":
        (env.env_dir / "pipeline.json").unlink(missing_ok=True)
        env.push_record("pipeline.json")
    elif kind == "model":
        had_mlflow = any(v.get("mlflow_run_id") for v in env.registry.versions(name))
        env.registry.remove_model(name)
        if had_mlflow and (env.env_dir / "mlflow.db").exists():
            env.mlflow(lambda t: t.delete_model(name)).result()
    elif kind == "infra":
        from mlstack.local.serving import api

        api.reap_env(env.workdir, env.env)  # no server of this environment outlives it
        if LocalEnv.mlflow_started() and env.tracker_future is not None:
            env.tracker_future = None
        shutil.rmtree(env.env_dir, ignore_errors=True)
        for name in RECORDS:  # objects stay: content-addressed, shared by every environment
            env.push_record(name)
