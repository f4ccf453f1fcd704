"""builtin/split: train / validation / test, random, stratified or time-based, seeded.

Settings come from ``data.split`` (``with:`` may override them): strategy, by, test, validation,
seed. Writes ``train.parquet``, ``validation.parquet`` (possibly empty) and ``test.parquet``.
"""

from __future__ import annotations

import json
from typing import Any

from mlstack.errors import BackendError
from mlstack.local.stages.common import TABLE, TEST, TRAIN, VALIDATION, read_table, write_table


def split_frame(
    df: Any, strategy: str, test: float, validation: float, seed: int, by: str | None
) -> tuple[Any, Any, Any]:
    from sklearn.model_selection import train_test_split

    if by is not None and by not in df.columns:
        raise BackendError(
            f"split by {by!r}: no such column", hint=f"columns: {', '.join(map(str, df.columns))}"
        )
    if strategy == "time":
        ordered = df.sort_values(by, kind="stable")
        n = len(ordered)
        n_test = max(1, round(n * test))
        n_val = round(n * validation)
        train = ordered.iloc[: n - n_test - n_val]
        return train, ordered.iloc[n - n_test - n_val : n - n_test], ordered.iloc[n - n_test :]
    strat = df[by] if strategy == "stratified" else None
    try:
        rest, test_df = train_test_split(df, test_size=test, random_state=seed, stratify=strat)
        if validation > 0:
            strat_rest = rest[by] if strategy == "stratified" else None
            train, val = train_test_split(
                rest, test_size=validation / (1 - test), random_state=seed, stratify=strat_rest
            )
        else:
            train, val = rest, rest.iloc[0:0]
    except ValueError as e:
        raise BackendError(
            f"cannot split the data ({strategy}): {e}",
            hint="use a random split, or more rows per class",
        ) from None
    return train, val, test_df


def run(ctx: Any) -> dict[str, Any]:
    df = read_table(ctx.require(TABLE, "builtin/ingest"))
    cfg = {**(ctx.data.get("split") or {}), **ctx.params}
    strategy = cfg.get("strategy", "random")
    train, val, test = split_frame(
        df,
        strategy,
        float(cfg.get("test", 0.2)),
        float(cfg.get("validation", 0.0)),
        int(cfg.get("seed", 0)),
        cfg.get("by"),
    )
    for frame, name in ((train, TRAIN), (val, VALIDATION), (test, TEST)):
        write_table(frame, ctx.output / name)
    sizes = {"train": int(len(train)), "validation": int(len(val)), "test": int(len(test))}
    (ctx.output / "split.json").write_text(json.dumps({"strategy": strategy, **sizes}))
    print(f"split ({strategy}): {sizes}")
    return sizes
