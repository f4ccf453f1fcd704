"""An evaluate stage's gates, checked on the local backend against the registry's champion.

Gates such as ``roc_auc >= 0.9`` or ``roc_auc >= champion.roc_auc - 0.02`` are checked against
the metrics ``mlstack_runtime``'s evaluate measured; the champion's metrics come from the
registry (a gate that refers to a champion passes while there is none). A failing gate stops the
run before ``register`` and says which gate and the value.
"""

from __future__ import annotations

from mlstack.errors import GateFailed, Problem


def check_gates(
    gates: list[str], metrics: dict[str, float], champion: dict[str, float] | None, stage: str
) -> list[str]:
    """Raise GateFailed naming every failing gate and its measured value; else the details."""
    from mlstack.manifest.gates import parse_gate

    failed: list[Problem] = []
    details: list[str] = []
    for text in gates:
        res = parse_gate(text).check(metrics, champion)
        details.append(f"gate `{text}`: {res.detail}")
        if not res.passed:
            failed.append(Problem(f"gate `{text}` failed: {res.detail}"))
    if failed:
        head = (
            f"stage {stage!r}: {len(failed)} gate{'s' if len(failed) != 1 else ''} failed; "
            "the model was not registered"
        )
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        raise GateFailed(head, problems=[Problem(head, hint=f"measured: {shown}"), *failed])
    return details
