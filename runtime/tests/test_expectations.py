"""Both validation engines (pandera where installed, plain pandas in images without it) give the
same verdict and the same sentences on the same data."""

from __future__ import annotations

import pandas as pd
import pytest

from mlstack_runtime.expectations import check

RULES = {
    "x": {"type": "float", "min": 0, "max": 10, "nullable": False},
    "n": {"type": "int", "unique": True},
    "size": {"in": ["s", "m", "l"]},
    "code": {"regex": "[A-Z]{2}[0-9]", "type": "str"},
    "flag": {"type": "bool"},
    "gone": {},
}


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.0, -2.0, None, 12.5, 3.0, -1.0],
            "n": [1, 2, 2, 4.5, 5, 6],
            "size": ["s", "xl", "m", None, "l", "xxl"],
            "code": ["AB1", "xx", "CD3", "EF4", 7, "GH5"],
            "flag": [True, "yes", False, 1, 0, "true"],
            "extra": range(6),
        }
    )


@pytest.mark.parametrize(
    "table",
    [
        {},
        {"min_rows": 10, "max_rows": 3},
        {"unique": ["size"], "columns_exactly": True},
    ],
)
def test_pandera_and_pandas_report_the_same_problems(table: dict) -> None:
    pytest.importorskip("pandera")
    by_pandera = check(_frame(), RULES, table, use="pandera")
    by_pandas = check(_frame(), RULES, table, use="pandas")
    assert by_pandera == by_pandas
    text = "\n".join(by_pandas)
    assert "column 'gone': missing from the data" in text
    assert "column 'x': null values are not allowed; 1 row fails, e.g. row 2: null" in text
    assert "column 'x': values must be >= 0; 2 rows fail, e.g. row 1: -2.0, row 5: -1.0" in text
    assert "column 'x': values must be <= 10; 1 row fails, e.g. row 3: 12.5" in text
    assert "column 'n': values must be unique; 2 rows fail, e.g. row 1: 2.0, row 2: 2.0" in text
    assert "column 'n': values must be of type int; 1 row fails, e.g. row 3: 4.5" in text
    assert "column 'size': values must be one of ['s', 'm', 'l']; 2 rows fail" in text
    assert "column 'code': values must be of type str; 1 row fails, e.g. row 4: 7" in text
    assert "column 'flag': values must be of type bool; 1 row fails, e.g. row 1: 'yes'" in text
    if table.get("min_rows"):
        assert "table: at least 10 rows are required (it has 6)" in text
        assert "table: at most 3 rows are allowed (it has 6)" in text
    if table.get("columns_exactly"):
        assert "table: unexpected column(s) extra" in text


def test_good_data_passes_both_engines() -> None:
    pytest.importorskip("pandera")
    df = pd.DataFrame({"x": [0.5, 2.0], "n": [1, 2], "size": ["s", None]})
    rules = {k: RULES[k] for k in ("x", "n", "size")}
    assert check(df, rules, {"min_rows": 2}, use="pandera") == []
    assert check(df, rules, {"min_rows": 2}, use="pandas") == []
