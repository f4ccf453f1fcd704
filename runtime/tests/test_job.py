"""``Job`` unpacks an upstream ``model.tar.gz`` only when every member is a plain file or folder
inside the unpack folder (with or without ``tarfile.data_filter``)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from mlstack_runtime import job as job_module
from mlstack_runtime.errors import StageError
from mlstack_runtime.job import Job


def _archive(upstream: Path, *members: tuple[tarfile.TarInfo, bytes]) -> None:
    upstream.mkdir(parents=True)
    with tarfile.open(upstream / "model.tar.gz", "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, kind: bytes, to: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, to
    return info, b""


@pytest.fixture(params=["data_filter", "no_data_filter"])
def unpack(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder ``Job`` unpacks into (a fixed name, so a member can aim beside it)."""
    if request.param == "no_data_filter" and hasattr(tarfile, "data_filter"):
        monkeypatch.delattr(tarfile, "data_filter")
    target = tmp_path / "unpack"

    def mkdtemp(prefix: str = "") -> str:
        target.mkdir()
        return str(target)

    monkeypatch.setattr(job_module.tempfile, "mkdtemp", mkdtemp)
    return target


def _job(upstream: Path, tmp_path: Path) -> Job:
    return Job({"stage": {"name": "evaluate"}}, tmp_path / "out", [("train", upstream)])


def test_plain_archive_is_unpacked(unpack: Path, tmp_path: Path) -> None:
    upstream = tmp_path / "train"
    folder = tarfile.TarInfo("sub")
    folder.type = tarfile.DIRTYPE
    _archive(upstream, _file("model.pkl", b"model"), (folder, b""), _file("sub/meta.json"))
    job = _job(upstream, tmp_path)
    assert job.find("model.pkl") == unpack / "model.pkl"
    assert (unpack / "model.pkl").read_bytes() == b"model" and (unpack / "sub/meta.json").is_file()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        # beside the unpack folder, sharing its name as a prefix: not inside it
        (_file("../unpackX/evil.txt"), "leaves the archive"),
        (_file("../evil.txt"), "leaves the archive"),
        (_file("/tmp/mlstack-evil.txt"), "leaves the archive"),
        (_link("model.pkl", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (_link("model.pkl", tarfile.SYMTYPE, "other.pkl"), "is a link"),
        (_link("model.pkl", tarfile.LNKTYPE, "other.pkl"), "is a link"),
        (_link("fifo", tarfile.FIFOTYPE, ""), "not a file or folder"),
    ],
)
def test_hostile_archive_is_refused_before_anything_is_written(
    unpack: Path, tmp_path: Path, member: tuple[tarfile.TarInfo, bytes], message: str
) -> None:
    upstream = tmp_path / "train"
    _archive(upstream, _file("other.pkl"), member)
    with pytest.raises(StageError) as e:
        _job(upstream, tmp_path).find("model.pkl")
    assert message in e.value.message and repr(member[0].name) in e.value.message
    assert e.value.hint
    assert list(unpack.iterdir()) == []  # checked before extracting anything
    assert not (tmp_path / "unpackX").exists() and not (tmp_path / "evil.txt").exists()


def test_ancestors_are_breadth_first_along_needs_in_their_order() -> None:
    from mlstack_runtime.job import ancestors

    # a diamond (split -> left/right -> join) under a longer arm (right <- extra <- split)
    stages = [
        {"name": "ingest"},
        {"name": "split", "needs": ["ingest"]},
        {"name": "left", "needs": ["split"]},
        {"name": "extra", "needs": ["split"]},
        {"name": "right", "needs": ["extra"]},
        {"name": "join", "needs": ["left", "right"]},
    ]
    assert ancestors(stages, "join") == ["left", "right", "split", "extra", "ingest"]
    assert ancestors(stages, "right") == ["extra", "split", "ingest"]
    assert ancestors(stages, "ingest") == []
    flipped = [*stages[:-1], {"name": "join", "needs": ["right", "left"]}]
    assert ancestors(flipped, "join") == ["right", "left", "extra", "split", "ingest"]
