"""Reading YAML while remembering where every value came from.

PyYAML's composer gives nodes with marks; we build plain Python values from them and keep a map
from each value's path (a tuple of keys and indexes) to its line and column, so that a schema
error about ``pipeline.stages[2].needs`` can point at the right line of ``mlstack.yaml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from mlstack.errors import Location, SpecError

DEFAULT_FILE = "mlstack.yaml"
MAX_SPEC_BYTES = 2 * 1024 * 1024  # a real project file is a few KiB; refuse before parsing

Path = tuple[str | int, ...]


@dataclass
class Source:
    """A parsed document plus where each value sits in the file."""

    file: str
    data: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path) -> Location:
        """The closest known position for ``path`` (walks up to a parent when needed)."""
        p = tuple(path)
        while p:
            if p in self.positions:
                line, col = self.positions[p]
                return Location(self.file, line, col)
            p = p[:-1]
        return Location(self.file, 1, 1)


def read_text(path: str) -> str:
    display = os.path.relpath(path) if os.path.isabs(path) else path
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise SpecError(
            f"project file {display} not found",
            hint="run `mlstack init` to create one, or pass --file PATH",
        ) from None
    except OSError as e:
        raise SpecError(
            f"cannot read {display}: {e.strerror}", location=Location(display)
        ) from None
    if os.path.isdir(path):
        raise SpecError(
            f"{display} is a folder, not a project file", hint="pass --file PATH/mlstack.yaml"
        )
    if size > MAX_SPEC_BYTES:
        raise SpecError(
            f"project file is {size / 1e6:.1f} MB; mlstack reads project files up to "
            f"{MAX_SPEC_BYTES // (1024 * 1024)} MiB",
            location=Location(display),
            hint="keep data out of mlstack.yaml and point data.source at it instead",
        )
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise SpecError(
            f"cannot read {display}: {e.strerror}",
            location=Location(display),
            hint="check the file's permissions",
        ) from None
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
    import yaml  # PyYAML; small, but only needed once a file is read

    try:
        # CSafeLoader composes ~10x faster when libyaml is present
        loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        node = yaml.compose(text, Loader=loader_cls)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        what = e.problem or str(e)
        hint = "check indentation and quoting near this line"
        if mark is not None and _tab_before(text, mark.line, mark.column):
            what += " (a tab)"
            hint = "YAML does not allow tabs for indentation; use spaces"
        raise SpecError(f"invalid YAML: {what}", location=loc, hint=hint) from None
    except yaml.YAMLError as e:
        raise SpecError(f"invalid YAML: {e}", location=Location(file)) from None
    if node is None:
        raise SpecError(
            "the project file is empty",
            location=Location(file, 1, 1),
            hint="run `mlstack init` for a starting point",
        )
    src = Source(file=file, data=None)
    src.data = _build(node, (), src)
    return src


def _tab_before(text: str, line: int, column: int) -> bool:
    """Whether the indentation up to the error (0-based line/column) holds a tab."""
    lines = text.splitlines()
    return line < len(lines) and "\t" in lines[line][: column + 1]


def _build(node: Any, path: Path, src: Source) -> Any:
    import yaml

    src.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError(
                    "mapping keys must be plain strings",
                    location=Location(
                        src.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1
                    ),
                )
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SpecError(
                    "YAML merge keys (<<) are not supported",
                    location=_mark(src, key_node),
                    hint="use per-environment overrides instead",
                )
            key = key_node.value
            if key in out:
                first = src.positions.get(path + (key,))
                where = f" (first at line {first[0]})" if first else ""
                raise SpecError(
                    f"duplicate key {key!r}{where}",
                    location=_mark(src, key_node),
                    hint="remove one of them",
                )
            out[key] = _build(value_node, path + (key,), src)
            src.positions[path + (key,)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), src) for i, item in enumerate(node.value)]
    # scalars: let the safe constructor resolve ints, floats, bools, nulls
    return _construct_scalar(node)


def _construct_scalar(node: Any) -> Any:
    import yaml

    ctor = yaml.SafeLoader.yaml_constructors.get(node.tag)
    if ctor is None:
        return node.value
    loader = _scalar_loader()
    return ctor(loader, node)


_LOADER: Any = None


def _scalar_loader() -> Any:
    global _LOADER
    if _LOADER is None:
        import yaml

        _LOADER = yaml.SafeLoader("")
    return _LOADER


def _mark(src: Source, node: Any) -> Location:
    return Location(src.file, node.start_mark.line + 1, node.start_mark.column + 1)


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
