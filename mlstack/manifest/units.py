"""Durations, sizes and thresholds as people write them: ``30m``, ``4Gi``, ``< 1%``, ``< 200ms``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1.5h"``, ``"250ms"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or 1h")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _FACTORS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration; write it like 30s, 5m or 1h")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?\s*$")
_SIZE_FACTORS = {
    None: 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def parse_size(value: object) -> int:
    """Bytes from ``512Mi``, ``4Gi``, ``2G`` or a plain number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        m = _SIZE.match(value)
        if m:
            return int(float(m.group(1)) * _SIZE_FACTORS[m.group(2)])
    raise ValueError(f"{value!r} is not a size; write it like 512Mi or 4Gi")


_THRESHOLD = re.compile(r"^\s*(<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*(%|ms|s)?\s*$")


def parse_threshold(value: object) -> tuple[str, float]:
    """``"< 1%"`` → ("<", 0.01); ``"< 200ms"`` → ("<", 0.2) seconds; ``"> 0.9"`` → (">", 0.9)."""
    if not isinstance(value, str):
        raise ValueError('expected a threshold such as "< 1%" or "< 200ms"')
    m = _THRESHOLD.match(value)
    if not m:
        raise ValueError(f'{value!r} is not a threshold; write it like "< 1%" or "< 200ms"')
    op, num, unit = m.group(1), float(m.group(2)), m.group(3)
    if unit == "%":
        num /= 100.0
    elif unit == "ms":
        num /= 1000.0
    return op, num
