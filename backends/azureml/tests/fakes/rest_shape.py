"""Request bodies checked against azure-ai-ml's own generated ARM models, as strictly as ARM.

The models are ``azure.ai.ml._restclient.arm_ml_service.models`` (TypeSpec-generated from the
Azure ML REST API specification, "Machine Learning Services REST API" on Microsoft Learn): each
class lists its ``rest_field``s (wire name, visibility), its type annotations, discriminators in
``__mapping__`` (``endpointComputeType``, ``jobType``, ...) and, in its docstring, the fields the
service requires ("Required."). The generated classes accept anything; this walker rejects what
the service rejects with 400 ``BadRequest``: unknown members, missing required members, wrong
JSON types, enum values outside the service's known values (Azure's enums are
case-insensitive), unparsable ISO 8601 durations and datetimes.
"""

from __future__ import annotations

import datetime
import enum
import re
import types
import typing
from functools import cache
from typing import Any

_IVAR = re.compile(r":ivar (\w+):(.*?)(?=\n\s*:vartype)", re.S)


class ShapeError(ValueError):
    """A request body the service would refuse; ``str()`` says where and why."""


@cache
def _models() -> Any:
    from azure.ai.ml._restclient.arm_ml_service import models

    return models


@cache
def _hints(cls: type) -> dict[str, Any]:
    import azure.ai.ml._restclient.arm_ml_service.models._models as generated

    ns = dict(vars(generated))
    ns["_models"] = _models()
    return typing.get_type_hints(cls, globalns=ns)


@cache
def _fields(cls: type) -> dict[str, tuple[str, Any, bool, list[str]]]:
    """wire name -> (attribute, annotation, required, visibility)."""
    cls.__new__(cls)  # the generated Model computes _attr_to_rest_field on first construction
    required = {m.group(1) for m in _IVAR.finditer(cls.__doc__ or "") if "Required." in m.group(2)}
    hints = _hints(cls)
    out = {}
    for attr, rf in cls._attr_to_rest_field.items():
        out[rf._rest_name] = (attr, hints.get(attr, Any), attr in required, rf._visibility or [])
    return out


def _discriminated(cls: type, body: dict[str, Any], where: str) -> type:
    mapping = getattr(cls, "__mapping__", None)
    if not mapping:
        return cls
    for klass in cls.__mro__:
        for rf in vars(klass).values():
            if getattr(rf, "_is_discriminator", False):
                value = body.get(rf._rest_name)
                if value is None:
                    raise ShapeError(
                        f"{where}.{rf._rest_name}: required (one of {sorted(mapping)})"
                    )
                sub = mapping.get(value) or next(
                    (c for k, c in mapping.items() if k.lower() == str(value).lower()), None
                )
                if sub is None:
                    raise ShapeError(
                        f"{where}.{rf._rest_name}: {value!r} is not one of {sorted(mapping)}"
                    )
                return _discriminated(sub, body, where) if sub is not cls else cls
    return cls


def check(cls: type, body: Any, where: str = "body") -> None:
    """Raise ``ShapeError`` unless ``body`` is a valid request for model ``cls``."""
    if not isinstance(body, dict):
        raise ShapeError(f"{where}: expected an object, got {type(body).__name__}")
    cls = _discriminated(cls, body, where)
    fields = _fields(cls)
    for key, value in body.items():
        if key not in fields:
            raise ShapeError(f"{where}.{key}: not a member of {cls.__name__}")
        _, annotation, _, visibility = fields[key]
        if value is None:
            continue
        if visibility == ["read"]:
            continue  # ARM ignores read-only members sent back (as the SDK does on updates)
        _check_value(annotation, value, f"{where}.{key}")
    for key, (_, _, required, visibility) in fields.items():
        if required and visibility != ["read"] and body.get(key) is None:
            raise ShapeError(f"{where}.{key}: required by {cls.__name__}")


def _check_value(annotation: Any, value: Any, where: str) -> None:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        enums = [a for a in options if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and isinstance(value, str):
            known = {str(m.value).lower() for e in enums for m in e}
            if value.lower() not in known:
                raise ShapeError(f"{where}: {value!r} is not one of {sorted(known)}")
            return
        errors = []
        for option in options:
            try:
                _check_value(option, value, where)
                return
            except ShapeError as e:
                errors.append(str(e))
        raise ShapeError(errors[0] if errors else f"{where}: unexpected value")
    if origin is typing.Literal:
        allowed = {str(getattr(a, "value", a)).lower() for a in args}
        if str(value).lower() not in allowed:
            raise ShapeError(f"{where}: {value!r} is not one of {sorted(allowed)}")
        return
    if origin in (list, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            raise ShapeError(f"{where}: expected an array")
        for i, item in enumerate(value):
            _check_value(args[0] if args else Any, item, f"{where}[{i}]")
        return
    if origin in (dict, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: expected an object")
        for k, item in value.items():
            _check_value(args[1] if len(args) > 1 else Any, item, f"{where}.{k}")
        return
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            known = {str(m.value).lower() for m in annotation}
            if not isinstance(value, str) or value.lower() not in known:
                raise ShapeError(f"{where}: {value!r} is not one of {sorted(known)}")
            return
        if hasattr(annotation, "_attr_to_rest_field") or hasattr(annotation, "_is_model"):
            check(annotation, value, where)
            return
        if annotation is bool:
            if not isinstance(value, bool):
                raise ShapeError(f"{where}: expected a boolean, got {value!r}")
            return
        if annotation is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ShapeError(f"{where}: expected an integer, got {value!r}")
            return
        if annotation is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ShapeError(f"{where}: expected a number, got {value!r}")
            return
        if annotation is str:
            if not isinstance(value, str):
                raise ShapeError(f"{where}: expected a string, got {value!r}")
            return
        if annotation is datetime.timedelta:
            import isodate

            try:
                isodate.parse_duration(value)
            except Exception:
                raise ShapeError(f"{where}: {value!r} is not an ISO 8601 duration") from None
            return
        if annotation is datetime.datetime:
            try:
                datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise ShapeError(f"{where}: {value!r} is not an ISO 8601 datetime") from None
            return
    # anything else (bytes, unions the generator left open) is passed through
