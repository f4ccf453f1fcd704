"""The JSON Schema of ``mlstack.yaml``: the spec's models plus every installed backend's settings.

An environment block holds the common keys (``Environment``) and its backend's own settings;
each installed backend's config model becomes a ``$defs`` entry, and an ``if``/``then`` per
backend applies it to environment blocks naming that backend. Only the backends' light
descriptor modules are imported (no platform SDK). ``mlstack schema`` prints this, and the spec
reference (``docs/reference/spec.md``) is generated from it.
"""

from __future__ import annotations

from typing import Any

from mlstack.manifest.models import ENV_KEYS, Environment, Project


def backend_models() -> dict[str, Any]:
    """Installed backends' plugins by name (descriptors only, no implementation imported)."""
    from mlstack.engine.backend import available_backends, get_plugin

    return {name: get_plugin(name) for name in available_backends()}


def _settings_def(name: str) -> str:
    return f"Settings_{name}"


def full_schema() -> dict[str, Any]:
    s = Project.model_json_schema(by_alias=True)
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["title"] = "mlstack.yaml"
    defs = s.setdefault("$defs", {})
    env = defs["Environment"]
    default = Environment.model_fields["backend"].default
    branches = []
    for name, plugin in sorted(backend_models().items()):
        model = plugin.config_model.model_json_schema(
            by_alias=True, ref_template="#/$defs/" + _settings_def(name) + "_{model}"
        )
        for inner, d in model.pop("$defs", {}).items():
            defs[f"{_settings_def(name)}_{inner}"] = d
        model["title"] = f"{name} backend settings"
        if plugin.description:
            model["description"] = plugin.description
        # the common keys are Environment's; the backend's own model must not refuse them
        props = dict(model.get("properties", {}))
        model["properties"] = props
        model["additionalProperties"] = False
        for key in ENV_KEYS:
            props.setdefault(key, True)
        defs[_settings_def(name)] = model
        when: dict[str, Any] = {"properties": {"backend": {"const": name}}}
        if name != default:  # a block without `backend:` is the default backend's
            when["required"] = ["backend"]
        branches.append({"if": when, "then": {"$ref": f"#/$defs/{_settings_def(name)}"}})
    if branches:
        env["allOf"] = branches
    return s
