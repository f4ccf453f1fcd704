from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlstack.local.store import ArtifactStore, atomic_write, dir_digest


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def test_dir_digest_covers_names_and_contents(tmp_path: Path) -> None:
    a = _tree(tmp_path / "a", {"x.txt": b"1", "sub/y.bin": b"22"})
    b = _tree(tmp_path / "b", {"sub/y.bin": b"22", "x.txt": b"1"})
    c = _tree(tmp_path / "c", {"x.txt": b"1", "sub/z.bin": b"22"})
    d = _tree(tmp_path / "d", {"x.txt": b"12", "sub/y.bin": b"2"})
    assert dir_digest(a) == dir_digest(b)
    assert dir_digest(a).startswith("sha256:")
    assert len({dir_digest(a), dir_digest(c), dir_digest(d)}) == 3


def test_commit_moves_staging_into_objects_by_digest(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.ensure()
    s1 = store.new_staging("train", 1)
    (s1 / "model.joblib").write_bytes(b"weights")
    digest, path = store.commit_dir(s1)
    assert path == store.object_path(digest) and (path / "model.joblib").read_bytes() == b"weights"
    assert not s1.exists()
    s2 = store.new_staging("train", 2)
    (s2 / "model.joblib").write_bytes(b"weights")
    assert store.commit_dir(s2)[0] == digest  # same content: stored once
    assert not s2.exists()
    store.record("sha256:abc", {"output": digest})
    assert store.lookup("sha256:abc")["output"] == digest
    assert store.lookup("sha256:other") is None


def test_entry_whose_object_is_missing_is_not_a_hit(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.ensure()
    store.record("k", {"output": "sha256:" + "0" * 64})
    assert store.lookup("k") is None


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "deep" / "f.json"
    atomic_write(p, b"one")
    atomic_write(p, b"two")
    assert p.read_bytes() == b"two"
    assert [x.name for x in p.parent.iterdir()] == ["f.json"]


def test_sweep_removes_staging_of_dead_processes_only(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    store.ensure()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (store.tmp / f"{dead}-train-1-aaaa").mkdir()
    mine = store.new_staging("train", 1)
    assert store.sweep_tmp() == 1
    assert mine.exists() and not (store.tmp / f"{dead}-train-1-aaaa").exists()
    assert os.getpid() == int(mine.name.split("-")[0])
