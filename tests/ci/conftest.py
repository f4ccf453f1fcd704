"""A moto S3 server (strict about conditional writes) for the workflow tests, per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.remote_state import servers


@pytest.fixture(scope="module")
def s3_state() -> Iterator[servers.Server]:
    with servers.s3() as srv, pytest.MonkeyPatch.context() as mp:
        for k, v in srv.env.items():
            mp.setenv(k, v)
        servers.make_bucket(srv, "ci-state")
        yield srv
