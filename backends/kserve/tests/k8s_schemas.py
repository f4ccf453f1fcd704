"""Validation of Kubernetes objects against their published schemas, as strict as an API server
with strict field validation (``fieldValidation=Strict``): unknown fields are errors.

Documents followed: Kubernetes "Extend the Kubernetes API with CustomResourceDefinitions"
(structural schemas, ``x-kubernetes-int-or-string``, ``x-kubernetes-preserve-unknown-fields``,
``nullable``), "Object Names and IDs" (DNS-1123), the KServe v1beta1 CRD (0.21, in
``shared/data``), the Gateway API v1.6.1 HTTPRoute CRD (``data/``) and, for built-in kinds,
the OpenAPI schemas bundled with ``kubernetes-validate`` (strict variants). CEL rules
(``x-kubernetes-validations``) are not evaluated; the documented ones mlstack relies on
(HTTPRoute backend weights, mirror percent 0..100) are checked by hand below.
"""

from __future__ import annotations

import copy
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

HERE = Path(__file__).resolve().parent
ISVC_CRD = Path(
    os.environ.get(
        "MLSTACK_KSERVE_CRD",
        HERE.parents[3] / "shared" / "data" / "kserve-inferenceservices-crd.yaml",
    )
)
if not ISVC_CRD.exists():  # the worktree may sit elsewhere: /work/shared is the documented place
    ISVC_CRD = Path("/work/shared/data/kserve-inferenceservices-crd.yaml")
ROUTE_CRD = HERE / "data" / "gateway.networking.k8s.io_httproutes.yaml"
K8S_VERSION = "1.30"
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _strict(node: Any) -> Any:
    """A CRD structural schema as JSON Schema that rejects unknown fields."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (
        out.get("type") == "object"
        and "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def _crd_schema(path: Path, version: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as fh:
        crd = yaml.load(fh, Loader=loader)
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            schema = copy.deepcopy(v["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}  # checked by _metadata
            return _strict(schema)
    raise LookupError(f"{path.name} has no version {version}")


def _validator(path: Path, version: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(_crd_schema(path, version))


def have_isvc_crd() -> bool:
    return ISVC_CRD.exists()


def _metadata(obj: dict[str, Any], kind: str) -> list[str]:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    problems = []
    if not name:
        problems.append("metadata.name: Required value")
    elif kind == "InferenceService":
        # KServe's webhook: the name becomes a Service (DNS-1035 label, at most 63)
        if not DNS1035_LABEL.match(name) or len(name) > 63:
            problems.append(f"metadata.name: Invalid value: {name!r}: a DNS-1035 label")
    elif not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        problems.append(f"metadata.name: Invalid value: {name!r}: a DNS-1123 subdomain")
    for key, value in (meta.get("labels") or {}).items():
        if (
            not isinstance(value, str)
            or len(value) > 63
            or not re.match(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$", value)
        ):
            problems.append(f"metadata.labels: Invalid value: {value!r} for {key}")
    return problems


def _route_rules(obj: dict[str, Any]) -> list[str]:
    """HTTPRoute rules the CRD states in CEL or prose: weights 0..1000000, mirror percent."""
    problems = []
    for i, rule in enumerate(obj.get("spec", {}).get("rules", [])):
        for ref in rule.get("backendRefs", []):
            if not 0 <= ref.get("weight", 1) <= 1000000:
                problems.append(f"spec.rules[{i}].backendRefs.weight out of range")
        for f in rule.get("filters", []):
            if f.get("type") == "RequestMirror" and "requestMirror" not in f:
                problems.append(f"spec.rules[{i}].filters: requestMirror must be set")
            mirror = f.get("requestMirror", {})
            if "percent" in mirror and "fraction" in mirror:
                problems.append(f"spec.rules[{i}]: only one of percent or fraction may be set")
    return problems


def problems(obj: dict[str, Any]) -> list[str]:
    """Everything the API server would reject in ``obj`` (empty when it is valid)."""
    kind, api = obj.get("kind", ""), obj.get("apiVersion", "")
    out = _metadata(obj, kind)
    if kind == "InferenceService" and api == "serving.kserve.io/v1beta1":
        v = _validator(ISVC_CRD, "v1beta1")
    elif kind == "HTTPRoute" and api == "gateway.networking.k8s.io/v1":
        v = _validator(ROUTE_CRD, "v1")
        out += _route_rules(obj)
    else:
        import kubernetes_validate

        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.absolute_path)
            out.append(f"{path or kind}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            out.append(f"no such kind {kind} in {api}")
        return out
    for err in sorted(v.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in err.absolute_path)
        out.append(f"{path}: {err.message}")
    return out
