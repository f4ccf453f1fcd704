"""The built-in stages' settings: every key the runtime reads is declared, validated, documented."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from mlstack_runtime import metrics, settings, stages
from mlstack_runtime.errors import StageConfigError
from mlstack_runtime.job import Job

from mlstack.manifest import project_files
from mlstack.tooling import docs_gen

STAGE_SOURCES = Path(stages.__file__).parent


def _reads(kind: str) -> set[str]:
    """The ``with:`` keys a stage's module reads: ``job.setting("KEY")`` (or a local helper
    passing a constant to it), plus ``target`` when it calls ``job.target()``."""
    tree = ast.parse((STAGE_SOURCES / f"{kind}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
        first = node.args[0] if node.args else None
        if name == "target" and isinstance(fn, ast.Attribute):
            found.add("target")
        elif isinstance(first, ast.Constant) and isinstance(first.value, str):
            if name in ("setting", "pick"):
                found.add(first.value)
    return found


def test_the_table_covers_exactly_the_runtimes_stages() -> None:
    assert set(settings.STAGES) == set(stages.KINDS)


@pytest.mark.parametrize("kind", stages.KINDS)
def test_every_setting_a_stage_reads_is_declared_and_documented(kind: str) -> None:
    source = (STAGE_SOURCES / f"{kind}.py").read_text()
    # every read goes through job.setting, so the table cannot miss one
    assert ".params" not in source, f"stages/{kind}.py reads job.params directly"
    declared = set(settings.keys(kind))
    assert _reads(kind) <= declared, _reads(kind) - declared
    page = docs_gen.stages_reference()
    section = page.split(f"## builtin/{kind}\n", 1)[1].split("\n## ", 1)[0]
    for key in declared:
        assert f"| `{key}` |" in section, (kind, key)
    for written in settings.STAGES[kind].writes:
        assert f"`{written}`" in section


def test_the_scan_sees_reads(tmp_path: Path) -> None:
    # what the scan above relies on: split reads through a helper, tune through job.setting
    assert _reads("split") == {"strategy", "by", "test", "validation", "seed"}
    assert {"space", "trials", "metric", "seed", "target"} <= _reads("tune")


def test_reading_an_undeclared_setting_is_a_bug_and_an_unknown_key_is_refused(
    tmp_path: Path,
) -> None:
    job = Job(
        {"stage": {"name": "t", "uses": "builtin/train", "with": {"estimater": "x"}}}, tmp_path
    )
    assert job.setting("estimator", "d") == "d"
    with pytest.raises(RuntimeError, match="declare it there"):
        job.setting("depth")
    with pytest.raises(StageConfigError, match="did you mean 'estimator'") as e:
        stages.run("train", job)
    assert e.value.setting == "with.estimater"
    # a function stage's `with:` is its own business
    free = Job({"stage": {"name": "f", "function": "m:f", "with": {"anything": 1}}}, tmp_path)
    assert free.setting("anything") == 1


def test_validate_reports_an_unknown_setting_at_its_line(tmp_path: Path, cli) -> None:
    from mlstack.tooling.scaffold import scaffold

    scaffold(str(tmp_path), "p", False)
    spec = tmp_path / "mlstack.yaml"
    spec.write_text(spec.read_text().replace("params: {C: 1.0}", "parms: {C: 1.0}"))
    proc = cli("validate", cwd=tmp_path)
    assert proc.returncode == 1
    line = next(i for i, t in enumerate(spec.read_text().splitlines(), 1) if "parms" in t)
    assert f"mlstack.yaml:{line}:" in proc.stderr
    assert "builtin/train has no setting 'parms' (did you mean 'params'?)" in proc.stderr


def test_the_documented_metrics_are_the_measured_ones() -> None:
    import numpy as np
    from sklearn.linear_model import LinearRegression, LogisticRegression

    x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
    y = np.array([0, 0, 1, 0, 1, 1])
    got = metrics.score(LogisticRegression().fit(x, y), x, y, True)
    assert set(got) == set(metrics.CLASSIFICATION)
    got = metrics.score(LinearRegression().fit(x, y), x, y, False)
    assert set(got) == set(metrics.REGRESSION)
    # validate's gate check knows the same names
    assert project_files.CLASSIFICATION_METRICS == tuple(metrics.CLASSIFICATION)
    assert project_files.REGRESSION_METRICS == tuple(metrics.REGRESSION)
