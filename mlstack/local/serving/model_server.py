"""One model version in the KServe Python model server, on loopback.

Run as ``python -m mlstack.local.serving.model_server --model-dir D --name N --port P``. It serves
KServe's V1 (``/v1/models/N:predict``) and V2 / Open Inference Protocol (``/v2/models/N/infer``)
routes with readiness and liveness. Differences from kserve's defaults, on purpose: it binds
127.0.0.1 (kserve binds 0.0.0.0), it does not log every request (kserve logs three lines per
request), and it refuses bodies over a size limit with 413 before reading them.

With ``--max-batch N`` (N > 1) concurrent requests share prediction calls
(``mlstack.local.serving.batching``); every answer then carries ``x-mlstack-batch: <rows in the
call>;<ms queued>``, which the router counts per version.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from mlstack_runtime import serving
from mlstack_runtime.serving import BadInput, ModelMeta, v2_datatype

from mlstack.local.serving.batching import Batcher

DEFAULT_MAX_BODY = 8 * 1024 * 1024
BATCH_HEADER = "x-mlstack-batch"


def build_model(
    name: str, model_dir: Path, version: str, max_batch: int = 1, max_latency: float = 0.005
) -> Any:
    """A ``kserve.Model`` serving the artifact in ``model_dir`` (imports kserve, sklearn late).

    Decoding, prediction and encoding are ``mlstack_runtime.serving``'s, as on every platform;
    this class only adapts them to kserve's request and response types.
    """
    import kserve
    from kserve.errors import InferenceError, InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    loaded = serving.load(model_dir)
    meta: ModelMeta = loaded.meta
    batcher = Batcher(lambda rows: serving.predict(loaded, rows), max_batch, max_latency)

    class TabularModel(kserve.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(name, return_response_headers=True)
            self.meta = meta
            self.ready = True

        def load(self) -> bool:
            self.ready = True
            return True

        def get_input_types(self) -> list[dict[str, Any]]:
            return [
                {"name": c, "datatype": v2_datatype(meta.dtypes[c]), "shape": [-1]}
                for c in meta.columns
            ]

        def get_output_types(self) -> list[dict[str, Any]]:
            return [
                {
                    "name": "predict",
                    "datatype": "BYTES"
                    if meta.task == "classification"
                    and any(isinstance(c, str) for c in meta.classes)
                    else "FP64",
                    "shape": [-1],
                }
            ]

        async def _run(
            self, rows: list[list[Any]], response_headers: dict[str, str] | None
        ) -> list[Any]:
            try:
                if max_batch <= 1:
                    return serving.predict(loaded, rows)
                preds, size, waited = await batcher.submit(rows)
            except serving.ModelError as e:
                raise InferenceError(f"model {name} version {version} failed: {e}") from None
            if response_headers is not None:
                response_headers[BATCH_HEADER] = f"{size};{waited * 1000:.3f}"
            return preds

        async def predict(
            self,
            payload: Any,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> Any:
            try:
                if isinstance(payload, InferRequest):
                    inputs = [
                        {
                            "name": inp.name,
                            "shape": list(inp.shape),
                            "datatype": inp.datatype,
                            # binary tensors (the protocol's extension) arrive as raw bytes
                            "data": inp.as_numpy().ravel().tolist()
                            if inp._raw_data is not None
                            else inp.data,
                        }
                        for inp in payload.inputs
                    ]
                    rows = serving.rows_from_v2(inputs, meta)
                    preds = await self._run(rows, response_headers)
                    t = serving.v2_output(preds)
                    out = InferOutput(t["name"], t["shape"], t["datatype"], t["data"])
                    return InferResponse(
                        response_id=payload.id or "",
                        model_name=name,
                        model_version=version,
                        infer_outputs=[out],
                    )
                rows = serving.decode_payload(payload, meta)
                return serving.encode(await self._run(rows, response_headers), "v1", version)
            except BadInput as e:
                raise InvalidInput(str(e)) from None
            except InvalidInput:
                raise
            except (ValueError, TypeError) as e:  # kserve's tensor decoding of a bad input
                raise InvalidInput(f"bad input: {e}") from None

    return TabularModel()


class _BodyLimit:
    """ASGI middleware: 413 for bodies over the limit, before the app reads them."""

    def __init__(self, app: Any, max_bytes: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = None
        headers = scope.get("headers", ())
        if scope.get("method") == "POST" and not any(
            k in (b"inference-header-content-length", b"ce-specversion") for k, _ in headers
        ):
            # curl -d sends form encoding; an inference body here is always JSON
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            headers.append((b"content-type", b"application/json"))
            scope = dict(scope, headers=headers)
        for k, v in headers:
            if k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    await self._reject(send, 400, "bad content-length")
                    return
        if length is not None and length > self.max_bytes:
            await self._reject(
                send,
                413,
                f"request body of {length} bytes is over the limit of {self.max_bytes} bytes",
            )
            return
        if length is None and scope.get("method") in ("POST", "PUT"):
            # chunked: read it here (bounded) and replay it to the app
            chunks, size = [], 0
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    return
                size += len(msg.get("body", b""))
                if size > self.max_bytes:
                    await self._reject(
                        send, 413, f"request body is over the limit of {self.max_bytes} bytes"
                    )
                    return
                chunks.append(msg.get("body", b""))
                if not msg.get("more_body"):
                    break
            body = b"".join(chunks)
            sent = False

            async def replay() -> Any:
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _reject(send: Any, status: int, message: str) -> None:
        import json

        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def serve(
    model_dir: Path,
    name: str,
    version: str,
    host: str,
    port: int,
    aliases: list[str],
    max_body: int,
    max_batch: int = 1,
    max_latency: float = 0.005,
) -> None:
    # kserve parses sys.argv when imported; keep our flags away from its parser.
    sys.argv = sys.argv[:1]
    import asyncio

    from kserve import ModelServer
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING
    from kserve.protocol.rest.server import RESTServer

    class LoopbackRESTServer(RESTServer):  # type: ignore[misc]
        def _add_middlewares(self, app: Any) -> None:
            # kserve's timing middleware logs every request; a size limit is what we want instead
            app.add_middleware(_BodyLimit, max_bytes=max_body)

    model = build_model(name, model_dir, version, max_batch, max_latency)
    server = ModelServer(
        http_port=port, workers=1, enable_grpc=False, enable_latency_logging=False, grace_period=10
    )
    for noisy in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("kserve").setLevel(logging.WARNING)
    # ModelServer.start() hard-codes host 0.0.0.0; do its steps with our REST server instead.
    server._register_and_check_atleast_one_model_is_ready([model])
    for alias in aliases:
        if alias and alias != name:
            server.register_model(model, name=alias)
    rest = LoopbackRESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        port,
        workers=1,
        grace_period=10,
        event_loop="auto",
        timeout_keep_alive=75,
    )
    rest.config.host = host
    rest.config.access_log = False
    server._rest_server = rest
    server.servers.append(rest.start())
    server.setup_event_loop()
    server.register_signal_handler()
    print(
        f"mlstack model server {name} version {version} on http://{host}:{port} "
        f"(pid {__import__('os').getpid()}, started {time.strftime('%H:%M:%S')})",
        flush=True,
    )
    asyncio.run(server._serve())


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="mlstack-model-server", allow_abbrev=False)
    p.add_argument("--model-dir", required=True, type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--version", default="1")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY)
    p.add_argument("--max-batch", type=int, default=1, help="rows per prediction call; 1: off")
    p.add_argument("--max-latency-ms", type=float, default=5.0, help="longest wait for a batch")
    p.add_argument(
        "--owner", default="", help="the endpoint folder that started it (for pid checks)"
    )
    a = p.parse_args(argv)
    import warnings

    # fastapi warns on every response kserve builds with ORJSONResponse: megabytes of log
    warnings.filterwarnings("ignore", message=r".*ORJSONResponse is deprecated")
    warnings.simplefilter("ignore", DeprecationWarning)
    serve(
        a.model_dir,
        a.name,
        a.version,
        a.host,
        a.port,
        a.alias,
        a.max_body,
        a.max_batch,
        a.max_latency_ms / 1000.0,
    )


if __name__ == "__main__":
    main()
