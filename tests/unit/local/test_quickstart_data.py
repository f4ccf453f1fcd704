"""The quickstart's data script is deterministic, and sample.json is one of its rows."""

from __future__ import annotations

import hashlib
import json
import runpy
import shutil
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "quickstart"


def test_prepare_data_writes_the_same_bytes_and_sample_json_is_its_first_row(
    tmp_path: Path,
) -> None:
    import pandas as pd

    shutil.copy(QUICKSTART / "prepare_data.py", tmp_path / "prepare_data.py")
    out = runpy.run_path(str(tmp_path / "prepare_data.py"))["main"]()
    first = hashlib.sha256(out.read_bytes()).hexdigest()
    mtime = out.stat().st_mtime_ns
    runpy.run_path(str(tmp_path / "prepare_data.py"))["main"]()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == first
    assert out.stat().st_mtime_ns == mtime  # unchanged data is not rewritten: digests stay cached
    assert b"\r\n" not in out.read_bytes()

    df = pd.read_csv(out)
    sample = json.loads((QUICKSTART / "sample.json").read_text())
    assert len(df) == 569 and len(sample) == 31
    assert list(sample) == [c for c in df.columns if c != "diagnosis"]
    row = df.iloc[0]
    assert all(row[c] == v for c, v in sample.items()), "sample.json is not the CSV's first row"
