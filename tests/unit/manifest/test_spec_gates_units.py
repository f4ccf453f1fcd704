"""Gate expressions, durations, sizes and thresholds as people write them."""

from __future__ import annotations

import pytest

from mlstack.manifest.gates import parse_gate
from mlstack.manifest.units import parse_duration, parse_size, parse_threshold


@pytest.mark.parametrize(
    ("text", "metric", "op", "number"),
    [
        ("roc_auc >= 0.85", "roc_auc", ">=", 0.85),
        ("  loss<0.1 ", "loss", "<", 0.1),
        ("rmse <= 1e-3", "rmse", "<=", 0.001),
        ("delta != -2", "delta", "!=", -2.0),
        ("eval.f1 > 0.5", "eval.f1", ">", 0.5),
    ],
)
def test_parse_number_gate(text: str, metric: str, op: str, number: float) -> None:
    g = parse_gate(text)
    assert (g.metric, g.op, g.number, g.needs_champion) == (metric, op, number, False)


def test_champion_gate_with_delta() -> None:
    g = parse_gate("roc_auc >= champion.roc_auc - 0.01")
    assert g.needs_champion and g.champion_metric == "roc_auc" and g.delta == -0.01
    assert g.threshold({"roc_auc": 0.9}) == pytest.approx(0.89)
    assert parse_gate("loss <= champion.loss + 0.5").delta == 0.5
    assert parse_gate("acc >= champion.acc").delta == 0.0


def test_champion_gate_checks() -> None:
    g = parse_gate("roc_auc >= champion.roc_auc - 0.01")
    assert g.check({"roc_auc": 0.895}, {"roc_auc": 0.9}).passed
    failed = g.check({"roc_auc": 0.88}, {"roc_auc": 0.9})
    assert not failed.passed and failed.threshold == pytest.approx(0.89)
    assert "fails" in failed.detail
    # no champion yet (first deployment): nothing to regress against
    first = g.check({"roc_auc": 0.5}, None)
    assert first.passed and "no champion" in first.detail
    assert g.check({"roc_auc": 0.5}, {"accuracy": 1.0}).passed  # champion lacks the metric


def test_gate_on_a_metric_that_was_not_measured_fails() -> None:
    r = parse_gate("f1 >= 0.5").check({"accuracy": 0.9})
    assert not r.passed and "'f1' was not measured" in r.detail and "accuracy" in r.detail


@pytest.mark.parametrize(
    ("op", "bound", "ok"),
    [
        (">=", 0.85, True),
        (">", 0.85, False),
        ("==", 0.85, True),
        ("<", 0.9, True),
        ("<=", 0.8, False),
        ("!=", 0.85, False),
    ],
)
def test_gate_operators(op: str, bound: float, ok: bool) -> None:
    assert parse_gate(f"m {op} {bound}").check({"m": 0.85}).passed is ok


@pytest.mark.parametrize(
    "text",
    [
        "roc_auc => 0.8",
        "roc_auc >= high",
        "roc_auc",
        ">= 0.8",
        "roc_auc >= champion",
        "roc_auc >= champion.roc_auc * 2",
        "__import__('os') >= 1",
        "a >= 1; b <= 2",
        "",
    ],
)
def test_bad_gates_are_rejected_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="is not a gate.*roc_auc >= 0.85"):
        parse_gate(text)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("2d", 172800.0),
        (" 10 s ", 10.0),
        (0, 0.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["30 minutes", "5min", "-5s", -1, True, None, "m", [5], "1w"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [("512Mi", 512 * 2**20), ("4Gi", 4 * 2**30), ("2G", 2 * 10**9), ("1.5Ki", 1536), (100, 100)],
)
def test_sizes(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["lots", "4GB", "-1Gi", True, None])
def test_bad_sizes(value: object) -> None:
    with pytest.raises(ValueError):
        parse_size(value)


@pytest.mark.parametrize(
    ("text", "op", "num"),
    [
        ("< 1%", "<", 0.01),
        ("<200ms", "<", 0.2),
        ("> 0.9", ">", 0.9),
        ("<= 2s", "<=", 2.0),
        (">= -1", ">=", -1.0),
        (" < 0.5 % ", "<", 0.005),
    ],
)
def test_thresholds(text: str, op: str, num: float) -> None:
    got_op, got = parse_threshold(text)
    assert got_op == op and got == pytest.approx(num)


@pytest.mark.parametrize("value", ["about 1%", "1%", "== 1", "< one", 0.01, None, "< 1 kg"])
def test_bad_thresholds(value: object) -> None:
    with pytest.raises(ValueError):
        parse_threshold(value)
