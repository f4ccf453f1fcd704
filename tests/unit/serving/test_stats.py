"""Per-version counters: windows by time, percentiles from the histogram, Prometheus text."""

from __future__ import annotations

import pytest

from mlstack.local.serving.stats import VersionStats, percentile, prometheus_text


def test_window_counts_only_seconds_since_and_splits_error_kinds() -> None:
    s = VersionStats("2", "primary")
    for i in range(100):
        s.record(1000.0 + i * 0.05, 0.010, 200)  # seconds 1000..1004
    s.record(1006.2, 0.5, 500)
    s.record(1006.3, 0.01, 0)
    s.record(1006.4, 0.01, 404)
    all_ = s.window(0)
    assert (all_["requests"], all_["errors"], all_["client_errors"]) == (103, 2, 1)
    late = s.window(1006.0)
    assert (late["requests"], late["errors"], late["client_errors"]) == (3, 2, 1)
    assert s.window(2000)["requests"] == 0 and s.window(2000)["latency_p50"] is None
    assert s.window(0, until=1002.5)["requests"] == 60


@pytest.mark.parametrize("q, expected", [(0.5, 0.050), (0.9, 0.090), (0.99, 0.099)])
def test_percentiles_are_within_a_bucket_of_the_truth(q: float, expected: float) -> None:
    s = VersionStats("1", "primary")
    for i in range(1, 1001):
        s.record(1.0, i / 10000.0, 200)  # 0.1 ms .. 100 ms, uniform
    got = s.window(0)[f"latency_p{int(q * 100)}"]
    assert got == pytest.approx(expected, rel=0.05)


def test_percentile_of_nothing() -> None:
    assert percentile({}, 0.5) is None


def test_prometheus_text_is_cumulative_and_labelled() -> None:
    s = VersionStats('v"1', "shadow")
    s.record(1.0, 0.003, 200)
    s.record(1.0, 0.2, 503)
    text = prometheus_text("ep", [s], {'v"1': 0.0}, {'v"1': True})
    assert (
        'mlstack_requests_total{endpoint="ep",version="v\\"1",role="shadow",code="503"} 1' in text
    )
    assert 'le="0.005"} 1' in text and 'le="0.25"} 2' in text and 'le="+Inf"} 2' in text
    assert "mlstack_request_errors_total" in text and "mlstack_backend_up" in text
    assert text.endswith("\n")
