"""The state lock in an object store: one writer per environment across machines (CI runners).

Taking the lock is the store's own atomic operation: S3 ``PUT`` with ``If-None-Match: *``, GCS
upload with ``ifGenerationMatch=0``, an Azure blob lease (409 while another holds it). The lock
object records its holder (the same ``LockInfo`` as the local lock) and a heartbeat the holder
rewrites while it works. Nothing releases the lock of a holder that died (kill -9, a cancelled
runner): the next command reports it stale — its process is gone (same host) or its heartbeat
is older than ``state.stale_after`` — and ``mlstack force-unlock ID`` breaks it, as in Terraform.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace

from mlstack.engine.lock import LockInfo, check_unlock, user_name
from mlstack.engine.objectstore import Conflict, ObjectStore
from mlstack.errors import LockError


def parse(raw: bytes | None) -> LockInfo | None:
    if not raw:
        return None
    try:
        return LockInfo(**json.loads(raw))
    except (ValueError, TypeError):
        return None


def stale_reason(info: LockInfo, stale_after: float) -> str | None:
    """Why a holder looks dead, or None when it may be alive."""
    if info.process_alive() is False:
        return f"its process {info.pid} on {info.host} is gone"
    beat = info.heartbeat or info.created
    age = time.time() - beat
    if age > stale_after:
        return f"no heartbeat for {age:.0f}s (stale after {stale_after:.0f}s)"
    return None


class RemoteLock:
    def __init__(
        self, store: ObjectStore, key: str, operation: str, stale_after: float = 120.0
    ) -> None:
        self.store = store
        self.key = key
        self.operation = operation
        self.stale_after = stale_after
        self.info: LockInfo | None = None
        self.stale: LockInfo | None = None  # never taken over: force-unlock is explicit
        self._token: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._guard = threading.Lock()

    def holder(self) -> LockInfo | None:
        return parse(self.store.lock_read(self.key))

    def acquire(
        self, timeout: float = 0.0, on_wait: Callable[[LockInfo | None], None] | None = None
    ) -> RemoteLock:
        now = time.time()
        info = LockInfo(
            id=uuid.uuid4().hex[:12],
            owner=user_name(),
            pid=os.getpid(),
            host=socket.gethostname(),
            operation=self.operation,
            created=now,
            heartbeat=now,
        )
        deadline = time.monotonic() + max(timeout, 0.0)
        told = False
        while True:
            try:
                self._token = self.store.lock_acquire(self.key, _dump(info))
                break
            except Conflict:
                holder = self.holder()
                if holder is None and time.monotonic() < deadline + 5:
                    time.sleep(0.05)  # released between our attempt and the read: try again
                    continue
                if holder is None:
                    raise LockError(
                        f"state is locked, but the lock record {self.store.url}/{self.key} "
                        "cannot be read",
                        hint="if no run is active, delete that object with the store's tools",
                    ) from None
                if time.monotonic() >= deadline:
                    raise self._held_error(holder) from None
                if on_wait and not told:
                    on_wait(holder)
                    told = True
                time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        self.info = info
        self._beat = threading.Thread(target=self._heartbeat, name="mlstack-lock", daemon=True)
        self._beat.start()
        return self

    def _held_error(self, holder: LockInfo) -> LockError:
        why = stale_reason(holder, self.stale_after)
        where = f"{self.store.url}/{self.key}"
        if why:
            return LockError(
                f"state is locked by a stale lock: {holder.describe()}; {why}",
                hint=f"if its run is really over: mlstack force-unlock {holder.id} ({where})",
            )
        return LockError(
            f"state is locked: {holder.describe()}",
            hint="wait for it to finish, raise --lock-timeout, or if you are sure nobody is "
            f"running: mlstack force-unlock {holder.id}",
        )

    def _heartbeat(self) -> None:
        interval = max(self.stale_after / 4, 0.5)
        while not self._stop.wait(interval):
            with self._guard:
                if self.info is None or self._token is None:
                    return
                beat = replace(self.info, heartbeat=time.time())
                try:
                    self._token = self.store.lock_refresh(self.key, self._token, _dump(beat))
                    self.info = beat
                except Conflict:
                    return  # broken by force-unlock: release will not touch the new holder's
                except Exception:  # noqa: BLE001 - a network blip; the next beat retries
                    continue

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        with self._guard:
            token, self._token = self._token, None
        if token is None:
            return
        try:
            self.store.lock_release(self.key, token)
        except Conflict:
            pass  # someone broke our lock; whatever is there now is theirs

    def __enter__(self) -> RemoteLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def force_unlock(store: ObjectStore, key: str, lock_id: str) -> LockInfo:
    info = check_unlock(parse(store.lock_read(key)), lock_id)
    store.lock_break(key)
    return info


def _dump(info: LockInfo) -> bytes:
    return json.dumps(asdict(info)).encode()
