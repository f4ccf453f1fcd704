"""The strategy table drives the spec's accepted values, the capability check and the phases."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlstack.engine.backend import Capabilities
from mlstack.manifest import strategies
from mlstack.manifest.models import Deployment


def test_the_spec_accepts_exactly_the_tables_names() -> None:
    schema = Deployment.model_json_schema()["properties"]["strategy"]
    assert schema["enum"] == [s.name for s in strategies.TABLE]
    assert all(f"{s.name}: {s.summary}" in schema["description"] for s in strategies.TABLE)
    with pytest.raises(ValidationError, match="canary"):
        Deployment(endpoint="e", strategy="canry")


@pytest.mark.parametrize("strategy", list(strategies.STRATEGIES))
def test_every_strategy_has_phases_a_description_and_parameters(strategy: str) -> None:
    d = Deployment(endpoint="e", strategy=strategy)
    phases = strategies.phases_of(d)
    assert phases and phases[-1].new_share > 0  # every strategy ends serving the new version
    assert strategies.describe(d)
    s = strategies.strategy(strategy)
    assert s.params is None or isinstance(getattr(d, strategy), s.params)


def test_phases_carry_mirroring_every_step_and_stickiness() -> None:
    shadow = strategies.phases_of(
        Deployment(endpoint="e", strategy="shadow", shadow={"percent": 30, "duration": "2m"})
    )
    assert [(p.new_share, p.mirror, p.hold, p.check) for p in shadow] == [
        (0.0, 30.0, 120.0, True),
        (100.0, 0.0, 0.0, False),
    ]
    canary = strategies.phases_of(
        Deployment(endpoint="e", strategy="canary", canary={"steps": [5, 25, 60], "interval": 9})
    )
    assert [(p.new_share, p.hold, p.check) for p in canary] == [
        (5.0, 9.0, True),
        (25.0, 9.0, True),
        (60.0, 9.0, True),
        (100.0, 0.0, False),
    ]
    (ab,) = strategies.phases_of(
        Deployment(endpoint="e", strategy="ab", ab={"weights": {"champion": 3, "challenger": 1}})
    )
    assert ab.new_share == 25.0 and ab.sticky_key == "x-user-id"


def test_ab_weights_must_name_champion_or_challenger() -> None:
    with pytest.raises(ValidationError, match="champion and challenger, not chalenger"):
        Deployment(endpoint="e", strategy="ab", ab={"weights": {"chalenger": 50}})
    with pytest.raises(ValidationError, match="must give traffic"):
        Deployment(endpoint="e", strategy="ab", ab={"weights": {"champion": 0}})


def test_capability_check_reads_every_feature_the_strategy_needs() -> None:
    none = Capabilities(weighted_traffic=False, mirroring=False, sticky_sessions=False)
    for name, feature in (
        ("canary", "split traffic"),
        ("linear", "split traffic"),
        ("shadow", "mirror"),
        ("ab", "assign a caller"),
    ):
        refusals = none.explain_rollout(Deployment(endpoint="e", strategy=name))
        assert refusals and any(feature in r.message for r in refusals), name
        assert all(r.hint for r in refusals)
    assert none.explain_rollout(Deployment(endpoint="e", strategy="blue_green")) == []
    capped = Capabilities(mirroring=True, max_mirror_percent=50)
    (too_much,) = capped.explain_rollout(Deployment(endpoint="e", strategy="shadow"))
    assert too_much.path == ("shadow", "percent")
    gated = Capabilities(gate_metrics=frozenset({"error_rate"}))
    (custom,) = gated.explain_rollout(
        Deployment(endpoint="e", gates={"error_rate": "< 1%", "agreement": ">= 0.9"})
    )
    assert custom.path == ("gates", "agreement") and "error_rate" in custom.hint


def test_capabilities_can_depend_on_a_setting() -> None:
    from pydantic import BaseModel

    from mlstack.engine.backend import BackendPlugin

    plain = Capabilities(mirroring=False)
    mirrors = Capabilities(mirroring=True)
    plugin = BackendPlugin(
        name="p",
        config_model=BaseModel,
        capabilities=plain,
        implementation="x:y",
        capabilities_by=("mode", {"mirrored": mirrors}),
    )
    shadow = Deployment(endpoint="e", strategy="shadow")
    assert plugin.capabilities_for({"mode": "mirrored"}).explain_rollout(shadow) == []
    assert plugin.capabilities_for({"mode": "other"}) is plain
    assert plugin.capabilities_for({}).explain_rollout(shadow)  # refused: cannot mirror
    fixed = BackendPlugin(name="q", config_model=BaseModel, capabilities=plain, implementation="")
    assert fixed.capabilities_for({"mode": "mirrored"}) is plain


def test_resuming_judging_and_mirroring_are_read_from_the_phases() -> None:
    def d(strategy: str, **params: object) -> Deployment:
        return Deployment(endpoint="e", strategy=strategy, **params)  # type: ignore[arg-type]

    assert strategies.resumable(d("canary")) and strategies.resumable(d("linear"))
    assert not strategies.resumable(d("blue_green"))  # the old version stays warm
    assert not strategies.resumable(d("shadow"))  # a mirrored phase
    assert not strategies.resumable(d("ab"))  # sticky by x-user-id
    assert [s for s in strategies.STRATEGIES if strategies.judged(d(s))] == [
        "blue_green",
        "canary",
        "linear",
        "shadow",
    ]
    assert strategies.judged(d("ab", ab={"duration": "5m"}))
    assert strategies.mirror_percent(d("shadow", shadow={"percent": 30})) == 30.0
    assert strategies.mirror_percent(d("canary")) == 0.0


def test_policies_forbid_only_the_tables_names() -> None:
    from mlstack.manifest.models import Policies

    assert Policies(forbid_strategies=["shadow"]).forbid_strategies == ["shadow"]
    with pytest.raises(ValidationError, match="canary"):
        Policies(forbid_strategies=["shadows"])
