"""Promotion and rollback: moving a validated model between environments, and going back.

``promote SRC DST`` carries the exact artifact (same digest) that passed in SRC, checks DST's
promotion gates (metrics recorded in SRC, approvals, bake time), registers it in DST's registry
(across platforms if the backends differ) and rolls it out with DST's strategy. ``rollback``
restores the previous known-good deployment from state history, at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from mlstack.engine import address
from mlstack.engine.backend import Backing, EndpointState, Event, ModelVersion
from mlstack.engine.handlers import deploy_version, endpoint_state, model_version
from mlstack.engine.workspace import Project, Workspace
from mlstack.errors import GateFailed, MlstackError, StateError
from mlstack.manifest.gates import parse_gate


def promote(
    project: Project,
    src_env: str,
    dst_env: str,
    *,
    approved_by: list[str],
    emit: Callable[[Event], None],
    lock_timeout: float = 0.0,
) -> dict[str, Any]:
    src = project.workspace(src_env)
    dst = project.workspace(dst_env)
    if dst.resolved.promote_from not in (None, src_env):
        raise MlstackError(
            f"environment {dst_env!r} promotes from {dst.resolved.promote_from!r}, not {src_env!r}",
            hint=f"mlstack promote {dst.resolved.promote_from} {dst_env}",
        )
    if dst.resolved.model is None or dst.resolved.deployment is None:
        raise MlstackError(f"environment {dst_env!r} has no model: or deployment: to promote into")
    name = dst.resolved.model.name
    source = _source_version(src, name)
    checks = check_gates(dst, source, src, approved_by)
    failed = [c for c in checks if not c["passed"]]
    if failed:
        raise GateFailed(
            f"promotion of {name} v{source.version} from {src_env} to {dst_env} refused: "
            + "; ".join(c["detail"] for c in failed),
            hint="fix the cause, or promote a version that passes",
        )
    lock = dst.lock("promote", lock_timeout)
    try:
        ctx = dst.context(emit)
        emit(
            Event(
                "log",
                "promote",
                f"importing {name} v{source.version} ({source.digest[:19]}) into {dst_env}",
            )
        )
        imported = dst.backend.import_version(source, ctx)
        if imported.digest != source.digest:
            raise MlstackError(
                f"{dst_env}'s registry changed the artifact's digest "
                f"({source.digest} → {imported.digest}); refusing to deploy it"
            )
        lineage = {
            "source_env": src_env,
            "source_version": source.version,
            "source_digest": source.digest,
            **dict(source.lineage),
        }
        imported = replace(imported, lineage=lineage)
        model_addr = address.model(name)
        dst.state.put(
            model_addr,
            "model",
            {
                "backend": dst.plugin.name,
                "name": name,
                "promoted_from": src_env,
                "digest": source.digest,
            },
            asdict(imported) | {"aliases": list(imported.aliases)},
            (),
        )
        d = dst.resolved.deployment
        ep_addr = address.endpoint(d.endpoint)
        prev = dst.state.get(ep_addr)
        previous = endpoint_state(prev.outputs) if prev and prev.outputs else None
        try:
            out = deploy_version(dst, imported, previous, ctx, operation="promote")
        except GateFailed:
            dst.state.record_history(
                "promote", "rolled_back", {"version": imported.version, "from": src_env}
            )
            raise
        strategy = getattr(d, d.strategy, None)
        dst.state.put(
            ep_addr,
            "endpoint",
            {
                "backend": dst.plugin.name,
                "endpoint": d.endpoint,
                "model": name,
                "strategy": d.strategy,
                "strategy_params": strategy.model_dump() if strategy is not None else {},
                "gates": dict(d.gates),
                "replicas": d.resources.replicas,
                "instance_type": d.resources.instance_type,
            },
            out,
            (address.infra(dst_env),),
        )
        dst.state.record_history(
            "promote",
            "ok",
            {
                "version": imported.version,
                "digest": imported.digest,
                "from": src_env,
                "source_version": source.version,
                "checks": checks,
            },
        )
        return {
            "model": name,
            "version": imported.version,
            "digest": imported.digest,
            "source_version": source.version,
            "url": out.get("url"),
            "checks": checks,
        }
    finally:
        lock.release()


def _source_version(src: Workspace, name: str) -> ModelVersion:
    """What passed in the source: its serving champion if it serves, else its latest model."""
    model_rec = src.state.get(address.model(name))
    if model_rec is None:
        raise StateError(
            f"environment {src.env!r} has no registered {name!r}",
            hint=f"mlstack apply -e {src.env} first",
        )
    mv = model_version(model_rec.outputs)
    for addr, rec in src.state.records().items():
        if addr.startswith("endpoint.") and rec.outputs.get("champion"):
            champion = str(rec.outputs["champion"])
            if champion != mv.version:
                for b in endpoint_state(rec.outputs).backings:  # type: ignore[union-attr]
                    if b.version == champion:
                        mv = replace(mv, version=b.version, uri=b.uri, digest=b.digest)
    return mv


def check_gates(
    dst: Workspace, source: ModelVersion, src: Workspace, approved_by: list[str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for text in dst.resolved.promotion_gates:
        g = parse_gate(text)
        res = g.check(dict(source.metrics))
        out.append({"gate": text, "passed": res.passed, "detail": res.detail})
    need = dst.resolved.approvals
    if need:
        ok = len(set(approved_by)) >= need
        out.append(
            {
                "gate": f"approvals >= {need}",
                "passed": ok,
                "detail": f"{len(set(approved_by))} of {need} approvals"
                + ("" if ok else " (pass --approved-by NAME)"),
            }
        )
    bake = dst.resolved.bake_time
    if bake:
        since = _serving_since(src, source.version)
        baked = (time.time() - since) if since else 0.0
        ok = baked >= bake
        out.append(
            {
                "gate": f"bake_time >= {bake:g}s",
                "passed": ok,
                "detail": f"v{source.version} has served in {src.env} for {baked:.0f}s "
                f"(needs {bake:g}s)",
            }
        )
    return out


def _serving_since(ws: Workspace, version: str) -> float | None:
    first = None
    for h in ws.state.history(1000):  # newest first
        champs = {str(s.get("outputs", {}).get("champion")) for s in h.snapshot.values()}
        if version in champs and h.status == "ok":
            first = h.time
        elif first is not None:
            break
    return first


def rollback(
    ws: Workspace,
    *,
    to_version: str | None,
    emit: Callable[[Event], None],
    lock_timeout: float = 0.0,
) -> dict[str, Any]:
    d = ws.resolved.deployment
    if d is None:
        raise MlstackError(f"environment {ws.env!r} has no deployment to roll back")
    addr = address.endpoint(d.endpoint)
    lock = ws.lock("rollback", lock_timeout)
    try:
        rec = ws.state.get(addr)
        if rec is None:
            raise StateError(f"nothing is deployed at {addr} in {ws.env}")
        current = endpoint_state(rec.outputs)
        current_version = rec.outputs.get("champion")
        target = _previous_good(ws, addr, str(current_version), to_version)
        if target is None:
            raise StateError(
                f"no earlier known-good deployment of {addr} in {ws.env}'s history"
                + (f" with version {to_version}" if to_version else ""),
                hint=f"see mlstack state history -e {ws.env}",
            )
        ctx = ws.context(emit)
        emit(Event("rollout.rollback", addr, f"restoring v{target.version} at once"))
        desired = EndpointState(
            name=d.endpoint,
            model=current.model if current else "",
            backings=(replace(target, weight=100.0, shadow=0.0),),
            replicas=d.resources.replicas,
            instance_type=d.resources.instance_type,
        )
        view = ws.backend.deploy(desired, ctx)
        model = desired.model or (ws.resolved.model.name if ws.resolved.model else "")
        ws.backend.set_alias(model, "champion", target.version, ctx)
        outputs = dict(rec.outputs) | {
            "state": asdict(desired),
            "champion": target.version,
            "url": view.url,
            "last_rollout": {
                "outcome": "rolled_back_manually",
                "version": target.version,
                "from_version": current_version,
            },
        }
        ws.state.update_outputs(addr, outputs)
        ws.state.record_history(
            "rollback",
            "ok",
            {
                "endpoint": d.endpoint,
                "from": current_version,
                "to": target.version,
                "reason": "mlstack rollback",
            },
        )
        return {
            "endpoint": d.endpoint,
            "from": current_version,
            "to": target.version,
            "url": view.url,
        }
    finally:
        lock.release()


def _previous_good(ws: Workspace, addr: str, current: str, wanted: str | None) -> Backing | None:
    for h in ws.state.history(1000):
        if h.status != "ok":
            continue
        snap = h.snapshot.get(addr)
        if not snap:
            continue
        outs = snap.get("outputs") or {}
        champ = str(outs.get("champion"))
        if champ == current and wanted is None:
            continue
        if wanted is not None and champ != wanted:
            continue
        st = endpoint_state(outs)
        if st is None:
            continue
        for b in st.backings:
            if b.version == champ:
                return b
    return None
