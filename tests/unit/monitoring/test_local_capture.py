"""The local router's sampled log read back as columns, answers and request ids."""

from __future__ import annotations

import json
from pathlib import Path

from mlstack.local.capture import read_log


def _line(**kw: object) -> str:
    base = {"ts": 100.0, "version": "1", "role": "primary", "path": "/", "status": 200}
    return json.dumps({**base, **kw})


def test_rows_answers_and_ids(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    lines = [
        _line(
            id="a1", request={"instances": [{"x": 1.0, "c": "s"}]}, response={"predictions": [0]}
        ),
        _line(
            id="b2",
            request={"instances": [[2.0, "m"], [3.0, "l"]]},
            response={"predictions": [1, 0]},
        ),
        _line(
            id="c3",
            request={
                "inputs": [
                    {"name": "x", "shape": [1], "datatype": "FP64", "data": [4.0]},
                    {"name": "c", "shape": [1], "datatype": "BYTES", "data": ["s"]},
                ]
            },
            response={"outputs": [{"name": "predict", "shape": [1], "data": [1]}]},
        ),
        _line(id="d4", role="shadow", request={"instances": [{"x": 9.0, "c": "s"}]}),
        _line(id="e5", status=500, request={"instances": [{"x": 9.0, "c": "s"}]}),
        _line(id="f6", ts=1.0, request={"instances": [{"x": 9.0, "c": "s"}]}),
        _line(request={"instances": [{"x": 5.0, "c": "s"}]}, response={"error": "?"}),
        "not json",
        _line(id="g7", request={"instances": [{"x": 6.0}]}, response={"predictions": [1]}),
    ]
    log.write_text("\n".join(lines) + "\n")
    got = read_log([tmp_path / "absent.jsonl", log], ["x", "c"], since=50.0, limit=100)
    assert got.columns == {
        "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        "c": ["s", "m", "l", "s", "s", None],  # a row without a column: None there
    }
    assert got.predictions == [0, 1, 0, 1, None, 1]
    assert got.ids == ["a1", "b2/0", "b2/1", "c3", None, "g7"]
    newest = read_log([log], ["x", "c"], since=50.0, limit=2)
    assert newest.columns == {"x": [5.0, 6.0], "c": ["s", None]} and newest.ids == [None, "g7"]
    whole = read_log([log], ["x", "c"], since=50.0, limit=3)
    assert whole.columns == {"x": [4.0, 5.0, 6.0], "c": ["s", "s", None]}
    # every row complete: the one-call-per-row transpose
    full = tmp_path / "full.jsonl"
    full.write_text(lines[0] + "\n" + lines[1] + "\n")
    got_full = read_log([full], ["x", "c"], since=50.0, limit=10)
    assert got_full.columns == {"x": [1.0, 2.0, 3.0], "c": ["s", "m", "l"]}
