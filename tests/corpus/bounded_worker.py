"""Run `mlstack validate` on many files, each in its own forked child with bounds measured.

Started as ``python bounded_worker.py`` with a JSON list of ``[name, path]`` on stdin. It imports
what a `validate` process imports once, then forks one child per case (so a case pays no
interpreter start-up and one case cannot poison the next). The child runs the real CLI entry
point with its output sent to a file; the parent waits for it with ``wait4`` and reports, as one
JSON line per case: exit code, CPU seconds, wall seconds, peak RSS (KiB, of the whole child
process, interpreter and imports included), and the output.

Bounds: each child gets RLIMIT_AS (a safety net so a bomb cannot take the machine down) and is
killed after ``--wall`` seconds; the test then asserts the measured CPU time and peak RSS.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import tempfile
import time

AS_LIMIT = 1536 * 1024 * 1024


def run_case(path: str, out_file: str, wall: float) -> dict[str, object]:
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child: bounded, output to a file, the real entry point
        try:
            resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
            fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            from mlstack.cli.main import main

            sys.argv = ["mlstack", "validate", "--no-cache", "-f", path]
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        except BaseException:  # noqa: BLE001 - the child must never return into the parent's code
            os._exit(99)
    killed = False
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            break
        if time.monotonic() - start > wall:
            os.kill(pid, signal.SIGKILL)
            killed = True
            _, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.005)  # polling a child's exit; no result depends on this
    with open(out_file, errors="replace") as fh:
        output = fh.read(200_000)
    return {
        "rc": os.waitstatus_to_exitcode(status),
        "killed": killed,
        "cpu": usage.ru_utime + usage.ru_stime,
        "wall": time.monotonic() - start,
        "rss_kb": usage.ru_maxrss,
        "output": output,
    }


def main() -> None:
    wall = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    cases = json.load(sys.stdin)
    # what a validate process imports before it reads the file
    import mlstack.cli.main  # noqa: F401
    import mlstack.engine.project  # noqa: F401
    import mlstack.manifest.load  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        for name, path in cases:
            res = run_case(path, os.path.join(tmp, "out.txt"), wall)
            res["name"] = name
            print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
