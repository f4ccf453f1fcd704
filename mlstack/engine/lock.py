"""The state lock: one writer per environment, and it says who holds it.

An ``flock`` on ``<env>.lock`` is the lock itself, so the kernel releases it when its owner dies
(kill -9 included). The file's content records the holder (id, owner, pid, host, operation,
time) so a waiting command can name it, and so we can tell a stale record (its process is dead)
from a live one.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlstack.errors import LockError


@dataclass(frozen=True)
class LockInfo:
    id: str
    owner: str
    pid: int
    host: str
    operation: str
    created: float
    heartbeat: float = 0.0  # remote locks: when the holder last said it is alive

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))
        return (
            f"{self.operation} by {self.owner} (pid {self.pid} on {self.host}, since {when}, "
            f"lock id {self.id})"
        )

    def process_alive(self) -> bool | None:
        """True/False on this host; None when the holder is on another host."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class StateLock:
    def __init__(self, path: Path, operation: str) -> None:
        self.path = path
        self.operation = operation
        self._fd: int | None = None
        self.info: LockInfo | None = None
        self.stale: LockInfo | None = None  # a dead holder's record we took over

    def acquire(
        self, timeout: float = 0.0, on_wait: Callable[[LockInfo | None], None] | None = None
    ) -> StateLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(timeout, 0.0)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = read_info(self.path)
                if time.monotonic() >= deadline:
                    os.close(fd)
                    who = holder.describe() if holder else "another process"
                    raise LockError(
                        f"state is locked: {who}",
                        hint="wait for it to finish, raise --lock-timeout, or if you are sure "
                        f"nobody is running: mlstack force-unlock {holder.id if holder else 'ID'}",
                    ) from None
                if on_wait and not told:
                    on_wait(holder)
                    told = True
                time.sleep(0.1)
        previous = read_info(self.path)
        if previous is not None and previous.process_alive() is False:
            self.stale = previous
        self.info = LockInfo(
            id=uuid.uuid4().hex[:12],
            owner=user_name(),
            pid=os.getpid(),
            host=socket.gethostname(),
            operation=self.operation,
            created=time.time(),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(self.info)).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def read_info(path: Path) -> LockInfo | None:
    try:
        raw = path.read_text()
    except OSError:
        return None
    if not raw.strip():
        return None
    try:
        return LockInfo(**json.loads(raw))
    except (ValueError, TypeError):
        return None


def is_held(path: Path) -> bool:
    """Whether some live process holds the flock right now."""
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def force_unlock(path: Path, lock_id: str) -> LockInfo:
    info = check_unlock(read_info(path), lock_id)
    path.unlink()  # a live holder keeps its flock on the old inode; new writers use a new file
    return info


def check_unlock(info: LockInfo | None, lock_id: str) -> LockInfo:
    """The lock ``force-unlock ID`` may remove: there is one, and ID is its id."""
    if info is None:
        raise LockError("the state is not locked", hint="nothing to do")
    if info.id != lock_id:
        raise LockError(
            f"lock id {lock_id!r} does not match the current lock ({info.describe()})",
            hint=f"mlstack force-unlock {info.id}",
        )
    return info


def user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return f"uid{os.getuid()}"
