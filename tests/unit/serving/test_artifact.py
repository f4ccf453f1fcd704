"""Turning V1 instances and V2 tensors into rows, and the messages for inputs that do not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlstack_runtime.serving import (
    BadInput,
    ModelMeta,
    model_dir_from_uri,
    rows_from_instances,
    rows_from_tensors,
)

META = ModelMeta(
    columns=("age", "income", "plan", "active"),
    dtypes={"age": "int", "income": "float", "plan": "str", "active": "bool"},
)


def test_objects_and_lists_give_the_same_rows() -> None:
    objs = [{"age": 3, "income": 1.5, "plan": "a", "active": True, "extra": 1}]
    lists = [[3, 1.5, "a", True]]
    assert (
        rows_from_instances(objs, META) == rows_from_instances(lists, META) == [[3, 1.5, "a", True]]
    )


def test_integers_are_accepted_for_floats_and_whole_floats_for_ints() -> None:
    assert rows_from_instances([[3.0, 2, "a", 1]], META) == [[3, 2.0, "a", True]]


@pytest.mark.parametrize(
    "instances, message",
    [
        ([[1, 2.0, "a"]], "3 values, expected 4"),
        ([{"age": 1}], "missing column(s) 'income', 'plan', 'active'"),
        ([["x", 2.0, "a", True]], "column 'age': expected an integer, got str"),
        ([[1.5, 2.0, "a", True]], "expected an integer, got 1.5"),
        ([[1, "rich", "a", True]], "column 'income': expected a number"),
        ([[1, 2.0, "a", "yes"]], "expected true/false"),
        ([[1, 2.0, {"x": 1}, True]], "expected a string, got dict"),
        ([], "empty"),
        ("rows", "must be a list"),
        ([7], "expected an object keyed by column or a list"),
    ],
)
def test_bad_instances_say_what_is_wrong(instances: object, message: str) -> None:
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        rows_from_instances(instances, META)


def test_one_tensor_per_column() -> None:
    tensors = [
        ("age", [2], [1, 2]),
        ("income", [2, 1], [1.0, 2.0]),
        ("plan", [2], [b"a", "b"]),
        ("active", [2], [True, False]),
    ]
    assert rows_from_tensors(tensors, META) == [[1, 1.0, "a", True], [2, 2.0, "b", False]]


def test_a_single_2d_tensor_in_column_order() -> None:
    assert rows_from_tensors([("x", [1, 4], [1, 2.5, "a", False])], META) == [[1, 2.5, "a", False]]


@pytest.mark.parametrize(
    "tensors, message",
    [
        ([("x", [1, 3], [1, 2, 3])], r"expected \[rows, 4\]"),
        ([("x", [2, 4], [1, 2.5, "a", False])], "does not match 4 values"),
        ([("age", [1], [1])], "missing input tensor"),
        (
            [
                ("age", [1], [1]),
                ("income", [2], [1.0, 2.0]),
                ("plan", [1], ["a"]),
                ("active", [1], [True]),
            ],
            "2 rows, other inputs have 1",
        ),
        (
            [
                ("age", [1, 2], [1, 2]),
                ("income", [1], [1.0]),
                ("plan", [1], ["a"]),
                ("active", [1], [True]),
            ],
            r"expected \[rows\] or \[rows, 1\]",
        ),
        ([], "no input tensors"),
    ],
)
def test_bad_tensors_say_what_is_wrong(tensors: list, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        rows_from_tensors(tensors, META)


def test_meta_and_uri(tmp_path: Path) -> None:
    (tmp_path / "mlstack-model.json").write_text(
        '{"columns": ["a", "b"], "dtypes": {"a": "int"}, "task": "regression"}'
    )
    meta = ModelMeta.read(tmp_path)
    assert meta.dtypes == {"a": "int", "b": "float"} and meta.task == "regression"
    assert model_dir_from_uri(f"file://{tmp_path}") == tmp_path == model_dir_from_uri(str(tmp_path))
    (tmp_path / "mlstack-model.json").write_text('{"columns": ["a"], "dtypes": {"a": "complex"}}')
    with pytest.raises(ValueError, match="unknown dtype"):
        ModelMeta.read(tmp_path)
