"""Following a pipeline execution to its end (pure: a fake AWS, no moto)."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mlstack_sagemaker import pipelines

from mlstack.engine.backend import Context


class FakeSageMaker:
    """An execution that takes ``stopping`` more polls to stop once asked."""

    def __init__(self, stopping: int) -> None:
        self.stopping = stopping
        self.calls: list[tuple[str, float]] = []
        self.stop_requested = False

    def call(self, service: str, op: str, **kwargs: Any) -> Any:
        self.calls.append((op, time.monotonic()))
        if op == "stop_pipeline_execution":
            self.stop_requested = True
            return {"PipelineExecutionArn": kwargs["PipelineExecutionArn"]}
        if op == "list_pipeline_execution_steps":
            return {"PipelineExecutionSteps": []}
        assert op == "describe_pipeline_execution", op
        if not self.stop_requested:
            return {"PipelineExecutionStatus": "Executing"}
        self.stopping -= 1
        return {"PipelineExecutionStatus": "Stopping" if self.stopping > 0 else "Stopped"}


def test_a_cancel_stops_the_execution_once_and_keeps_polling_at_the_interval(
    tmp_path: Path,
) -> None:
    aws = FakeSageMaker(stopping=4)
    platform = SimpleNamespace(aws=aws, config=SimpleNamespace(timeout=60.0, poll_interval=0.05))
    ctx = Context(tmp_path, "dev")
    ctx.cancel.set()
    status, _, _ = pipelines._follow(platform, "arn:x", ctx)  # type: ignore[arg-type]
    assert status == "Stopped"
    assert [op for op, _ in aws.calls].count("stop_pipeline_execution") == 1
    describes = [t for op, t in aws.calls if op == "describe_pipeline_execution"]
    assert len(describes) == 5  # once before the stop, then Stopping x3, Stopped
    gaps = [b - a for a, b in zip(describes, describes[1:], strict=False)]
    assert min(gaps) >= 0.045, gaps
