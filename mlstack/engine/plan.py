"""Plan: the desired graph against recorded state, in Terraform's vocabulary."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlstack.engine.desired import DesiredGraph, stage_reasons
from mlstack.engine.resources import Action, AttrDiff, Change, Resource, attr_diff
from mlstack.engine.state import Record
from mlstack.manifest.dag import toposort


@dataclass
class Plan:
    environment: str
    backend: str
    serial: int
    lineage: str | None
    changes: list[Change]
    drift: list[Change] = field(default_factory=list)
    refresh_only: bool = False
    notes: list[str] = field(default_factory=list)
    graph_digest: str = ""
    # promote/rollback: what is released (version, digest, strategy, steps, gates, approvals)
    release: dict[str, Any] | None = None

    @property
    def actionable(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable) or (self.refresh_only and bool(self.drift))

    def counts(self) -> dict[str, int]:
        n = {"add": 0, "change": 0, "destroy": 0}
        for c in self.actionable:
            if c.action is Action.CREATE:
                n["add"] += 1
            elif c.action is Action.UPDATE:
                n["change"] += 1
            elif c.action is Action.DESTROY:
                n["destroy"] += 1
            elif c.action is Action.REPLACE:
                n["add"] += 1
                n["destroy"] += 1
        return n

    def summary(self) -> str:
        if self.refresh_only:
            return (
                f"Drift: {len(self.drift)} resource(s) changed outside mlstack."
                if self.drift
                else "No drift: the platform matches the recorded state."
            )
        if not self.actionable:
            return "No changes. Your infrastructure matches the configuration."
        n = self.counts()
        return f"Plan: {n['add']} to add, {n['change']} to change, {n['destroy']} to destroy."

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": "1",
            "environment": self.environment,
            "backend": self.backend,
            "serial": self.serial,
            "lineage": self.lineage,
            "graph_digest": self.graph_digest,
            "refresh_only": self.refresh_only,
            "summary": self.counts() | {"text": self.summary()},
            "resource_changes": [
                _change_json(c) for c in self.changes if c.action is not Action.NOOP
            ],
            "drift": [_change_json(c) for c in self.drift],
            "notes": self.notes,
            "release": self.release,
        }


def _change_json(c: Change) -> dict[str, Any]:
    return {
        "address": c.address,
        "kind": c.kind,
        "action": c.action.value,
        "reasons": list(c.reasons),
        "diff": [{"path": d.path, "before": _j(d.before), "after": _j(d.after)} for d in c.diffs],
        "details": dict(c.details),
    }


def _j(v: Any) -> Any:
    from mlstack.engine.resources import is_missing

    return None if is_missing(v) else v


def diff(
    desired: DesiredGraph,
    records: Mapping[str, Record],
    *,
    environment: str,
    backend: str,
    serial: int,
    lineage: str | None,
    targets: list[str] | None = None,
    destroy: bool = False,
) -> Plan:
    changes: list[Change] = []
    wanted: dict[str, Resource] = {} if destroy else dict(desired.resources)
    selected = _select(wanted, records, targets)
    for addr in desired.order() if not destroy else []:
        if addr not in selected:
            continue
        res = wanted[addr]
        rec = records.get(addr)
        changes.append(_change_for(res, rec))
    # what state has that the spec no longer wants: destroy, dependents first
    gone = [a for a in records if a not in wanted and a in selected]
    for addr in reversed(_order_records(records, gone)):
        rec = records[addr]
        changes.append(
            Change(
                addr, rec.kind, Action.DESTROY, dict(rec.inputs), None, depends_on=rec.depends_on
            )
        )
    return Plan(environment, backend, serial, lineage, changes)


def _change_for(res: Resource, rec: Record | None) -> Change:
    if rec is None:
        reasons: tuple[str, ...] = ()
        details: dict[str, Any] = {}
        if res.kind == "run":
            stages = stage_reasons(None, res.inputs)
            details["stages"] = stages
        return Change(
            res.address,
            res.kind,
            Action.CREATE,
            None,
            dict(res.inputs),
            tuple(attr_diff({}, _visible(res))),
            res.depends_on,
            reasons,
            details,
        )
    diffs = attr_diff(_visible_record(rec, res), _visible(res))
    if not diffs:
        return Change(
            res.address,
            res.kind,
            Action.NOOP,
            dict(rec.inputs),
            dict(res.inputs),
            (),
            res.depends_on,
        )
    replace = any(d.path.split(".")[0] in res.replace_on for d in diffs)
    details = {}
    reasons = tuple(f"{d.path} changed" for d in diffs if d.path.split(".")[0] in res.replace_on)
    if res.kind == "run":
        details["stages"] = stage_reasons(rec.inputs, res.inputs)
        diffs = [d for d in diffs if not d.path.startswith("stages.")] + _stage_summary(
            details["stages"]
        )
    return Change(
        res.address,
        res.kind,
        Action.REPLACE if replace else Action.UPDATE,
        dict(rec.inputs),
        dict(res.inputs),
        tuple(diffs),
        res.depends_on,
        reasons,
        details,
    )


def _stage_summary(reasons: Mapping[str, str]) -> list[AttrDiff]:
    return [AttrDiff(f"stages.{name}", "cached", f"run ({why})") for name, why in reasons.items()]


def _visible(res: Resource) -> dict[str, Any]:
    return {k: ("(sensitive)" if k in res.sensitive else v) for k, v in res.inputs.items()}


def _visible_record(rec: Record, res: Resource) -> dict[str, Any]:
    return {k: ("(sensitive)" if k in res.sensitive else v) for k, v in rec.inputs.items()}


def _select(
    wanted: Mapping[str, Resource], records: Mapping[str, Record], targets: list[str] | None
) -> set[str]:
    everything = set(wanted) | set(records)
    if not targets:
        return everything
    deps = {a: list(r.depends_on) for a, r in wanted.items()}
    for a, r in records.items():
        deps.setdefault(a, list(r.depends_on))
    chosen: set[str] = set()
    todo = [t for t in targets]
    while todo:  # a target brings what it depends on, as in Terraform
        a = todo.pop()
        if a in chosen or a not in everything:
            continue
        chosen.add(a)
        todo.extend(deps.get(a, []))
    return chosen


def _order_records(records: Mapping[str, Record], subset: list[str]) -> list[str]:
    deps = {a: [d for d in records[a].depends_on if d in subset] for a in subset}
    return toposort(deps)


def drift(
    records: Mapping[str, Record],
    observed: Mapping[str, Mapping[str, Any]],
    complete: bool,
    kinds: Collection[str] = (),
    absent: Mapping[str, str] | None = None,
) -> list[Change]:
    """Resources whose platform-side facts differ from what state recorded.

    A recorded resource missing from ``observed`` counts as deleted only when the backend looked
    at everything (``complete``) or listed that resource's kind exhaustively (``kinds``).
    """
    out: list[Change] = []
    for addr, rec in records.items():
        if addr not in observed:
            exhaustive = complete or rec.kind in kinds
            if exhaustive and rec.kind in ("infra", "pipeline", "model", "endpoint"):
                out.append(
                    Change(
                        addr,
                        rec.kind,
                        Action.DESTROY,
                        dict(rec.outputs),
                        None,
                        reasons=((absent or {}).get(addr, "deleted outside mlstack"),),
                    )
                )
            continue
        seen = observed[addr]
        recorded = {k: rec.outputs.get(k) for k in seen}
        diffs = attr_diff(recorded, dict(seen))
        if diffs:
            out.append(
                Change(
                    addr,
                    rec.kind,
                    Action.UPDATE,
                    recorded,
                    dict(seen),
                    tuple(diffs),
                    reasons=("changed outside mlstack",),
                )
            )
    return out
