"""The router's routing table: weights, sticky keys, shadows, unhealthy backends."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from mlstack.local.serving.router import Backend, Table


def table(backends: list[dict[str, Any]], sticky: str | None = None) -> Table:
    objs = {
        str(b["version"]): Backend(str(b["version"]), "", 10000 + i) for i, b in enumerate(backends)
    }
    return Table({"generation": 3, "sticky_key": sticky, "backends": backends}, objs)


def test_weights_split_traffic() -> None:
    random.seed(1)
    t = table(
        [{"version": "a", "port": 1, "weight": 90}, {"version": "b", "port": 2, "weight": 10}]
    )
    picks = Counter(t.pick(None).version for _ in range(20000))  # type: ignore[union-attr]
    assert 0.085 < picks["b"] / 20000 < 0.115
    assert t.generation == 3 and t.weights == {"a": 90.0, "b": 10.0}


def test_zero_weight_versions_get_no_primary_traffic_and_shadows_are_listed() -> None:
    t = table(
        [
            {"version": "a", "port": 1, "weight": 100},
            {"version": "b", "port": 2, "weight": 0, "shadow": 25},
        ]
    )
    assert {t.pick(None).version for _ in range(500)} == {"a"}  # type: ignore[union-attr]
    assert [(share, b.version) for share, b in t.shadows] == [(0.25, "b")]


def test_sticky_keys_always_land_on_the_same_version() -> None:
    t = table(
        [{"version": "a", "port": 1, "weight": 50}, {"version": "b", "port": 2, "weight": 50}],
        sticky="X-User",
    )
    assert t.sticky_key == b"x-user"
    first = {u: t.pick(f"user-{u}".encode()).version for u in range(200)}  # type: ignore[union-attr]
    again = {u: t.pick(f"user-{u}".encode()).version for u in range(200)}  # type: ignore[union-attr]
    assert first == again
    assert 60 < Counter(first.values())["a"] < 140


def test_unhealthy_backends_are_skipped_while_another_is_healthy() -> None:
    t = table(
        [{"version": "a", "port": 1, "weight": 50}, {"version": "b", "port": 2, "weight": 50}]
    )
    t.backends["b"].healthy = False
    assert {t.pick(None).version for _ in range(300)} == {"a"}  # type: ignore[union-attr]
    t.backends["a"].healthy = False
    assert {t.pick(None).version for _ in range(300)} == {"a", "b"}  # type: ignore[union-attr]


def test_no_traffic_at_all() -> None:
    assert table([{"version": "a", "port": 1, "weight": 0}]).pick(None) is None
