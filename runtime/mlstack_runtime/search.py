"""The tune stage's search: seeded candidates, scored in order, the best kept.

Candidates come from ``random.Random(seed)`` over ``with: space`` (``[low, high]`` integers or
floats, ``{low, high, log: true}``, or a list of choices), so the same settings try the same
parameters on every platform. Where Optuna is installed (the local backend), the trials run as
an Optuna study with these candidates enqueued, which keeps Optuna's trial records without
changing what is tried or which one wins; without it, a plain loop does the same.
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable

from mlstack_runtime.errors import StageConfigError


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def sample(rng: random.Random, name: str, spec: Any) -> Any:
    if isinstance(spec, dict) and "low" in spec and "high" in spec:
        lo, hi = spec["low"], spec["high"]
        if isinstance(lo, int) and isinstance(hi, int) and not spec.get("float"):
            if spec.get("log"):
                return int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
            return rng.randint(lo, hi)
        if spec.get("log"):
            return math.exp(rng.uniform(math.log(float(lo)), math.log(float(hi))))
        return rng.uniform(float(lo), float(hi))
    if isinstance(spec, list) and len(spec) == 2 and all(_number(v) for v in spec):
        lo, hi = spec
        if isinstance(lo, int) and isinstance(hi, int):
            return rng.randint(lo, hi)
        return rng.uniform(float(lo), float(hi))
    if isinstance(spec, list) and spec:
        return spec[rng.randrange(len(spec))]
    raise StageConfigError(
        f"with.space.{name}", "a search space must be [low, high] or [choices...]"
    )


def candidates(space: dict[str, Any], trials: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{k: sample(rng, k, v) for k, v in space.items()} for _ in range(trials)]


def _better(value: float, best: Any, minimize: bool) -> bool:
    return best is None or (value < best if minimize else value > best)


def search(
    cands: list[dict[str, Any]], objective: Callable[[dict[str, Any]], float], minimize: bool
) -> dict[str, Any]:
    """{"params", "value", "trials", "driver"}: the first best candidate."""
    try:
        import optuna
    except ImportError:
        optuna = None  # type: ignore[assignment]
    best_value, best_params = None, None
    if optuna is None:
        for params in cands:
            value = float(objective(params))
            if _better(value, best_value, minimize):
                best_value, best_params = value, params
        return {"params": best_params, "value": best_value, "trials": len(cands), "driver": "loop"}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if minimize else "maximize")
    for params in cands:
        study.enqueue_trial(params, skip_if_exists=False)
    results: list[float] = []

    def run_trial(trial: Any) -> float:
        params = cands[trial.number]
        value = float(objective(params))
        results.append(value)
        return value

    study.optimize(run_trial, n_trials=len(cands))
    for params, value in zip(cands, results):
        if _better(value, best_value, minimize):
            best_value, best_params = value, params
    return {"params": best_params, "value": best_value, "trials": len(cands), "driver": "optuna"}
