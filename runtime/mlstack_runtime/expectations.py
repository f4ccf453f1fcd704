"""``data.expectations`` checked against a table: every violation, one sentence each.

Two engines give the same sentences: pandera (lazy validation, where it is installed, as on the
local backend) and plain pandas (platform images without pandera). Which one ran never changes
the verdict or the report; ``tests/test_expectations.py`` holds them to that on the same data.
Sentences look like ``column 'x': values must be >= 0; 2 rows fail, e.g. row 3: -1.0, row 9: -2.0``.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

EXAMPLES = 3
TRUTHY = (True, False, 0, 1, "true", "false", "True", "False")


def _fmt(v: Any) -> str:
    try:
        import pandas as pd

        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return "null"
    except (TypeError, ValueError):
        pass
    return repr(v.item() if hasattr(v, "item") else v)


def type_ok(series: Any, kind: str) -> Any:
    """Row by row: does the value have type ``kind`` (int, float, str, bool, datetime)?"""
    import pandas as pd

    if kind == "int":
        if pd.api.types.is_integer_dtype(series):
            return pd.Series(True, index=series.index)
        n = pd.to_numeric(series, errors="coerce")
        return n.notna() & (n % 1 == 0)
    if kind == "float":
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            return pd.Series(True, index=series.index)
        return pd.to_numeric(series, errors="coerce").notna()
    if kind == "str":
        return series.map(lambda v: isinstance(v, str))
    if kind == "bool":
        if pd.api.types.is_bool_dtype(series):
            return pd.Series(True, index=series.index)
        return series.isin(list(TRUTHY))
    return pd.to_datetime(series, errors="coerce").notna()


def column_rules(rule: dict[str, Any]) -> list[tuple[str, Callable[[Any], Any]]]:
    """(what the rule says, row test) for each value rule of one column, in a fixed order."""
    import pandas as pd

    out: list[tuple[str, Callable[..., Any]]] = []
    if rule.get("type"):
        kind = rule["type"]
        out.append((f"values must be of type {kind}", lambda s, k=kind: type_ok(s, k)))
    if rule.get("min") is not None:
        lo = float(rule["min"])
        out.append(
            (f"values must be >= {lo:g}", lambda s, lo=lo: pd.to_numeric(s, errors="coerce") >= lo)
        )
    if rule.get("max") is not None:
        hi = float(rule["max"])
        out.append(
            (f"values must be <= {hi:g}", lambda s, hi=hi: pd.to_numeric(s, errors="coerce") <= hi)
        )
    if rule.get("in") is not None:
        allowed = list(rule["in"])
        out.append((f"values must be one of {allowed}", lambda s, a=tuple(allowed): s.isin(a)))
    if rule.get("regex"):
        rx = rule["regex"]
        out.append((f"values must match {rx}", lambda s, rx=rx: s.astype(str).str.fullmatch(rx)))
    return out


def _rows_sentence(column: str, what: str, rows: list[Any], values: list[Any]) -> str:
    n = len(rows)
    examples = ", ".join(f"row {int(i)}: {_fmt(v)}" for i, v in list(zip(rows, values))[:EXAMPLES])
    return f"column {column!r}: {what}; {n} row{'s' if n != 1 else ''} fail{'' if n != 1 else 's'}, e.g. {examples}"


def check_with_pandas(df: Any, expectations: dict[str, Any], table: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for column, rule in expectations.items():
        if column not in df.columns:
            problems.append(f"column {column!r}: missing from the data")
            continue
        s = df[column]
        present = s.notna()
        if rule.get("nullable", True) is False and (~present).any():
            rows = list(df.index[~present])
            problems.append(
                _rows_sentence(column, "null values are not allowed", rows, [None] * len(rows))
            )
        if rule.get("unique"):
            dup = present & s.duplicated(keep=False)
            if dup.any():
                problems.append(
                    _rows_sentence(
                        column, "values must be unique", list(df.index[dup]), list(s[dup])
                    )
                )
        for what, test in column_rules(rule):
            bad = present & ~test(s).fillna(False).astype(bool)
            if bad.any():
                problems.append(_rows_sentence(column, what, list(df.index[bad]), list(s[bad])))
    problems += _table_problems(df, expectations, table)
    return problems


def _table_problems(df: Any, expectations: dict[str, Any], table: dict[str, Any]) -> list[str]:
    out = []
    rows = len(df)
    if table.get("min_rows") is not None and rows < int(table["min_rows"]):
        out.append(f"table: at least {int(table['min_rows'])} rows are required (it has {rows})")
    if table.get("max_rows") is not None and rows > int(table["max_rows"]):
        out.append(f"table: at most {int(table['max_rows'])} rows are allowed (it has {rows})")
    unique = list(table.get("unique") or [])
    if unique:
        dup = int(df.duplicated(subset=unique, keep=False).sum())
        if dup:
            out.append(f"table: rows must be unique by {unique}; {dup} rows are duplicates")
    if table.get("columns_exactly"):
        extra = [str(c) for c in df.columns if c not in expectations]
        if extra:
            out.append(f"table: unexpected column(s) {', '.join(extra)}")
    return out


def check_with_pandera(df: Any, expectations: dict[str, Any], table: dict[str, Any]) -> list[str]:
    """The same rules as a pandera schema, validated lazily; failures in the same sentences."""
    import pandera.pandas as pa

    columns = {}
    order: dict[tuple[str, str], int] = {}
    for column, rule in expectations.items():
        checks = []
        if rule.get("unique"):
            order[(column, "field_uniqueness")] = len(order)
        for what, test in column_rules(rule):
            checks.append(pa.Check(test, name=what, error=what))
            order[(column, what)] = len(order)
        columns[column] = pa.Column(
            None,
            checks=checks,
            nullable=bool(rule.get("nullable", True)),
            unique=bool(rule.get("unique", False)),
            required=True,
        )
    schema = pa.DataFrameSchema(columns)
    problems: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandera's own concat of failures
            schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as e:
        fc = e.failure_cases
        fc = fc.assign(column=fc["column"].astype(str), check=fc["check"].astype(str))
        found: dict[tuple[str, str], str] = {}
        for (column, check), group in fc.groupby(["column", "check"], sort=False):
            if check == "column_in_dataframe":
                name = str(group["failure_case"].iloc[0])
                found[(name, "")] = f"column {name!r}: missing from the data"
                continue
            if check == "not_nullable":
                what = "null values are not allowed"
            elif check == "field_uniqueness":
                what = "values must be unique"
            else:
                what = check
            rows = [r for r in group["index"]]
            values = list(group["failure_case"])
            key = (column, check)
            found[key] = _rows_sentence(column, what, rows, values)
        # the pandas engine's order: per column, missing / nulls / unique / value rules
        for column in expectations:
            for key in [(column, ""), (column, "not_nullable"), (column, "field_uniqueness")] + [
                (column, w) for w, _ in column_rules(expectations[column])
            ]:
                if key in found:
                    problems.append(found.pop(key))
        problems += list(found.values())
    return problems + _table_problems(df, expectations, table)


def engine() -> str:
    """``pandera`` where it is installed, else ``pandas``."""
    try:
        import pandera.pandas  # noqa: F401
    except ImportError:
        return "pandas"
    return "pandera"


def check(df: Any, expectations: dict[str, Any], table: dict[str, Any], use: str = "") -> list[str]:
    use = use or engine()
    return (check_with_pandera if use == "pandera" else check_with_pandas)(df, expectations, table)
