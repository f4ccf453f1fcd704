"""The router's routing table: weights, sticky keys, shadows, unhealthy backends."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from mlstack.local.serving.router import Backend, Table, Version


def table(backends: list[dict[str, Any]], sticky: str | None = None) -> Table:
    objs = {
        str(b["version"]): Version(
            str(b["version"]),
            [Backend(str(b["version"]), 10000 + 10 * i + n) for n in range(b.get("n", 1))],
        )
        for i, b in enumerate(backends)
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
    t.backends["b"].workers[0].healthy = False
    assert {t.pick(None).version for _ in range(300)} == {"a"}  # type: ignore[union-attr]
    t.backends["a"].workers[0].healthy = False
    assert {t.pick(None).version for _ in range(300)} == {"a", "b"}  # type: ignore[union-attr]


def test_no_traffic_at_all() -> None:
    assert table([{"version": "a", "port": 1, "weight": 0}]).pick(None) is None


def test_weights_choose_the_version_whatever_its_number_of_workers() -> None:
    random.seed(2)
    t = table(
        [
            {"version": "a", "port": 1, "weight": 90, "n": 1},
            {"version": "b", "port": 2, "weight": 10, "n": 4},
        ]
    )
    picks = Counter(t.pick(None).version for _ in range(20000))  # type: ignore[union-attr]
    assert 0.085 < picks["b"] / 20000 < 0.115


def test_a_version_sends_to_its_least_busy_healthy_worker() -> None:
    group = Version("a", [Backend("a", 1), Backend("a", 2), Backend("a", 3)])
    w1, w2, w3 = group.workers
    w1.pool.inflight, w2.pool.inflight, w3.pool.inflight = 3, 1, 2
    assert {group.choose() for _ in range(6)} == {w2}
    w2.healthy = False
    assert {group.choose() for _ in range(6)} == {w3}
    assert group.choose(exclude=(w3,)) is w1
    w1.pool.inflight = w3.pool.inflight = 0  # ties go round-robin
    assert {group.choose() for _ in range(6)} == {w1, w3}
    w1.healthy = w3.healthy = False
    assert not group.healthy and group.choose() is not None  # all down: still try one
