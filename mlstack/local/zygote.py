"""The zygote: one process that imports the ML stack once and forks a child per stage.

Importing scikit-learn costs about 1.7 s; paying it per stage would dominate a short pipeline.
The runner starts this process once per run, tells it what to preload, then sends it jobs. Each
job runs in a fresh ``os.fork()`` child (its own process and process group, memory isolated from
the runner and from other stages), so a stage starts in about a millisecond with everything
already imported. The zygote is single-threaded on purpose: forking a threaded process is unsafe.

Protocol (one JSON object per line). Runner -> zygote on stdin::

    {"op": "preload", "modules": [...], "sys_path": [...]}   first line
    {"op": "run", "job": {...}}                              start a stage (job["id"] unique)
    {"op": "cancel"}                                         stop every running stage
    EOF                                                      the runner is gone: kill and exit

Zygote -> runner on stdout::

    {"op": "ready", "failed": {module: error}}
    {"op": "exit", "id": ..., "code": int|null, "signal": int|null, "timeout": bool, "seconds": float}
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import sys
import time
from importlib import import_module
from typing import Any


class Zygote:
    def __init__(self, proto_out: int) -> None:
        self.out = proto_out
        self.sel = selectors.DefaultSelector()
        self.buf = b""
        self.children: dict[
            int, dict[str, Any]
        ] = {}  # pid -> {id, pidfd, deadline, started, timeout}
        self.kill_at: float | None = None  # after a cancel: SIGKILL whoever is left at this time
        self.closing = False

    def send(self, msg: dict[str, Any]) -> None:
        data = (json.dumps(msg) + "\n").encode()
        while data:
            n = os.write(self.out, data)
            data = data[n:]

    def preload(self, msg: dict[str, Any]) -> None:
        for p in reversed(msg.get("sys_path", [])):
            if p not in sys.path:
                sys.path.insert(0, p)
        failed: dict[str, str] = {}
        for m in msg.get("modules", []):
            try:
                import_module(m)
            except Exception as e:  # noqa: BLE001 - the stage that needs it reports it properly
                failed[m] = f"{type(e).__name__}: {e}"
        # Objects imported so far live as long as the zygote: keep the collector from walking
        # (and so copy-on-write duplicating) them in every forked stage.
        gc.collect()
        gc.freeze()
        self.send({"op": "ready", "failed": failed})

    def spawn(self, job: dict[str, Any]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the stage
            code = 70
            try:
                os.setpgid(0, 0)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                self.sel.close()
                os.close(0)
                os.close(self.out)
                from mlstack.local.stage_exec import execute

                code = execute(job)
            except BaseException:  # noqa: BLE001 - whatever happens, never return into the loop
                import traceback

                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)
        try:
            os.setpgid(pid, pid)  # also here, so a kill cannot race the child's own setpgid
        except OSError:
            pass
        pidfd = os.pidfd_open(pid)
        timeout = job.get("timeout")
        now = time.monotonic()
        self.children[pid] = {
            "id": job["id"],
            "pidfd": pidfd,
            "started": now,
            "deadline": now + timeout if timeout else None,
            "timeout": False,
        }
        self.sel.register(pidfd, selectors.EVENT_READ, pid)

    def reap(self, pid: int) -> None:
        info = self.children.pop(pid)
        self.sel.unregister(info["pidfd"])
        os.close(info["pidfd"])
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        self.send(
            {
                "op": "exit",
                "id": info["id"],
                "code": code if code >= 0 else None,
                "signal": -code if code < 0 else None,
                "timeout": info["timeout"],
                "seconds": time.monotonic() - info["started"],
            }
        )

    def kill_all(self, sig: int) -> None:
        for pid in list(self.children):
            _killpg(pid, sig)

    def handle(self, msg: dict[str, Any]) -> None:
        op = msg.get("op")
        if op == "run":
            self.spawn(msg["job"])
        elif op == "cancel":
            self.kill_all(signal.SIGTERM)
            self.kill_at = time.monotonic() + 2.0
        elif op == "preload":
            self.preload(msg)

    def read_commands(self) -> None:
        chunk = os.read(0, 1 << 16)
        if not chunk:  # the runner exited (or was killed): leave nothing running behind it
            self.kill_all(signal.SIGKILL)
            self.closing = True
            self.sel.unregister(0)
            return
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if line.strip():
                self.handle(json.loads(line))

    def loop(self) -> None:
        self.sel.register(0, selectors.EVENT_READ, None)
        while not (self.closing and not self.children):
            now = time.monotonic()
            waits = [
                c["deadline"] - now
                for c in self.children.values()
                if c["deadline"] is not None and not c["timeout"]
            ]
            if self.kill_at is not None:
                waits.append(self.kill_at - now)
            timeout = max(0.0, min(waits)) if waits else None
            for key, _ in self.sel.select(timeout):
                if key.data is None:
                    self.read_commands()
                else:
                    self.reap(key.data)
            now = time.monotonic()
            for pid, c in self.children.items():
                if c["deadline"] is not None and not c["timeout"] and now >= c["deadline"]:
                    c["timeout"] = True
                    _killpg(pid, signal.SIGKILL)
            if self.kill_at is not None and now >= self.kill_at:
                self.kill_all(signal.SIGKILL)
                self.kill_at = None


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def main() -> None:
    # Ctrl-C reaches the runner, which decides; the zygote only obeys "cancel" or EOF.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proto = os.dup(1)
    os.dup2(2, 1)  # a stray print() must not corrupt the protocol
    Zygote(proto).loop()


if __name__ == "__main__":
    main()
