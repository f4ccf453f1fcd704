"""`state migrate`'s guard, between two local states (no object store needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstack.engine.state_backend import StateBackend, migrate
from mlstack.errors import StateError
from mlstack.manifest.models import StateConfig


def local(root: Path) -> StateBackend:
    return StateBackend(StateConfig(), "proj", "dev", root / ".mlstack")


def applied(root: Path) -> StateBackend:
    backend = local(root)
    backend.state.put("model.m", "model", {"v": 1}, {}, [])
    backend.state.record_history("apply", "ok", {})
    return backend


def test_a_target_destroyed_down_to_its_history_is_not_overwritten(tmp_path: Path) -> None:
    source = applied(tmp_path / "a")
    target = applied(tmp_path / "b")
    target.state.delete("model.m")
    target.state.record_history("destroy", "ok", {})
    assert target.state.records() == {}
    lineage = target.state.lineage
    with pytest.raises(
        StateError, match=r"already holds state \(lineage .*\); migrating would overwrite it"
    ):
        migrate(source, target)
    assert target.state.lineage == lineage
    assert [h.operation for h in target.state.history()] == ["destroy", "apply"]
    assert migrate(source, target, force=True) == source.state.serial
    assert target.state.lineage == source.state.lineage
