"""The local backend's `artifacts:` URL: what `validate` accepts and refuses, the error for a
missing filesystem package, and the store's remote half (upload order, digest check), the last
on fsspec's in-memory filesystem standing in for the bucket (the S3 path is exercised against
the moto server in tests/remote_state/test_artifacts_url.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mlstack.errors import BackendError
from mlstack.local.artifacts_url import parse_url
from mlstack.local.remote import RemoteArtifacts, split_object_url
from mlstack.local.store import ArtifactStore
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("s3://acme-ml.artifacts/churn/", "s3://acme-ml.artifacts/churn"),
        ("S3://acme-ml/", "s3://acme-ml"),
        ("gs://acme_ml-1/a/b", "gs://acme_ml-1/a/b"),
        ("az://models-2/ci", "az://models-2/ci"),
    ],
)
def test_accepted_urls_are_normalised(url: str, normal: str) -> None:
    assert str(parse_url(url)) == normal


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/tmp/x", "not an object-store URL"),
        ("ftp://host/x", "not an object-store URL"),
        ("s3://ab/x", "not a valid S3 bucket name"),
        ("s3://Acme/x", "not a valid S3 bucket name"),
        ("s3://acme..ml/x", "not a valid S3 bucket name"),
        ("s3://192.168.1.1/x", "not a valid S3 bucket name"),
        ("s3://xn--acme/x", "not a valid S3 bucket name"),
        ("s3://acme_ml/x", "not a valid S3 bucket name"),
        ("gs://google-ml/x", "not a valid GCS bucket name"),
        ("gs://goog-ml/x", "not a valid GCS bucket name"),
        ("az://acme--ml/x", "not a valid Azure container name"),
        ("az://acme_ml/x", "not a valid Azure container name"),
        ("s3:///x", "name is missing"),
        ("s3://acme-ml/a/../b", "'..' part"),
    ],
)
def test_refused_urls_say_why(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace(".", r"\.").replace("(", r"\(")):
        parse_url(url)


SPEC = """\
project: v
data: {source: data/train.csv, target: label}
pipeline:
  stages:
    - {name: ingest, uses: builtin/ingest}
environments:
  dev:
    backend: local
    artifacts: s3://Acme_Bucket/x
  qa:
    backend: local
    artifacts: "s3://AKIAEXAMPLE:hunter2-secret@acme-ml/x?sig=also-secret"
"""


def test_validate_refuses_a_bad_url_at_its_line_without_echoing_a_secret(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(SPEC)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x,label\n1,0\n")
    r = run_cli("validate", cwd=tmp_path)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert (
        "mlstack.yaml:9:5: artifacts:" in r.stderr and "'Acme_Bucket' is not a valid S3" in r.stderr
    )
    assert "mlstack.yaml:12:5: artifacts:" in r.stderr
    assert "credentials and options never go in the URL" in r.stderr
    assert "hunter2" not in r.stderr + r.stdout and "also-secret" not in r.stderr + r.stdout


def test_a_missing_filesystem_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec  # noqa: F401 - so that its registry module is loaded

    monkeypatch.setitem(sys.modules, "s3fs", None)  # import s3fs now raises ImportError
    # forget the class if an earlier test imported it (the module `fsspec.registry`, whose name
    # the package's `registry` mapping shadows)
    monkeypatch.delitem(sys.modules["fsspec.registry"]._registry, "s3", raising=False)
    with pytest.raises(BackendError) as e:
        RemoteArtifacts("s3://acme-ml/ci").read("cache/x.json")
    text = e.value.render()
    assert "artifacts: s3://acme-ml/ci needs the s3fs package, which is not installed" in text
    assert "pip install 'mlstack-core[artifacts-s3]'" in text


def _remote(root: str) -> RemoteArtifacts:
    import fsspec

    r = RemoteArtifacts(f"s3://{root}")
    r._fs = fsspec.filesystem("memory")  # the bucket, in memory
    return r


def _stage(store: ArtifactStore, files: dict[str, bytes]) -> str:
    store.ensure()
    staging = store.new_staging("train", 0)
    for rel, data in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_bytes(data)
    digest, _ = store.commit_dir(staging)
    return digest


def test_published_stage_is_found_by_another_machine_with_the_same_digest(tmp_path: Path) -> None:
    remote = _remote("bucket-a/ci")
    first = ArtifactStore(tmp_path / "a", remote)
    digest = _stage(first, {"model.joblib": b"weights", "sub/meta.json": b"{}"})
    first.record("sha256:k1", {"output": digest, "metrics": {"auc": 0.9}})
    entry = first.lookup("sha256:k1")
    assert entry is not None
    first.publish("sha256:k1", entry)

    second = ArtifactStore(tmp_path / "b", remote)
    found = second.lookup("sha256:k1")
    assert found is not None and found["output"] == digest and found["metrics"] == {"auc": 0.9}
    assert (second.object_path(digest) / "sub" / "meta.json").read_bytes() == b"{}"
    assert second.lookup("sha256:other") is None
    assert first.uri(digest) == f"s3://bucket-a/ci/objects/{digest.split(':')[1]}"
    assert split_object_url(first.uri(digest)) == ("s3://bucket-a/ci", digest)
    # a URI alone is enough to bring the object into a third machine's cache
    third = ArtifactStore(tmp_path / "c", remote)
    assert third.local_dir(first.uri(digest), digest) == third.object_path(digest)


def test_an_object_changed_after_upload_is_refused(tmp_path: Path) -> None:
    remote = _remote("bucket-b/ci")
    first = ArtifactStore(tmp_path / "a", remote)
    digest = _stage(first, {"model.joblib": b"weights"})
    first.record("sha256:k", {"output": digest})
    first.publish("sha256:k", {"output": digest})
    h = digest.split(":")[1]
    remote.fs.pipe_file(f"bucket-b/ci/objects/{h}/model.joblib", b"tampered")
    with pytest.raises(BackendError, match="refusing to use it"):
        ArtifactStore(tmp_path / "b", remote).lookup("sha256:k")


def test_an_upload_without_its_manifest_is_a_miss(tmp_path: Path) -> None:
    remote = _remote("bucket-c/ci")
    first = ArtifactStore(tmp_path / "a", remote)
    digest = _stage(first, {"model.joblib": b"weights"})
    first.record("sha256:k", {"output": digest})
    first.publish("sha256:k", {"output": digest})
    remote.fs.rm_file(f"bucket-c/ci/objects/{digest.split(':')[1]}.json")  # as if cut short
    assert not remote.has_object(digest)
    assert ArtifactStore(tmp_path / "b", remote).lookup("sha256:k") is None


def test_a_stage_cached_before_the_url_was_set_is_uploaded_when_used(tmp_path: Path) -> None:
    before = ArtifactStore(tmp_path / "a")  # no `artifacts:` yet
    digest = _stage(before, {"model.joblib": b"weights"})
    before.record("sha256:k", {"output": digest})

    remote = _remote("bucket-d/ci")
    now = ArtifactStore(tmp_path / "a", remote)
    entry = now.lookup("sha256:k")
    assert entry is not None and not remote.has_object(digest)
    now.ensure_published("sha256:k", entry)  # what the runner does with a cached stage
    assert remote.has_object(digest)
    assert ArtifactStore(tmp_path / "b", remote).lookup("sha256:k") is not None
