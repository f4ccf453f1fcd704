"""The registry as ConfigMaps in the namespace: register, aliases, versions, import of a
promoted artifact (copied to the environment's S3 storage), delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import BUCKET, NAMESPACE, FakeCluster, _s3

from mlstack.engine.backend import Context, ModelVersion, RunResult, get_plugin
from mlstack.errors import BackendError
from mlstack.manifest.models import Model, ResolvedProject


def _backend(fc: FakeCluster, tmp: Path) -> Any:
    project = ResolvedProject(
        project="quickstart",
        environment="dev",
        backend="kserve",
        settings=fc.settings(),
        model=Model(name="cancer-classifier"),
    )
    return get_plugin("kserve").load(project, tmp)


def test_register_alias_import_delete(
    fake_cluster: FakeCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    b = _backend(fake_cluster, tmp_path)
    ctx = Context(workdir=tmp_path, environment="dev")
    assert b.versions("cancer-classifier") == []
    run = RunResult(
        run_id="r1",
        status="succeeded",
        metrics={"roc_auc": 0.97},
        model_uri="s3://ml-artifacts/quickstart/runs/r1/train",
        model_digest="sha256:" + "a" * 64,
        stages={"train": "ran"},
    )
    v1 = b.register(run, ctx)
    assert (v1.version, v1.aliases, v1.metrics) == ("1", ("challenger",), {"roc_auc": 0.97})
    assert b.register(run, ctx).version == "1"  # same digest: the same version

    # a promoted artifact from the local backend is copied to the cluster's storage
    art = tmp_path / "artifact"
    art.mkdir()
    (art / "model.joblib").write_bytes(b"model-bytes")
    (art / "mlstack-model.json").write_text('{"columns": ["a"]}')
    source = ModelVersion(
        name="cancer-classifier", version="7", digest="sha256:" + "b" * 64, uri=str(art)
    )
    v2 = b.import_version(source, ctx)
    assert v2.version == "2" and v2.digest == source.digest
    assert v2.uri == f"s3://{BUCKET}/quickstart/models/cancer-classifier/{'b' * 16}"
    key = f"quickstart/models/cancer-classifier/{'b' * 16}/model.joblib"
    assert _s3(fake_cluster.s3_url).get_object(Bucket=BUCKET, Key=key)["Body"].read() == (
        b"model-bytes"
    )
    assert v2.lineage["promoted_from"] == "cancer-classifier@7"

    b.set_alias("cancer-classifier", "champion", "2", ctx)
    b.set_alias("cancer-classifier", "challenger", "2", ctx)
    got = {v.version: v.aliases for v in b.versions("cancer-classifier")}
    assert got == {"2": ("champion", "challenger"), "1": ()}
    assert [v.version for v in b.versions("cancer-classifier")] == ["2", "1"]
    with pytest.raises(BackendError, match="has no version '9'"):
        b.set_alias("cancer-classifier", "champion", "9", ctx)

    cms = fake_cluster.api.list("configmaps", NAMESPACE)
    assert {c["metadata"]["name"] for c in cms} >= {
        "mlstack-model-cancer-classifier-v1",
        "mlstack-model-cancer-classifier-v2",
    }
    b.destroy("model.cancer-classifier", "model", {}, ctx)
    assert b.versions("cancer-classifier") == []
