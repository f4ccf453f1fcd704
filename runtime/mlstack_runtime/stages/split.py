"""builtin/split: train / validation / test, random, stratified or time-based, seeded.

Settings come from ``data.split`` (``with:`` may override them): strategy, by, test, validation,
seed. Writes ``train.parquet``, ``validation.parquet`` (possibly empty), ``test.parquet`` and
``split.json``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from mlstack_runtime.artifacts import (
    SPLIT_INFO,
    TABLE,
    TEST,
    TRAIN,
    VALIDATION,
    read_table,
    write_table,
)
from mlstack_runtime.errors import StageError


def split_frame(
    df: Any, strategy: str, test: float, validation: float, seed: int, by: Optional[str]
) -> tuple[Any, Any, Any]:
    from sklearn.model_selection import train_test_split

    if by is not None and by not in df.columns:
        raise StageError(
            f"split by {by!r}: no such column", hint=f"columns: {', '.join(map(str, df.columns))}"
        )
    if strategy == "time":
        ordered = df.sort_values(by, kind="mergesort")  # stable
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
        raise StageError(
            f"cannot split the data ({strategy}): {e}",
            hint="use a random split, or more rows per class",
        ) from None
    return train, val, test_df


def run(job: Any) -> dict[str, Any]:
    df = read_table(job.require(TABLE, "builtin/ingest"))
    spec = job.data.get("split") or {}

    def pick(key: str, default: Any = None) -> Any:  # `with:` first, then data.split
        return job.setting(key, spec.get(key, default))

    strategy = str(pick("strategy") or "random")
    train, val, test = split_frame(
        df,
        strategy,
        float(pick("test", 0.2)),
        float(pick("validation") or 0.0),
        int(pick("seed") or 0),
        pick("by"),
    )
    for frame, name in ((train, TRAIN), (val, VALIDATION), (test, TEST)):
        write_table(frame, job.output / name)
    sizes = {"train": int(len(train)), "validation": int(len(val)), "test": int(len(test))}
    (job.output / SPLIT_INFO).write_text(json.dumps({"strategy": strategy, **sizes}))
    print(f"split ({strategy}): {sizes}")
    return sizes
