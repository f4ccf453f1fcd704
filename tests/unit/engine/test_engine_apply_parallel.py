"""apply.execute: dependency order, bounded parallelism, failures skip dependents, and every
finished resource is written to state at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlstack.engine.apply import execute, first_error
from mlstack.engine.backend import Context
from mlstack.engine.resources import Action, Change
from mlstack.engine.state import StateStore
from mlstack.errors import MlstackError


def create(addr: str, *deps: str) -> Change:
    return Change(addr, addr.split(".")[0], Action.CREATE, None, {"v": addr}, depends_on=deps)


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


def ctx(tmp_path: Path) -> Context:
    return Context(tmp_path, "dev", lambda e: None)


def test_independent_changes_run_at_the_same_time(tmp_path: Path, store: StateStore) -> None:
    # Both handlers must be inside at once to pass the barrier; run one after the other, the
    # barrier breaks (its timeout only guards against a hang).
    barrier = threading.Barrier(2, timeout=10)

    def handler(change: Change, c: Context) -> dict:
        if change.address in ("a.x", "b.x"):
            barrier.wait()
        return {"ok": change.address}

    changes = [create("a.x"), create("b.x"), create("c.x", "a.x", "b.x")]
    result = execute(changes, store, handler, ctx(tmp_path), parallelism=2)
    assert [o.status for o in result.outcomes].count("ok") == 3, result.outcomes
    assert result.outcomes[-1].address == "c.x"  # waited for both
    assert store.serial == 3
    assert store.get("c.x").outputs == {"ok": "c.x"}


def test_parallelism_is_bounded(tmp_path: Path, store: StateStore) -> None:
    inside = 0
    peak = 0
    lock = threading.Lock()
    first_three = threading.Barrier(3, timeout=10)  # proves three run at once
    calls = 0

    def handler(change: Change, c: Context) -> dict:
        nonlocal inside, peak, calls
        with lock:
            inside += 1
            calls += 1
            mine = calls
            peak = max(peak, inside)
        if mine <= 3:
            first_three.wait()
            threading.Event().wait(0.05)  # room for a fourth worker, were there one
        with lock:
            inside -= 1
        return {}

    changes = [create(f"r.{i}") for i in range(8)]
    result = execute(changes, store, handler, ctx(tmp_path), parallelism=3)
    assert all(o.status == "ok" for o in result.outcomes)
    assert peak == 3


def test_failure_skips_dependents_and_keeps_the_rest(tmp_path: Path, store: StateStore) -> None:
    ran: list[str] = []

    def handler(change: Change, c: Context) -> dict:
        ran.append(change.address)
        if change.address == "run.p":
            raise RuntimeError("boom")
        return {"out": change.address}

    changes = [
        create("infra.dev"),
        create("pipeline.p", "infra.dev"),
        create("run.p", "pipeline.p"),
        create("model.m", "run.p"),
        create("dataset.p"),
    ]
    result = execute(changes, store, handler, ctx(tmp_path), parallelism=2)
    status = {o.address: o.status for o in result.outcomes}
    assert status == {
        "infra.dev": "ok",
        "pipeline.p": "ok",
        "dataset.p": "ok",
        "run.p": "failed",
        "model.m": "skipped",
    }
    assert "model.m" not in ran
    assert set(store.records()) == {"infra.dev", "pipeline.p", "dataset.p"}
    err = first_error(result)
    assert isinstance(err, MlstackError) and "run.p: RuntimeError: boom" in str(err)
    assert [o.address for o in result.failed] == ["run.p"]
    assert result.counts() == {"added": 3, "changed": 0, "destroyed": 0}


def test_outputs_of_dependencies_are_visible_to_dependents(
    tmp_path: Path, store: StateStore
) -> None:
    seen = {}

    def handler(change: Change, c: Context) -> dict:
        seen[change.address] = dict(c.outputs)
        return {"url": f"u://{change.address}"}

    execute([create("a.x"), create("b.x", "a.x")], store, handler, ctx(tmp_path))
    assert seen["b.x"]["a.x"] == {"url": "u://a.x"}


def test_destroys_wait_for_their_dependents(tmp_path: Path, store: StateStore) -> None:
    for addr, deps in (
        ("infra.dev", ()),
        ("pipeline.p", ("infra.dev",)),
        ("run.p", ("pipeline.p",)),
    ):
        store.put(addr, addr.split(".")[0], {}, {}, deps)
    order: list[str] = []

    def handler(change: Change, c: Context) -> None:
        order.append(change.address)

    changes = [
        Change(a, a.split(".")[0], Action.DESTROY, {}, None, depends_on=d)
        for a, d in (("infra.dev", ()), ("pipeline.p", ("infra.dev",)), ("run.p", ("pipeline.p",)))
    ]
    result = execute(changes, store, handler, ctx(tmp_path), parallelism=4)
    assert order == ["run.p", "pipeline.p", "infra.dev"]
    assert store.records() == {}
    assert result.counts()["destroyed"] == 3
