"""One model version in the KServe Python model server, on loopback.

Run as ``python -m mlstack.local.serving.model_server --model-dir D --name N --port P``. It serves
KServe's V1 (``/v1/models/N:predict``) and V2 / Open Inference Protocol (``/v2/models/N/infer``)
routes with readiness and liveness. Differences from kserve's defaults, on purpose: it binds
127.0.0.1 (kserve binds 0.0.0.0), it does not log every request (kserve logs three lines per
request), and it refuses bodies over a size limit with 413 before reading them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from mlstack.local.serving.artifact import (
    MODEL_FILE,
    BadInput,
    ModelMeta,
    rows_from_instances,
    rows_from_tensors,
    v2_datatype,
)

DEFAULT_MAX_BODY = 8 * 1024 * 1024


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        out: list[Any] = []
        for d in data:
            out.extend(_flatten(d))
        return out
    return list(data) if isinstance(data, (list, tuple)) else [data]


def _check_tensor_type(name: str, datatype: str, values: list[Any], meta: ModelMeta) -> None:
    """A tensor's declared datatype must fit its values and, per column, the column's type."""
    dt = (datatype or "").upper()
    if dt != "BYTES" and any(isinstance(v, (str, bytes)) for v in values):
        raise BadInput(f"input {name!r}: datatype {dt} but the data holds strings")
    col = meta.dtypes.get(name)
    if col == "str" and dt != "BYTES":
        raise BadInput(f"input {name!r}: column is a string, send datatype BYTES (got {dt})")
    if col in ("int", "float", "bool") and dt == "BYTES":
        raise BadInput(f"input {name!r}: column is {col}, got datatype BYTES")


def build_model(name: str, model_dir: Path, version: str) -> Any:
    """A ``kserve.Model`` serving the artifact in ``model_dir`` (imports kserve, sklearn late)."""
    import joblib
    import kserve
    import numpy as np
    import pandas as pd
    from kserve.errors import InferenceError, InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

    meta = ModelMeta.read(model_dir)
    pipeline = joblib.load(model_dir / MODEL_FILE)

    class TabularModel(kserve.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(name)
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

        def _frame(self, rows: list[list[Any]]) -> Any:
            # values are already checked and coerced; build typed columns in one go
            data = {}
            for j, c in enumerate(meta.columns):
                values = [r[j] for r in rows]
                t = meta.dtypes[c]
                if t == "float" or (t == "int" and any(v != v for v in values)):
                    data[c] = np.asarray(values, dtype="float64")
                elif t == "int":
                    data[c] = np.asarray(values, dtype="int64")
                elif t == "bool" and not any(v != v for v in values):
                    data[c] = np.asarray(values, dtype=bool)
                else:
                    data[c] = np.asarray(values, dtype=object)
            return pd.DataFrame(data, copy=False)

        def _run(self, rows: list[list[Any]]) -> list[Any]:
            frame = self._frame(rows)
            try:
                out = pipeline.predict(frame)
            except ValueError as e:  # sklearn's word for "this value cannot be handled"
                raise BadInput(f"the model rejected the input: {e}") from None
            except Exception as e:  # the model itself failed: a server error, not the client's
                raise InferenceError(
                    f"model {name} version {version} failed: {type(e).__name__}: {e}"
                ) from None
            preds: list[Any] = np.asarray(out).tolist()
            return preds

        async def predict(
            self,
            payload: Any,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> Any:
            try:
                if isinstance(payload, InferRequest):
                    tensors = []
                    for inp in payload.inputs:
                        if inp._raw_data is not None:
                            values = inp.as_numpy().ravel().tolist()
                        else:
                            values = _flatten(inp.data)
                        _check_tensor_type(inp.name, inp.datatype, values, meta)
                        tensors.append((inp.name, list(inp.shape), values))
                    preds = self._run(rows_from_tensors(tensors, meta))
                    arr = np.asarray(preds)
                    if arr.dtype.kind in "OUS":
                        out = InferOutput("predict", [len(preds)], "BYTES", [str(p) for p in preds])
                    elif arr.dtype.kind == "b":
                        out = InferOutput("predict", [len(preds)], "BOOL", preds)
                    elif arr.dtype.kind in "iu":
                        out = InferOutput("predict", [len(preds)], "INT64", preds)
                    else:
                        out = InferOutput("predict", [len(preds)], "FP64", preds)
                    return InferResponse(
                        response_id=payload.id or "",
                        model_name=name,
                        model_version=version,
                        infer_outputs=[out],
                    )
                if not isinstance(payload, dict):
                    raise BadInput('expected a JSON object with "instances"')
                instances = payload.get("instances", payload.get("inputs"))
                if instances is None:
                    raise BadInput(
                        'expected {"instances": [...]}: rows as objects keyed by '
                        f"column or lists in column order {list(meta.columns)}"
                    )
                return {
                    "predictions": self._run(rows_from_instances(instances, meta)),
                    "model_version": version,
                }
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

    model = build_model(name, model_dir, version)
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
    p.add_argument(
        "--owner", default="", help="the endpoint folder that started it (for pid checks)"
    )
    a = p.parse_args(argv)
    import warnings

    # fastapi warns on every response kserve builds with ORJSONResponse: megabytes of log
    warnings.filterwarnings("ignore", message=r".*ORJSONResponse is deprecated")
    warnings.simplefilter("ignore", DeprecationWarning)
    serve(a.model_dir, a.name, a.version, a.host, a.port, a.alias, a.max_body)


if __name__ == "__main__":
    main()
