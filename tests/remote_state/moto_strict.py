"""moto's S3 server, made as strict as S3 about conditional writes; run as a script.

moto (5.2) checks ``If-None-Match: *`` and ``If-Match`` on PutObject/DeleteObject, but the check
and the write are two steps on a threaded server and nothing holds them together, so two racing
conditional PUTs may both succeed (not observed in 30 rounds of 8 racing creates here, but not
guaranteed). S3 documents conditional writes as atomic ("Conditional writes", S3 User Guide: when
several conditional writes race, one succeeds and the others get 412 PreconditionFailed or 409
ConditionalRequestConflict). This wrapper makes every object write and delete run one at a time
so moto's check-then-write is atomic too. Listens on 127.0.0.1 only.

Usage: python moto_strict.py PORT
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

_WRITES = threading.Lock()


def serialized(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE"):
            with _WRITES:
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wsgi


def main() -> None:
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        "127.0.0.1", port, serialized(app), threaded=True, request_handler=MotoRequestHandler
    )
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
