"""A proxy in front of fake-gcs-server that makes it as strict as GCS; run as a script.

fake-gcs-server checks ``ifGenerationMatch`` on uploads but ignores it on ``objects.delete``,
which the Cloud Storage JSON API reference ("Objects: delete", "Request preconditions") says
fails with 412 when the live generation differs. This proxy checks that precondition itself
and makes every write and delete run one at a time, so check-then-act is atomic, as GCS
guarantees. Everything else is passed through unchanged. Listens on 127.0.0.1 only.

Usage: python gcs_strict.py LISTEN_PORT UPSTREAM_URL
"""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_WRITES = threading.Lock()
UPSTREAM = ""


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self, method: str, body: bytes | None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        req = urllib.request.Request(
            UPSTREAM + self.path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - 127.0.0.1
                self._reply(r.status, dict(r.headers.items()), r.read())
        except urllib.error.HTTPError as e:
            self._reply(e.code, dict(e.headers.items()), e.read())

    def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes | None:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else None

    def do_GET(self) -> None:
        self._forward("GET", None)

    def do_POST(self) -> None:
        body = self._body()
        with _WRITES:
            self._forward("POST", body)

    def do_PUT(self) -> None:
        body = self._body()
        with _WRITES:
            self._forward("PUT", body)

    def do_PATCH(self) -> None:
        body = self._body()
        with _WRITES:
            self._forward("PATCH", body)

    def do_DELETE(self) -> None:
        with _WRITES:
            url = urllib.parse.urlsplit(self.path)
            want = urllib.parse.parse_qs(url.query).get("ifGenerationMatch")
            if want:
                try:
                    with urllib.request.urlopen(UPSTREAM + url.path, timeout=60) as r:  # noqa: S310
                        live = str(json.loads(r.read())["generation"])
                except urllib.error.HTTPError as e:
                    self._reply(e.code, dict(e.headers.items()), e.read())
                    return
                if live != want[0]:
                    err = {
                        "error": {
                            "code": 412,
                            "message": "conditionNotMet",
                            "errors": [{"reason": "conditionNotMet"}],
                        }
                    }
                    self._reply(412, {"Content-Type": "application/json"}, json.dumps(err).encode())
                    return
            self._forward("DELETE", None)


def main() -> None:
    global UPSTREAM
    port, UPSTREAM = int(sys.argv[1]), sys.argv[2].rstrip("/")
    ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()


if __name__ == "__main__":
    main()
