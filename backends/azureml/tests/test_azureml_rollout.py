"""Rollouts by mlstack's controller on Azure ML (real MLClient, strict fake): shadow through
``mirror_traffic``, canary through ``traffic``, a gate breach on Azure Monitor metrics rolls
back, and retired deployments are deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakes.arm import FakeArm
from mlstack_azureml import registry
from mlstack_azureml.backend import AzureMLBackend
from mlstack_azureml.plugin import plugin

from mlstack.engine.backend import Backing, Context, RunResult
from mlstack.engine.rollout import RolloutController
from mlstack.manifest.models import Deployment


class VirtualTime:
    """The controller's clock and sleep: each sleep sends live traffic, then time moves on."""

    def __init__(self, backend: AzureMLBackend, base: float) -> None:
        self.now, self.backend, self.base = base, backend, base

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float, ctx: Context) -> bool:
        for _ in range(10):
            try:
                self.backend.predict("cancer", {"instances": [[1.0, 2.0]]}, 30)
            except Exception:
                pass  # a failing version answers 500: that is what the gates see
        self.now += seconds
        return False


def _backend(settings: dict[str, Any], tmp_path: Path) -> AzureMLBackend:
    from types import SimpleNamespace

    project: Any = SimpleNamespace(
        project="quickstart",
        environment="dev",
        model=SimpleNamespace(name="cancer-classifier"),
        deployment=None,
        settings=settings,
    )
    return plugin.load(project, tmp_path)  # type: ignore[return-value]


def _version(b: AzureMLBackend, n: int, sub: str, ctx: Context) -> Backing:
    mv = registry.register(
        b.platform,
        RunResult(
            run_id=f"run-{n}",
            status="succeeded",
            metrics={"roc_auc": 0.95},
            model_uri=f"azureml://subscriptions/{sub}/resourcegroups/ml-rg/workspaces/shop-dev/datastores/workspaceblobstore/paths/runs/{n}/model",
            model_digest=f"sha256:{n:064d}",
            stages={},
        ),
        ctx,
    )
    return Backing(version=mv.version, uri=mv.uri, digest=mv.digest, weight=100.0)


def test_shadow_then_canary_then_breach_rolls_back(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    import time

    b = _backend(settings, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    sub = settings["subscription_id"]
    v1, v2, v3 = (_version(b, n, sub, ctx) for n in (1, 2, 3))
    clock = VirtualTime(b, time.time() - 3600)
    ctl = RolloutController(b, clock=clock.time, sleep=clock.sleep, poll=1.0)
    gates = {"error_rate": "< 5%"}

    first = ctl.run(Deployment(endpoint="cancer"), "cancer-classifier", v1, None, ctx)
    assert first.promoted

    shadow = Deployment(
        endpoint="cancer",
        strategy="shadow",
        shadow={"percent": 50, "duration": 3},
        gates=gates,
        min_requests=5,
    )
    mirrored: list[dict[str, int]] = []
    real_deploy = b.deploy

    def spy(desired: Any, c: Context) -> Any:
        view = real_deploy(desired, c)
        mirrored.append(dict(fake.state.endpoints["cancer-dev"]["properties"]["mirrorTraffic"]))
        return view

    b.deploy = spy  # type: ignore[method-assign]
    prev = b.endpoint_status("cancer")
    assert prev is not None
    from mlstack.engine.backend import EndpointState

    previous = EndpointState("cancer", "cancer-classifier", (v1,))
    result = ctl.run(shadow, "cancer-classifier", v2, previous, ctx)
    assert result.promoted, result.to_dict()
    assert {"v-2": 50} in mirrored  # the shadow phase mirrored half the requests to v2
    assert fake.state.mirrored[("cancer-dev", "v-2")] > 0
    assert set(fake.state.deployments["cancer-dev"]) == {"v-2"}  # v1 retired and deleted

    # v3 is broken: the canary's first step breaches error_rate and the controller rolls back
    healthy = fake.scorer

    def scorer(deployment: dict[str, Any], body: Any) -> tuple[int, Any]:
        if deployment["tags"].get("mlstack-version") == v3.version:
            raise RuntimeError("model file missing")  # the scoring script's init failed
        return healthy(deployment, body)

    fake.scorer = scorer
    canary = Deployment(
        endpoint="cancer",
        strategy="canary",
        canary={"steps": [20, 100], "interval": 3},
        gates=gates,
        min_requests=5,
    )
    result = ctl.run(
        canary, "cancer-classifier", v3, EndpointState("cancer", "cancer-classifier", (v2,)), ctx
    )
    assert not result.promoted, result.to_dict()
    assert "error_rate" in result.reason, result.reason
    props = fake.state.endpoints["cancer-dev"]["properties"]
    assert props["traffic"] == {"v-2": 100} and not props["mirrorTraffic"]
    assert set(fake.state.deployments["cancer-dev"]) == {"v-2"}  # the broken one is gone
    errors = [r for r in fake.state.requests[("cancer-dev", "v-3")] if r[1] >= 500]
    assert errors  # the gate saw real failures from the broken deployment
