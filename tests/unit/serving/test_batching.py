"""Adaptive batching in the model server (``mlstack.local.serving.batching``), with a model
that records its calls: concurrent requests share one call, each gets its own rows back, a
request the model refuses fails alone, the clock and the size limit each close a batch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mlstack.local.serving.batching import Batcher


class Model:
    """Predicts row[0] * 10; refuses a row whose first value is negative, as sklearn would."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, rows: list[list[Any]]) -> list[Any]:
        self.calls.append(len(rows))
        if any(r[0] < 0 for r in rows):
            raise ValueError("negative input")
        return [r[0] * 10 for r in rows]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_concurrent_requests_share_one_call_and_get_their_own_answers() -> None:
    model = Model()
    b = Batcher(model, max_batch=32, max_latency=0.05)

    async def go() -> list[Any]:
        return await asyncio.gather(*(b.submit([[i], [i + 100]]) for i in range(5)))

    results = run(go())
    assert model.calls == [10]
    assert [preds for preds, _, _ in results] == [[i * 10, (i + 100) * 10] for i in range(5)]
    assert {size for _, size, _ in results} == {10}
    assert all(0 <= waited < 5 for _, _, waited in results)


def test_a_bad_row_fails_only_its_own_request() -> None:
    model = Model()
    b = Batcher(model, max_batch=32, max_latency=0.05)

    async def go() -> list[Any]:
        return await asyncio.gather(
            b.submit([[1]]), b.submit([[-1]]), b.submit([[3]]), return_exceptions=True
        )

    good, bad, other = run(go())
    assert good[0] == [10] and other[0] == [30]
    assert isinstance(bad, ValueError) and "negative" in str(bad)
    assert model.calls == [3, 1, 1, 1]  # the batch, then each request on its own


def test_max_batch_closes_a_batch_without_waiting_for_the_clock() -> None:
    model = Model()
    b = Batcher(model, max_batch=4, max_latency=30.0)  # the clock alone would time the test out

    async def go() -> list[Any]:
        return await asyncio.wait_for(
            asyncio.gather(*(b.submit([[i]]) for i in range(8))), timeout=10
        )

    results = run(go())
    assert model.calls == [4, 4]
    assert [p for p, _, _ in results] == [[i * 10] for i in range(8)]


def test_a_lone_request_runs_when_its_wait_is_over() -> None:
    model = Model()
    b = Batcher(model, max_batch=32, max_latency=0.001)
    assert run(b.submit([[2]]))[0:2] == ([20], 1)
    assert model.calls == [1]


def test_a_request_bigger_than_max_batch_runs_alone() -> None:
    model = Model()
    b = Batcher(model, max_batch=2, max_latency=0.01)

    async def go() -> list[Any]:
        return await asyncio.gather(b.submit([[1], [2], [3]]), b.submit([[4]]))

    big, small = run(go())
    assert big[0] == [10, 20, 30] and small[0] == [40]
    assert model.calls == [3, 1]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(Model(), max_batch=0, max_latency=0.01)
