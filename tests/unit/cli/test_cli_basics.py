"""The CLI's contract: exit codes, help, did-you-mean, plain output when piped, --debug."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstack.cli.main import COMMANDS, main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    cap = capsys.readouterr()
    code = e.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), cap.out, cap.err


def test_help_lists_every_command_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for name in COMMANDS:
        assert name in out
    assert "Exit codes: 0 success; 1 error" in out


def test_every_command_has_working_help(capsys: pytest.CaptureFixture[str]) -> None:
    for name in COMMANDS:
        code, out, err = run([name, "--help"], capsys)
        assert code == 0, (name, err)
        assert "Usage: mlstack" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.startswith("mlstack ")


def test_unknown_command_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["aply"], capsys)
    assert code == 1
    assert "No such command 'aply'. Did you mean 'apply'?" in err


def test_usage_error_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["plan", "--no-such-flag"], capsys)
    assert code == 1 and "No such option" in err


def test_schema_is_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schema"], capsys)
    body = json.loads(out)
    assert code == 0 and body["title"] == "mlstack.yaml" and "pipeline" in body["properties"]


def test_unknown_environment_suggests(toy_project: Path, cli) -> None:
    proc = cli("plan", "-e", "dve", cwd=toy_project)
    assert proc.returncode == 1
    assert "no environment 'dve'" in proc.stderr and "did you mean 'dev'?" in proc.stderr


def test_env_and_file_from_environment_variables(
    toy_project: Path, tmp_path: Path, cli, toy_env
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = toy_env(MLSTACK_FILE=str(toy_project / "mlstack.yaml"), MLSTACK_ENV="dev")
    proc = cli("plan", cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Plan: 4 to add" in proc.stdout


def test_piped_output_is_plain_text(toy_project: Path, cli, toy_env) -> None:
    env = toy_env()
    env.pop("NO_COLOR")
    env["TERM"] = "xterm-256color"
    proc = cli("plan", cwd=toy_project, env=env)
    assert proc.returncode == 0
    assert "\x1b[" not in proc.stdout + proc.stderr
    failed = cli("plan", "-e", "nope", cwd=toy_project, env=env)
    assert "\x1b[" not in failed.stderr and failed.stderr.startswith("Error: ")


def test_user_error_has_no_traceback_unless_debug(toy_project: Path, cli, toy_env) -> None:
    (toy_project / "mlstack.yaml").write_text("project: Bad Name\n")
    plain = cli("validate", cwd=toy_project)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    debug = cli("--debug", "validate", cwd=toy_project)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert "'Bad Name' is not a valid name" in debug.stderr
    via_env = cli("validate", cwd=toy_project, env=toy_env(MLSTACK_DEBUG="1"))
    assert "Traceback" in via_env.stderr


def test_validate_json_and_all_environments(tmp_path: Path, cli) -> None:
    (tmp_path / "mlstack.yaml").write_text(
        "project: demo\nenvironments:\n  dev: {backend: toy}\n  prod: {backend: toy, "
        "promote_from: dev, flavor: x}\n"
    )
    bad = cli("validate", cwd=tmp_path)
    assert bad.returncode == 1
    assert "mlstack.yaml:4:" in bad.stderr
    assert "unknown setting 'flavor' for backend 'toy'; did you mean 'flavour'?" in bad.stderr
    (tmp_path / "mlstack.yaml").write_text(
        "project: demo\nenvironments:\n  dev: {backend: toy}\n  prod: {backend: toy}\n"
    )
    good = cli("validate", "--json", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["environments"] == ["dev", "prod"]


def test_bad_var_flag(toy_project: Path, cli) -> None:
    proc = cli("plan", "--var", "novalue", cwd=toy_project)
    assert proc.returncode == 1 and "write it as NAME=VALUE" in proc.stderr
