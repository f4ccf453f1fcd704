"""builtin/validate: the spec's ``data.expectations`` compiled to a pandera schema.

Every violation is collected (lazy validation) and reported at once: which column, which check,
how many rows, and a few example rows with their values. A violation stops the run (GateFailed),
so nothing downstream runs and nothing is registered.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from mlstack.errors import GateFailed, Problem
from mlstack.local.stages.common import TABLE, read_table

EXAMPLES = 3


def _type_check(pa: Any, kind: str) -> Any:
    import pandas as pd

    def numeric(s: Any) -> Any:
        return pd.to_numeric(s, errors="coerce")

    if kind == "int":

        def fn(s: Any) -> Any:
            if pd.api.types.is_integer_dtype(s):
                return pd.Series(True, index=s.index)
            n = numeric(s)
            return n.notna() & (n % 1 == 0)
    elif kind == "float":

        def fn(s: Any) -> Any:
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                return pd.Series(True, index=s.index)
            return numeric(s).notna()
    elif kind == "str":

        def fn(s: Any) -> Any:
            return s.map(lambda v: isinstance(v, str))
    elif kind == "bool":

        def fn(s: Any) -> Any:
            if pd.api.types.is_bool_dtype(s):
                return pd.Series(True, index=s.index)
            return s.isin([True, False, 0, 1, "true", "false", "True", "False"])
    else:  # datetime

        def fn(s: Any) -> Any:
            return pd.to_datetime(s, errors="coerce").notna()

    return pa.Check(fn, name=f"type {kind}", error=f"values must be of type {kind}")


def build_schema(expectations: dict[str, Any], table: dict[str, Any]) -> Any:
    """A pandera DataFrameSchema from ``data.expectations`` (column rules) and ``_table``."""
    import pandas as pd
    import pandera.pandas as pa

    columns = {}
    for name, e in expectations.items():
        checks = []
        if e.get("type"):
            checks.append(_type_check(pa, e["type"]))
        if e.get("min") is not None:
            lo = float(e["min"])
            checks.append(
                pa.Check(
                    lambda s, lo=lo: pd.to_numeric(s, errors="coerce") >= lo,
                    name=f"min {lo:g}",
                    error=f"values must be >= {lo:g}",
                )
            )
        if e.get("max") is not None:
            hi = float(e["max"])
            checks.append(
                pa.Check(
                    lambda s, hi=hi: pd.to_numeric(s, errors="coerce") <= hi,
                    name=f"max {hi:g}",
                    error=f"values must be <= {hi:g}",
                )
            )
        allowed = e.get("in_") if e.get("in_") is not None else e.get("in")
        if allowed is not None:
            checks.append(
                pa.Check(
                    lambda s, a=tuple(allowed): s.isin(a),
                    name=f"in {list(allowed)}",
                    error=f"values must be one of {list(allowed)}",
                )
            )
        if e.get("regex"):
            rx = e["regex"]
            checks.append(
                pa.Check(
                    lambda s, rx=rx: s.astype(str).str.fullmatch(rx),
                    name=f"regex {rx}",
                    error=f"values must match {rx}",
                )
            )
        columns[name] = pa.Column(
            None,
            checks=checks,
            nullable=bool(e.get("nullable", True)),
            unique=bool(e.get("unique", False)),
            required=True,
        )
    frame_checks = []
    if table.get("min_rows") is not None:
        n = int(table["min_rows"])
        frame_checks.append(
            pa.Check(
                lambda df, n=n: len(df) >= n,
                name=f"min_rows {n}",
                error=f"at least {n} rows are required",
            )
        )
    if table.get("max_rows") is not None:
        n = int(table["max_rows"])
        frame_checks.append(
            pa.Check(
                lambda df, n=n: len(df) <= n,
                name=f"max_rows {n}",
                error=f"at most {n} rows are allowed",
            )
        )
    return pa.DataFrameSchema(
        columns,
        checks=frame_checks,
        unique=list(table.get("unique") or []) or None,
        strict=bool(table.get("columns_exactly")),
    )


def _fmt(v: Any) -> str:
    try:
        import pandas as pd

        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return "null"
    except (TypeError, ValueError):
        pass
    return repr(v)


def report(failure_cases: Any, rows: int) -> list[Problem]:
    """One problem per (column, check), with a count and example rows."""
    problems: list[Problem] = []
    fc = failure_cases
    fc = fc.assign(column=fc["column"].fillna("(table)").astype(str), check=fc["check"].astype(str))
    for (column, check), group in fc.groupby(["column", "check"], sort=False):
        examples = []
        for _, r in group.head(EXAMPLES).iterrows():
            idx = r.get("index")
            where = f"row {int(idx)}" if idx is not None and idx == idx else "table"
            examples.append(f"{where}: {_fmt(r.get('failure_case'))}")
        n = len(group)
        what = {
            "not_nullable": "null values are not allowed",
            "field_uniqueness": "values must be unique",
        }.get(check, check)
        if check == "column_in_dataframe":
            msg = f"column {_fmt(group['failure_case'].iloc[0])}: missing from the data"
        elif column == "(table)":
            msg = f"table: {what} (it has {rows})"
        else:
            msg = (
                f"column {column!r}: {what}; {n} row{'s' if n != 1 else ''} fail"
                f"{'' if n != 1 else 's'}, e.g. {', '.join(examples)}"
            )
        problems.append(Problem(msg))
    return problems


def run(ctx: Any) -> dict[str, Any]:
    import pandera.pandas as pa

    df = read_table(ctx.require(TABLE, "builtin/ingest"))
    expectations = ctx.data.get("expectations") or {}
    table = ctx.data.get("table") or {}
    schema = build_schema(expectations, table)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandera's own concat of failures
            schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as e:
        problems = report(e.failure_cases, len(df))
        head = (
            f"data validation failed: {len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''} in {ctx.data.get('source', 'the data')} "
            f"({len(df)} rows)"
        )
        problems.insert(
            0,
            Problem(
                head, hint="fix the data or the expectations in mlstack.yaml (data.expectations)"
            ),
        )
        raise GateFailed(head, problems=problems) from None
    summary = {"rows": int(len(df)), "columns_checked": sorted(expectations), "passed": True}
    (ctx.output / "validation.json").write_text(json.dumps(summary, indent=1))
    print(f"validated {len(df)} rows against {len(expectations)} column expectations")
    return summary
