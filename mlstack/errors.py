"""Errors written for the person at the terminal.

Every user-facing failure is an ``MlstackError``: what went wrong, where (file:line:col when we
know), and what to do about it. The CLI prints these without a traceback and exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


MAX_MESSAGE = 600


@dataclass(frozen=True)
class Problem:
    """One thing wrong, with where it is and how to fix it."""

    message: str
    location: Location | None = None
    hint: str | None = None

    def render(self) -> str:
        where = f"{self.location}: " if self.location else ""
        message = self.message
        if len(message) > MAX_MESSAGE:  # a message quoting a huge input stays readable
            message = f"{message[: MAX_MESSAGE // 2]} … {message[-MAX_MESSAGE // 4 :]}"
        text = f"{where}{message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class MlstackError(Exception):
    """A failure the user can act on. Carries one or more problems."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        hint: str | None = None,
        problems: list[Problem] | None = None,
    ) -> None:
        self.problems: list[Problem] = problems or [Problem(message, location, hint)]
        super().__init__(message)

    def render(self, limit: int = 50) -> str:
        """Every problem, up to ``limit`` (a generated file can hold thousands of one typo)."""
        text = "\n".join(p.render() for p in self.problems[:limit])
        if len(self.problems) > limit:
            text += f"\n… and {len(self.problems) - limit:,} more problems like these"
        return text


class SpecError(MlstackError):
    """The project file is wrong."""


class StateError(MlstackError):
    """State is missing, locked, or changed under us."""


class LockError(StateError):
    """Someone else holds the state lock."""


class BackendError(MlstackError):
    """A backend could not do what was asked."""


class GateFailed(MlstackError):
    """A quality or deployment gate stopped the work on purpose."""


@dataclass
class ProblemList:
    """Collects problems so that validation can report every error at once."""

    items: list[Problem] = field(default_factory=list)

    def add(self, message: str, location: Location | None = None, hint: str | None = None) -> None:
        self.items.append(Problem(message, location, hint))

    def raise_if_any(self, cls: type[MlstackError] = SpecError) -> None:
        if self.items:
            first = self.items[0]
            raise cls(first.message, problems=sorted(self.items, key=_order))

    def __bool__(self) -> bool:
        return bool(self.items)


def _order(p: Problem) -> tuple[str, int, int]:
    loc = p.location
    if loc is None:
        return ("", 0, 0)
    return (loc.file, loc.line or 0, loc.column or 0)
