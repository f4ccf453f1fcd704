"""RunResult.stages speaks mlstack's vocabulary (ran/cached/failed/skipped), not SageMaker's
step statuses; a cache hit is reported once as cached, and unknown statuses render as log lines."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mlstack_sagemaker import pipelines

from mlstack.engine.seam import Event


def _platform(steps: list[dict[str, Any]]) -> Any:
    def call(service: str, op: str, **kwargs: Any) -> Any:
        assert (service, op) == ("sagemaker", "list_pipeline_execution_steps")
        assert kwargs == {"PipelineExecutionArn": "arn", "SortOrder": "Ascending"}
        return {"PipelineExecutionSteps": steps}

    return SimpleNamespace(aws=SimpleNamespace(call=call))


def test_step_statuses_become_stage_outcomes() -> None:
    steps = [
        {"StepName": "ingest", "StepStatus": "Succeeded", "CacheHitResult": {"x": 1}},
        {"StepName": "train", "StepStatus": "Succeeded"},
        {"StepName": "evaluate", "StepStatus": "Failed", "FailureReason": "gate"},
        {"StepName": "register", "StepStatus": "Stopped"},
    ]
    events: list[Event] = []
    ctx = SimpleNamespace(emit=events.append)
    seen: dict[str, str] = {}
    pipelines._step_events(_platform(steps), "arn", seen, ctx)  # type: ignore[arg-type]
    # a second poll with nothing new emits nothing more
    pipelines._step_events(_platform(steps), "arn", seen, ctx)  # type: ignore[arg-type]
    assert [e.kind for e in events] == ["stage.cached", "stage.done", "stage.failed", "log"]
    outcomes = {k: pipelines._OUTCOME.get(v, "skipped") for k, v in seen.items()}
    assert outcomes == {
        "ingest": "cached",
        "train": "ran",
        "evaluate": "failed",
        "register": "skipped",
    }
