"""A backend that only serves: the part of the seam the rollout controller uses (deploy,
metrics, rollout). The pipeline and registry operations fail loudly if anything calls them,
because a rollout must never train or register."""

from __future__ import annotations

from typing import Any

from mlstack.engine.backend import Backend, Context


class ServingOnlyBackend(Backend):
    def _not_here(self, what: str) -> Any:
        raise AssertionError(f"the rollout controller must not call {what}()")

    def compile(self) -> Any:
        return self._not_here("compile")

    def upsert_pipeline(self, compiled: Any, ctx: Context) -> Any:
        return self._not_here("upsert_pipeline")

    def run_pipeline(self, compiled: Any, request: Any, ctx: Context) -> Any:
        return self._not_here("run_pipeline")

    def register(self, run: Any, ctx: Context) -> Any:
        return self._not_here("register")

    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        return None

    def versions(self, model: str) -> list[Any]:
        return []

    def predict(self, endpoint: str, body: Any, timeout: float) -> Any:
        return self._not_here("predict")

    def destroy(self, address: str, kind: str, outputs: Any, ctx: Context) -> None:
        return None
