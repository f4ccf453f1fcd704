"""Checks AWS requests against AWS's own API model as strictly as the service does.

botocore validates a request on the client only for types, required members and minimum
lengths; the service also enforces maximum lengths, patterns, enums and numeric ranges, and moto
enforces almost none of them. This module checks all of them, from the constraints recorded in
botocore's service models (``botocore/data/<service>/<api-version>/service-2.json``, generated
from AWS's own API definitions): ``required``, ``min``/``max`` (length of a string, blob, list or
map; range of a number), ``pattern`` and ``enum``, as the Smithy specification's constraint
traits (``length``, ``range``, ``pattern``, ``enum``, ``required``) define them.

Patterns in the models are Java regular expressions (``\\p{L}``, ``\\z``, UTF-16 surrogate
ranges); they are translated to the ``regex`` package's dialect and matched against the whole
value, as AWS does.

``StrictAws`` hooks botocore's event system (``before-parameter-build``, which runs before
botocore's own validation) on every client any botocore session creates while it is installed,
so calls made by boto3 and by the SageMaker Python SDK are both checked; a ``CreatePipeline`` or
``UpdatePipeline`` also has its definition checked (``check_pipeline_definition``). A violating
call is rejected with a ``ValidationException`` as AWS would, and recorded so the test fails
even when the code under test swallows the error.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

_JAVA_TO_REGEX = (
    # A Java (UTF-16) range over surrogate pairs means the supplementary planes.
    (r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF"),
    (r"\z", r"\Z"),
)


@functools.cache
def compiled_pattern(pattern: str) -> Any:
    """The model's Java pattern as a compiled ``regex`` pattern."""
    for java, python in _JAVA_TO_REGEX:
        pattern = pattern.replace(java, python)
    return regex.compile(pattern)


def violations(shape: Any, value: Any, where: str) -> list[str]:
    """Every constraint of ``shape`` (a botocore Shape) that ``value`` breaks, as messages."""
    meta = shape.metadata
    out: list[str] = []
    kind = shape.type_name
    if is_pipeline_expression(value) and kind not in ("structure", "list", "map"):
        return []  # resolved at execution time: stands for a value of the right type
    if kind == "structure":
        if not isinstance(value, Mapping):
            return [f"{where}: expected a structure, got {type(value).__name__}"]
        members = shape.members
        for name in meta.get("required", []):
            if name not in value:
                out.append(f"{where}.{name}: required member missing")
        for name, member_value in value.items():
            if name not in members:
                out.append(f"{where}.{name}: not a member of {shape.name}")
                continue
            out.extend(violations(members[name], member_value, f"{where}.{name}"))
        return out
    if kind == "list":
        if not isinstance(value, (list, tuple)):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        out.extend(_length(meta, len(value), where, "items"))
        for i, item in enumerate(value):
            out.extend(violations(shape.member, item, f"{where}[{i}]"))
        return out
    if kind == "map":
        if not isinstance(value, Mapping):
            return [f"{where}: expected a map, got {type(value).__name__}"]
        out.extend(_length(meta, len(value), where, "entries"))
        for k, v in value.items():
            out.extend(violations(shape.key, k, f"{where} key {k!r}"))
            out.extend(violations(shape.value, v, f"{where}[{k!r}]"))
        return out
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type(value).__name__}"]
        out.extend(_length(meta, len(value), where, "characters"))
        enum = meta.get("enum")
        if enum and value not in enum:
            out.append(f"{where}: {value!r} is not one of {', '.join(enum)}")
        pattern = meta.get("pattern")
        if pattern and compiled_pattern(pattern).fullmatch(value) is None:
            out.append(f"{where}: {_short(value)} does not match the pattern {pattern}")
        return out
    if kind == "blob":
        if isinstance(value, (bytes, bytearray, str)):
            out.extend(_length(meta, len(value), where, "bytes"))
        return out
    if kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return [f"{where}: expected a number, got {type(value).__name__}"]
        if "min" in meta and value < meta["min"]:
            out.append(f"{where}: {value} is below the minimum {meta['min']}")
        if "max" in meta and value > meta["max"]:
            out.append(f"{where}: {value} is above the maximum {meta['max']}")
        return out
    if kind == "boolean" and not isinstance(value, bool):
        return [f"{where}: expected a boolean, got {type(value).__name__}"]
    return out


def is_pipeline_expression(value: Any) -> bool:
    """``{"Get": ...}``, ``{"Std:Join": ...}``, ``{"Std:JsonGet": ...}`` of a pipeline definition."""
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _EXPRESSIONS


_EXPRESSIONS = ("Get", "Std:Join", "Std:JsonGet")


def _length(meta: Mapping[str, Any], n: int, where: str, unit: str) -> list[str]:
    if "min" in meta and n < meta["min"]:
        return [f"{where}: {n} {unit}, at least {meta['min']} allowed"]
    if "max" in meta and n > meta["max"]:
        return [f"{where}: {n} {unit}, at most {meta['max']} allowed"]
    return []


def _short(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def check_request(operation: Any, params: Mapping[str, Any]) -> list[str]:
    """The violations of a request's parameters against a botocore OperationModel's input."""
    shape = operation.input_shape
    if shape is None:
        return [f"{operation.name}: takes no parameters"] if params else []
    return violations(shape, params, operation.name)


DOCUMENTED = Path(__file__).parents[3] / "docs" / "sagemaker-aws.md"
_ROW = regex.compile(r"\| ([a-z0-9-]+) \| ([A-Za-z0-9]+) \| ([a-z_, ]+) \| ([A-Za-z0-9:, -]+) \|")


@functools.cache
def documented_operations() -> dict[tuple[str, str], tuple[set[str], tuple[str, ...]]]:
    """(service, Operation) -> (calling modules, IAM actions) from docs/sagemaker-aws.md."""
    text = DOCUMENTED.read_text()
    table = text[text.index("<!-- operations") : text.index("<!-- /operations -->")]
    out = {}
    for m in _ROW.finditer(table):
        if m.group(1) == "service":  # the header
            continue
        modules = {x.strip() for x in m.group(3).split(",")}
        out[(m.group(1), m.group(2))] = (modules, tuple(a.strip() for a in m.group(4).split(",")))
    return out


def _from_backend() -> bool:
    """Whether the call being made comes from the backend's own code (not from a test, even one
    the backend calls back): the nearest caller outside boto3/botocore decides."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        if not any(part in name for part in ("/botocore/", "/boto3/", "strict_aws.py")):
            return _BACKEND_DIR in name
        frame = frame.f_back  # type: ignore[assignment]
    return False


_BACKEND_DIR = f"{Path(__file__).parents[1].name}/mlstack_sagemaker/"


@dataclass
class StrictAws:
    """Checks every call of every botocore client created while installed (see module doc)."""

    calls: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    backend_calls: list[tuple[str, str]] = field(default_factory=list)  # made by the backend

    def _on_call(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        from botocore.exceptions import ClientError

        service = model.service_model.service_name
        self.calls.append(f"{service}:{model.name}")
        if _from_backend():
            self.backend_calls.append((service, model.name))
        problems = check_request(model, params)
        if model.name in ("CreatePipeline", "UpdatePipeline") and "PipelineDefinition" in params:
            problems += check_pipeline_definition(json.loads(params["PipelineDefinition"]))
        if problems:
            self.found.extend(f"{service} {p}" for p in problems)
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "; ".join(problems)}},
                model.name,
            )

    @contextmanager
    def installed(self) -> Iterator[StrictAws]:
        import botocore.session

        original = botocore.session.Session.create_client
        hook = self._on_call

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-parameter-build", hook)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.session.Session.create_client = original  # type: ignore[method-assign]


# Step type -> (the API operation the step starts, the name member the pipeline fills in), per
# "Pipeline Steps" / "Pipeline definition JSON schema" in the SageMaker Developer Guide.
PIPELINE_STEP_OPERATIONS = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
    "Model": ("CreateModel", "ModelName"),
    "RegisterModel": ("CreateModelPackage", None),
}


# The pipeline definition's own rules, per "Pipeline definition JSON schema" (SageMaker Developer
# Guide): a step's Name is 1-64 of [A-Za-z0-9-_] and unique in the pipeline, DependsOn names
# steps of the pipeline, a parameter's Type is one of these.
STEP_NAME = regex.compile(r"[A-Za-z0-9\-_]{1,64}")
PARAMETER_TYPES = {"String": str, "Integer": int, "Float": float, "Boolean": bool}


def check_pipeline_definition(definition: Mapping[str, Any]) -> list[str]:
    """The violations of a pipeline definition: its own rules, and each step's ``Arguments``
    against the request of the job it starts.

    ``{"Get": "Parameters.X"}`` is replaced by X's declared default before the field is checked
    (an undeclared X is a violation; a parameter without a default must be given at start and
    stands for a valid value). Other expressions (step properties, ``Std:Join``,
    ``Std:JsonGet``) stand for a value of the type their position asks for: they are resolved
    at execution time. The job name SageMaker generates is filled in with a valid one. Steps
    nested in a condition's ``IfSteps``/``ElseSteps`` are checked too.
    """
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    found: list[str] = []
    defaults: dict[str, Any] = {}
    for p in definition.get("Parameters", []):
        kind = PARAMETER_TYPES.get(p.get("Type"))
        if kind is None:
            found.append(
                f"parameter {p.get('Name')!r}: Type {p.get('Type')!r} is not one of "
                + ", ".join(PARAMETER_TYPES)
            )
        elif "DefaultValue" in p:
            defaults[p["Name"]] = kind(p["DefaultValue"])
    declared = {p.get("Name") for p in definition.get("Parameters", [])}
    steps: list[Mapping[str, Any]] = []
    pending = list(definition.get("Steps", []))
    while pending:
        step = pending.pop(0)
        steps.append(step)
        arguments = step.get("Arguments", {})
        pending.extend(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))
    names = [str(step.get("Name", "")) for step in steps]
    for name in names:
        if STEP_NAME.fullmatch(name) is None:
            found.append(f"step {name!r}: a step name is 1-64 characters of A-Z a-z 0-9 - _")
    for name in sorted({n for n in names if names.count(n) > 1}):
        found.append(f"step {name!r}: {names.count(name)} steps have this name")
    for step in steps:
        for need in step.get("DependsOn", []):
            if need not in names:
                found.append(f"step {step.get('Name')!r}: DependsOn {need!r}, no such step")
        where = f"step {step.get('Name')!r}"
        arguments = _resolve(step.get("Arguments", {}), defaults, declared, names, where, found)
        if step.get("Type") not in PIPELINE_STEP_OPERATIONS:
            continue
        operation, name_member = PIPELINE_STEP_OPERATIONS[step["Type"]]
        request = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}
        if name_member:
            request.setdefault(name_member, "pipelines-step-job")
        for problem in check_request(model.operation_model(operation), request):
            found.append(f"{where} ({operation}): {problem}")
    return found


def _resolve(
    node: Any,
    defaults: Mapping[str, Any],
    declared: set[Any],
    steps: list[str],
    where: str,
    found: list[str],
) -> Any:
    """``node`` with each ``{"Get": "Parameters.X"}`` replaced by X's default; references to
    undeclared parameters or to steps that do not exist are recorded in ``found``."""
    if isinstance(node, Mapping):
        if set(node) == {"Get"} and isinstance(node["Get"], str):
            ref = node["Get"]
            if ref.startswith("Parameters."):
                name = ref.removeprefix("Parameters.")
                if name not in declared:
                    found.append(f"{where}: {ref} is not a declared parameter")
                return defaults.get(name, node)
            if ref.startswith("Steps."):
                step = ref.removeprefix("Steps.").split(".", 1)[0]
                if step not in steps:
                    found.append(f"{where}: {ref} refers to no step of the pipeline")
            return node
        return {
            k: (
                v
                if k in ("IfSteps", "ElseSteps")
                else _resolve(v, defaults, declared, steps, where, found)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_resolve(v, defaults, declared, steps, where, found) for v in node]
    return node
