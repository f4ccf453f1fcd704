"""Building plain values, and where each came from, out of libyaml's event stream, within limits.

PyYAML's composer builds a node graph first and expands aliases without a limit (a few lines of
nested aliases make gigabytes). Consuming events instead lets every value be counted as it is
built: an alias adds its anchor's size to a budget before anything is copied, nesting and the
total are capped, and huge integers or values are refused at their line. Positions are kept per
value path (see ``Source``) so that schema errors can point at ``file:line:column``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from mlstack.errors import Location, SpecError
from mlstack.manifest.source import COLS, Path, Source

# Limits on what one project file may expand to. A real project file has a few hundred values
# and a nesting depth under 10; a 50,000-stage pipeline has ~300,000 values. The limits keep
# `validate` within ~200 MB and a few seconds whatever the input (alias bombs, deep nesting).
MAX_VALUES = 400_000  # scalars + mappings + sequences, counting each alias's expansion
MAX_ALIAS_VALUES = 10_000  # values that aliases may add by repeating an anchored value
MAX_DEPTH = 64  # nested mappings/sequences
MAX_SCALAR_CHARS = 64 * 1024  # one value; longer text belongs in a file next to the spec
MAX_INT_DIGITS = 100  # an integer longer than this is a typo or an attack, not a setting


def build(text: str, file: str) -> Source:
    """Build plain values from PyYAML's event stream (not its composer), so that aliases,
    depth and size are counted and limited before anything is expanded in memory."""
    import yaml  # PyYAML; small, but only needed once a file is read

    # CSafeLoader parses ~10x faster when libyaml is present
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    builder = _Builder(file)
    try:
        builder.run(yaml.parse(text, Loader=loader_cls))
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
    if not builder.done:
        raise SpecError(
            "the project file is empty",
            location=Location(file, 1, 1),
            hint="run `mlstack init` for a starting point",
        )
    return builder.src


def _tab_before(text: str, line: int, column: int) -> bool:
    """Whether the indentation up to the error (0-based line/column) holds a tab."""
    lines = text.splitlines()
    return line < len(lines) and "\t" in lines[line][: column + 1]


class _Frame:
    """A mapping or sequence being built: its value, path, and (mappings) the pending key."""

    __slots__ = ("anchor", "is_map", "key", "key_mark", "path", "start", "value")

    def __init__(self, is_map: bool, path: Path, anchor: str | None, start: int) -> None:
        self.is_map = is_map
        self.value: Any = {} if is_map else []
        self.path = path
        self.anchor = anchor
        self.start = start  # value count when this collection began (its size for aliases)
        self.key: Any = _NO_KEY
        self.key_mark: Any = None


_NO_KEY = object()


class _Builder:
    def __init__(self, file: str) -> None:
        import yaml

        self.src = Source(file=file, data=None)
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # name -> (value, number of values)
        self.count = 0
        self.alias_count = 0
        self.documents = 0
        self.done = False
        self.handlers: dict[type, Callable[[Any], None]] = {
            yaml.ScalarEvent: self._scalar,
            yaml.MappingStartEvent: self._start,
            yaml.SequenceStartEvent: self._start,
            yaml.MappingEndEvent: self._end,
            yaml.SequenceEndEvent: self._end,
            yaml.AliasEvent: self._alias,
            yaml.DocumentStartEvent: self._document,
        }

    def run(self, events: Any) -> None:
        """Consume the events. Plain text keys and values (most of a file) take the inline
        path; everything else, and every case that may be an error, goes to a handler."""
        import yaml

        scalar_event = yaml.ScalarEvent
        stack = self.stack
        positions = self.src.positions
        firsts = _implicit_firsts()
        handlers = self.handlers
        for ev in events:
            if type(ev) is scalar_event and stack and ev.anchor is None and ev.tag is None:
                value = ev.value
                if len(value) <= 1024 and (not ev.implicit[0] or value[:1] not in firsts):
                    top = stack[-1]
                    if top.is_map:
                        if top.key is _NO_KEY:
                            if value not in top.value:
                                top.key = value
                                top.key_mark = ev.start_mark
                                continue
                        elif self.count < MAX_VALUES:
                            self.count += 1
                            key = top.key
                            top.value[key] = value
                            km = top.key_mark
                            positions[top.path + (key,)] = (km.line + 1) * COLS + km.column + 1
                            top.key = _NO_KEY
                            continue
                    elif self.count < MAX_VALUES:
                        self.count += 1
                        m = ev.start_mark
                        positions[top.path + (len(top.value),)] = (m.line + 1) * COLS + m.column + 1
                        top.value.append(value)
                        continue
            handler = handlers.get(type(ev))
            if handler is not None:
                handler(ev)

    def _loc(self, mark: Any) -> Location:
        return Location(self.src.file, mark.line + 1, mark.column + 1)

    def _path(self) -> Path:
        """The path of the next value."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.is_map:
            return top.path + (top.key,)
        return top.path + (len(top.value),)

    def _count(self, n: int, mark: Any) -> None:
        self.count += n
        if self.count > MAX_VALUES:
            raise SpecError(
                f"the project file holds more than {MAX_VALUES:,} values",
                location=self._loc(mark),
                hint="split the data out of mlstack.yaml; a pipeline this size is not a project",
            )

    def _document(self, event: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            raise SpecError(
                "the project file holds more than one YAML document (a second `---`)",
                location=self._loc(event.start_mark),
                hint="keep one document per file",
            )

    def _end(self, event: Any) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (frame.value, self.count - frame.start)
        self._emit(frame.value)

    def _not_a_key(self, event: Any) -> None:
        """Mappings, sequences and aliases cannot be keys here."""
        if self.stack and self.stack[-1].is_map and self.stack[-1].key is _NO_KEY:
            raise SpecError(
                "mapping keys must be plain strings", location=self._loc(event.start_mark)
            )

    def _start(self, event: Any) -> None:
        import yaml

        mark = event.start_mark
        if len(self.stack) >= MAX_DEPTH:
            raise SpecError(
                f"values are nested more than {MAX_DEPTH} levels deep",
                location=self._loc(mark),
                hint="flatten this part of the file",
            )
        self._not_a_key(event)
        if event.tag not in (None, "!", _MAP, _SEQ):
            raise SpecError(
                f"unsupported YAML tag {event.tag}",
                location=self._loc(mark),
                hint="remove the tag; mlstack.yaml holds plain values",
            )
        path = self._path()
        self._count(1, mark)
        self.src.positions[path] = (mark.line + 1) * COLS + mark.column + 1
        is_map = type(event) is yaml.MappingStartEvent
        self.stack.append(_Frame(is_map, path, event.anchor, self.count))

    def _scalar(self, event: Any) -> None:
        top = self.stack[-1] if self.stack else None
        if top is not None and top.is_map:
            if top.key is _NO_KEY:
                self._key(event, top)
                return
        else:  # a list item or the whole document; a mapping's value gets its key's position
            mark = event.start_mark
            self.src.positions[self._path()] = (mark.line + 1) * COLS + mark.column + 1
        self.count += 1
        if self.count > MAX_VALUES:
            self._count(0, event.start_mark)
        value = self._construct(event)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self._emit(value)

    def _key(self, event: Any, top: _Frame) -> None:
        key = event.value
        if (event.tag is not None or key[:1] == "<") and _resolve_tag(event) == _MERGE:
            raise SpecError(
                "YAML merge keys (<<) are not supported",
                location=self._loc(event.start_mark),
                hint="use per-environment overrides instead",
            )
        if len(key) > 1024:
            raise SpecError(
                "a key longer than 1024 characters", location=self._loc(event.start_mark)
            )
        if key in top.value:
            first = self.src.positions.get(top.path + (key,))
            where = f" (first at line {first // COLS})" if first else ""
            raise SpecError(
                f"duplicate key {key!r}{where}",
                location=self._loc(event.start_mark),
                hint="remove one of them",
            )
        top.key = key
        top.key_mark = event.start_mark

    def _alias(self, event: Any) -> None:
        if event.anchor not in self.anchors:
            raise SpecError(
                f"alias *{event.anchor} refers to no anchor (&{event.anchor}) before it",
                location=self._loc(event.start_mark),
            )
        self._not_a_key(event)
        value, size = self.anchors[event.anchor]
        self.alias_count += size
        if self.alias_count > MAX_ALIAS_VALUES:
            raise SpecError(
                f"aliases (*{event.anchor}) expand to more than {MAX_ALIAS_VALUES:,} values",
                location=self._loc(event.start_mark),
                hint="a YAML alias bomb? write the values out, or use vars: and ${var.name}",
            )
        self.src.positions[self._path()] = (
            (event.start_mark.line + 1) * COLS + event.start_mark.column + 1
        )
        self._count(size, event.start_mark)
        self._emit(copy.deepcopy(value))

    def _emit(self, value: Any) -> None:
        if not self.stack:
            self.src.data = value
            self.done = True
            return
        top = self.stack[-1]
        if not top.is_map:
            top.value.append(value)
        else:
            top.value[top.key] = value
            km = top.key_mark
            self.src.positions[top.path + (top.key,)] = (km.line + 1) * COLS + km.column + 1
            top.key = _NO_KEY

    def _construct(self, event: Any) -> Any:
        import yaml

        value = event.value
        if event.tag is None and (not event.implicit[0] or value[:1] not in _implicit_firsts()):
            tag: str | None = _STR  # quoted, or plain text no implicit type starts with
        else:
            tag = _resolve_tag(event)
        if tag == _STR or tag is None:
            pass
        elif tag == "tag:yaml.org,2002:int" and _digits(event.value) > MAX_INT_DIGITS:
            raise SpecError(
                f"an integer with {_digits(event.value):,} digits",
                location=self._loc(event.start_mark),
                hint=f"numbers here have at most {MAX_INT_DIGITS} digits; quote it if it is text",
            )
        else:
            ctor = yaml.SafeLoader.yaml_constructors.get(tag)
            if ctor is None:
                raise SpecError(
                    f"unsupported YAML tag {event.tag}",
                    location=self._loc(event.start_mark),
                    hint="remove the tag; mlstack.yaml holds plain values",
                )
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            try:
                value = ctor(_scalar_loader(), node)
            except (ValueError, yaml.YAMLError) as e:
                raise SpecError(
                    f"cannot read {event.value[:40]!r} as {tag.rsplit(':', 1)[-1]}: {e}",
                    location=self._loc(event.start_mark),
                ) from None
        if isinstance(value, str) and len(value) > MAX_SCALAR_CHARS:
            raise SpecError(
                f"a value of {len(value):,} characters",
                location=self._loc(event.start_mark),
                hint=f"values are at most {MAX_SCALAR_CHARS // 1024} KiB; put long text in a file",
            )
        return value


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_FIRSTS: frozenset[str] | None = None


def _implicit_firsts() -> frozenset[str]:
    """First characters for which a plain scalar may be an int, float, bool, null, ..."""
    global _FIRSTS
    if _FIRSTS is None:
        _FIRSTS = frozenset(k for k in _resolver().yaml_implicit_resolvers if k) | {""}
    return _FIRSTS


def _digits(text: str) -> int:
    """Digits of an integer as written (hex, octal and binary digits count too)."""
    return sum(c.isalnum() for c in text.removeprefix("-").removeprefix("+")[2:]) + 2


def _resolve_tag(event: Any) -> str | None:
    import yaml

    tag = event.tag
    if tag is None or tag == "!":
        resolved: str | None = _resolver().resolve(yaml.ScalarNode, event.value, event.implicit)
        return resolved
    return str(tag)


_RESOLVER: Any = None


def _resolver() -> Any:
    global _RESOLVER
    if _RESOLVER is None:
        import yaml

        _RESOLVER = yaml.resolver.Resolver()
    return _RESOLVER


_LOADER: Any = None


def _scalar_loader() -> Any:
    global _LOADER
    if _LOADER is None:
        import yaml

        _LOADER = yaml.SafeLoader("")
    return _LOADER
