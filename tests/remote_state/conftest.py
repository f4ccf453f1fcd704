"""Servers for the remote-state tests: one of each per session, started on first use."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.remote_state import servers

BUCKET = "mlstack-state"
KINDS = ("s3", "gcs", "azblob")


@pytest.fixture(scope="session")
def _servers() -> Iterator[dict[str, servers.Server]]:
    started: dict[str, servers.Server] = {}
    with ExitStack() as stack:

        def get(kind: str) -> servers.Server:
            if kind not in started:
                srv = stack.enter_context(servers.STARTERS[kind]())
                with pytest.MonkeyPatch.context() as mp:
                    for k, v in srv.env.items():
                        mp.setenv(k, v)
                    servers.make_bucket(srv, BUCKET)
                started[kind] = srv
            return started[kind]

        yield get  # type: ignore[misc]


@pytest.fixture(params=KINDS)
def remote(request: pytest.FixtureRequest, _servers, monkeypatch: pytest.MonkeyPatch):
    """A running store of each kind, its client environment set in this process, and a
    `state:` block (a fresh prefix per test) that points at it."""
    srv = _servers(request.param)
    for k, v in srv.env.items():
        monkeypatch.setenv(k, v)
    where = "container" if srv.kind == "azblob" else "bucket"
    block = {"backend": srv.kind, where: BUCKET, "prefix": f"t-{uuid.uuid4().hex[:10]}"}
    return srv, block
