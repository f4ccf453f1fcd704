"""On the `local` backend a stage's ``env:`` receives the values of ``${secret:NAME}`` and
``${env:NAME}`` (it received the literal ``${secret:…}`` text), and neither value reaches the
pipeline definition, state, plan output or any file under ``.mlstack``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SECRET = "tok-5f2a9c-must-not-leak"
PLAIN = "env-value-7d1e3b-also-kept-out"

SPEC = """\
project: sec
pipeline:
  stages:
    - name: check
      run: sh steps/check.sh
      env: {TOKEN: "${secret:STAGE_TOKEN}", PLAIN: "x-${env:STAGE_PLAIN}"}
"""

# the stage proves it got the values without printing them (logs are files too)
CHECK = """\
test "$TOKEN" = "%s" || { echo "TOKEN is wrong"; exit 3; }
test "$PLAIN" = "x-%s" || { echo "PLAIN is wrong"; exit 4; }
echo ok > "$MLSTACK_OUTPUT/seen.txt"
"""


def test_stage_env_gets_secret_and_env_values_that_are_never_written(tmp_path: Path) -> None:
    from tests.conftest import make_env

    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "check.sh").write_text(CHECK % (SECRET, PLAIN))
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    env = make_env(STAGE_TOKEN=SECRET, STAGE_PLAIN=PLAIN)
    plan = run_cli("plan", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stderr
    applied = run_cli("apply", "--auto-approve", cwd=tmp_path, env=env, timeout=240)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    for text in (plan.stdout + plan.stderr, applied.stdout + applied.stderr):
        assert SECRET not in text and PLAIN not in text
    checked = 0
    for f in (tmp_path / ".mlstack").rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert SECRET.encode() not in data, f"secret value written to {f}"
            assert PLAIN.encode() not in data, f"${{env:}} value written to {f}"
            checked += 1
    assert checked > 3
    assert (tmp_path / "steps" / "check.sh").exists()
    # an unset secret fails the stage with a clear message, not a literal value
    bad = make_env(STAGE_PLAIN=PLAIN)
    (tmp_path / "steps" / "check.sh").write_text(CHECK % ("other", PLAIN))
    failed = run_cli("apply", "--auto-approve", cwd=tmp_path, env=bad, timeout=240)
    assert failed.returncode == 1
    assert "'STAGE_TOKEN' is not set" in failed.stdout + failed.stderr, (
        failed.stdout + failed.stderr
    )
    assert "Traceback" not in failed.stderr
