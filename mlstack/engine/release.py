"""Promotion and rollback: releases, computed here and applied through plan → confirm → apply.

``promote SRC DST`` carries the exact artifact (same digest) that passed in SRC: it checks DST's
promotion gates (metrics recorded in SRC, approvals, bake time) and proposes a ``Release`` for
DST. ``rollback`` proposes the previous known-good release of the environment's endpoint. Neither
writes state: ``Workspace.converge`` plans the proposal against DST's state (the model imported
into DST's registry, the endpoint rolled out with DST's strategy and gates, or at once for a
rollback), the CLI shows and confirms it, and apply records it as DST's desired state. So after a
promotion ``plan -e DST`` says ``No changes.``, and ``-out FILE`` / ``apply FILE`` work as for apply.

Rollback's semantics: the target is the newest release in the endpoint's history that served
all traffic after a successful operation, is not the version serving now, and was not itself
rolled back from (so two rollbacks walk back, they do not flip between two versions). A rollout
held on inconclusive gates is aborted: the version that served before it serves all traffic.
``--to VERSION`` names the version; when it already serves, the plan is empty and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from mlstack.engine import address
from mlstack.engine.handlers import endpoint_state, model_version
from mlstack.engine.release_state import Release
from mlstack.engine.rollout import plan_phases
from mlstack.engine.seam import Backing, ModelVersion
from mlstack.engine.workspace import Workspace
from mlstack.errors import GateFailed, MlstackError, StateError
from mlstack.manifest.gates import parse_gate


@dataclass
class Proposal:
    """A release proposed for one environment, and what the user is shown before applying it."""

    ws: Workspace
    operation: Literal["promote", "rollback"]
    release: Release
    at_once: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # e.g. why the plan is empty
    noop: bool = False  # nothing to release: plan the recorded desired state as it is
    from_version: str | None = None  # rollback: what served before
    approved_by: tuple[str, ...] = ()  # who approved a promotion (recorded in history)

    def view(self) -> dict[str, Any]:
        """Version, digest, strategy, steps, gates and approvals: what the plan shows first."""
        ws, r = self.ws, self.release
        d = ws.resolved.deployment
        assert d is not None
        view: dict[str, Any] = {
            "operation": self.operation,
            "environment": ws.env,
            "model": r.model,
            "source_env": r.source_env,
            "source_version": r.source_version,
            "digest": r.digest,
            "endpoint": d.endpoint,
            "checks": self.checks,
            "approvals": ws.resolved.approvals,
            "note": self.note,
        }
        if self.at_once:
            target = f"v{r.source_version}" + ("" if r.pinned_source else f" from {r.source_env}")
            view |= {"strategy": "at once (rollback)", "steps": [f"all traffic to {target}"]}
            view["gates"] = {}
            return view
        rec = ws.state.get(address.endpoint(d.endpoint))
        previous = endpoint_state(rec.outputs) if rec is not None and rec.outputs else None
        new = Backing(f"{r.source_env}:{r.source_version}", r.uri, r.digest, 100.0)
        phases, first = plan_phases(d, r.model, new, previous)
        view |= {
            "strategy": d.strategy,
            "steps": [
                p.label + (f", hold {p.hold:g}s" if p.hold else "") + (", gates" if p.check else "")
                for p in phases
            ],
            "gates": dict(d.gates) if any(p.check for p in phases) else {},
            "min_requests": d.min_requests,
            "on_inconclusive": d.on_inconclusive,
        }
        if first:
            view["steps_note"] = first
        return view

    def summary(self) -> dict[str, Any]:
        """What the environment's history records for this operation."""
        out: dict[str, Any] = {
            "from": self.from_version,
            "source_env": self.release.source_env,
            "source_version": self.release.source_version,
            "digest": self.release.digest,
        }
        if self.operation == "promote":
            out["checks"] = self.checks
            out["approved_by"] = sorted(set(self.approved_by))
        else:
            out["reason"] = "mlstack rollback"
        return out

    def result(self) -> dict[str, Any]:
        """After the apply: which version serves where (from state)."""
        ws = self.ws
        d = ws.resolved.deployment
        assert d is not None
        ep = ws.state.get(address.endpoint(d.endpoint))
        model = ws.state.get(address.model(self.release.model))
        champion = str(ep.outputs.get("champion")) if ep is not None else None
        return {
            "operation": self.operation,
            "environment": ws.env,
            "model": self.release.model,
            "endpoint": d.endpoint,
            "version": (
                str(model.outputs.get("version"))
                if model is not None and self.release.pinned_source is None
                else champion
            ),
            "digest": self.release.digest,
            "source_env": self.release.source_env,
            "source_version": self.release.source_version,
            "from": self.from_version,
            "to": champion,
            "url": ep.outputs.get("url") if ep is not None else None,
            "checks": self.checks,
        }


# --- promote -----------------------------------------------------------------------------------


def propose_promotion(src: Workspace, dst: Workspace, *, approved_by: list[str]) -> Proposal:
    """Check DST's promotion gates against what passed in SRC and propose it as DST's release."""
    src_env, dst_env = src.env, dst.env
    if dst.resolved.promote_from not in (None, src_env):
        raise MlstackError(
            f"environment {dst_env!r} promotes from {dst.resolved.promote_from!r}, not {src_env!r}",
            hint=f"mlstack promote {dst.resolved.promote_from} {dst_env}",
        )
    if dst.resolved.promote_from is None:
        raise MlstackError(
            f"environment {dst_env!r} trains its own model (it has no promote_from)",
            hint=f"add `promote_from: {src_env}` to environments.{dst_env} to promote into it",
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
    release = Release(
        model=name,
        source_env=src_env,
        source_version=source.version,
        digest=source.digest,
        uri=source.uri,
        metrics=dict(source.metrics),
        lineage=dict(source.lineage),
    )
    current = dst.release()
    note = ""
    if current is not None and current.inputs() == release.inputs():
        note = f"{name} v{source.version} from {src_env} is already {dst_env}'s release"
    return Proposal(
        dst,
        "promote",
        release,
        checks=checks,
        note=note,
        from_version=_serving(dst),
        approved_by=tuple(approved_by),
    )


def _source_version(src: Workspace, name: str) -> ModelVersion:
    """What passed in the source: its serving champion if it serves, else its latest model."""
    model_rec = src.state.get(address.model(name))
    if model_rec is None:
        raise StateError(
            f"environment {src.env!r} has no registered {name!r}",
            hint=f"mlstack apply -e {src.env} first",
        )
    mv = model_version(model_rec.outputs)
    d = src.resolved.deployment
    rec = src.state.get(address.endpoint(d.endpoint)) if d is not None else None
    champion = str(rec.outputs.get("champion") or "") if rec is not None else ""
    if rec is not None and champion and champion != mv.version:
        st = endpoint_state(rec.outputs)
        for b in st.backings if st is not None else ():
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
                + (f" ({', '.join(sorted(set(approved_by)))})" if approved_by else "")
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


def _serving(ws: Workspace) -> str | None:
    d = ws.resolved.deployment
    rec = ws.state.get(address.endpoint(d.endpoint)) if d is not None else None
    champion = rec.outputs.get("champion") if rec is not None else None
    return str(champion) if champion is not None else None


# --- rollback ----------------------------------------------------------------------------------


def propose_rollback(ws: Workspace, *, to_version: str | None) -> Proposal:
    """The previous known-good release of the environment's endpoint (see the module doc)."""
    d = ws.resolved.deployment
    if d is None or ws.resolved.model is None:
        raise MlstackError(f"environment {ws.env!r} has no deployment to roll back")
    ep = address.endpoint(d.endpoint)
    rec = ws.state.get(ep)
    if rec is None:
        raise StateError(f"nothing is deployed at {ep} in {ws.env}")
    current = str(rec.outputs.get("champion") or "")
    last = rec.outputs.get("last_rollout") or {}
    held = last.get("outcome") == "held"
    if to_version is not None and to_version == current and not held:
        release = ws.release() or _pin(ws, rec.outputs, current)
        if release is None:
            raise StateError(f"no release of v{current} is known in {ws.env}'s history")
        return Proposal(
            ws,
            "rollback",
            release,
            at_once=True,
            note=f"v{current} already serves {ep} in {ws.env}; nothing to roll back",
            noop=True,
            from_version=current,
        )
    rolled_back_from: set[str] = set()
    for h in ws.state.history(1000):  # newest first
        if h.operation == "rollback" and h.status == "ok" and h.summary.get("from"):
            rolled_back_from.add(str(h.summary["from"]))
        if h.status != "ok":
            continue
        snap = h.snapshot.get(ep) or {}
        outs = snap.get("outputs") or {}
        champ = str(outs.get("champion") or "")
        if not champ:
            continue
        if to_version is not None:
            if champ != to_version:
                continue
        elif held:
            if champ != current:  # abort the held rollout: back to what served before it
                continue
        elif champ == current or champ in rolled_back_from:
            continue
        release = _release_of(ws, h.summary, h.snapshot, outs, champ)
        if release is not None:
            # aborting a held rollout rolls back from the version it was rolling out
            came_from = str(last.get("version")) if held else current
            return Proposal(ws, "rollback", release, at_once=True, from_version=came_from)
    raise StateError(
        f"no earlier known-good deployment of {ep} in {ws.env}'s history"
        + (f" with version {to_version}" if to_version else ""),
        hint=f"see mlstack state history -e {ws.env}",
    )


def _release_of(
    ws: Workspace,
    summary: Any,
    snapshot: Any,
    endpoint_outputs: Any,
    version: str,
) -> Release | None:
    """The release that made ``version`` serve, as one history entry recorded it."""
    if ws.resolved.promote_from is None:
        return _pin(ws, endpoint_outputs, version)
    recorded = summary.get("release")
    if recorded:
        return Release.from_dict(recorded)
    # an entry written before releases were recorded: the promoted model snapshot says it
    assert ws.resolved.model is not None
    model = (snapshot.get(address.model(ws.resolved.model.name)) or {}).get("outputs") or {}
    if str(model.get("version")) == version:
        return Release.from_model_outputs(model)
    return None


def _pin(ws: Workspace, endpoint_outputs: Any, version: str) -> Release | None:
    """In an environment that trains: hold ``version`` until the pipeline trains a new model."""
    st = endpoint_state(endpoint_outputs)
    backing = next((b for b in (st.backings if st else ()) if b.version == version), None)
    assert ws.resolved.model is not None
    model = ws.state.get(address.model(ws.resolved.model.name))
    if backing is None or model is None:
        return None
    return Release(
        model=ws.resolved.model.name,
        source_env=ws.env,
        source_version=version,
        digest=backing.digest,
        uri=backing.uri,
        pinned_source=model.inputs.get("source"),
    )
