"""diff (create / update / replace / destroy / no-op), --target selection, drift, plan files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstack.engine import planfile
from mlstack.engine.desired import DesiredGraph, stage_reasons
from mlstack.engine.plan import diff, drift
from mlstack.engine.resources import Action, Resource, attr_diff, is_missing
from mlstack.engine.state import Record
from mlstack.errors import StateError


def rec(addr: str, inputs: dict, deps: tuple[str, ...] = (), outputs: dict | None = None) -> Record:
    return Record(addr, addr.split(".")[0], inputs, outputs or {}, deps, 1, 0.0)


def graph(*resources: Resource) -> DesiredGraph:
    return DesiredGraph({r.address: r for r in resources}, None)


INFRA = Resource("infra.dev", "infra", {"backend": "toy", "size": 1}, replace_on=("backend",))
PIPE = Resource("pipeline.p", "pipeline", {"backend": "toy", "digest": "d1"}, ("infra.dev",))
SECRET = Resource(
    "endpoint.e", "endpoint", {"token": "${secret:T}", "n": 1}, ("infra.dev",), sensitive=("token",)
)


def plan(desired: DesiredGraph, records: dict, **kw):
    return diff(desired, records, environment="dev", backend="toy", serial=3, lineage="L", **kw)


def test_create_update_replace_destroy_noop() -> None:
    records = {
        "infra.dev": rec("infra.dev", {"backend": "old", "size": 1}),
        "pipeline.p": rec("pipeline.p", {"backend": "toy", "digest": "d0"}, ("infra.dev",)),
        "model.gone": rec("model.gone", {}, ("pipeline.p",)),
    }
    p = plan(graph(INFRA, PIPE, SECRET), records)
    acts = {c.address: c.action for c in p.changes}
    assert acts == {
        "infra.dev": Action.REPLACE,
        "pipeline.p": Action.UPDATE,
        "endpoint.e": Action.CREATE,
        "model.gone": Action.DESTROY,
    }
    assert p.summary() == "Plan: 2 to add, 1 to change, 2 to destroy."
    infra = next(c for c in p.changes if c.address == "infra.dev")
    assert infra.reasons == ("backend changed",)
    upd = next(c for c in p.changes if c.address == "pipeline.p")
    assert [(d.path, d.before, d.after) for d in upd.diffs] == [("digest", "d0", "d1")]
    same = plan(graph(INFRA), {"infra.dev": rec("infra.dev", dict(INFRA.inputs))})
    assert [c.action for c in same.changes] == [Action.NOOP]
    assert not same.has_changes
    assert same.summary().startswith("No changes.")


def test_sensitive_inputs_are_never_shown() -> None:
    p = plan(graph(INFRA, SECRET), {})
    body = p.to_json()
    ep = next(c for c in body["resource_changes"] if c["address"] == "endpoint.e")
    assert {"path": "token", "before": None, "after": "(sensitive)"} in ep["diff"]


def test_target_brings_its_dependencies_only() -> None:
    p = plan(graph(INFRA, PIPE, SECRET), {}, targets=["pipeline.p"])
    assert [c.address for c in p.changes] == ["infra.dev", "pipeline.p"]


def test_destroy_plan_orders_dependents_first() -> None:
    records = {
        "infra.dev": rec("infra.dev", {}),
        "pipeline.p": rec("pipeline.p", {}, ("infra.dev",)),
        "run.p": rec("run.p", {}, ("pipeline.p",)),
    }
    p = plan(graph(INFRA, PIPE), records, destroy=True)
    assert [c.address for c in p.changes] == ["run.p", "pipeline.p", "infra.dev"]
    assert all(c.action is Action.DESTROY for c in p.changes)


def test_attr_diff_nested() -> None:
    d = attr_diff({"a": {"b": 1, "c": 2}, "x": 1}, {"a": {"b": 1, "c": 3, "d": 4}})
    got = {x.path: (x.kind, x.before, x.after) for x in d}
    assert got["a.c"] == ("change", 2, 3)
    assert got["a.d"][0] == "add" and is_missing(got["a.d"][1])
    assert got["x"][0] == "remove"
    assert attr_diff([1, 2], [1, 2]) == []


def test_drift_needs_an_exhaustive_look_to_call_something_deleted() -> None:
    records = {
        "infra.dev": rec("infra.dev", {}, outputs={"bucket": "b"}),
        "pipeline.p": rec("pipeline.p", {}, outputs={"digest": "d1"}),
        "run.p": rec("run.p", {}),
    }
    observed = {"pipeline.p": {"digest": "d2"}}
    partial = drift(records, observed, complete=False)
    assert [(c.address, c.action) for c in partial] == [("pipeline.p", Action.UPDATE)]
    assert partial[0].reasons == ("changed outside mlstack",)
    by_kind = drift(records, observed, complete=False, kinds={"infra"})
    assert {(c.address, c.action) for c in by_kind} == {
        ("pipeline.p", Action.UPDATE),
        ("infra.dev", Action.DESTROY),
    }
    full = drift(records, observed, complete=True)
    # runs are history, not platform objects: never "deleted"
    assert {c.address for c in full} == {"pipeline.p", "infra.dev"}


def test_stage_reasons_say_why_each_stage_reruns() -> None:
    before = {
        "stages": {
            "prep": {
                "key": "k1",
                "definition": "d",
                "params": {},
                "code": {},
                "data": "x",
                "needs": [],
                "kind": "ingest",
            },
            "fit": {
                "key": "k2",
                "definition": "d",
                "params": {"depth": 3},
                "code": {"f.py": "c1"},
                "data": None,
                "needs": ["prep"],
                "kind": "command",
            },
            "report": {
                "key": "k3",
                "definition": "d",
                "params": {},
                "code": {},
                "data": None,
                "needs": ["fit"],
                "kind": "command",
            },
        }
    }
    after = {
        "stages": {
            "prep": dict(before["stages"]["prep"]),
            "fit": {
                **before["stages"]["fit"],
                "key": "k2b",
                "params": {"depth": 5},
                "code": {"f.py": "c2"},
            },
            "report": {**before["stages"]["report"], "key": "k3b"},
            "new": {
                "key": "k4",
                "definition": "d",
                "params": {},
                "code": {},
                "data": None,
                "needs": [],
                "kind": "command",
            },
        }
    }
    why = stage_reasons(before, after)
    assert "prep" not in why
    assert why["fit"] == "depth 3 → 5; code of f.py changed"
    assert why["report"] == "upstream fit reruns"
    assert why["new"] == "new stage"
    assert stage_reasons(None, after)["prep"] == "no previous run"


def test_plan_file_round_trip_and_staleness(tmp_path: Path) -> None:
    p = plan(graph(INFRA), {})
    p.graph_digest = "g1"
    f = tmp_path / "x.plan"
    planfile.save(p, f, project_file="mlstack.yaml", variables={"a": "1"})
    saved = planfile.load(f)
    assert saved["variables"] == {"a": "1"} and saved["plan"]["serial"] == 3
    planfile.check_still_valid(saved, p)
    moved = plan(graph(INFRA), {})
    moved.serial = 4
    moved.graph_digest = "g1"
    with pytest.raises(StateError, match="state changed since it was made"):
        planfile.check_still_valid(saved, moved)
    moved.serial, moved.graph_digest = 3, "g2"
    with pytest.raises(StateError, match="project file or its data changed"):
        planfile.check_still_valid(saved, moved)
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(StateError, match="is not an mlstack plan file"):
        planfile.load(tmp_path / "other.json")
    with pytest.raises(StateError, match="not found"):
        planfile.load(tmp_path / "missing.plan")
