"""SageMaker's model.tar.gz names the same artifact as the folder it was packed from: its digest
is the local store's ``dir_digest``, so a version promoted between a local environment and
SageMaker keeps one identity."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from mlstack_sagemaker.pipelines import artifact_digest

from mlstack.engine.digest import dir_digest


def test_model_tar_digest_is_the_folder_digest(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "meta").mkdir(parents=True)
    (folder / "model.joblib").write_bytes(b"weights")
    (folder / "meta" / "mlstack-model.json").write_text("{}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".")  # SageMaker packs /opt/ml/model as ./...
    assert artifact_digest(buf.getvalue()) == dir_digest(folder)
