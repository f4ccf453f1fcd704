"""Built-in stages: ingest formats and URLs, split strategies, validation rules, tune + regression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstack.local.runner import Runner, read_logs
from mlstack.local.store import ArtifactStore
from tests.unit.local.conftest import cancer_frame


def _run(root: Path, definition: dict) -> tuple:
    out = Runner(root / ".mlstack", "dev", root, definition).run()
    return out, ArtifactStore(root / ".mlstack")


def test_ingest_reads_parquet_json_and_fsspec_urls(tmp_path: Path) -> None:
    df = cancer_frame(rows=120)
    df.to_parquet(tmp_path / "d.parquet")
    df.to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    sources = {"pq": "d.parquet", "js": "d.jsonl", "url": (tmp_path / "d.parquet").as_uri()}
    stages = [
        {"name": f"ingest-{k}", "kind": "ingest", "needs": [], "with": {"source": v}}
        for k, v in sources.items()
    ]
    out, store = _run(tmp_path, {"stages": stages})
    assert out.status == "succeeded", out.first_failure()
    infos = {
        k: json.loads(
            (
                store.object_path(out.stages[f"ingest-{k}"].entry["output"]) / "dataset.json"
            ).read_text()
        )
        for k in sources
    }
    for info in infos.values():
        assert info["rows"] == 120 and set(info["schema"]) == set(df.columns)
        assert info["digest"].startswith("sha256:")
    assert infos["pq"]["digest"] == infos["url"]["digest"]
    assert infos["js"]["format"] == "json"


def test_ingest_of_a_missing_file_says_where_it_looked(tmp_path: Path) -> None:
    out, _ = _run(
        tmp_path,
        {
            "stages": [
                {"name": "ingest", "kind": "ingest", "needs": [], "with": {"source": "nope.csv"}}
            ]
        },
    )
    assert out.status == "failed"
    assert "data source 'nope.csv' not found" in out.stages["ingest"].error["message"]


@pytest.mark.parametrize("strategy", ["random", "stratified", "time"])
def test_split_strategies_are_seeded_and_disjoint(strategy: str) -> None:
    from mlstack_runtime.stages.split import split_frame

    df = cancer_frame(rows=200).reset_index(drop=True)
    df["t"] = range(200)
    by = {"random": None, "stratified": "diagnosis", "time": "t"}[strategy]
    train, val, test = split_frame(df, strategy, 0.25, 0.15, 3, by)
    again = split_frame(df, strategy, 0.25, 0.15, 3, by)
    assert list(test.index) == list(again[2].index)
    assert len(train) + len(val) + len(test) == 200
    assert not set(train.index) & set(test.index) and not set(val.index) & set(test.index)
    assert len(test) == 50 and len(val) == 30
    if strategy == "time":
        assert train["t"].max() < val["t"].min() and val["t"].max() < test["t"].min()
    if strategy == "stratified":
        assert abs(test["diagnosis"].mean() - df["diagnosis"].mean()) < 0.03


def test_validation_rules_regex_unique_rows_and_missing_column() -> None:
    import pandas as pd
    from mlstack_runtime.expectations import check

    df = pd.DataFrame({"id": [1, 2, 2], "code": ["AB1", "xx", "CD3"], "n": [1.5, 2.0, 3.0]})
    rules = {
        "id": {"unique": True},
        "code": {"regex": "[A-Z]{2}[0-9]"},
        "n": {"type": "int"},
        "gone": {},
    }
    problems = check(df, rules, {"min_rows": 5}, use="pandera")
    assert problems == check(df, rules, {"min_rows": 5}, use="pandas")
    text = "\n".join(problems)
    assert "column 'gone': missing from the data" in text
    assert "table: at least 5 rows are required (it has 3)" in text
    assert "column 'id': values must be unique" in text
    assert "column 'code': values must match [A-Z]{2}[0-9]; 1 row fails, e.g. row 1: 'xx'" in text
    assert "column 'n': values must be of type int; 1 row fails, e.g. row 0: 1.5" in text
    good = {"id": {"type": "int", "min": 0}, "code": {"type": "str"}}
    assert check(df.drop_duplicates("id"), good, {}, use="pandera") == []
    assert check(df.drop_duplicates("id"), good, {}, use="pandas") == []


def test_tune_feeds_best_params_to_train_and_evaluate_measures_regression(tmp_path: Path) -> None:
    df = cancer_frame(rows=200)
    (tmp_path / "d.csv").write_text(df.to_csv(index=False))
    definition = {
        "data": {
            "source": "d.csv",
            "target": "mean_area",
            "split": {"strategy": "random", "test": 0.25, "validation": 0.2, "seed": 1},
        },
        "stages": [
            {"name": "ingest", "kind": "ingest", "needs": []},
            {"name": "split", "kind": "split", "needs": ["ingest"]},
            {
                "name": "features",
                "kind": "features",
                "needs": ["split"],
                "with": {"numeric": ["mean_radius", "mean_texture"], "categorical": ["tumor_size"]},
            },
            {
                "name": "tune",
                "kind": "tune",
                "needs": ["features"],
                "with": {"trials": 4, "metric": "rmse", "space": {"alpha": [0.01, 10.0]}},
            },
            {
                "name": "train",
                "kind": "train",
                "needs": ["tune"],
                "with": {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 1.0}},
            },
            {
                "name": "evaluate",
                "kind": "evaluate",
                "needs": ["train"],
                "gates": ["r2 >= 0.5", "rmse < 1000"],
            },
        ],
    }
    out, store = _run(tmp_path, definition)
    assert out.status == "succeeded", out.first_failure()
    best = json.loads(
        (store.object_path(out.stages["tune"].entry["output"]) / "best_params.json").read_text()
    )
    assert best["metric"] == "rmse" and best["trials"] == 4 and "alpha" in best["params"]
    meta = json.loads(
        (store.object_path(out.stages["train"].entry["output"]) / "mlstack-model.json").read_text()
    )
    assert meta["task"] == "regression" and meta["params"]["alpha"] == best["params"]["alpha"]
    assert "using tuned params" in read_logs(tmp_path / ".mlstack", "dev", "train")
    metrics = out.stages["evaluate"].entry["metrics"]
    assert set(metrics) == {"rmse", "mae", "r2"} and metrics["r2"] > 0.5


def test_unknown_estimator_says_what_to_install(tmp_path: Path) -> None:
    df = cancer_frame(rows=100)
    (tmp_path / "d.csv").write_text(df.to_csv(index=False))
    definition = {
        "data": {"source": "d.csv", "target": "diagnosis", "split": {"test": 0.3}},
        "stages": [
            {"name": "ingest", "kind": "ingest", "needs": []},
            {"name": "split", "kind": "split", "needs": ["ingest"]},
            {"name": "features", "kind": "features", "needs": ["split"]},
            {
                "name": "train",
                "kind": "train",
                "needs": ["features"],
                "with": {"estimator": "notinstalledpkg.Model"},
                "retries": 2,
            },
        ],
    }
    out, _ = _run(tmp_path, definition)
    train = out.stages["train"]
    err = train.error
    assert (
        out.status == "failed"
        and "cannot import estimator 'notinstalledpkg.Model'" in err["message"]
    )
    assert "pip install notinstalledpkg" in err["problems"][0]["hint"]
    # a wrong setting fails the same way every time: reported at once, not retried
    assert train.attempts == 1 and err["config"] and err["setting"] == "with.estimator"


def test_estimator_params_are_checked_before_training() -> None:
    from mlstack_runtime.errors import StageConfigError
    from mlstack_runtime.estimators import make_estimator

    lr = "sklearn.linear_model.LogisticRegression"
    assert make_estimator(lr, {"max_iter": 50}).max_iter == 50
    with pytest.raises(StageConfigError) as e:
        make_estimator(lr, {"max_iterations": 50})
    assert e.value.setting == "with.params" and "max_iterations" in str(e.value)
    with pytest.raises(StageConfigError) as e:
        make_estimator(lr, {"max_iter": "many"})
    assert e.value.setting == "with.params" and "'max_iter' parameter" in str(e.value)
    with pytest.raises(StageConfigError) as e:
        make_estimator("sklearn.linear_model.LogisticRegresion", {})
    assert e.value.setting == "with.estimator" and "did you mean 'LogisticRegression'" in str(
        e.value
    )


def test_champion_gates_compare_with_the_registry_champion() -> None:
    from mlstack.errors import GateFailed
    from mlstack.local.stages.gates import check_gates

    gates = ["roc_auc >= 0.9", "roc_auc >= champion.roc_auc - 0.02"]
    details = check_gates(gates, {"roc_auc": 0.95}, None, "evaluate")
    assert details[1].endswith("no champion yet; gate passes")
    check_gates(gates, {"roc_auc": 0.95}, {"roc_auc": 0.96}, "evaluate")
    with pytest.raises(GateFailed) as e:
        check_gates(gates, {"roc_auc": 0.93}, {"roc_auc": 0.99}, "evaluate")
    text = e.value.render()
    assert "gate `roc_auc >= champion.roc_auc - 0.02` failed: roc_auc = 0.93 fails >= 0.97" in text
    assert "gate `roc_auc >= 0.9`" not in text.split("\n", 2)[-1]
