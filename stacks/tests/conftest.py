"""Shared fixtures for the Pulumi stack tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _event_loop() -> Iterator[None]:
    """Give each stack test a fresh event loop of its own.

    Pulumi's mocks create futures through ``asyncio.get_event_loop()``. Once any earlier test in
    the same process has used ``asyncio.run`` (the serving and fuzz tests do), the main thread has
    no current loop and that call raises, so the stack tests failed only when run after them.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        asyncio.set_event_loop(None)
        loop.close()
