"""The fake's component versions and pipeline jobs (routes under a workspace).

Follows, as facts, Microsoft's "Machine Learning Services REST API" pages "Component Versions -
Create Or Update" and "Jobs - Create Or Update / Get" (bodies checked with the SDK's generated
``ComponentVersion`` and ``JobBase`` models by ``rest_shape.check``), and "Azure Machine
Learning job status" (NotStarted, Queued, Running, then Completed, Failed or Canceled). A job's
status moves one step per ``GET`` after ``polls`` reads in each state, so a client must follow it
over several polls. Rules applied beyond the models: job and component names (letters, digits,
``-``, ``_``; 255 at most), a registered component version is immutable (409 on a different
spec), every step's ``componentId`` names a registered version, ``${{parent.jobs.X...}}`` names a
sibling step, the compute exists in the workspace, a job name is used once (409), a
component's ``code`` names a registered code version.

When a job leaves ``Running`` its steps are run, in dependency order, as Azure ML runs a command
job: the component's code folder is downloaded from the datastore and must hold the command's
module (``mlstack_runtime``); ``uri_file``/``uri_folder`` inputs are downloaded, a
``${{parent.jobs.X.outputs.out}}`` input is step X's output folder, ``${{inputs.N}}`` and
``${{outputs.out}}`` in the command become those local paths, and the output folder is uploaded
to its datastore path when the step succeeds. The image is not pulled: ``python -m
mlstack_runtime ARGS`` runs as ``mlstack_runtime.__main__.main(ARGS)`` in this process (only that
command is accepted). A step whose component version and inputs equal an earlier completed
step's, with that output still in the datastore, is reused, not run ("Reuse of pipeline steps").
A failing step fails the job; the steps after it do not start.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
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
    steps: dict[str, str] = field(default_factory=dict)  # step -> Completed/Reused/Failed
    logs: dict[str, str] = field(default_factory=dict)  # step -> what it wrote to stderr


@dataclass
class JobState:
    computes: set[str] = field(default_factory=lambda: {"cpu-cluster"})
    components: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, JobRecord] = field(default_factory=dict)
    fail_step: str | None = None  # a test sets it: that step's command exits non-zero
    # (componentId, resolved inputs) of completed steps -> their output path, for reuse
    done: dict[str, str] = field(default_factory=dict)
    runs: int = 0  # steps actually run (not reused)


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
        return 200, {}, _advance(fake, fake._existing(state.jobs, name, "jobs"), fake.state.polls)
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
        component = state.components[comp.groups()]["properties"]["componentSpec"]
        if component.get("code"):
            fake_code_of(fake, str(component["code"]))
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


def fake_code_of(fake: Any, code_id: str) -> dict[str, Any]:
    from .assets import code_of

    return code_of(fake, code_id)


def _check_compute(state: JobState, compute_id: str, where: str) -> None:
    from .arm import ArmError

    m = re.search(r"/computes/([^/]+)$", compute_id)
    if not m or m.group(1) not in state.computes:
        raise ArmError(400, "UserError", f"{where}: compute {compute_id!r} was not found.")


def _advance(fake: Any, job: JobRecord, polls: int) -> dict[str, Any]:
    props = job.resource["properties"]
    if props["status"] in LIFECYCLE:
        if job.polls_left > 0:
            job.polls_left -= 1
        elif job.stage + 1 < len(LIFECYCLE):
            job.stage += 1
            job.polls_left = polls
            props["status"] = LIFECYCLE[job.stage]
        else:
            props["status"] = "Completed" if _run_steps(fake, job) else "Failed"
    return job.resource


_PARENT = re.compile(r"^\$\{\{parent\.jobs\.([^.}]+)\.outputs\.out\}\}$")
_REF = re.compile(r"\$\{\{(inputs|outputs)\.([A-Za-z0-9_]+)\}\}")


def _order(steps: dict[str, Any]) -> list[str]:
    def needs(step: dict[str, Any]) -> set[str]:
        return set(PARENT_RE.findall(json.dumps(step.get("inputs") or {})))

    done: list[str] = []
    while len(done) < len(steps):
        ready = [n for n in sorted(steps) if n not in done and needs(steps[n]) <= set(done)]
        if not ready:
            raise RuntimeError("the steps' inputs form a cycle")
        done.append(ready[0])
    return done


def _run_steps(fake: Any, job: JobRecord) -> bool:
    """Run the job's steps (see the module's docstring); True when every step completed."""
    from .assets import (
        code_prefix,
        datastore_path,
        download,
        download_file,
        upload,
        workspace_of,
    )

    state: JobState = fake.jobs
    steps: dict[str, Any] = job.resource["properties"]["jobs"]
    ws = workspace_of(job.resource["id"])
    container = fake.blobs(ws)
    with tempfile.TemporaryDirectory(dir=fake.workdir) as tmp:
        root = Path(tmp)
        outputs: dict[str, Path] = {}
        for name in _order(steps):
            step = steps[name]
            comp = re.search(r"/components/([^/]+)/versions/([^/]+)$", step["componentId"])
            assert comp is not None  # checked at submission
            spec = state.components[comp.groups()]["properties"]["componentSpec"]
            out_uri = step["outputs"]["out"]["uri"]
            out_path = datastore_path(out_uri)
            here = root / name
            outputs[name] = here / "out"
            outputs[name].mkdir(parents=True)
            reuse_key = json.dumps([step["componentId"], step["inputs"], out_uri], sort_keys=True)
            if state.done.get(reuse_key) == out_path and any(
                True for _ in container.list_blobs(name_starts_with=out_path + "/")
            ):
                download(container, out_path, outputs[name])
                job.steps[name] = "Reused"
                continue
            if job.fails == name:
                job.steps[name] = "Failed"
                job.logs[name] = f"step {name}: the command exited with 1 (a test's failure)"
                return False
            values: dict[tuple[str, str], str] = {("outputs", "out"): str(outputs[name])}
            for key, value in (step.get("inputs") or {}).items():
                kind = value.get("job_input_type")
                if kind == "literal":
                    m = _PARENT.match(str(value.get("value")))
                    if not m or m.group(1) not in outputs:
                        job.steps[name] = "Failed"
                        job.logs[name] = f"input {key}: {value.get('value')!r} cannot be bound"
                        return False
                    values[("inputs", key)] = str(outputs[m.group(1)])
                elif kind == "uri_file":
                    target = here / "in" / key / Path(value["uri"]).name
                    download_file(container, datastore_path(value["uri"]), target)
                    values[("inputs", key)] = str(target)
                elif kind == "uri_folder":
                    target = here / "in" / key
                    target.mkdir(parents=True)
                    if not download(container, datastore_path(value["uri"]), target):
                        job.steps[name] = "Failed"
                        job.logs[name] = f"input {key}: {value['uri']} holds no files"
                        return False
                    values[("inputs", key)] = str(target)
            code = here / "code"
            code_version = fake_code_of(fake, str(spec.get("code") or ""))
            download(container, code_prefix(fake, code_version["properties"]["codeUri"], ws), code)
            try:
                args = [
                    _REF.sub(lambda m, v=values: v[(m.group(1), m.group(2))], a)
                    for a in shlex.split(spec["command"])
                ]
            except KeyError as e:
                job.steps[name] = "Failed"
                job.logs[name] = f"the command names {e}, which the step does not bind"
                return False
            code_ok = (code / args[2] / "__main__.py").is_file() if len(args) > 2 else False
            if args[:3] != ["python", "-m", "mlstack_runtime"] or not code_ok:
                job.steps[name] = "Failed"
                job.logs[name] = f"{args[:3]}: No module named mlstack_runtime in the code folder"
                return False
            code_run, err = _run_entry_point(args[3:])
            state.runs += 1
            job.logs[name] = err
            if code_run != 0:
                job.steps[name] = "Failed"
                return False
            upload(container, outputs[name], out_path)
            state.done[reuse_key] = out_path
            job.steps[name] = "Completed"
    return True


def _run_entry_point(args: list[str]) -> tuple[int, str]:
    """``python -m mlstack_runtime ARGS`` in this process; its exit status and stderr."""
    from mlstack_runtime.__main__ import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()
