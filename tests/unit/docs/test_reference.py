"""The manual's generated pages: current with the code, and every key described."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, Field

from mlstack.tooling import docs_gen
from mlstack.tooling.schema import full_schema

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return full_schema()


def test_generated_pages_are_current() -> None:
    # `make docs` rewrites them; a change to a model, a table or a backend's settings that was
    # not followed by it fails here
    assert docs_gen.stale(ROOT / "docs") == [], "run `make docs` and commit docs/reference/"


def test_every_spec_key_and_backend_setting_has_a_description(schema: dict[str, Any]) -> None:
    assert docs_gen.undocumented(schema) == []
    # the schema holds every installed backend's settings, each one applied by `backend:`
    branches = schema["$defs"]["Environment"]["allOf"]
    backends = {b["if"]["properties"]["backend"]["const"] for b in branches}
    assert {"local", "sagemaker", "vertex", "azureml", "kserve"} <= backends


def test_a_key_without_a_description_is_reported() -> None:
    class Section(BaseModel):
        described: int = Field(default=1, description="a key people can read about")
        bare: int = 2

    class Root(BaseModel):
        section: Section = Field(default_factory=Section, description="a section")

    assert docs_gen.undocumented(Root.model_json_schema()) == ["Section.bare"]


def test_the_reference_lists_every_key_and_backend(schema: dict[str, Any]) -> None:
    page = docs_gen.spec_reference()
    for model, key, _ in docs_gen.described_properties(schema):
        assert f"| `{key}` |" in page, (model, key)
    for backend in ("local", "sagemaker", "vertex", "azureml", "kserve"):
        assert f"## backend: {backend}" in page


def test_the_schema_accepts_the_quickstart_and_refuses_a_misspelt_backend_setting(
    schema: dict[str, Any],
) -> None:
    spec = yaml.safe_load((ROOT / "examples/quickstart/mlstack.yaml").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(spec)) == []
    spec["environments"]["cloud"] = {
        "backend": "sagemaker",
        "region": "eu-west-1",
        "role": "create",
        "instance_tpye": "ml.m5.large",
    }
    errors = [e.message for e in validator.iter_errors(spec)]
    assert any("instance_tpye" in m for m in errors), errors
    spec["environments"]["cloud"]["backend"] = "local"
    errors = [e.message for e in validator.iter_errors(spec)]
    assert any("region" in m for m in errors), errors  # local's settings have no region
    del spec["environments"]["cloud"]["backend"]  # no backend: local's settings apply
    errors = [e.message for e in validator.iter_errors(spec)]
    assert any("region" in m for m in errors), errors


def test_docs_gen_check_exits_1_on_a_stale_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(docs_gen, "docs_dir", lambda: tmp_path)
    assert docs_gen.main([]) == 0
    assert docs_gen.main(["--check"]) == 0
    page = tmp_path / "reference" / "spec.md"
    page.write_text(page.read_text().replace("the registered model", "old words"))
    assert docs_gen.main(["--check"]) == 1
    assert "spec.md is stale: run `make docs`" in capsys.readouterr().err


def test_the_manuals_links_lead_somewhere() -> None:
    import re

    pages = [ROOT / "docs" / name for name in ("README.md", "requests.md", "ci.md")]
    pages += sorted((ROOT / "docs" / "reference").glob("*.md"))
    for page in pages:
        text = re.sub(r"`[^`\n]*`", "", page.read_text())  # code spans hold no links
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}"
