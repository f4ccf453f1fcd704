"""Adaptive batching inside one model server: requests that arrive together share one
prediction call.

A request's rows are decoded (and refused, if bad) before they queue, so a batch only holds
well-formed rows. The first request to queue starts a clock; the batch runs when it holds
``max_batch`` rows or when ``max_latency`` has passed, whichever comes first, and each request
gets back its own slice of the predictions. If the model refuses the batch as a whole (one row
it cannot score), each request of that batch is predicted on its own, so only the request with
the bad row fails. A request with more rows than ``max_batch`` runs alone.

Why here and not in the router: the model server is where rows are decoded (V1 objects or lists,
V2 tensors, whatever the protocol), so it can concatenate them without parsing a body twice, and
the router stays a thin, protocol-blind forwarder. ``docs/architecture.md`` says the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

_Result = tuple[list[Any], int, float]  # predictions, rows in their call, seconds queued
_Item = tuple[list[list[Any]], "asyncio.Future[_Result]", float]


class Batcher:
    """Gathers rows from concurrent requests into one ``predict(rows)`` call."""

    def __init__(
        self, predict: Callable[[list[list[Any]]], list[Any]], max_batch: int, max_latency: float
    ) -> None:
        if max_batch < 1 or max_latency < 0:
            raise ValueError("max_batch must be >= 1 and max_latency >= 0")
        self.predict = predict
        self.max_batch = max_batch
        self.max_latency = max_latency
        self.queue: list[_Item] = []
        self.queued_rows = 0
        self._timer: asyncio.TimerHandle | None = None
        # what was done, for tests and status
        self.calls = 0
        self.batched_requests = 0

    async def submit(self, rows: list[list[Any]]) -> tuple[list[Any], int, float]:
        """The predictions for ``rows``, the number of rows in the call that made them, and the
        seconds the request waited for its batch. Raises what ``predict`` raised for them."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_Result] = loop.create_future()
        t0 = time.perf_counter()
        self.queue.append((rows, fut, t0))
        self.queued_rows += len(rows)
        if self.queued_rows >= self.max_batch:
            self._cancel_timer()
            loop.call_soon(self._run)
        elif self._timer is None:
            self._timer = loop.call_later(self.max_latency, self._run)
        return await fut

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _take(self) -> list[_Item]:
        taken: list[_Item] = []
        rows = 0
        while self.queue:
            item = self.queue[0]
            if taken and rows + len(item[0]) > self.max_batch:
                break
            taken.append(self.queue.pop(0))
            rows += len(item[0])
        self.queued_rows -= rows
        return taken

    def _run(self) -> None:
        self._timer = None
        batch = [item for item in self._take() if not item[1].done()]
        if batch:
            self._predict(batch, time.perf_counter())
        if self.queue:  # what did not fit: its own clock, or at once if it is full already
            loop = asyncio.get_running_loop()
            if self.queued_rows >= self.max_batch:
                loop.call_soon(self._run)
            elif self._timer is None:
                self._timer = loop.call_later(self.max_latency, self._run)

    def _predict(self, batch: list[_Item], now: float) -> None:
        rows = [r for item in batch for r in item[0]]
        self.calls += 1
        self.batched_requests += len(batch)
        try:
            preds = self.predict(rows)
        except Exception as e:  # noqa: BLE001 - handed to the requests, one by one below
            if len(batch) == 1:
                batch[0][1].set_exception(e)
                return
            for item_rows, fut, t0 in batch:  # find whose rows the model refused
                self.calls += 1
                try:
                    fut.set_result((self.predict(item_rows), len(item_rows), now - t0))
                except Exception as each:  # noqa: BLE001 - this request's own error
                    fut.set_exception(each)
            return
        if len(preds) != len(rows):
            err = RuntimeError(f"the model returned {len(preds)} predictions for {len(rows)} rows")
            for _, fut, _ in batch:
                fut.set_exception(err)
            return
        start = 0
        for item_rows, fut, t0 in batch:
            fut.set_result((preds[start : start + len(item_rows)], len(rows), now - t0))
            start += len(item_rows)
