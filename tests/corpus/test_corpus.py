"""Every malformed spec in this folder: `mlstack validate -f FILE` exits 1 with file:line and
the expected message, never a traceback.

Most files run in-process through the real entry point (``mlstack.cli.main.main``: the same
error handling and rendering as the console script, without a process start each); the cases
that are about the file itself (binary, huge, unreadable, missing, a folder) and a sample of the
rest run as real processes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SUBPROCESS = {
    "binary_png.yaml",
    "nul_bytes.yaml",
    "non_utf8.yaml",
    "cycle.yaml",
    "unknown_backend_sagemkr.yaml",
    "yaml_tab_indent.yaml",
    "empty.yaml",
}


def _table() -> list[tuple[str, str | None, str]]:
    rows = []
    for raw in (HERE / "EXPECTED.tsv").read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        name, line, expected = raw.split("\t")
        rows.append((name, None if line == "-" else line, expected))
    return rows


TABLE = _table()


def test_table_covers_every_file() -> None:
    files = {p.name for p in HERE.glob("*.yaml")}
    listed = {name for name, _, _ in TABLE}
    assert files == listed
    assert len(files) >= 30


def _check(rc: int, out: str, err: str, name: str, line: str | None, expected: str) -> None:
    text = out + err
    assert rc == 1, text
    assert "Traceback" not in text
    assert "internal error" not in text, text
    assert expected in text, text
    where = f"{name}:{line}" if line else name
    assert where in err, err
    # the first problem is the one the table names, with its location first on the line
    assert err.startswith("Error: "), err


@pytest.mark.parametrize(("name", "line", "expected"), TABLE, ids=[r[0] for r in TABLE])
def test_malformed_spec(
    name: str,
    line: str | None,
    expected: str,
    tmp_path: Path,
    cli,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copy(HERE / name, tmp_path / name)
    monkeypatch.delenv("MLSTACK_CORPUS_SURELY_UNSET", raising=False)
    monkeypatch.delenv("MLSTACK_DEBUG", raising=False)
    if name in SUBPROCESS:
        proc = cli("validate", "-f", name, cwd=tmp_path)
        _check(proc.returncode, proc.stdout, proc.stderr, name, line, expected)
        return
    from mlstack.cli.main import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["validate", "-f", name])
    cap = capsys.readouterr()
    code = exc.value.code
    _check(code if isinstance(code, int) else 1, cap.out, cap.err, name, line, expected)


def test_many_errors_reported_at_once(tmp_path: Path, cli) -> None:
    shutil.copy(HERE / "many_errors.yaml", tmp_path / "many_errors.yaml")
    proc = cli("validate", "-f", "many_errors.yaml", cwd=tmp_path)
    assert proc.returncode == 1
    assert "many_errors.yaml:6:7: pipeline.stages[0].retries" in proc.stderr
    assert "many_errors.yaml:9:7: unknown key 'timeot'" in proc.stderr


# --- files that cannot be read as a spec at all -------------------------------------------------


def test_missing_file(tmp_path: Path, cli) -> None:
    proc = cli("validate", "-f", "nope.yaml", cwd=tmp_path)
    _check(proc.returncode, proc.stdout, proc.stderr, "nope.yaml", None, "not found")


def test_no_project_file_in_folder(tmp_path: Path, cli) -> None:
    proc = cli("validate", cwd=tmp_path)
    _check(proc.returncode, proc.stdout, proc.stderr, "mlstack.yaml", None, "no mlstack.yaml in")


def test_directory_instead_of_file(tmp_path: Path, cli) -> None:
    (tmp_path / "spec.yaml").mkdir()
    proc = cli("validate", "-f", "spec.yaml", cwd=tmp_path)
    _check(proc.returncode, proc.stdout, proc.stderr, "spec.yaml", None, "is a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_unreadable_file(tmp_path: Path, cli) -> None:
    spec = tmp_path / "locked.yaml"
    spec.write_text("project: demo\n")
    spec.chmod(0)
    try:
        proc = cli("validate", "-f", "locked.yaml", cwd=tmp_path)
    finally:
        spec.chmod(0o644)
    _check(proc.returncode, proc.stdout, proc.stderr, "locked.yaml", None, "cannot read")


def test_fifty_megabyte_file(tmp_path: Path, cli) -> None:
    big = tmp_path / "big.yaml"
    line = b"# " + b"x" * 97 + b"\n"
    with big.open("wb") as fh:
        fh.write(b"project: demo\n")
        fh.write(line * 520_000)  # ~52 MB of comments: valid YAML, absurd as a project file
    assert big.stat().st_size > 50_000_000
    proc = cli("validate", "-f", "big.yaml", cwd=tmp_path)
    _check(proc.returncode, proc.stdout, proc.stderr, "big.yaml", None, "project file is 52.0 MB")


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux /proc")
def test_file_that_fails_to_read(tmp_path: Path, cli) -> None:
    # stat and open succeed but read() fails (EIO): the unreadable case even when running as root
    proc = cli("validate", "-f", "/proc/self/mem", cwd=tmp_path)
    _check(proc.returncode, proc.stdout, proc.stderr, "proc/self/mem", None, "cannot read")
