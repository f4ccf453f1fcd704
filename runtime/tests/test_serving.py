"""The serving hooks every platform uses: CSV and V2 decoding, V1/V2 answers, the toolkit hooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlstack_runtime import inference, serving
from mlstack_runtime.serving import BadInput, ModelMeta

META = ModelMeta(columns=("x", "n", "size"), dtypes={"x": "float", "n": "int", "size": "str"})


def test_csv_v1_and_v2_bodies_decode_to_the_same_rows() -> None:
    v1 = serving.decode(
        json.dumps({"instances": [{"x": 1.5, "n": 2, "size": "s"}]}), "application/json", META
    )
    csv = serving.decode(b"1.5,2,s\n", "text/csv; charset=utf-8", META)
    with_header = serving.decode("x,n,size\n1.5,2,s\n", "text/csv", META)
    v2 = serving.decode_payload(
        {
            "inputs": [
                {"name": "x", "shape": [1], "datatype": "FP64", "data": [1.5]},
                {"name": "n", "shape": [1], "datatype": "INT64", "data": [2]},
                {"name": "size", "shape": [1], "datatype": "BYTES", "data": ["s"]},
            ]
        },
        META,
    )
    assert v1 == csv == with_header == v2 == [[1.5, 2, "s"]]


@pytest.mark.parametrize(
    ("body", "ctype", "message"),
    [
        ("1.5,two,s\n", "text/csv", "row 0, column 'n': expected a number, got 'two'"),
        ("1.5,2\n", "text/csv", "row 0: 2 values, expected 3"),
        ("{}", "application/json", 'expected {"instances": [...]}'),
        ("[1]", "application/json", "expected a JSON object"),
        ("nope", "application/json", "the body is not JSON"),
        ("x", "application/x-npy", "unsupported content type"),
    ],
)
def test_bad_bodies_say_what_is_wrong(body: str, ctype: str, message: str) -> None:
    with pytest.raises(BadInput) as e:
        serving.decode(body, ctype, META)
    assert message in str(e.value)


def test_answers_in_v1_and_v2() -> None:
    assert serving.encode([1, 0]) == {"predictions": [1, 0]}
    assert serving.encode([0.5], "v2", "3") == {
        "model_version": "3",
        "outputs": [{"name": "predict", "shape": [1], "datatype": "FP64", "data": [0.5]}],
    }
    assert serving.v2_output(["a"])["datatype"] == "BYTES"


def test_toolkit_hooks_serve_a_trained_model(tmp_path: Path) -> None:
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    x = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = Pipeline([("model", LogisticRegression())]).fit(x, [0, 0, 1, 1])
    joblib.dump(model, tmp_path / "model.joblib")
    meta = {"columns": ["a", "b"], "dtypes": {"a": "float", "b": "float"}, "task": "classification"}
    (tmp_path / "mlstack-model.json").write_text(json.dumps(meta))
    loaded = inference.model_fn(str(tmp_path))
    answer = inference.predict_fn(inference.input_fn("3.0,0.0\n0.0,1.0\n", "text/csv"), loaded)
    assert json.loads(inference.output_fn(answer)) == {"predictions": [1, 0]}
