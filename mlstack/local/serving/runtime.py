"""Processes and files behind one endpoint: start, find, health-check and stop them.

Servers and the router run in their own sessions so they outlive the CLI. What runs is written to
``runtime.json`` in the endpoint's folder; a pid is trusted only if that process is alive *and*
its command line is ours (after a reboot, pids are reused by strangers).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlstack.errors import BackendError

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # reaped by poll() while this process lives


def serving_dir(workdir: Path, env: str, endpoint: str) -> Path:
    return Path(workdir) / "envs" / env / "serving" / endpoint


def safe_name(version: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", version)[:80] or "_"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """One deploy at a time per endpoint (the engine's state lock covers the rest)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# --- processes ---------------------------------------------------------------------------------


def spawn(args: list[str], log_path: Path) -> int:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def alive(pid: int | None, marker: str | tuple[str, ...] | None = None) -> bool:
    """Is ``pid`` running, and (when known) is its command line ours: every ``marker`` in it?"""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        # our own child: poll() is exact, and its /proc cmdline may still be ours before exec
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
        if marker is None:
            return True
        args = " ".join(map(str, child.args)) if isinstance(child.args, list) else str(child.args)
        return all(m in args for m in ((marker,) if isinstance(marker, str) else marker))
    else:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
    if marker is not None:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return True  # no /proc (macOS): trust the pid
        markers = (marker,) if isinstance(marker, str) else marker
        if not all(m in cmdline for m in markers):
            return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                return False
        except (OSError, IndexError):
            pass
    return True


def terminate(pid: int | None, marker: str | tuple[str, ...], timeout: float = 15.0) -> None:
    """SIGTERM (graceful), then SIGKILL if it is still there after ``timeout``."""
    if not alive(pid, marker):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid, marker):
            _CHILDREN.pop(pid, None)
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(5)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# --- tiny loopback HTTP helpers (stdlib: the CLI should not pay for httpx here) -----------------


def http_call(
    port: int,
    method: str,
    path: str,
    *,
    host: str = "127.0.0.1",
    body: bytes | None = None,
    timeout: float = 2.0,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def http_json(
    port: int, method: str, path: str, *, host: str = "127.0.0.1", timeout: float = 2.0
) -> dict[str, Any] | None:
    """JSON from a 200 answer, or None if nothing (healthy) answers there."""
    try:
        status, body = http_call(port, method, path, host=host, timeout=timeout)
    except (OSError, http.client.HTTPException):
        return None
    if status != 200:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def ready(port: int, timeout: float = 0.5) -> bool:
    try:
        return http_call(port, "GET", "/v2/health/ready", timeout=timeout)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def admin_host(host: str) -> str:
    """Where the CLI reaches a router listening on ``host`` (a wildcard is reached via loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def raise_backend(message: str, log: Path) -> None:
    tail = log_tail(log)
    raise BackendError(
        message + (f"\n--- last lines of {log} ---\n{tail}" if tail else ""),
        hint=f"see the full log in {log}",
    )
