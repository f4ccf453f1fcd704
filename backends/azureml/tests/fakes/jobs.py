"""The fake's component versions and pipeline jobs (routes under a workspace).

Follows, as facts, Microsoft's "Machine Learning Services REST API" pages "Component Versions -
Create Or Update" and "Jobs - Create Or Update / Get" (bodies checked with the SDK's generated
``ComponentVersion`` and ``JobBase`` models by ``rest_shape.check``), and "Azure Machine
Learning job status" (NotStarted, Queued, Running, then Completed, Failed or Canceled). A job's
status moves one step per ``GET`` after ``polls`` reads in each state, so a client must follow it
over several polls. Rules applied beyond the models: job and component names (letters, digits,
``-``, ``_``; 255 at most), a registered component version is immutable (409 on a different
spec), every step's ``componentId`` names a registered version, ``${{parent.jobs.X...}}`` names a
sibling step, the compute exists in the workspace, a job name is used once (409).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}$")
PARENT_RE = re.compile(r"\$\{\{parent\.jobs\.([^.}]+)\.outputs\.[^}]+\}\}")
LIFECYCLE = ("NotStarted", "Queued", "Running")


@dataclass
class JobRecord:
    resource: dict[str, Any]
    polls_left: int
    stage: int = 0
    fails: str | None = None  # the step that fails, if any


@dataclass
class JobState:
    computes: set[str] = field(default_factory=lambda: {"cpu-cluster"})
    components: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    fail_step: str | None = None  # a test sets it: that step's command exits non-zero


def components(
    fake: Any, method: str, prefix: str, parts: list[str], body: Any
) -> tuple[int, dict[str, str], Any]:
    from azure.ai.ml._restclient.arm_ml_service import models

    from .arm import ArmError

    if len(parts) != 3 or parts[1] != "versions":
        raise ArmError(404, "NotFound", f"no route for {method} components/{'/'.join(parts)}")
    name, version = parts[0], parts[2]
    key = (name, version)
    table = fake.jobs.components
    if method == "GET":
        return 200, {}, fake._existing(table, key, f"components/{name}/versions")
    if method != "PUT":
        raise ArmError(405, "MethodNotAllowed", method)
    if not NAME_RE.match(name):
        raise ArmError(400, "BadRequest", f"Component name {name!r} is invalid.")
    fake._shape(models.ComponentVersion, body)
    spec = body["properties"].get("componentSpec") or {}
    if spec.get("name") != name or str(spec.get("version")) != version:
        raise ArmError(
            400, "BadRequest", "componentSpec name/version must match the resource path."
        )
    old = table.get(key)
    if old is not None:
        if old["properties"]["componentSpec"] != spec:
            raise ArmError(
                409,
                "Conflict",
                f"Component {name}:{version} exists with a different definition; "
                "versions are immutable.",
            )
        return 200, {}, old
    res = {
        "id": f"{prefix}/components/{name}/versions/{version}",
        "name": version,
        "type": "Microsoft.MachineLearningServices/workspaces/components/versions",
        "properties": {**body["properties"], "provisioningState": "Succeeded"},
    }
    table[key] = res
    return 201, {}, res


def jobs(
    fake: Any, method: str, prefix: str, parts: list[str], body: Any
) -> tuple[int, dict[str, str], Any]:
    from azure.ai.ml._restclient.arm_ml_service import models

    from .arm import ArmError

    state: JobState = fake.jobs
    if len(parts) != 1:
        raise ArmError(404, "NotFound", f"no route for {method} jobs/{'/'.join(parts)}")
    name = parts[0]
    if method == "GET":
        return 200, {}, _advance(fake._existing(state.jobs, name, "jobs"), fake.state.polls)
    if method != "PUT":
        raise ArmError(405, "MethodNotAllowed", method)
    if not NAME_RE.match(name):
        raise ArmError(400, "BadRequest", f"Job name {name!r} is invalid.")
    if name in state.jobs:
        raise ArmError(409, "Conflict", f"Job {name} already exists; job names are unique.")
    fake._shape(models.JobBase, body)
    props = body["properties"]
    if str(props.get("jobType")).lower() != "pipeline":
        raise ArmError(400, "BadRequest", "only pipeline jobs are modelled by this fake")
    steps: dict[str, Any] = props.get("jobs") or {}
    if not steps:
        raise ArmError(400, "BadRequest", "A pipeline job needs at least one step in 'jobs'.")
    _check_compute(state, str(props.get("computeId") or ""), "computeId")
    for step_name, step in steps.items():
        where = f"jobs.{step_name}"
        comp = re.search(r"/components/([^/]+)/versions/([^/]+)$", str(step.get("componentId")))
        if not comp or comp.groups() not in state.components:
            raise ArmError(
                400,
                "UserError",
                f"{where}.componentId {step.get('componentId')!r} is not a registered "
                "component version.",
            )
        if step.get("computeId"):
            _check_compute(state, str(step["computeId"]), f"{where}.computeId")
        for ref in PARENT_RE.findall(str(step.get("inputs"))):
            if ref not in steps:
                raise ArmError(400, "UserError", f"{where}.inputs names unknown step {ref!r}.")
    resource = {
        "id": f"{prefix}/jobs/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "properties": {
            **props,
            "status": LIFECYCLE[0],
            "services": {
                "Studio": {
                    "jobServiceType": "Studio",
                    "endpoint": f"{fake.base}/studio/runs/{name}",
                }
            },
        },
    }
    fails = state.fail_step if state.fail_step in steps else None
    state.jobs[name] = JobRecord(resource, fake.state.polls, fails=fails)
    return 201, {}, resource


def _check_compute(state: JobState, compute_id: str, where: str) -> None:
    from .arm import ArmError

    m = re.search(r"/computes/([^/]+)$", compute_id)
    if not m or m.group(1) not in state.computes:
        raise ArmError(400, "UserError", f"{where}: compute {compute_id!r} was not found.")


def _advance(job: JobRecord, polls: int) -> dict[str, Any]:
    props = job.resource["properties"]
    if props["status"] in LIFECYCLE:
        if job.polls_left > 0:
            job.polls_left -= 1
        elif job.stage + 1 < len(LIFECYCLE):
            job.stage += 1
            job.polls_left = polls
            props["status"] = LIFECYCLE[job.stage]
        else:
            props["status"] = "Failed" if job.fails else "Completed"
    return job.resource
