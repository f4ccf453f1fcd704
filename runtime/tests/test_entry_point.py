"""``python -m mlstack_runtime``: bad settings and arguments are clear errors, exit 1, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlstack_runtime", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("settings", "args", "message"),
    [
        (None, [], "cannot read the stage settings"),
        ("{not json", [], "not JSON"),
        ('{"stage": "x"}', [], 'expected an object with a "stage" mapping'),
        ('{"format": "mlstack-stage/9", "stage": {"name": "s"}}', [], "settings format"),
        ('{"stage": {"name": "other"}}', [], "holds the settings of stage 'other', not 's'"),
        ('{"stage": {"name": "s", "uses": "builtin/ingest"}}', [], "no output folder"),
        ('{"stage": {"name": "s", "uses": "builtin/nope"}}', ["--outputs", "o"], "not a built-in"),
        (
            '{"stage": {"name": "s", "uses": "builtin/split"}}',
            ["--outputs", "o", "--input", "x"],
            "write it as NAME=DIR",
        ),
        (
            '{"stage": {"name": "s", "uses": "builtin/split"}}',
            ["--outputs", "o"],
            "needs table.parquet, which no earlier stage produced",
        ),
        (
            '{"stage": {"name": "s", "uses": "builtin/ingest"}, "data": {"source": "d.csv"}}',
            ["--outputs", "o"],
            "data source 'd.csv' not found",
        ),
    ],
)
def test_bad_input_is_a_clear_error(
    tmp_path: Path, settings: str | None, args: list[str], message: str
) -> None:
    spec = tmp_path / "s.json"
    if settings is not None:
        spec.write_text(settings)
    failure = tmp_path / "failure"
    r = _run(tmp_path, "s", "--spec", str(spec), "--failure-file", str(failure), *args)
    assert r.returncode == 1, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
    assert message in failure.read_text()


def test_a_command_stage_gets_its_world_in_the_environment(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    for folder in ("prep", "code", "data", "runtime"):  # a stage may be called "code"
        (inputs / folder).mkdir(parents=True)
    stage = {
        "name": "report",
        "run": 'echo "$MLSTACK_PARAM_DEPTH $(basename $MLSTACK_INPUT_PREP)'
        " $(basename $MLSTACK_INPUT_CODE) $(basename $MLSTACK_INPUT_DATA)"
        ' ${MLSTACK_INPUT_RUNTIME:-none}" > "$MLSTACK_OUTPUT/out.txt"'
        ' && echo \'{"score": 0.5}\' > "$MLSTACK_METRICS_FILE"',
        "with": {"depth": 3},
    }
    (tmp_path / "s.json").write_text(json.dumps({"stage": stage, "inputs": ["prep", "code"]}))
    r = _run(tmp_path, "report", "--spec", "s.json", "--inputs", "inputs", "--outputs", "out")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "out.txt").read_text() == "3 prep code data none\n"
    assert json.loads((tmp_path / "out" / "metrics.json").read_text()) == {"score": 0.5}
