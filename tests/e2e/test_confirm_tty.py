"""On a terminal, apply and destroy ask first and go ahead only on 'yes' (as Terraform does).
Driven through a real pseudo-terminal with the toy backend."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "toybackend"
SPEC = """\
project: tty
environments:
  dev: {backend: toy}
pipeline:
  stages:
    - {name: a, run: "echo a"}
model: {name: m}
"""


def _on_terminal(root: Path, answer: str, *args: str) -> tuple[int, str]:
    main, child = pty.openpty()
    env = dict(os.environ, PYTHONPATH=str(TOY), NO_COLOR="1", TERM="dumb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlstack.cli.main", *args],
        cwd=root,
        env=env,
        stdin=child,
        stdout=child,
        stderr=child,
        close_fds=True,
    )
    os.close(child)
    seen = b""
    deadline = time.time() + 60
    answered = False
    while time.time() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"Only 'yes' will be accepted" in seen:
            os.write(main, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(main)
    return code, seen.decode(errors="replace")


def _recorded(root: Path) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(TOY))
    out = subprocess.run(
        [sys.executable, "-m", "mlstack.cli.main", "state", "list"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.split()


def test_apply_asks_and_only_yes_goes_ahead(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    code, screen = _on_terminal(tmp_path, "no", "apply")
    assert code == 1 and "cancelled: nothing was changed" in screen
    assert _recorded(tmp_path) == []
    code, screen = _on_terminal(tmp_path, "yes", "apply")
    assert code == 0 and "Apply complete!" in screen, screen
    assert len(_recorded(tmp_path)) == 4
    code, screen = _on_terminal(tmp_path, "yes", "destroy")
    assert code == 0 and "Destroy complete!" in screen, screen
    assert _recorded(tmp_path) == []


RELEASE_SPEC = """\
project: tty
environments:
  dev: {backend: toy}
  staging: {backend: toy, promote_from: dev}
pipeline:
  stages:
    - {name: a, run: "echo a"}
model: {name: m}
deployment: {endpoint: web, strategy: all_at_once}
"""


def test_promote_shows_its_plan_and_asks_like_apply(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(RELEASE_SPEC)
    code, screen = _on_terminal(tmp_path, "yes", "apply", "-e", "dev")
    assert code == 0, screen
    code, screen = _on_terminal(tmp_path, "no", "promote", "dev", "staging")
    assert code == 1 and "cancelled: nothing was changed" in screen, screen
    assert "Promotion of m to staging" in screen and "+ endpoint.web" in screen
    env = dict(os.environ, PYTHONPATH=str(TOY))
    listed = subprocess.run(
        [sys.executable, "-m", "mlstack.cli.main", "state", "list", "-e", "staging"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.stdout.split() == []
    code, screen = _on_terminal(tmp_path, "yes", "promote", "dev", "staging")
    assert code == 0 and "Promoted m v1 (dev)" in screen, screen
