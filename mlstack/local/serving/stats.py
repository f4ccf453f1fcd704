"""Per-version request counters and latency histograms, cheap enough for the request path.

Two views of the same numbers: cumulative Prometheus series (``/metrics``), and one-second
buckets kept for an hour so the rollout controller can ask "since the step started" and get
error rate and latency percentiles for exactly that window.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from typing import Any

# Fine log-spaced bounds (8 % apart, 50 us .. ~2 min) for percentiles; a percentile is reported
# as the geometric middle of its bucket, so it is within about 4 % of the true value.
_FINE: list[float] = []
_b = 0.00005
while _b < 120.0:
    _FINE.append(_b)
    _b *= 1.08
FINE_BOUNDS: tuple[float, ...] = tuple(_FINE)
PROM_BOUNDS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
WINDOW_SECONDS = 3600


class _Second:
    __slots__ = ("sec", "requests", "errors", "client_errors", "hist")

    def __init__(self, sec: int) -> None:
        self.sec = sec
        self.requests = 0
        self.errors = 0
        self.client_errors = 0
        self.hist: dict[int, int] = {}


class VersionStats:
    """Counters for one (version, role) pair; role is "primary" or "shadow"."""

    __slots__ = (
        "version",
        "role",
        "requests",
        "errors",
        "client_errors",
        "by_code",
        "prom_counts",
        "latency_sum",
        "seconds",
        "_cur",
    )

    def __init__(self, version: str, role: str) -> None:
        self.version = version
        self.role = role
        self.requests = 0
        self.errors = 0
        self.client_errors = 0
        self.by_code: dict[int, int] = {}
        self.prom_counts = [0] * (len(PROM_BOUNDS) + 1)
        self.latency_sum = 0.0
        self.seconds: deque[_Second] = deque(maxlen=WINDOW_SECONDS)
        self._cur: _Second | None = None

    def record(self, now: float, latency: float, status: int) -> None:
        """``status`` 0 means no answer at all (connection failed, timed out)."""
        self.requests += 1
        self.by_code[status] = self.by_code.get(status, 0) + 1
        self.latency_sum += latency
        self.prom_counts[bisect_left(PROM_BOUNDS, latency)] += 1
        sec = int(now)
        cur = self._cur
        if cur is None or cur.sec != sec:
            cur = self._cur = _Second(sec)
            self.seconds.append(cur)
        cur.requests += 1
        if status >= 500 or status == 0:
            self.errors += 1
            cur.errors += 1
        elif status >= 400:
            self.client_errors += 1
            cur.client_errors += 1
        i = bisect_left(FINE_BOUNDS, latency)
        cur.hist[i] = cur.hist.get(i, 0) + 1

    def window(self, since: float, until: float | None = None) -> dict[str, Any]:
        """Requests, errors and latency percentiles (seconds) over whole seconds >= since."""
        first = int(since)
        last = None if until is None else int(until)
        requests = errors = client_errors = 0
        hist: dict[int, int] = {}
        for s in reversed(self.seconds):
            if s.sec < first:
                break
            if last is not None and s.sec > last:
                continue
            requests += s.requests
            errors += s.errors
            client_errors += s.client_errors
            for i, n in s.hist.items():
                hist[i] = hist.get(i, 0) + n
        out: dict[str, Any] = {
            "version": self.version,
            "role": self.role,
            "requests": requests,
            "errors": errors,
            "client_errors": client_errors,
        }
        for q, key in (
            (0.5, "latency_p50"),
            (0.9, "latency_p90"),
            (0.95, "latency_p95"),
            (0.99, "latency_p99"),
        ):
            out[key] = percentile(hist, q)
        return out


BATCH_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class BatchStats:
    """How one version's model servers batched the requests they answered: rows per prediction
    call and time each request queued for its batch, from the header the server sets."""

    __slots__ = ("version", "requests", "rows_counts", "rows_sum", "queue_sum", "queue_max")

    def __init__(self, version: str) -> None:
        self.version = version
        self.requests = 0
        self.rows_counts = [0] * (len(BATCH_BOUNDS) + 1)
        self.rows_sum = 0
        self.queue_sum = 0.0
        self.queue_max = 0.0

    def record(self, rows: int, queued: float) -> None:
        self.requests += 1
        self.rows_counts[bisect_left(BATCH_BOUNDS, rows)] += 1
        self.rows_sum += rows
        self.queue_sum += queued
        self.queue_max = max(self.queue_max, queued)

    def summary(self) -> dict[str, float]:
        n = self.requests or 1
        return {
            "requests": self.requests,
            "mean_batch_rows": self.rows_sum / n,
            "mean_queue_ms": self.queue_sum / n * 1000,
            "max_queue_ms": self.queue_max * 1000,
        }


def percentile(hist: dict[int, int], q: float) -> float | None:
    total = sum(hist.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for i in sorted(hist):
        seen += hist[i]
        if seen >= rank:
            hi = FINE_BOUNDS[i] if i < len(FINE_BOUNDS) else FINE_BOUNDS[-1] * 1.08
            lo = FINE_BOUNDS[i - 1] if i > 0 else hi / 1.08
            return float((lo * hi) ** 0.5)
    return FINE_BOUNDS[-1]


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus_text(
    endpoint: str,
    stats: list[VersionStats],
    weights: dict[str, float],
    healthy: dict[str, bool],
    batching: dict[str, BatchStats] | None = None,
) -> str:
    """The Prometheus text exposition format, version 0.0.4."""
    ep = _esc(endpoint)
    lines = [
        "# HELP mlstack_requests_total Requests answered, by version, role and status code.",
        "# TYPE mlstack_requests_total counter",
    ]
    for s in stats:
        for code, n in sorted(s.by_code.items()):
            lines.append(
                f'mlstack_requests_total{{endpoint="{ep}",version="{_esc(s.version)}",'
                f'role="{s.role}",code="{code}"}} {n}'
            )
    lines += [
        "# HELP mlstack_request_errors_total Server errors (5xx or no answer).",
        "# TYPE mlstack_request_errors_total counter",
    ]
    for s in stats:
        lines.append(
            f'mlstack_request_errors_total{{endpoint="{ep}",version="{_esc(s.version)}",'
            f'role="{s.role}"}} {s.errors}'
        )
    lines += [
        "# HELP mlstack_request_duration_seconds Time from request to answer via the router.",
        "# TYPE mlstack_request_duration_seconds histogram",
    ]
    for s in stats:
        labels = f'endpoint="{ep}",version="{_esc(s.version)}",role="{s.role}"'
        cum = 0
        for bound, n in zip(PROM_BOUNDS, s.prom_counts, strict=False):
            cum += n
            lines.append(f'mlstack_request_duration_seconds_bucket{{{labels},le="{bound}"}} {cum}')
        cum += s.prom_counts[-1]
        lines.append(f'mlstack_request_duration_seconds_bucket{{{labels},le="+Inf"}} {cum}')
        lines.append(f"mlstack_request_duration_seconds_sum{{{labels}}} {s.latency_sum:.6f}")
        lines.append(f"mlstack_request_duration_seconds_count{{{labels}}} {s.requests}")
    lines += [
        "# HELP mlstack_traffic_weight Percent of primary traffic per version.",
        "# TYPE mlstack_traffic_weight gauge",
    ]
    for v, w in sorted(weights.items()):
        lines.append(f'mlstack_traffic_weight{{endpoint="{ep}",version="{_esc(v)}"}} {w}')
    lines += [
        "# HELP mlstack_backend_up Whether the version's model server passes health checks.",
        "# TYPE mlstack_backend_up gauge",
    ]
    for v, ok in sorted(healthy.items()):
        lines.append(f'mlstack_backend_up{{endpoint="{ep}",version="{_esc(v)}"}} {int(ok)}')
    if batching:
        lines += [
            "# HELP mlstack_batch_rows Rows in the prediction call that answered a request.",
            "# TYPE mlstack_batch_rows histogram",
        ]
        for v, b in sorted(batching.items()):
            labels = f'endpoint="{ep}",version="{_esc(v)}"'
            cum = 0
            for bound, n in zip(BATCH_BOUNDS, b.rows_counts, strict=False):
                cum += n
                lines.append(f'mlstack_batch_rows_bucket{{{labels},le="{bound}"}} {cum}')
            lines.append(f'mlstack_batch_rows_bucket{{{labels},le="+Inf"}} {b.requests}')
            lines.append(f"mlstack_batch_rows_sum{{{labels}}} {b.rows_sum}")
            lines.append(f"mlstack_batch_rows_count{{{labels}}} {b.requests}")
        lines += [
            "# HELP mlstack_batch_queue_seconds Time requests waited in the batch queue.",
            "# TYPE mlstack_batch_queue_seconds summary",
        ]
        for v, b in sorted(batching.items()):
            labels = f'endpoint="{ep}",version="{_esc(v)}"'
            lines.append(f"mlstack_batch_queue_seconds_sum{{{labels}}} {b.queue_sum:.6f}")
            lines.append(f"mlstack_batch_queue_seconds_count{{{labels}}} {b.requests}")
    return "\n".join(lines) + "\n"
