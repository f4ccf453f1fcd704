"""The compiled definition is reused while nothing compile reads has changed, and only then."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlstack_sagemaker.compile_cache import cached_definition, cached_image, compile_key
from mlstack_sagemaker.plugin import SageMakerConfig

SPEC = """\
project: shop
environments:
  dev:
    backend: sagemaker
    region: eu-west-1
    role: arn:aws:iam::123456789012:role/mlstack-sm
    bucket: shop-artifacts
  staging:
    backend: sagemaker
    region: eu-west-1
    role: arn:aws:iam::123456789012:role/mlstack-sm
    bucket: shop-artifacts
data: {source: data/rows.csv, target: label}
pipeline:
  stages:
    - {name: ingest, uses: builtin/ingest}
    - name: train
      uses: builtin/train
      needs: [ingest]
      with: {params: {C: 1.0}}
    - {name: report, run: python steps/report.py, needs: [train], code: [steps]}
model: {name: shop-model}
deployment: {endpoint: shop}
"""


def _resolve(root: Path, text: str = SPEC, env: str = "dev") -> tuple[Any, SageMakerConfig]:
    from mlstack.manifest.load import load, resolve

    (root / "mlstack.yaml").write_text(text)
    resolved = resolve(load(str(root / "mlstack.yaml")), env)
    return resolved, SageMakerConfig.model_validate(resolved.settings)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "report.py").write_text("print('report')\n")
    return tmp_path


def test_key_changes_with_every_input_of_compile(root: Path) -> None:
    base = compile_key(*_resolve(root))
    assert compile_key(*_resolve(root)) == base  # stable
    changed = {
        "stage param": SPEC.replace("C: 1.0", "C: 2.0"),
        "data": SPEC.replace("target: label", "target: y"),
        "model": SPEC.replace("name: shop-model", "name: other"),
        "setting": SPEC.replace("bucket: shop-artifacts\n  staging", "bucket: shop-b\n  staging"),
    }
    keys = {what: compile_key(*_resolve(root, text)) for what, text in changed.items()}
    assert base not in keys.values() and len(set(keys.values())) == len(keys), keys
    assert compile_key(*_resolve(root, env="staging")) != base
    # the deployment section is not read by compile: changing it keeps the definition
    assert compile_key(*_resolve(root, SPEC.replace("endpoint: shop", "endpoint: s2"))) == base
    (root / "steps" / "report.py").write_text("print('changed')\n")
    assert compile_key(*_resolve(root)) != base


def test_hit_miss_and_a_damaged_cache(root: Path) -> None:
    project, config = _resolve(root)
    workdir = root / ".mlstack"
    builds: list[int] = []

    def build() -> dict[str, Any]:
        builds.append(1)
        return {"Version": "2020-12-01", "Steps": [{"Name": f"s{len(builds)}"}]}

    first, hit = cached_definition(workdir, project, config, build)
    assert (hit, len(builds)) == (False, 1)
    again, hit = cached_definition(workdir, project, config, build)
    assert (hit, again, len(builds)) == (True, first, 1)
    project2, config2 = _resolve(root, SPEC.replace("C: 1.0", "C: 3.0"))
    _, hit = cached_definition(workdir, project2, config2, build)
    assert (hit, len(builds)) == (False, 2)
    (workdir / "cache" / "sagemaker-pipeline-dev.json").write_text('{"key": "sha256:tr')
    _, hit = cached_definition(workdir, project2, config2, build)
    assert (hit, len(builds)) == (False, 3)
    assert not list((workdir / "cache").glob("*.tmp"))

    looked_up: list[int] = []
    for _ in range(2):
        uri = cached_image(workdir, ("sklearn", "eu-west-1"), lambda: looked_up.append(1) or "img")
        assert uri == "img"
    assert len(looked_up) == 1


def test_a_cached_compile_imports_no_sdk(root: Path) -> None:
    """The real compiler once (SDK), then a fresh process answers from the cache."""
    _resolve(root)
    code = (
        "import sys, json\n"
        "from mlstack.engine.backend import get_plugin\n"
        "from mlstack.manifest.load import load, resolve\n"
        "r = resolve(load('mlstack.yaml'), 'dev')\n"
        "c = get_plugin('sagemaker').load(r, __import__('pathlib').Path('.mlstack')).compile()\n"
        "print(json.dumps({'digest': c.digest, 'steps': list(c.steps),\n"
        "  'sdk': sorted({m.split('.')[0] for m in sys.modules} & {'sagemaker', 'boto3'})}))\n"
    )

    def run() -> dict[str, Any]:
        r = subprocess.run(
            [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 0, r.stderr
        return dict(json.loads(r.stdout))

    cold, warm = run(), run()
    assert cold["sdk"] == ["boto3", "sagemaker"] and warm["sdk"] == []
    assert warm["digest"] == cold["digest"] and warm["steps"] == cold["steps"]
    assert cold["steps"] == ["ingest", "train", "report"]
