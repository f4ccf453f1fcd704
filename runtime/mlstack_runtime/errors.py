"""What a stage reports when it cannot go on; backends map these onto their own errors."""

from __future__ import annotations

from typing import Optional


class StageError(Exception):
    """The stage failed because of its input or settings (not a bug): ``message`` says what,
    ``hint`` what to do."""

    def __init__(self, message: str, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class StageConfigError(StageError):
    """A stage's setting is wrong (``setting`` is its path under the stage, e.g.
    ``with.estimator``): the same input fails the same way, so it is never retried."""

    def __init__(self, setting: str, message: str, hint: Optional[str] = None) -> None:
        super().__init__(f"{setting}: {message}", hint=hint)
        self.setting = setting


class StageStopped(StageError):
    """The stage stopped the run on purpose (the data failed its expectations): ``problems``
    lists every reason, one sentence each."""

    def __init__(self, message: str, problems: list[str], hint: Optional[str] = None) -> None:
        super().__init__(message, hint=hint)
        self.problems = list(problems)
