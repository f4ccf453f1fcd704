"""monitoring.schedule's period, which becomes monitor's --since window."""

from __future__ import annotations

import pytest

from mlstack.monitoring.schedule import period


@pytest.mark.parametrize(
    ("cron", "since"),
    [
        ("*/15 * * * *", "15m"),
        ("* * * * *", "1m"),
        ("0 * * * *", "1h"),
        ("30 */6 * * *", "6h"),
        ("0 3 * * *", "24h"),
        ("0 3 * * 1", "7d"),
        ("0 3 1 * *", "24h"),  # monthly: no simple period, a day's window
    ],
)
def test_period(cron: str, since: str) -> None:
    assert period(cron) == since
