"""An in-memory ``ObjectStore`` with the real stores' conditional semantics, for unit tests of
remote state: versions are counters, a stale ``replace``/``create`` raises ``Conflict``, and
``reads`` counts every ``read`` so tests can pin how often state is fetched."""

from __future__ import annotations

import itertools

from mlstack.engine.objectstore import Blob, Conflict, CreateDeleteLock


class MemoryObjectStore(CreateDeleteLock):
    def __init__(self, url: str = "mem://bucket/prefix") -> None:
        self.url = url
        self.objects: dict[str, Blob] = {}
        self.reads = 0
        self._versions = itertools.count(1)

    def read(self, key: str) -> Blob | None:
        self.reads += 1
        return self.objects.get(key)

    def create(self, key: str, data: bytes) -> str:
        if key in self.objects:
            raise Conflict(key)
        return self._put(key, data)

    def replace(self, key: str, data: bytes, version: str) -> str:
        current = self.objects.get(key)
        if current is None or current.version != version:
            raise Conflict(key)
        return self._put(key, data)

    def delete(self, key: str, version: str | None = None) -> None:
        current = self.objects.get(key)
        if current is None:
            return
        if version is not None and current.version != version:
            raise Conflict(key)
        del self.objects[key]

    def _put(self, key: str, data: bytes) -> str:
        version = str(next(self._versions))
        self.objects[key] = Blob(data, version)
        return version
