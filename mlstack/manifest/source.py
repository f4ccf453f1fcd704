"""Reading YAML while remembering where every value came from.

PyYAML's composer gives nodes with marks; we build plain Python values from them and keep a map
from each value's path (a tuple of keys and indexes) to its line and column, so that a schema
error about ``pipeline.stages[2].needs`` can point at the right line of ``mlstack.yaml``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

from mlstack.errors import Location, SpecError

DEFAULT_FILE = "mlstack.yaml"
MAX_SPEC_BYTES = 2 * 1024 * 1024  # a real project file is a few KiB; refuse before parsing

Path = tuple[str | int, ...]
COLS = 1 << 24  # positions pack (line, column) into one int; a line is at most 2 MiB


@dataclass
class Source:
    """A parsed document plus where each value sits in the file."""

    file: str
    data: Any
    # path -> line * COLS + column (1-based): one int per value instead of a tuple
    positions: dict[Path, int] = field(default_factory=dict)

    def locate(self, path: Path) -> Location:
        """The closest known position for ``path`` (walks up to a parent when needed)."""
        p = tuple(path)
        while p:
            if p in self.positions:
                line, col = divmod(self.positions[p], COLS)
                return Location(self.file, line, col)
            p = p[:-1]
        return Location(self.file, 1, 1)


def read_text(path: str) -> str:
    """The file's text, refusing what is not a regular file of a sane size.

    A device (``/dev/zero``) or a FIFO reports a size of 0 and would be read forever, so the
    file type is checked, the file is opened without blocking, and at most
    ``MAX_SPEC_BYTES + 1`` bytes are ever read.
    """
    display = path
    if os.path.isabs(path) and not os.path.relpath(path).startswith(".."):
        display = os.path.relpath(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SpecError(
            f"project file {display} not found",
            hint="run `mlstack init` to create one, or pass --file PATH",
        ) from None
    except OSError as e:
        raise SpecError(
            f"cannot read {display}: {e.strerror}", location=Location(display)
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise SpecError(
            f"{display} is a folder, not a project file", hint="pass --file PATH/mlstack.yaml"
        )
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(
            f"this is {_file_kind(st.st_mode)}, not a regular file",
            location=Location(display),
            hint="pass the path of an mlstack.yaml file",
        )
    if st.st_size > MAX_SPEC_BYTES:
        raise _too_big(display, f"{st.st_size / 1e6:.1f} MB")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the stat above
                raise SpecError("this is not a regular file", location=Location(display))
            chunks: list[bytes] = []
            left = MAX_SPEC_BYTES + 1
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            raw = b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as e:
        raise SpecError(
            f"cannot read {display}: {e.strerror}",
            location=Location(display),
            hint="check the file's permissions",
        ) from None
    if len(raw) > MAX_SPEC_BYTES:  # grew after the stat
        raise _too_big(display, f"over {MAX_SPEC_BYTES / 1e6:.1f} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(
            "the file is not UTF-8 text", location=Location(display, line), hint="save it as UTF-8"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise SpecError(
            "the file contains NUL bytes; is it binary?", location=Location(display, line)
        )
    return text


def parse(text: str, file: str) -> Source:
    """Values with positions, built within limits (see ``yaml_build``)."""
    from mlstack.manifest.yaml_build import build

    return build(text, file)


def _too_big(display: str, size: str) -> SpecError:
    return SpecError(
        f"project file is {size}; mlstack reads project files up to "
        f"{MAX_SPEC_BYTES // (1024 * 1024)} MiB",
        location=Location(display),
        hint="keep data out of mlstack.yaml and point data.source at it instead",
    )


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def find_project_file(path: str | None) -> str:
    if path:
        return path
    here = os.getcwd()
    for name in (DEFAULT_FILE, "mlstack.yml"):
        if os.path.exists(os.path.join(here, name)):
            return name
    raise SpecError(
        f"no {DEFAULT_FILE} in {here}",
        hint="cd into your project, pass --file PATH, or run `mlstack init`",
    )
