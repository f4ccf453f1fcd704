"""The model artifact's identity: one tree digest, whether the files lie in a folder (the local
store) or arrive as bytes from a bucket (the cloud backends' copy check)."""

from __future__ import annotations

from pathlib import Path

from mlstack.engine.digest import dir_digest, tree_digest
from mlstack.local.store import ArtifactStore


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


FILES = {"model.joblib": b"weights", "mlstack-model.json": b"{}", "sub/dir/x.bin": b"\0\1\2"}


def test_bytes_and_folder_digests_agree(tmp_path: Path) -> None:
    folder = _tree(tmp_path / "m", FILES)
    assert tree_digest(FILES) == dir_digest(folder)
    # what the local store names an object by is the same digest
    store = ArtifactStore(tmp_path / "w")
    store.ensure()
    staging = _tree(store.new_staging("train", 0), FILES)
    digest, _ = store.commit_dir(staging)
    assert digest == tree_digest(FILES)


def test_tree_digest_separates_names_sizes_and_contents() -> None:
    seen = {
        tree_digest({"a": b"bc"}),
        tree_digest({"ab": b"c"}),
        tree_digest({"a": b"b", "c": b""}),
        tree_digest({"a": b"bc", "d": b""}),
        tree_digest({}),
    }
    assert len(seen) == 5
    assert tree_digest({"b": b"2", "a": b"1"}) == tree_digest({"a": b"1", "b": b"2"})
