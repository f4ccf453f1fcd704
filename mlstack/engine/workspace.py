"""One environment of one project: the facade the CLI talks to.

It loads the spec, finds the backend, reads state, plans and applies. The CLI only parses
arguments and renders what comes back.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from functools import cached_property
from typing import Any

from mlstack.engine import address, handlers
from mlstack.engine.apply import ApplyResult, execute, first_error
from mlstack.engine.backend import Backend, BackendPlugin, Context, Event, get_plugin
from mlstack.engine.desired import DesiredGraph, DigestCache, build
from mlstack.engine.digest import digest
from mlstack.engine.plan import Plan, diff, drift
from mlstack.engine.project import (
    STATE_DIR,
    Project,
    check_environments,
    check_resolved,
)
from mlstack.engine.release_state import Release
from mlstack.engine.resources import Action, Change
from mlstack.engine.state_backend import Lock, State, StateBackend
from mlstack.errors import Location, SpecError, StateError
from mlstack.manifest.load import resolve
from mlstack.manifest.models import ResolvedProject


class Workspace:
    def __init__(self, project: Project, env: str, backend: Backend | None = None) -> None:
        """``backend``: use this backend instead of the one the spec names (tests inject one;
        nothing is looked up in the installed distributions then)."""
        self.project_file = project
        self.env = env
        self.resolved: ResolvedProject = resolve(project.loaded, env)
        self.workdir = project.workdir
        self.state_backend = StateBackend(
            self.resolved.state, self.resolved.project, env, self.workdir
        )
        self.state: State = self.state_backend.state
        self._checked = False  # check_settings ran and passed
        if backend is not None:  # fills the cached properties below
            self.__dict__["backend"] = backend
            self.__dict__["plugin"] = backend.plugin

    # --- backend ------------------------------------------------------------------------------
    @cached_property
    def plugin(self) -> BackendPlugin:
        try:
            return get_plugin(self.resolved.backend)
        except Exception as e:
            from mlstack.errors import MlstackError

            if isinstance(e, MlstackError):
                loc = self.project_file.loaded.source.locate(("environments", self.env, "backend"))
                raise SpecError(
                    e.problems[0].message, location=loc, hint=e.problems[0].hint
                ) from None
            raise

    def check_settings(self) -> None:
        """Backend settings, stage capabilities and policies, checked once per workspace."""
        if not self._checked:
            check_resolved(self.plugin, self.env, self.resolved, self.project_file.loaded.source)
            self._checked = True

    @cached_property
    def backend(self) -> Backend:
        self.check_settings()
        return self.plugin.load(self.resolved, self.workdir)

    # --- plan ---------------------------------------------------------------------------------
    def release(self) -> Release | None:
        """The release this environment was last asked to serve (promote/rollback), if any."""
        recorded = self.state.desired_release()
        if recorded is not None:
            return Release.from_dict(recorded)
        if self.resolved.model is None:
            return None
        # state written before releases were desired state: the promoted model record says it
        rec = self.state.get(address.model(self.resolved.model.name))
        if rec is not None and rec.inputs.get("promoted_from"):
            return Release.from_model_outputs(rec.outputs)
        return None

    def desired(self, release: Release | None = None) -> DesiredGraph:
        """The desired graph; ``release`` proposes a release instead of the recorded one."""
        cache = DigestCache(self.workdir / "cache" / "digests.json")
        graph = build(self.resolved, self.backend, cache, release or self.release())
        try:
            cache.save()
        except OSError:
            pass  # a read-only checkout still plans; it just hashes again next time
        return graph

    def plan(
        self,
        *,
        targets: list[str] | None = None,
        destroy: bool = False,
        refresh: bool = False,
        refresh_only: bool = False,
        release: Release | None = None,
        at_once: bool = False,
    ) -> tuple[Plan, DesiredGraph]:
        """``release``: plan this release (promote/rollback) instead of the recorded one;
        ``at_once``: its endpoint change switches all traffic in one step (rollback)."""
        self.check_settings()
        self.state_backend.refresh()  # a plan reads the store's current state, once
        graph = self.desired(release)
        records = self.state.records()
        serial = self.state.serial
        lineage = self.state.lineage if self.state.exists else None
        self._check_targets(targets, graph, records)
        found: list[Change] = []
        notes: list[str] = []
        # Like Terraform, refresh looks only at what state records: a first plan asks the
        # platform nothing (and needs no credentials).
        if (refresh or refresh_only) and records:
            observed = self.backend.observe()
            # only what this backend created can be observed by it: after a `backend:` switch
            # the old platform's records are replaced, not "deleted outside mlstack"
            mine = {
                a: r
                for a, r in records.items()
                if r.inputs.get("backend", self.plugin.name) == self.plugin.name
            }
            found = drift(
                mine, observed.resources, observed.complete, observed.kinds, observed.absent
            )
            if refresh_only and not observed.complete:
                notes.append(
                    f"backend {self.plugin.name!r} observed only part of the "
                    "resources; drift of the rest is unknown"
                )
            if not refresh_only:
                # as Terraform's refresh: what was deleted outside mlstack is planned anew
                gone = {c.address for c in found if c.action is Action.DESTROY}
                records = {a: r for a, r in records.items() if a not in gone}
        plan = diff(
            graph,
            records,
            environment=self.env,
            backend=self.plugin.name,
            serial=serial,
            lineage=lineage,
            targets=targets,
            destroy=destroy,
        )
        plan.graph_digest = digest({a: dict(r.inputs) for a, r in graph.resources.items()})
        plan.drift = found
        notes.extend(self._rollout_notes(plan))
        plan.notes.extend(notes)
        plan.refresh_only = refresh_only
        if refresh_only:
            plan.changes = []
        if at_once:
            plan.changes = [
                replace(c, details={**c.details, "rollout": handlers.AT_ONCE})
                if c.kind == "endpoint" and c.action in (Action.UPDATE, Action.CREATE)
                else c
                for c in plan.changes
            ]
        return plan, graph

    def _rollout_notes(self, plan: Plan) -> list[str]:
        """How a changed endpoint will roll out: the strategy table's description, and how this
        backend realises it."""
        from mlstack.manifest.strategies import describe

        d = self.resolved.deployment
        if d is None or not any(
            c.address == address.endpoint(d.endpoint) and c.action is not Action.DESTROY
            for c in plan.changes
        ):
            return []
        how = self.plugin.capabilities_for(self.resolved.settings).notes.get(d.strategy)
        gates = ", ".join(f"{k} {v}" for k, v in d.gates.items()) or "none"
        return [
            f"{address.endpoint(d.endpoint)} rolls out a new version by {describe(d)}; "
            f"gates: {gates}" + (f" ({self.plugin.name}: {how})" if how else "")
        ]

    def _check_targets(
        self, targets: list[str] | None, graph: DesiredGraph, records: Mapping[str, Any]
    ) -> None:
        if not targets:
            return
        known = set(graph.resources) | set(records)
        for t in targets:
            if t not in known:
                from mlstack.manifest.suggest import did_you_mean

                raise SpecError(
                    f"--target {t!r} is not a resource of environment {self.env!r}"
                    f"{did_you_mean(t, known)}",
                    hint=f"resources: {', '.join(sorted(known))}",
                )

    # --- apply --------------------------------------------------------------------------------
    def lock(
        self, operation: str, timeout: float, on_wait: Callable[[Any], None] | None = None
    ) -> Lock:
        return self.state_backend.lock(operation, timeout, on_wait)

    def apply(
        self,
        plan: Plan,
        graph: DesiredGraph,
        *,
        emit: Callable[[Event], None],
        operation: str = "apply",
        summary: Mapping[str, Any] | None = None,
    ) -> ApplyResult:
        """Execute a plan. The caller holds the lock and has checked the serial.

        A plan made for a release (promote/rollback) records the release as the environment's
        desired state first: if the apply stops half-way, the next plan offers the rest."""
        if self.state.serial != plan.serial:
            raise StateError(
                f"state changed since the plan was made (serial {plan.serial} → "
                f"{self.state.serial})",
                hint="run plan again",
            )
        if graph.release is not None and graph.release.to_dict() != self.state.desired_release():
            self.state.set_desired_release(graph.release.to_dict())
        ctx = Context(
            self.workdir,
            self.env,
            emit,
            outputs={a: r.outputs for a, r in self.state.records().items()},
        )
        handler = handlers.Handlers(self, graph)
        started = time.time()
        result = execute(
            plan.actionable,
            self.state,
            handler,
            ctx,
            parallelism=max(2, self.resolved.pipeline.parallelism),
        )
        status = "interrupted" if result.interrupted else ("failed" if result.failed else "ok")
        if operation == "destroy" and status == "ok" and not self.state.records():
            self.state.clear_desired_release()
        self.state.record_history(
            operation,
            status,
            {
                **dict(summary or {}),
                "release": graph.release.to_dict() if graph.release else None,
                "started": started,
                "seconds": round(time.time() - started, 3),
                "counts": result.counts(),
                "outcomes": [
                    {
                        "address": o.address,
                        "action": o.action.value,
                        "status": o.status,
                        "error": str(o.error) if o.error else None,
                    }
                    for o in result.outcomes
                ],
            },
        )
        return result

    def converge(
        self,
        *,
        targets: list[str] | None,
        destroy: bool,
        refresh: bool,
        lock_timeout: float,
        emit: Callable[[Event], None],
        review: Callable[[Plan], None],
        saved: Mapping[str, Any] | None = None,
        on_wait: Callable[[Any], None] | None = None,
        on_stale: Callable[[Any], None] | None = None,
        release: Release | None = None,
        at_once: bool = False,
        operation: str | None = None,
        summary: Mapping[str, Any] | None = None,
        view: Mapping[str, Any] | None = None,
    ) -> tuple[Plan, ApplyResult | None]:
        """Lock, plan, let the caller review (show, confirm or cancel by raising), apply.

        ``saved`` is a saved plan (``plan -out``): it is applied only if the fresh plan made
        under the lock is the same one. Returns the plan and, when there was work, its result.
        """
        from mlstack.engine import planfile

        operation = operation or ("destroy" if destroy else "apply")
        lock = self.lock(operation, lock_timeout, on_wait)
        try:
            if lock.stale is not None and on_stale is not None:
                on_stale(lock.stale)
            plan, graph = self.plan(
                targets=targets, destroy=destroy, refresh=refresh, release=release, at_once=at_once
            )
            plan.release = dict(view) if view is not None else None
            if saved is not None:
                planfile.check_still_valid(dict(saved), plan)
            if not plan.actionable:
                return plan, None
            review(plan)
            return plan, self.apply(plan, graph, emit=emit, operation=operation, summary=summary)
        finally:
            lock.release()

    def outputs(self) -> dict[str, Any]:
        return {a: dict(r.outputs) for a, r in self.state.records().items()}

    def context(self, emit: Callable[[Event], None] = lambda e: None) -> Context:
        return Context(
            self.workdir,
            self.env,
            emit,
            outputs={a: r.outputs for a, r in self.state.records().items()},
        )


def raise_for(result: ApplyResult) -> None:
    err = first_error(result)
    if err is not None:
        raise err


def spec_location(ws: Workspace, path: tuple[str | int, ...]) -> Location:
    return ws.project_file.loaded.source.locate(path)


def env_file_vars() -> dict[str, str]:
    return {
        k[len("MLSTACK_VAR_") :].lower(): v
        for k, v in os.environ.items()
        if k.startswith("MLSTACK_VAR_")
    }


__all__ = ["STATE_DIR", "Project", "Workspace", "check_environments", "raise_for", "asdict"]
