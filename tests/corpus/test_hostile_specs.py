"""The hostile spec corpus (``hostile_cases.py``): every input gets its answer from `validate`
within the issue's bounds: at most 5 CPU seconds and 200 MB of peak RSS for the whole
process, exit 1 with the expected message (at its line) and never a traceback or an
"internal error"; or exit 0 for the few inputs that are odd but valid.

All cases run in one worker process that forks a bounded child per case
(``bounded_worker.py``); CPU time rather than wall time is asserted so that a busy machine does
not fail the test. The figures are written to ``MLSTACK_CORPUS_REPORT`` when it is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.corpus.hostile_cases import CASES

HERE = Path(__file__).resolve().parent
CPU_LIMIT_S = 5.0
RSS_LIMIT_KB = 200 * 1024


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("hostile")
    todo = []
    for case in CASES:
        d = base / case.name
        d.mkdir()
        todo.append([case.name, case.make(d)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSTACK_")}
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "200"
    proc = subprocess.run(
        [sys.executable, str(HERE / "bounded_worker.py"), "60"],
        input=json.dumps(todo),
        capture_output=True,
        text=True,
        env=env,
        cwd=base,
        timeout=1200,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = {}
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        out[row["name"]] = row
    report = os.environ.get("MLSTACK_CORPUS_REPORT")
    if report:
        Path(report).write_text(json.dumps(out, indent=1))
    return out


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_spec(case: Any, results: dict[str, dict[str, Any]]) -> None:
    r = results[case.name]
    text = r["output"]
    assert not r["killed"], f"{case.name}: still running after 60 s"
    assert r["cpu"] <= CPU_LIMIT_S, f"{case.name}: {r['cpu']:.2f} CPU s"
    assert r["rss_kb"] <= RSS_LIMIT_KB, f"{case.name}: {r['rss_kb'] / 1024:.0f} MB peak RSS"
    assert "Traceback" not in text and "internal error" not in text, text[:2000]
    assert case.expect in text, text[:2000]
    if case.valid:
        assert r["rc"] == 0, text[:2000]
        return
    assert r["rc"] == 1, text[:2000]
    assert text.startswith("Error: "), text[:2000]
    assert len(text) < 20_000, f"{len(text)} characters of error output"
    if case.line is not None:
        assert f":{case.line}:" in text.splitlines()[0], text[:500]
