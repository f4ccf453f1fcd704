"""Labels by request id: reading CSV/Parquet (with file:line errors), storing, the live metric."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlstack.errors import MlstackError
from mlstack.monitoring import feedback


def test_csv_labels_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("request_id,label\nab12,1\ncd34,0\n\nef56,cat\n")
    assert feedback.read_labels(f) == [("ab12", 1), ("cd34", 0), ("ef56", "cat")]
    feedback.store(tmp_path, "dev", "ep", feedback.read_labels(f))
    feedback.store(tmp_path, "dev", "ep", [("ab12", 0)])  # sent again: replaces
    assert feedback.load(tmp_path, "dev", "ep") == {"ab12": 0, "cd34": 0, "ef56": "cat"}
    assert feedback.load(tmp_path, "prod", "ep") == {}


def test_parquet_labels(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    f = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"request_id": ["a", "b"], "label": [1.5, 2.5]}), f)
    assert feedback.read_labels(f) == [("a", 1.5), ("b", 2.5)]


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("id,label\na,1\n", ":1", "no column request_id"),
        ("request_id,label\na,1\nb\n", ":3", "1 field(s)"),
        ("request_id,label\na,1\n,0\n", ":3", "empty request_id"),
        ("", ":1", "empty"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path: Path, text: str, where: str, what: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(MlstackError) as e:
        feedback.read_labels(f)
    rendered = e.value.render()
    assert f"{f}{where}" in rendered and what in rendered


def test_live_classification_metrics_match_sklearn() -> None:
    from sklearn.metrics import accuracy_score, f1_score

    pred = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
    true = [1, 0, 0, 1, 0, 1, 1, 0, 0, 1]
    ids = [f"r{i}" for i in range(10)]
    labels = dict(zip(ids, true, strict=True))
    lq = feedback.live_quality(
        "classification", pred + [1], ids + [None], labels, {"accuracy": 0.9, "f1": 0.88}
    )
    assert lq is not None and lq.labelled == 10
    assert lq.metrics["accuracy"] == pytest.approx(accuracy_score(true, pred))
    assert lq.metrics["f1"] == pytest.approx(f1_score(true, pred, pos_label=1))
    assert lq.evaluation == {"accuracy": 0.9, "f1": 0.88}
    multi_p, multi_t = [0, 1, 2, 2, 1, 0], [0, 2, 2, 2, 1, 1]
    m = feedback.classification_metrics(multi_p, multi_t)
    assert m["f1"] == pytest.approx(f1_score(multi_t, multi_p, average="weighted"))


def test_live_regression_rmse_and_nothing_labelled() -> None:
    lq = feedback.live_quality("regression", [1.0, 2.0], ["a", "b"], {"a": 2.0, "b": 4.0}, {})
    assert lq is not None and lq.metrics == {"rmse": pytest.approx((2.5) ** 0.5)}
    assert feedback.live_quality("regression", [1.0], ["a"], {"z": 1.0}, {}) is None
