"""The suite fails when a process it started outlives it (tests/conftest.py's session check)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from tests.conftest import REPO, SESSION_MARKER, marked_processes

LEAKY_TEST = """
import os, subprocess

def test_starts_a_server_and_forgets_it():
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True, env=dict(os.environ))
    open(os.environ["LEAK_PID_FILE"], "w").write(str(proc.pid))
"""


def test_a_session_whose_test_leaks_a_process_fails_and_the_process_is_stopped(
    tmp_path: Path,
) -> None:
    (tmp_path / "conftest.py").write_text(
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('suite_conftest', {str(REPO / 'tests' / 'conftest.py')!r})\n"
        "suite = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(suite)\n"
        "pytest_sessionfinish = suite.pytest_sessionfinish\n"
    )
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent(LEAKY_TEST))
    session = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        {
            SESSION_MARKER: session,  # its own session: this suite's processes are not its
            "MLSTACK_TEST_LEAK_GRACE": "1",
            "LEAK_PID_FILE": str(tmp_path / "pid"),
            "PYTHONPATH": str(REPO),
        }
    )
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "1 passed" in r.stdout  # the test itself passed; the session did not
    pid = int((tmp_path / "pid").read_text())
    assert f"pid {pid}: sleep 300" in r.stderr and "still running" in r.stderr
    assert pid not in marked_processes(session)  # and it was stopped
