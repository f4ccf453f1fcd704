"""tune's search: the same candidates and the same winner with or without Optuna."""

from __future__ import annotations

import builtins
import math
from typing import Any

import pytest

from mlstack_runtime.errors import StageConfigError
from mlstack_runtime.search import candidates, search

SPACE = {
    "depth": [2, 12],
    "rate": {"low": 0.001, "high": 1.0, "log": True},
    "frac": [0.1, 0.9],
    "criterion": ["gini", "entropy", "log_loss"],
}


def _objective(params: dict[str, Any]) -> float:
    return abs(params["depth"] - 7) + abs(math.log(params["rate"]) + 3) + params["frac"]


def test_candidates_are_seeded_and_within_the_space() -> None:
    a, b = candidates(SPACE, 12, seed=4), candidates(SPACE, 12, seed=4)
    assert a == b and a != candidates(SPACE, 12, seed=5)
    for c in a:
        assert isinstance(c["depth"], int) and 2 <= c["depth"] <= 12
        assert 0.001 <= c["rate"] <= 1.0 and 0.1 <= c["frac"] <= 0.9
        assert c["criterion"] in SPACE["criterion"]


def test_optuna_and_the_plain_loop_pick_the_same_winner(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("optuna")
    cands = candidates(SPACE, 15, seed=1)
    with_optuna = search(cands, _objective, minimize=True)
    real_import = builtins.__import__

    def no_optuna(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "optuna":
            raise ImportError("optuna is not installed in this image")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_optuna)
    without = search(cands, _objective, minimize=True)
    assert (with_optuna["driver"], without["driver"]) == ("optuna", "loop")
    assert with_optuna["params"] == without["params"] and with_optuna["value"] == without["value"]
    assert without["value"] == min(_objective(c) for c in cands)
    best_max = search(cands, _objective, minimize=False)
    assert best_max["value"] == max(_objective(c) for c in cands)


def test_a_space_that_is_neither_range_nor_choices_names_the_setting() -> None:
    with pytest.raises(StageConfigError) as e:
        candidates({"depth": []}, 2, seed=0)
    assert e.value.setting == "with.space.depth"
