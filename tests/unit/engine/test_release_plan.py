"""Promote and rollback are plans: the engine proposes a release, ``Workspace.converge`` plans and
applies it like any change, and afterwards the environment's plan is empty.

The backend is injected into ``Workspace`` (an in-memory registry and endpoint; no installed
distribution is looked up), and dev's trained versions are what dev's applies would have
recorded in its state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from mlstack.engine import address
from mlstack.engine.backend import Context, EndpointState, ModelVersion, VersionMetrics
from mlstack.engine.release import Proposal, propose_promotion, propose_rollback
from mlstack.engine.rollout import RolloutHeld
from mlstack.engine.seam import EndpointView, VersionServing
from mlstack.engine.workspace import Project, Workspace, raise_for
from mlstack.errors import GateFailed, StateError
from mlstack.local.plugin import plugin as local_plugin
from tests.fakes import ServingOnlyBackend

SPEC = """\
project: rel
environments:
  dev: {backend: local}
  staging:
    backend: local
    promote_from: dev
    gates: ["accuracy >= 0.8"]
    deployment:
      strategy: canary
      canary: {steps: [20, 100], interval: 0s}
      min_requests: 10
      gates: {error_rate: "< 5%"}
pipeline:
  stages:
    - {name: a, run: "echo a"}
model: {name: m}
deployment: {endpoint: web, strategy: all_at_once}
"""


class MemoryBackend(ServingOnlyBackend):
    """A registry and an endpoint in memory; metrics say every version served ``requests``."""

    def __init__(self, env: str, requests: int = 100) -> None:
        self.plugin = local_plugin
        self.env = env
        self.requests = requests
        self.registry: list[ModelVersion] = []
        self.deployed: list[EndpointState] = []
        self.champion: str | None = None

    def import_version(self, source: ModelVersion, ctx: Context) -> ModelVersion:
        for v in self.registry:  # the same artifact is not registered twice
            if v.digest == source.digest:
                return v
        made = replace(source, version=str(len(self.registry) + 1), aliases=())
        self.registry.append(made)
        return made

    def versions(self, model: str) -> list[ModelVersion]:
        return list(reversed(self.registry))

    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        self.champion = version

    def _view(self) -> EndpointView:
        live = self.deployed[-1]
        return EndpointView(
            name=live.name,
            url=f"http://127.0.0.1:1/{self.env}",
            status="healthy",
            versions=tuple(VersionServing(b.version, b.weight) for b in live.backings),
        )

    def deploy(self, desired: EndpointState, ctx: Context) -> EndpointView:
        self.deployed.append(desired)
        return self._view()

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        live = self.deployed[-1]
        return {b.version: VersionMetrics(self.requests, 0) for b in live.backings if b.weight}

    def endpoint_status(self, endpoint: str) -> EndpointView | None:
        return self._view() if self.deployed else None

    def weights(self) -> dict[str, float]:
        return self.deployed[-1].weights()


class Setup:
    def __init__(self, root: Path) -> None:
        (root / "mlstack.yaml").write_text(SPEC)
        project = Project(str(root / "mlstack.yaml"))
        self.backends = {"dev": MemoryBackend("dev"), "staging": MemoryBackend("staging")}
        self.dev: Workspace = project.workspace("dev", self.backends["dev"])
        self.staging: Workspace = project.workspace("staging", self.backends["staging"])
        self.trained = 0

    def train_in_dev(self, accuracy: float = 0.9) -> ModelVersion:
        """What an apply of dev records when its run registers a new version."""
        self.trained += 1
        mv = ModelVersion(
            "m",
            str(self.trained),
            f"sha256:{self.trained:064d}",
            f"/store/{self.trained}",
            {"accuracy": accuracy},
        )
        self.dev.state.put(
            address.model("m"),
            "model",
            {"backend": "local", "name": "m", "source": f"key-{self.trained}"},
            asdict(mv) | {"aliases": []},
            (),
        )
        return mv

    def converge(self, proposal: Proposal) -> Any:
        _, result = proposal.ws.converge(
            targets=None,
            destroy=False,
            refresh=False,
            lock_timeout=0,
            emit=lambda e: None,
            review=lambda p: None,
            release=None if proposal.noop else proposal.release,
            at_once=proposal.at_once,
            operation=proposal.operation,
            summary=proposal.summary(),
            view=proposal.view(),
        )
        if result is not None:
            raise_for(result)
        return result

    def promote(self) -> Any:
        return self.converge(propose_promotion(self.dev, self.staging, approved_by=[]))

    def rollback(self, to: str | None = None) -> Any:
        return self.converge(propose_rollback(self.staging, to_version=to))

    def staging_plan_is_empty(self) -> bool:
        plan, _ = self.staging.plan()
        return not plan.actionable

    def champion(self) -> str:
        rec = self.staging.state.get(address.endpoint("web"))
        assert rec is not None
        return str(rec.outputs["champion"])


@pytest.fixture()
def s(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def test_a_promotion_is_staging_desired_state_so_its_plan_is_then_empty(s: Setup) -> None:
    s.train_in_dev()
    plan, _ = s.staging.plan(release=propose_promotion(s.dev, s.staging, approved_by=[]).release)
    assert sorted((c.address, c.action.value) for c in plan.actionable) == [
        ("endpoint.web", "create"),
        ("infra.staging", "create"),
        ("model.m", "create"),
    ]
    s.promote()
    assert s.staging_plan_is_empty()
    assert s.backends["staging"].weights() == {"1": 100.0}
    release = s.staging.state.desired_release()
    assert release is not None and release["source_env"] == "dev"
    assert release["digest"] == f"sha256:{1:064d}"
    # promoting the same version again changes nothing
    assert s.promote() is None


def test_promote_rolls_the_new_version_out_with_staging_strategy_then_rollback(s: Setup) -> None:
    s.train_in_dev()
    s.promote()
    s.train_in_dev()
    s.promote()
    staging = s.backends["staging"]
    assert [d.weights() for d in staging.deployed[-2:]] == [{"1": 80.0, "2": 20.0}, {"2": 100.0}]
    assert s.champion() == "2" and s.staging_plan_is_empty()

    s.rollback()
    assert staging.weights() == {"1": 100.0} and s.champion() == "1"
    assert len(staging.registry) == 2  # v1's package is reused, not imported a third time
    assert s.staging_plan_is_empty()

    # the version that serves: an empty plan that says so
    noop = propose_rollback(s.staging, to_version="1")
    assert noop.noop and "nothing to roll back" in noop.note
    # no flip-flop: v2 was rolled back from, and nothing before v1 is known-good
    with pytest.raises(StateError, match="no earlier known-good"):
        propose_rollback(s.staging, to_version=None)
    # but it can be named
    s.rollback(to="2")
    assert staging.weights() == {"2": 100.0} and s.staging_plan_is_empty()


def test_refused_promotion_changes_nothing(s: Setup) -> None:
    s.train_in_dev(accuracy=0.5)
    with pytest.raises(GateFailed, match="accuracy"):
        propose_promotion(s.dev, s.staging, approved_by=[])
    assert s.staging.state.records() == {}


def test_a_rollout_without_traffic_is_held_then_resumed_or_aborted(s: Setup) -> None:
    s.train_in_dev()
    s.promote()
    s.train_in_dev()
    staging = s.backends["staging"]
    staging.requests = 2  # fewer than min_requests: the gates cannot be judged
    with pytest.raises(RolloutHeld, match="could not be judged"):
        s.promote()
    assert staging.weights() == {"1": 80.0, "2": 20.0}  # it keeps what serves
    assert s.champion() == "1" and not s.staging_plan_is_empty()  # the rest is offered

    s.rollback()  # aborts it
    assert staging.weights() == {"1": 100.0} and s.staging_plan_is_empty()

    with pytest.raises(RolloutHeld):
        s.promote()
    staging.requests = 100
    # a later apply resumes at the held step
    _, result = s.staging.converge(
        targets=None,
        destroy=False,
        refresh=False,
        lock_timeout=0,
        emit=lambda e: None,
        review=lambda p: None,
    )
    assert result is not None and not result.failed
    assert [d.weights() for d in staging.deployed[-2:]] == [{"1": 80.0, "2": 20.0}, {"2": 100.0}]
    assert s.champion() == "2" and s.staging_plan_is_empty()


def test_destroy_ends_the_release_so_nothing_is_planned_until_the_next_promote(s: Setup) -> None:
    s.train_in_dev()
    s.promote()
    _, result = s.staging.converge(
        targets=None,
        destroy=True,
        refresh=False,
        lock_timeout=0,
        emit=lambda e: None,
        review=lambda p: None,
    )
    assert result is not None and not result.failed
    assert s.staging.state.records() == {} and s.staging.state.desired_release() is None
    plan, _ = s.staging.plan()
    assert [c.address for c in plan.actionable] == ["infra.staging"]


def test_a_newer_version_replaces_a_held_one_from_what_served_before(s: Setup) -> None:
    s.train_in_dev()
    s.promote()
    s.train_in_dev()
    staging = s.backends["staging"]
    staging.requests = 2
    with pytest.raises(RolloutHeld):
        s.promote()
    assert staging.weights() == {"1": 80.0, "2": 20.0}
    staging.requests = 100
    s.train_in_dev()
    s.promote()
    assert [d.weights() for d in staging.deployed[-2:]] == [{"1": 80.0, "3": 20.0}, {"3": 100.0}]
    assert s.champion() == "3" and s.staging_plan_is_empty()
