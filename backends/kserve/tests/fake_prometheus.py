"""A Prometheus HTTP API stand-in (``GET /api/v1/query``) over what the fake ingress served.

Documents followed: Prometheus "HTTP API" (instant queries, the ``success``/``error`` envelope,
``errorType: bad_data`` with 400 for a query it cannot parse, vector results as
``{"metric": {...}, "value": [time, "string"]}``) and Knative Serving's queue-proxy metrics
(``revision_app_request_count`` with ``namespace_name``, ``revision_name``,
``response_code_class``; ``revision_app_request_latencies_bucket`` in milliseconds).

It understands exactly the two query shapes below and rejects every other query as Prometheus
rejects a malformed one; ``histogram_quantile`` is answered with the exact quantile of the
observed latencies rather than interpolated between buckets.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from fake_controllers import Cluster

_COUNT = re.compile(
    r"^sum by \(revision_name, response_code_class\) \(increase\(revision_app_request_count"
    r'\{namespace_name="(?P<ns>[a-z0-9-]+)"\}\[(?P<w>\d+)s\]\)\)$'
)
_QUANTILE = re.compile(
    r"^histogram_quantile\((?P<q>0(\.\d+)?|1), sum by \(le\) \(increase\("
    r'revision_app_request_latencies_bucket\{namespace_name="(?P<ns>[a-z0-9-]+)",'
    r'revision_name=~"(?P<revs>[a-z0-9|-]+)"\}\[(?P<w>\d+)s\]\)\)\)$'
)


class FakePrometheus:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.queries: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        prom = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query).get("query", [""])[0]
                if url.path != "/api/v1/query":
                    code, body = (
                        404,
                        {"status": "error", "errorType": "not_found", "error": "not found"},
                    )
                else:
                    code, body = prom.answer(query)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _samples(self, ns: str, window: int) -> dict[str, list[tuple[float, int, float]]]:
        since = time.time() - window
        with self.cluster.api.lock:
            names = {
                r.name for (n, _), s in self.cluster.isvcs.items() if n == ns for r in s.revisions
            }
            return {
                rev: [x for x in rows if x[0] >= since]
                for rev, rows in self.cluster.served.items()
                if rev in names
            }

    def answer(self, query: str) -> tuple[int, dict[str, Any]]:
        self.queries.append(query)
        now = time.time()
        m = _COUNT.match(query)
        if m:
            result = []
            for rev, rows in sorted(self._samples(m["ns"], int(m["w"])).items()):
                classes: dict[str, int] = {}
                for _, code, _ in rows:
                    cls = f"{code // 100}xx"
                    classes[cls] = classes.get(cls, 0) + 1
                for cls, n in sorted(classes.items()):
                    result.append(
                        {
                            "metric": {"revision_name": rev, "response_code_class": cls},
                            "value": [now, str(float(n))],
                        }
                    )
            return 200, _vector(result)
        m = _QUANTILE.match(query)
        if m:
            revs = set(m["revs"].split("|"))
            lat = sorted(
                secs * 1000.0
                for rev, rows in self._samples(m["ns"], int(m["w"])).items()
                if rev in revs
                for _, _, secs in rows
            )
            if not lat:
                return 200, _vector([])
            idx = min(len(lat) - 1, max(0, int(round(float(m["q"]) * len(lat))) - 1))
            return 200, _vector([{"metric": {}, "value": [now, str(lat[idx])]}])
        return 400, {
            "status": "error",
            "errorType": "bad_data",
            "error": f'invalid parameter "query": parse error: unsupported query {query[:80]!r}',
        }


def _vector(result: list[dict[str, Any]]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": result}}
