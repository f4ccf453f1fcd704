"""Resources and changes: the nouns of plan and apply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

KINDS = ("infra", "dataset", "pipeline", "run", "model", "endpoint")


@dataclass(frozen=True)
class Resource:
    """A desired resource: stable address, kind, inputs and what it depends on."""

    address: str
    kind: str
    inputs: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()
    replace_on: tuple[str, ...] = ()  # inputs whose change forces destroy-then-create
    sensitive: tuple[str, ...] = ()  # inputs never shown (their values are references anyway)


class Action(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DESTROY = "destroy"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "replace": "-/+", "destroy": "-", "no-op": " "}[
            self.value
        ]


@dataclass(frozen=True)
class AttrDiff:
    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        if self.before is _MISSING:
            return "add"
        if self.after is _MISSING:
            return "remove"
        return "change"


class _Missing:
    def __repr__(self) -> str:
        return "(none)"


_MISSING: Any = _Missing()


@dataclass(frozen=True)
class Change:
    address: str
    kind: str
    action: Action
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    diffs: tuple[AttrDiff, ...] = ()
    depends_on: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


def attr_diff(before: Any, after: Any, prefix: str = "") -> list[AttrDiff]:
    """Attribute-level differences between two JSON-like values, by dotted path."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        out: list[AttrDiff] = []
        for k in sorted(set(before) | set(after), key=str):
            p = f"{prefix}.{k}" if prefix else str(k)
            if k not in before:
                out.append(AttrDiff(p, _MISSING, after[k]))
            elif k not in after:
                out.append(AttrDiff(p, before[k], _MISSING))
            else:
                out.extend(attr_diff(before[k], after[k], p))
        return out
    if before != after:
        return [AttrDiff(prefix or "(value)", before, after)]
    return []


def is_missing(v: Any) -> bool:
    return v is _MISSING
