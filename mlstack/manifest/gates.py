"""Gate expressions: ``roc_auc >= 0.85``, ``roc_auc >= champion.roc_auc - 0.01``.

Kept deliberately small: a metric, a comparison, and a right-hand side that is a number or a
reference to the champion's metric plus or minus a number. No eval, nothing clever.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_GATE = re.compile(
    rf"^\s*(?P<metric>{_NAME})\s*(?P<op><=|>=|==|!=|<|>)\s*"
    rf"(?:(?P<ref>champion)\.(?P<refmetric>{_NAME})\s*(?:(?P<sign>[+-])\s*(?P<delta>\d+(?:\.\d+)?))?"
    rf"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?))\s*$"
)
OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Gate:
    text: str
    metric: str
    op: str
    number: float | None = None
    champion_metric: str | None = None
    delta: float = 0.0

    @property
    def needs_champion(self) -> bool:
        return self.champion_metric is not None

    def threshold(self, champion: Mapping[str, float] | None) -> float | None:
        """The right-hand side's value; None when it refers to a champion that does not exist."""
        if self.champion_metric is None:
            return self.number
        if not champion or self.champion_metric not in champion:
            return None
        return float(champion[self.champion_metric]) + self.delta

    def check(
        self, metrics: Mapping[str, float], champion: Mapping[str, float] | None = None
    ) -> GateResult:
        if self.metric not in metrics:
            return GateResult(
                self,
                False,
                None,
                None,
                f"metric {self.metric!r} was not measured "
                f"(measured: {', '.join(sorted(metrics)) or 'none'})",
            )
        value = float(metrics[self.metric])
        bound = self.threshold(champion)
        if bound is None:
            # No champion yet: a regression gate has nothing to regress against.
            return GateResult(self, True, value, None, "no champion yet; gate passes")
        ok = OPS[self.op](value, bound)
        return GateResult(
            self,
            ok,
            value,
            bound,
            f"{self.metric} = {value:.4g} {'meets' if ok else 'fails'} {self.op} {bound:.4g}",
        )


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    passed: bool
    value: float | None
    threshold: float | None
    detail: str


def parse_gate(text: str) -> Gate:
    m = _GATE.match(text)
    if not m:
        raise ValueError(
            f"{text!r} is not a gate; write `METRIC OP NUMBER` or "
            "`METRIC OP champion.METRIC [+|- NUMBER]`, e.g. `roc_auc >= 0.85`"
        )
    if m.group("ref"):
        delta = float(m.group("delta") or 0.0)
        if m.group("sign") == "-":
            delta = -delta
        return Gate(
            text.strip(),
            m.group("metric"),
            m.group("op"),
            champion_metric=m.group("refmetric"),
            delta=delta,
        )
    return Gate(text.strip(), m.group("metric"), m.group("op"), number=float(m.group("number")))
