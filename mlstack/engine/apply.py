"""Apply: walk the plan in dependency order, independent changes in parallel (bounded), and
record every finished resource at once so a crash loses at most what was in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from mlstack.engine.backend import Context, Event
from mlstack.engine.resources import Action, Change
from mlstack.engine.state_backend import State
from mlstack.errors import MlstackError

Handler = Callable[[Change, Context], Mapping[str, Any] | None]


@dataclass
class Outcome:
    address: str
    action: Action
    status: str  # "ok" | "failed" | "skipped" | "cancelled"
    seconds: float = 0.0
    error: BaseException | None = None


@dataclass
class ApplyResult:
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status in ("failed", "cancelled")]

    def counts(self) -> dict[str, int]:
        n = {"added": 0, "changed": 0, "destroyed": 0}
        for o in self.outcomes:
            if o.status != "ok":
                continue
            if o.action is Action.CREATE:
                n["added"] += 1
            elif o.action is Action.UPDATE:
                n["changed"] += 1
            elif o.action is Action.DESTROY:
                n["destroyed"] += 1
            elif o.action is Action.REPLACE:
                n["added"] += 1
                n["destroyed"] += 1
        return n


def execute(
    changes: list[Change], state: State, handler: Handler, ctx: Context, parallelism: int = 4
) -> ApplyResult:
    todo = {c.address: c for c in changes if c.action is not Action.NOOP}
    # a change waits for the changes it depends on; destroys wait for their dependents' destroys
    waits: dict[str, set[str]] = {}
    for c in todo.values():
        if c.action is Action.DESTROY:
            waits[c.address] = {
                o.address
                for o in todo.values()
                if o.action is Action.DESTROY and c.address in o.depends_on
            }
        else:
            waits[c.address] = {d for d in c.depends_on if d in todo}
    result = ApplyResult()
    done: set[str] = set()
    bad: set[str] = set()
    lock = threading.Lock()
    outputs: dict[str, Mapping[str, Any]] = dict(ctx.outputs)

    def run_one(change: Change) -> Outcome:
        start = time.monotonic()
        ctx.emit(Event("resource.start", change.address, change.action.value))
        local_ctx = Context(ctx.workdir, ctx.environment, ctx.emit, ctx.cancel, outputs)
        try:
            out = handler(change, local_ctx)
        except BaseException as e:  # recorded, re-raised by the caller as one error
            state.event(change.address, change.action.value, "failed", str(e)[:2000])
            ctx.emit(Event("resource.failed", change.address, str(e)))
            status = "cancelled" if ctx.cancel.is_set() else "failed"
            return Outcome(change.address, change.action, status, time.monotonic() - start, e)
        if change.action is Action.DESTROY:
            state.delete(change.address)
        else:
            assert change.after is not None
            state.put(change.address, change.kind, change.after, dict(out or {}), change.depends_on)
            with lock:
                outputs[change.address] = dict(out or {})
        secs = time.monotonic() - start
        ctx.emit(Event("resource.done", change.address, change.action.value, {"seconds": secs}))
        return Outcome(change.address, change.action, "ok", secs)

    running: dict[Future[Outcome], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        try:
            while todo or running:
                for addr in [a for a in todo if not waits[a] - done]:
                    if waits[addr] & bad or ctx.cancel.is_set():
                        change = todo.pop(addr)
                        bad.add(addr)
                        result.outcomes.append(Outcome(addr, change.action, "skipped"))
                        continue
                    running[pool.submit(run_one, todo.pop(addr))] = addr
                if not running:
                    # everything left waits on something that failed
                    for addr, change in list(todo.items()):
                        result.outcomes.append(Outcome(addr, change.action, "skipped"))
                        todo.pop(addr)
                    break
                finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in finished:
                    addr = running.pop(fut)
                    outcome = fut.result()
                    result.outcomes.append(outcome)
                    (done if outcome.status == "ok" else bad).add(addr)
        except KeyboardInterrupt:
            ctx.cancel.set()
            result.interrupted = True
            ctx.emit(Event("interrupt", "apply", "stopping: waiting for work in flight"))
            for fut in list(running):
                try:
                    outcome = fut.result()
                except KeyboardInterrupt:
                    continue
                result.outcomes.append(outcome)
            for addr, change in todo.items():
                result.outcomes.append(Outcome(addr, change.action, "skipped"))
    return result


def first_error(result: ApplyResult) -> MlstackError | None:
    for o in result.outcomes:
        if o.error is not None:
            if isinstance(o.error, MlstackError):
                return o.error
            return MlstackError(f"{o.address}: {type(o.error).__name__}: {o.error}")
    return None
