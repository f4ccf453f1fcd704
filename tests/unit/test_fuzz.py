"""Property-based fuzzing (Hypothesis) of the two parsers hostile input reaches first: the spec
loader (YAML text → values with positions → validated project) and the router's request
parsing (bytes in arbitrary pieces → requests or an HTTP error).

Bounded for `make test`: ``MLSTACK_FUZZ_EXAMPLES`` examples per property (default 150);
`make fuzz` raises it. Properties:

- the loader either returns a project or raises ``SpecError`` whose every problem has a location
  in the file; nothing else escapes (no ``RecursionError``, ``ValueError``, ``KeyError``…);
- the router's connection, fed any bytes in any split, never raises, writes only well-formed
  status lines, and never holds more than its head limit of an unfinished request head.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlstack.errors import SpecError
from mlstack.local.serving.router import LIMITS, ClientConnection
from mlstack.manifest.load import load

EXAMPLES = int(os.environ.get("MLSTACK_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)

# --- spec loader -----------------------------------------------------------------------------

KEYS = [
    "project",
    "pipeline",
    "stages",
    "name",
    "uses",
    "run",
    "needs",
    "data",
    "source",
    "target",
    "deployment",
    "endpoint",
    "strategy",
    "ab",
    "weights",
    "environments",
    "dev",
    "backend",
    "vars",
    "with",
    "gates",
    "retries",
    "timeout",
    "<<",
    "champion",
]
SCALARS = [
    "p",
    "builtin/train",
    "builtin/ingest",
    "local",
    "1e999",
    ".nan",
    "-1",
    "0x1F",
    "9" * 120,
    "'${var.x}'",
    "${env:HOME}",
    "~",
    "true",
    "*a",
    "&a x",
    "!!binary eA==",
    "!foo x",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    "|",
    ">",
    "- ",
    "? ",
    ": ",
    "\t",
    "#",
]


@st.composite
def yamlish(draw: Any) -> str:
    """Text shaped like a spec: mostly keys, indents and scalars an editor could produce."""
    lines = []
    for _ in range(draw(st.integers(0, 30))):
        indent = " " * draw(st.sampled_from([0, 2, 4, 6, 1, 3]))
        kind = draw(st.integers(0, 4))
        key = draw(st.sampled_from(KEYS))
        value = draw(st.sampled_from(SCALARS) | st.text(max_size=12))
        if kind == 0:
            lines.append(f"{indent}{key}: {value}")
        elif kind == 1:
            lines.append(f"{indent}{key}:")
        elif kind == 2:
            lines.append(f"{indent}- {value}")
        elif kind == 3:
            lines.append(f"{indent}- {{{key}: {value}}}")
        else:
            lines.append(value)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-spec")


def _check_spec(spec_dir: Path, data: bytes) -> None:
    path = spec_dir / "mlstack.yaml"
    path.write_bytes(data)
    try:
        load(str(path), environ={"HOME": "/h"}, files=True)
    except SpecError as e:
        for p in e.problems:
            assert p.location is not None and p.location.file == str(path), p
            assert p.message


@FUZZ
@given(text=yamlish())
def test_fuzz_spec_loader_yamlish(spec_dir: Path, text: str) -> None:
    _check_spec(spec_dir, text.encode())


@FUZZ
@given(data=st.binary(max_size=400))
def test_fuzz_spec_loader_bytes(spec_dir: Path, data: bytes) -> None:
    _check_spec(spec_dir, b"project: p\n" + data)


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("[]{}:,-&*!|>'\"#\n abc01?")), max_size=200))
def test_fuzz_spec_loader_punctuation(spec_dir: Path, text: str) -> None:
    _check_spec(spec_dir, text.encode())


# --- router request parsing -----------------------------------------------------------------


class _Transport:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.closed = False
        self.paused = False

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else None

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.out.append(data)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class _Table:
    sticky_key = b"x-user-id"


class _Router:
    """What ClientConnection uses of the router; answers every request 200."""

    def __init__(self) -> None:
        self.max_body = 4096
        self.limits = dict(LIMITS, max_header_bytes=8192.0, max_headers=20.0)
        self.table = _Table()
        self.closing = False
        self.connections: set[Any] = set()
        self.active = 0
        self.handled = 0

    async def handle(self, conn: ClientConnection, req: Any) -> None:
        self.handled += 1
        conn.respond(200, b"{}", req.keep_alive)


METHODS = [b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"CONNECT", b"PRI", b"get"]
PARTS = [
    b"\r\n",
    b"\n",
    b" ",
    b":",
    b"content-length: ",
    b"transfer-encoding: chunked",
    b"expect: 100-continue",
    b"connection: upgrade",
    b"upgrade: h2c",
    b"HTTP/1.1",
    b"HTTP/1.0",
    b"0\r\n\r\n",
    b"ffff\r\n",
    b"x-user-id: 7",
    b"\x00",
    b"\xff",
    b"9" * 30,
]


@st.composite
def http_bytes(draw: Any) -> list[bytes]:
    """A request-like byte stream, cut into pieces at arbitrary points."""
    out = [draw(st.sampled_from(METHODS)), b" /", draw(st.binary(max_size=20)), b" "]
    for _ in range(draw(st.integers(0, 25))):
        out.append(draw(st.sampled_from(PARTS) | st.binary(max_size=30)))
    if draw(st.booleans()):
        out.append(b"x" * draw(st.integers(0, 20_000)))
    data = b"".join(out)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    pieces, last = [], 0
    for c in cuts + [len(data)]:
        pieces.append(data[last:c])
        last = c
    return pieces


def _feed(pieces: list[bytes]) -> tuple[_Router, _Transport, ClientConnection]:
    async def go() -> tuple[_Router, _Transport, ClientConnection]:
        router = _Router()
        transport = _Transport()
        conn = ClientConnection(router)  # type: ignore[arg-type]
        conn.connection_made(transport)
        for piece in pieces:
            conn.data_received(piece)
            # what the parser holds of an unfinished head stays within the limit + one piece
            if conn.in_head:
                assert conn.head_bytes <= router.limits["max_header_bytes"] + len(piece)
        for _ in range(50):  # let queued requests be answered
            if not conn.busy:
                break
            await asyncio.sleep(0)
        conn.connection_lost(None)
        return router, transport, conn

    return asyncio.run(go())


@FUZZ
@given(pieces=http_bytes())
def test_fuzz_router_request_parsing(pieces: list[bytes]) -> None:
    _, transport, _ = _feed(pieces)
    for chunk in transport.out:
        if chunk.startswith(b"HTTP/1.1 "):
            status = int(chunk[9:12])
            assert status in (100, 200, 400, 408, 413, 431), chunk[:100]


@FUZZ
@given(pieces=st.lists(st.binary(max_size=300), max_size=10))
def test_fuzz_router_random_bytes(pieces: list[bytes]) -> None:
    _, transport, _ = _feed(pieces)
    for chunk in transport.out:
        assert chunk.startswith(b"HTTP/1.1 "), chunk[:60]
