"""`mlstack init --template`: each template validates, and its pipeline meets its own gates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlstack_runtime import stages
from mlstack_runtime.artifacts import EVALUATION, finish
from mlstack_runtime.job import Job, ancestors

from mlstack.cli.cmd_project import init
from mlstack.engine.project import Project
from mlstack.manifest.gates import parse_gate
from mlstack.tooling.scaffold import TEMPLATES, scaffold


def test_the_cli_offers_exactly_the_templates() -> None:
    option = next(p for p in init.params if p.name == "template")
    assert list(option.type.choices) == list(TEMPLATES)  # type: ignore[attr-defined]


def _run_stages(project: Project, root: Path, work: Path) -> dict[str, Path]:
    """The template's built-in stages in this process, in file order, with the settings a
    backend ships (the spec's models dumped by alias)."""
    spec = project.loaded.project
    assert spec.data is not None
    data = spec.data.model_dump(mode="json", by_alias=True)
    listed = [s.model_dump(mode="json", by_alias=True) for s in spec.pipeline.stages]
    outputs: dict[str, Path] = {}
    for st in listed:
        out = work / st["name"]
        out.mkdir(parents=True)
        settings = {"stage": st, "data": data, "pipeline": {"stages": listed}}
        inputs = [(n, outputs[n]) for n in ancestors(listed, st["name"])]
        job = Job(settings, out, inputs, project_root=root)
        value = stages.run(st["uses"].split("/", 1)[1], job)
        finish(out, value, job.metrics)
        outputs[st["name"]] = out
    return outputs


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_each_template_validates_and_meets_its_gates(template: str, tmp_path: Path) -> None:
    root = tmp_path / template
    written = scaffold(str(root), None, False, template)
    assert {Path(p).name for p in written} == {"mlstack.yaml", "train.csv", ".gitignore"}
    project = Project(str(root / "mlstack.yaml"), {}, files=True)
    project.validate_all()  # raises (with file:line) on any problem
    outputs = _run_stages(project, root, tmp_path / "run")
    report = json.loads((outputs["evaluate"] / EVALUATION).read_text())
    assert report["gates"], "every template gates its model"
    for text in report["gates"]:
        result = parse_gate(text).check(report["metrics"])
        assert result.passed, (template, result.detail)
    meta = json.loads((outputs["train"] / "mlstack-model.json").read_text())
    expected = {"regression": "regression"}.get(template, "classification")
    assert meta["task"] == expected
    if template == "multiclass":
        assert sorted(meta["classes"]) == [0, 1, 2]
        tuned = json.loads((outputs["tune"] / "best_params.json").read_text())
        assert set(tuned["params"]) == {"max_depth", "n_estimators"}
        assert all(meta["params"][k] == v for k, v in tuned["params"].items())


def test_an_unknown_template_is_refused(tmp_path: Path, cli) -> None:
    proc = cli("init", str(tmp_path / "p"), "--template", "clasification", cwd=tmp_path)
    assert proc.returncode == 1
    assert "'clasification' is not one of 'classification', 'regression'" in proc.stderr
    assert not (tmp_path / "p").exists()
