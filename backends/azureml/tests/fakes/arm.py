"""A fake of the Azure Resource Manager / Azure ML REST resources mlstack uses, on 127.0.0.1.

No Azure ML emulator exists, so this is the stand-in the real ``azure-ai-ml`` ``MLClient`` is
driven against. It follows these Microsoft documents (facts, not text):

- "Machine Learning Services REST API" (Microsoft.MachineLearningServices): workspaces,
  onlineEndpoints, onlineEndpoints/deployments, models, model versions, listKeys.
- "Track asynchronous Azure operations" (ARM long-running operations): a PUT answers 201/200
  with ``Azure-AsyncOperation``; the operation reports ``InProgress`` for several polls and then
  ``Succeeded`` or ``Failed`` with ``error``; a DELETE answers 202 with ``Azure-AsyncOperation``
  and ``Location``; ``Retry-After`` says when to poll again (``State.retry_after``: 0.05 s here
  so the tests' clients do not wait the SDK's 5 s default; Azure sends whole seconds). Errors
  are ``{"error": {"code", "message"}}`` bodies.
- "Safe rollout for online endpoints" and "Perform safe rollout / mirror traffic": an endpoint's
  ``traffic`` names existing deployments and sums to 100 (or 0: no traffic); ``mirrorTraffic``
  sums to at most 50 and only to a deployment with no live traffic; a deployment that takes
  live or mirrored traffic cannot be deleted; one operation at a time on an endpoint (409).
- Components and pipeline jobs: see ``jobs.py``.
- "Managed online endpoints SKU list": the instance types a managed deployment may use.
- "Invoke an online endpoint" / "Online endpoint keys": the scoring URI takes
  ``Authorization: Bearer <key>`` and ``azureml-model-deployment`` to pick a deployment.

- Datastores and code versions (blob storage in Azurite): see ``assets.py``.
- "Deploy MLflow models" / "Deploy a model with a scoring script": only MLflow models deploy
  without code, so a deployment of a ``custom_model`` needs ``codeConfiguration`` (a registered
  code version and a scoring script) and an environment.

Every request body is checked with ``rest_shape.check`` against the SDK's generated models.
Scoring runs the deployment's own scoring script over its model files (``container.py``), or, if
a test put one in, the test's ``scorer(deployment, body)`` in place of the container.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import assets
from . import jobs as fake_jobs
from .rest_shape import ShapeError, check

API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
ENDPOINT_NAME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
MANAGED_SKUS = {
    s.lower()
    for s in (
        "Standard_DS1_v2 Standard_DS2_v2 Standard_DS3_v2 Standard_DS4_v2 Standard_DS5_v2 "
        "Standard_F2s_v2 Standard_F4s_v2 Standard_F8s_v2 Standard_F16s_v2 Standard_E2s_v3 "
        "Standard_E4s_v3 Standard_E8s_v3 Standard_NC6s_v3"
    ).split()
}
Scorer = Callable[[dict[str, Any], Any], tuple[int, Any]]


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Operation:
    status: str = "InProgress"
    polls_left: int = 2
    error: dict[str, str] | None = None
    on_done: Callable[[], None] | None = None


@dataclass
class State:
    location: str = "westeurope"
    workspaces: set[str] = field(default_factory=set)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # workspace -> model name -> version -> resource; workspace -> model name -> container
    models: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    containers: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    # (endpoint, deployment) -> list of (time, status code, seconds) of answered requests
    requests: dict[tuple[str, str], list[tuple[float, int, float]]] = field(default_factory=dict)
    mirrored: dict[tuple[str, str], int] = field(default_factory=dict)
    requests_seen: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    fail_next_deployment: str | None = None  # a message: the next deployment PUT fails so
    polls: int = 2  # InProgress answers before a long-running operation ends
    retry_after: str = "0.05"  # seconds, the Retry-After of long-running operations
    # (status, code, message): the next PUT below onlineEndpoints is refused at once, as ARM
    # refuses a request it will not start (400 validation, 409 another operation is running)
    reject_next_put: tuple[int, str, str] | None = None


class FakeArm:
    """The fake's state and routes; ``serve()`` puts it on 127.0.0.1."""

    def __init__(
        self,
        scorer: Scorer | None,
        container: Any,
        polls: int = 2,
        new_container: Callable[[str], Any] | None = None,
    ) -> None:
        self.state = State(polls=polls)
        self.jobs = fake_jobs.JobState()
        self.scorer = scorer
        self.container = container  # the first workspace's default datastore container (Azurite)
        self.new_container = new_container  # makes another workspace's container
        self.blobs_of: dict[str, Any] = {}  # workspace -> its datastore's container
        self.codes: dict[tuple[str, str, str], dict[str, Any]] = {}  # (workspace, name, version)
        self.containers: dict[str, Any] = {}  # deployment id -> its running scoring script
        self.workdir = tempfile.mkdtemp(prefix="fake-azureml-")
        self.lock = threading.RLock()
        self.base = ""
        self._acc: dict[str, dict[str, int]] = {}
        self._mirror_acc: dict[str, dict[str, int]] = {}

    # -- plumbing -------------------------------------------------------------------------
    def blobs(self, workspace: str) -> Any:
        """The blob container of a workspace's default datastore (each workspace has its own
        storage, as each Azure ML workspace has its own storage account)."""
        if workspace not in self.blobs_of:
            if self.new_container is None:
                raise RuntimeError(f"no datastore container for workspace {workspace}")
            self.blobs_of[workspace] = self.new_container(workspace)
        return self.blobs_of[workspace]

    def _operation(self, on_done: Callable[[], None], error: dict[str, str] | None = None) -> str:
        op_id = uuid.uuid4().hex
        self.state.operations[op_id] = Operation(
            polls_left=self.state.polls, error=error, on_done=on_done
        )
        return f"{self.base}/providers/Microsoft.MachineLearningServices/locations/{self.state.location}/mfeOperationsStatus/{op_id}?api-version=2024-10-01-preview"

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any
    ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self._query = query
            self.state.requests_seen.append((method, path))
            if path.startswith("/score/"):
                return self._score(path.split("/")[2], body, headers)
            api = (query.get("api-version") or [""])[0]
            if not API_VERSION_RE.match(api):
                raise ArmError(
                    400,
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                )
            m = re.match(
                r"^/providers/Microsoft\.MachineLearningServices/locations/[^/]+/mfeOperationsStatus/(\w+)$",
                path,
            )
            if m:
                return self._poll(m.group(1))
            m = re.match(
                r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.MachineLearningServices/workspaces/([^/]+)(/.*)?$",
                path,
                re.I,
            )
            if not m:
                raise ArmError(404, "NotFound", f"no route for {method} {path}")
            ws = m.group(3)
            if ws not in self.state.workspaces:
                raise ArmError(
                    404,
                    "ResourceNotFound",
                    f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws}' under resource group '{m.group(2)}' was not found.",
                )
            rest = m.group(4) or ""
            prefix = path[: len(path) - len(rest)]
            if rest == "" and method == "GET":
                return 200, {}, self._workspace(prefix, ws)
            parts = rest.strip("/").split("/")
            if parts[0] == "onlineEndpoints":
                if method == "PUT" and self.state.reject_next_put:
                    status, code, message = self.state.reject_next_put
                    self.state.reject_next_put = None
                    raise ArmError(status, code, message)
                return self._endpoints(method, prefix, parts[1:], body)
            if parts[0] == "models":
                return self._models(method, prefix, parts[1:], body)
            if parts[0] == "datastores":
                return assets.datastores(self, method, prefix, parts[1:], body)
            if parts[0] == "codes":
                return assets.codes(self, method, prefix, parts[1:], body)
            if parts[0] == "components":
                return fake_jobs.components(self, method, prefix, parts[1:], body)
            if parts[0] == "jobs":
                return fake_jobs.jobs(self, method, prefix, parts[1:], body)
            raise ArmError(404, "NotFound", f"no route for {method} {path}")

    def _poll(self, op_id: str) -> tuple[int, dict[str, str], Any]:
        op = self.state.operations.get(op_id)
        if op is None:
            raise ArmError(404, "NotFound", f"operation {op_id} not found")
        if op.status == "InProgress":
            if op.polls_left > 0:
                op.polls_left -= 1
            else:
                op.status = "Failed" if op.error else "Succeeded"
                if op.on_done:
                    op.on_done()
        body: dict[str, Any] = {"status": op.status}
        if op.status == "Failed":
            body["error"] = op.error
        return 200, self._retry_after() if op.status == "InProgress" else {}, body

    def _retry_after(self, whole: bool = False) -> dict[str, str]:
        """ARM's hint of when to poll again: ``State.retry_after`` so the tests' clients poll the
        fake quickly (the SDK's own default is 5 s); in whole seconds (at least 1) where the REST
        model types the header as an integer (the 202 of a DELETE)."""
        value = self.state.retry_after
        if whole:
            value = str(max(1, math.ceil(float(value))))
        return {"Retry-After": value}

    def _workspace(self, prefix: str, ws: str) -> dict[str, Any]:
        return {
            "id": prefix,
            "name": ws,
            "type": "Microsoft.MachineLearningServices/workspaces",
            "location": self.state.location,
            "properties": {"provisioningState": "Succeeded", "friendlyName": ws},
        }

    # -- online endpoints ------------------------------------------------------------------
    def _endpoints(
        self, method: str, prefix: str, parts: list[str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        from azure.ai.ml._restclient.arm_ml_service import models

        eps = self.state.endpoints
        if not parts:
            if method != "GET":
                raise ArmError(405, "MethodNotAllowed", method)
            return 200, {}, {"value": list(eps.values())}
        name = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return 200, {}, self._existing(eps, name, "onlineEndpoints")
            if method == "PUT":
                if not ENDPOINT_NAME_RE.match(name):
                    raise ArmError(
                        400,
                        "BadRequest",
                        f"Endpoint name {name!r} is invalid: 3-32 characters, letters, digits and '-', starting with a letter.",
                    )
                self._shape(models.OnlineEndpoint, body)
                return self._put_endpoint(prefix, name, body)
            if method == "DELETE":
                ep = self._existing(eps, name, "onlineEndpoints")
                self._endpoint_busy(ep)
                ep["properties"]["provisioningState"] = "Deleting"

                def gone() -> None:
                    eps.pop(name, None)
                    self.state.deployments.pop(name, None)

                url = self._operation(gone)
                return (
                    202,
                    {"Azure-AsyncOperation": url, "Location": url, **self._retry_after(whole=True)},
                    None,
                )
        if len(parts) == 2 and parts[1] == "listKeys" and method == "POST":
            self._existing(eps, name, "onlineEndpoints")
            key = self.state.keys.setdefault(name, uuid.uuid4().hex)
            return 200, {}, {"primaryKey": key, "secondaryKey": key[::-1]}
        if parts[1:] == ["providers", "Microsoft.Insights", "metrics"] and method == "GET":
            self._existing(eps, name, "onlineEndpoints")
            return 200, {}, self._metrics(name, self._query)
        if len(parts) >= 2 and parts[1] == "deployments":
            ep = self._existing(eps, name, "onlineEndpoints")
            return self._deployments(method, prefix, ep, parts[2:], body)
        raise ArmError(404, "NotFound", f"no route for {method} onlineEndpoints/{'/'.join(parts)}")

    def _put_endpoint(
        self, prefix: str, name: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, str], Any]:
        eps = self.state.endpoints
        old = eps.get(name)
        props = body["properties"]
        if old is not None:
            self._endpoint_busy(old)
            if props.get("authMode", "").lower() != old["properties"]["authMode"].lower():
                raise ArmError(
                    400, "BadRequest", "authMode cannot be changed on an existing endpoint."
                )
        deps = self.state.deployments.get(name, {})
        traffic = {k: v for k, v in (props.get("traffic") or {}).items()}
        mirror = {k: v for k, v in (props.get("mirrorTraffic") or {}).items()}
        for d, v in {**traffic, **mirror}.items():
            if d not in deps:
                raise ArmError(
                    400,
                    "BadRequest",
                    f"Deployment {d!r} does not exist on endpoint {name!r}; traffic can only be set on existing deployments.",
                )
            if v < 0 or v > 100:
                raise ArmError(
                    400, "BadRequest", f"Traffic for deployment {d!r} must be between 0 and 100."
                )
            state = deps[d]["properties"].get("provisioningState")
            if v > 0 and state != "Succeeded":
                raise ArmError(
                    400,
                    "BadRequest",
                    f"Deployment {d!r} is {state}; traffic can only be sent to a deployment "
                    "whose provisioning succeeded.",
                )
        total = sum(traffic.values())
        if traffic and total not in (0, 100):
            raise ArmError(
                400, "BadRequest", f"Traffic values must sum to 100 (or 0); they sum to {total}."
            )
        if sum(mirror.values()) > 50:
            raise ArmError(
                400, "BadRequest", "Mirror traffic cannot exceed 50% of the endpoint's traffic."
            )
        for d, v in mirror.items():
            if v > 0 and traffic.get(d, 0) > 0:
                raise ArmError(
                    400,
                    "BadRequest",
                    f"Deployment {d!r} receives live traffic; traffic cannot be mirrored to it.",
                )
        scoring = f"{self.base}/score/{name}"
        resource = {
            "id": f"{prefix}/onlineEndpoints/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
            "location": body["location"],
            "tags": body.get("tags") or {},
            "identity": {"type": "SystemAssigned"},
            "kind": body.get("kind"),
            "properties": {
                **{k: v for k, v in props.items() if k not in ("traffic", "mirrorTraffic")},
                "traffic": {k: v for k, v in traffic.items() if v},
                "mirrorTraffic": {k: v for k, v in mirror.items() if v},
                "scoringUri": scoring,
                "swaggerUri": scoring + "/swagger.json",
                "provisioningState": "Updating" if old else "Creating",
            },
        }
        eps[name] = resource

        def done() -> None:
            resource["properties"]["provisioningState"] = "Succeeded"

        url = self._operation(done)
        return (200 if old else 201), {"Azure-AsyncOperation": url, **self._retry_after()}, resource

    # -- deployments -----------------------------------------------------------------------
    def _deployments(
        self, method: str, prefix: str, ep: dict[str, Any], parts: list[str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        from azure.ai.ml._restclient.arm_ml_service import models

        deps = self.state.deployments.setdefault(ep["name"], {})
        if not parts:
            return 200, {}, {"value": list(deps.values())}
        name = parts[0]
        if len(parts) > 1:
            if parts[1] == "getLogs" and method == "POST":
                self._existing(deps, name, "deployments")
                return 200, {}, {"content": f"deployment {name}: scoring server started\n"}
            raise ArmError(404, "NotFound", f"no route for deployments/{'/'.join(parts)}")
        if method == "GET":
            return 200, {}, self._existing(deps, name, "deployments")
        if method == "DELETE":
            dep = self._existing(deps, name, "deployments")
            props = ep["properties"]
            if (
                props.get("traffic", {}).get(name, 0) > 0
                or props.get("mirrorTraffic", {}).get(name, 0) > 0
            ):
                raise ArmError(
                    400,
                    "BadRequest",
                    f"Deployment {name!r} has traffic assigned and cannot be deleted; set its traffic to 0 first.",
                )
            self._endpoint_busy(ep)
            dep["properties"]["provisioningState"] = "Deleting"
            url = self._operation(lambda: deps.pop(name, None))
            return (
                202,
                {"Azure-AsyncOperation": url, "Location": url, **self._retry_after(whole=True)},
                None,
            )
        if method != "PUT":
            raise ArmError(405, "MethodNotAllowed", method)
        if not ENDPOINT_NAME_RE.match(name):
            raise ArmError(400, "BadRequest", f"Deployment name {name!r} is invalid.")
        self._shape(models.OnlineDeployment, body)
        self._endpoint_busy(ep)
        props = body["properties"]
        sku = (props.get("instanceType") or "Standard_F4s_v2").lower()
        if props["endpointComputeType"].lower() == "managed" and sku not in MANAGED_SKUS:
            raise ArmError(
                400,
                "BadRequest",
                f"Instance type {props.get('instanceType')!r} is not supported for managed online endpoints.",
            )
        model = props.get("model")
        if model:
            mm = re.search(r"/models/([^/]+)/versions/([^/]+)$", model)
            in_ws = self.state.models.get(assets.workspace_of(ep["id"]), {})
            if not mm or mm.group(2) not in in_ws.get(mm.group(1), {}):
                raise ArmError(
                    400, "BadRequest", f"Model {model!r} was not found in the workspace."
                )
            registered = in_ws[mm.group(1)][mm.group(2)]["properties"]
            if str(registered.get("modelType", "")).lower() != "mlflow_model" and (
                not props.get("codeConfiguration") or not props.get("environmentId")
            ):
                raise ArmError(
                    400,
                    "BadRequest",
                    f"Model {model!r} is not an MLflow model: the deployment needs a scoring "
                    "script (codeConfiguration) and an environment.",
                )
        conf = props.get("codeConfiguration")
        if conf:
            assets.code_of(self, str(conf.get("codeId")))
        old = deps.get(name)
        previous = json.loads(json.dumps(old)) if old is not None else None
        resource = {
            "id": f"{ep['id']}/deployments/{name}",
            "name": name,
            "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
            "location": body["location"],
            "tags": body.get("tags") or {},
            "sku": body.get("sku") or {"name": "Default", "capacity": 1},
            "properties": {
                "scaleSettings": {"scaleType": "Default"},  # the service's default
                **{k: v for k, v in props.items() if v is not None},
                "provisioningState": "Updating" if old else "Creating",
            },
        }
        error = None
        if self.state.fail_next_deployment:
            error = {"code": "DeploymentFailed", "message": self.state.fail_next_deployment}
            self.state.fail_next_deployment = None
        deps[name] = resource

        def done() -> None:
            if error and previous is not None:
                # a failed update rolls the deployment back to its previous spec; it keeps
                # serving that, and says its last operation failed
                deps[name] = {**previous, "properties": {**previous["properties"]}}
                deps[name]["properties"]["provisioningState"] = "Failed"
                return
            resource["properties"]["provisioningState"] = "Failed" if error else "Succeeded"

        url = self._operation(done, error)
        return (200 if old else 201), {"Azure-AsyncOperation": url, **self._retry_after()}, resource

    # -- models ----------------------------------------------------------------------------
    def _models(
        self, method: str, prefix: str, parts: list[str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        from azure.ai.ml._restclient.arm_ml_service import models

        ws = assets.workspace_of(prefix)
        containers = self.state.containers.setdefault(ws, {})
        registered = self.state.models.setdefault(ws, {})
        if not parts:
            return 200, {}, {"value": list(containers.values())}
        name = parts[0]
        if len(parts) == 1:
            if method == "GET":
                return 200, {}, self._existing(containers, name, "models")
            if method == "DELETE":
                self._existing(containers, name, "models")
                containers.pop(name)
                registered.pop(name, None)
                return 200, {}, None
            if method == "PUT":
                self._shape(models.ModelContainer, body)
                res = {
                    "id": f"{prefix}/models/{name}",
                    "name": name,
                    "type": "Microsoft.MachineLearningServices/workspaces/models",
                    "properties": body["properties"],
                }
                containers[name] = res
                return 200, {}, res
        if len(parts) >= 2 and parts[1] == "versions":
            versions = registered.setdefault(name, {})
            if len(parts) == 2:
                rows = sorted(
                    versions.values(),
                    key=lambda r: int(r["name"]) if r["name"].isdigit() else 0,
                    reverse=True,
                )
                return 200, {}, {"value": rows}
            version = parts[2]
            if method == "GET":
                return 200, {}, self._existing(versions, version, f"models/{name}/versions")
            if method == "DELETE":
                self._existing(versions, version, f"models/{name}/versions")
                versions.pop(version)
                return 200, {}, None
            if method == "PUT":
                self._shape(models.ModelVersion, body)
                if name not in containers:
                    containers[name] = {
                        "id": f"{prefix}/models/{name}",
                        "name": name,
                        "properties": {},
                    }
                old = versions.get(version)
                props = body["properties"]
                if old is not None:
                    # a version's artifact is immutable: only tags, description, stage may change
                    if props.get("modelUri") and props.get("modelUri") != old["properties"].get(
                        "modelUri"
                    ):
                        raise ArmError(
                            409,
                            "Conflict",
                            f"Model version {name}:{version} exists with another modelUri; versions are immutable.",
                        )
                res = {
                    "id": f"{prefix}/models/{name}/versions/{version}",
                    "name": version,
                    "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
                    "properties": {
                        # what the service fills in when the request leaves it out
                        "flavors": {},
                        "properties": {},
                        "tags": {},
                        "stage": "Development",
                        **(old["properties"] if old else {}),
                        **{k: v for k, v in props.items() if v is not None},
                        "provisioningState": "Succeeded",
                    },
                }
                versions[version] = res
                return (200 if old else 201), {}, res
        raise ArmError(404, "NotFound", f"no route for {method} models/{'/'.join(parts)}")

    # -- Azure Monitor ("Supported metrics for Microsoft.MachineLearningServices/workspaces/
    # onlineEndpoints", "Azure Monitor REST API: Metrics - List", "Azure Monitor metrics
    # dimension filters") ---------------------------------------------------------------------
    # metric -> the dimensions it is split by, as the supported-metrics table lists them
    METRIC_DIMENSIONS = {
        "RequestsPerMinute": ("deployment", "statusCode", "statusCodeClass", "modelStatusCode"),
        "RequestLatency_P50": ("deployment",),
        "RequestLatency_P90": ("deployment",),
        "RequestLatency_P95": ("deployment",),
        "RequestLatency_P99": ("deployment",),
    }
    AGGREGATIONS = ("Average", "Count", "Maximum", "Minimum", "Total")

    @staticmethod
    def _metric_filter(text: str) -> dict[str, set[str]]:
        """``$filter``: clauses ``dim eq 'v'`` joined by ``and``; a clause may be a bracketed
        ``or`` of values of one dimension; ``'*'`` splits by the dimension without filtering.
        dimension (lower case) -> accepted values ({"*"}: all)."""
        out: dict[str, set[str]] = {}
        if not text.strip():
            return out
        for clause in re.split(r"\s+and\s+", text.strip(), flags=re.I):
            clause = clause.strip()
            if clause.startswith("(") and clause.endswith(")"):
                clause = clause[1:-1]
            dims: set[str] = set()
            for term in re.split(r"\s+or\s+", clause, flags=re.I):
                m = re.fullmatch(r"\s*([A-Za-z][A-Za-z0-9_]*)\s+eq\s+'([^']*)'\s*", term)
                if not m:
                    raise ArmError(400, "BadRequest", f"Invalid $filter clause {term!r}.")
                dims.add(m.group(1).lower())
                out.setdefault(m.group(1).lower(), set()).add(m.group(2))
            if len(dims) != 1:
                raise ArmError(400, "BadRequest", f"$filter: {clause!r} mixes dimensions.")
        return out

    def _metrics(self, endpoint: str, query: dict[str, list[str]]) -> dict[str, Any]:
        import datetime

        names = (query.get("metricnames") or [""])[0].split(",")
        unknown = [n for n in names if n not in self.METRIC_DIMENSIONS]
        if unknown:
            raise ArmError(
                400,
                "BadRequest",
                f"Failed to find metric configuration for provider: Microsoft.MachineLearningServices, resource type: onlineEndpoints, metric: {unknown[0]}",
            )
        aggregations = [
            a.strip() for a in (query.get("aggregation") or ["Average"])[0].split(",") if a
        ]
        bad = [a for a in aggregations if a.title() not in self.AGGREGATIONS]
        if bad:
            raise ArmError(400, "BadRequest", f"Invalid aggregation {bad[0]!r}.")
        wanted = {a.title() for a in aggregations}
        span = (query.get("timespan") or [""])[0]
        try:
            first, last = (
                datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
                for t in span.split("/")
            )
        except ValueError:
            raise ArmError(400, "BadRequest", f"Invalid timespan {span!r}") from None
        flt = self._metric_filter((query.get("$filter") or [""])[0])
        out = []
        for metric in names:
            allowed = {d.lower(): d for d in self.METRIC_DIMENSIONS[metric]}
            extra = sorted(set(flt) - set(allowed))
            if extra:
                raise ArmError(
                    400,
                    "BadRequest",
                    f"Metric:{metric} does not support requested dimension combination: "
                    f"{','.join(extra)}, supported ones are: {','.join(allowed)}",
                )
            # each answered request, with its dimension values
            points: list[tuple[dict[str, str], float]] = []
            for (ep, dep), rows in sorted(self.state.requests.items()):
                if ep != endpoint:
                    continue
                for at, code, seconds in rows:
                    if not first <= at <= last:
                        continue
                    dims = {
                        "deployment": dep,
                        "statuscode": str(code),
                        "statuscodeclass": f"{code // 100}xx",
                        "modelstatuscode": str(code),
                    }
                    if all("*" in v or dims[d] in v for d, v in flt.items()):
                        value = 1.0 if metric == "RequestsPerMinute" else seconds * 1000
                        points.append((dims, value))
            groups: dict[tuple[str, ...], list[float]] = {}
            for dims, value in points:
                groups.setdefault(tuple(dims[d] for d in sorted(flt)), []).append(value)
            series = []
            for key, values in sorted(groups.items()):
                data: dict[str, Any] = {"timeStamp": span.split("/")[0]}
                if metric == "RequestsPerMinute":
                    stats = {"Total": float(len(values)), "Count": float(len(values))}
                    stats.update(Average=1.0, Maximum=1.0, Minimum=1.0)
                else:
                    q = int(metric.rsplit("_P", 1)[1]) / 100
                    lat = sorted(values)
                    pct = lat[min(len(lat) - 1, int(q * len(lat)))]
                    stats = {"Average": pct, "Maximum": pct, "Minimum": pct}
                    stats.update(Count=float(len(lat)), Total=pct * len(lat))
                data.update({a.lower(): v for a, v in stats.items() if a in wanted})
                series.append(
                    {
                        "metadatavalues": [
                            {"name": {"value": allowed[d]}, "value": v}
                            for d, v in zip(sorted(flt), key, strict=True)
                        ],
                        "data": [data],
                    }
                )
            out.append(
                {
                    "name": {"value": metric},
                    "unit": "Count" if metric == "RequestsPerMinute" else "Milliseconds",
                    "timeseries": series,
                }
            )
        return {"timespan": span, "interval": "PT1M", "value": out}

    # -- scoring (the data plane) ----------------------------------------------------------
    def _score(self, endpoint: str, body: Any, headers: Any) -> tuple[int, dict[str, str], Any]:
        ep = self.state.endpoints.get(endpoint)
        if ep is None:
            raise ArmError(404, "NotFound", f"endpoint {endpoint!r} not found")
        key = self.state.keys.get(endpoint)
        if not key or headers.get("Authorization") != f"Bearer {key}":
            return 401, {}, {"message": "Unauthorized: key missing or wrong"}
        props = ep["properties"]
        chosen = headers.get("azureml-model-deployment")
        deps = self.state.deployments.get(endpoint, {})
        if chosen:
            if chosen not in deps:
                return 404, {}, {"message": f"deployment {chosen!r} not found"}
        else:
            weights = [(d, w) for d, w in sorted(props.get("traffic", {}).items()) if w > 0]
            if not weights:
                return 424, {}, {"message": "No deployment has traffic; set the endpoint's traffic"}
            # smooth weighted round robin: exact shares over every 100 requests, deterministic
            acc = self._acc.setdefault(endpoint, {})
            for d, w in weights:
                acc[d] = acc.get(d, 0) + w
            chosen = max(weights, key=lambda dw: acc[dw[0]])[0]
            acc[chosen] -= 100
        for d, w in props.get("mirrorTraffic", {}).items():
            macc = self._mirror_acc.setdefault(endpoint, {})
            macc[d] = macc.get(d, 0) + w
            if w and macc[d] >= 100 and d in deps:
                macc[d] -= 100
                self.state.mirrored[(endpoint, d)] = self.state.mirrored.get((endpoint, d), 0) + 1
                self._run(endpoint, deps[d], body)
        status, answer = self._run(endpoint, deps[chosen], body)
        return status, {"azureml-model-deployment": chosen}, answer

    def _run(self, endpoint: str, dep: dict[str, Any], body: Any) -> tuple[int, Any]:
        from .container import container_for

        start = time.monotonic()
        try:
            if self.scorer is not None:
                status, answer = self.scorer(dep, body)
            else:
                status, answer = container_for(self, dep).score(body)
        except Exception as e:  # the container's scoring script raised
            status, answer = 500, {"message": f"scoring failed: {e}"}
        self.state.requests.setdefault((endpoint, dep["name"]), []).append(
            (time.time(), status, time.monotonic() - start)
        )
        return status, answer

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _existing(table: dict[str, Any], name: str, kind: str) -> Any:
        if name not in table:
            raise ArmError(404, "ResourceNotFound", f"{kind}/{name} was not found.")
        return table[name]

    @staticmethod
    def _busy(resource: dict[str, Any]) -> None:
        state = resource["properties"].get("provisioningState")
        if state in ("Creating", "Updating", "Deleting", "Scaling"):
            raise ArmError(
                409,
                "Conflict",
                f"{resource['name']} is {state}; wait for the running operation to finish.",
            )

    def _endpoint_busy(self, ep: dict[str, Any]) -> None:
        """One operation at a time on an endpoint: its own, or one on any of its deployments."""
        self._busy(ep)
        for dep in self.state.deployments.get(ep["name"], {}).values():
            state = dep["properties"].get("provisioningState")
            if state in ("Creating", "Updating", "Deleting", "Scaling"):
                raise ArmError(
                    409,
                    "Conflict",
                    f"{ep['name']} has an operation in progress (deployment {dep['name']} is "
                    f"{state}); wait for it to finish.",
                )

    @staticmethod
    def _shape(model: type, body: Any) -> None:
        try:
            check(model, body)
        except ShapeError as e:
            raise ArmError(400, "BadRequest", f"Invalid request body: {e}") from None


def _handler(fake: FakeArm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _any(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                if not url.path.startswith("/score/") and not self.headers.get(
                    "Authorization", ""
                ).startswith("Bearer "):
                    raise ArmError(
                        401,
                        "AuthenticationFailed",
                        "Authentication failed. The 'Authorization' header is missing.",
                    )
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    raise ArmError(
                        400,
                        "InvalidRequestContent",
                        "The request content was invalid and could not be deserialized.",
                    ) from None
                status, headers, answer = fake.handle(
                    self.command, url.path, parse_qs(url.query), body, self.headers
                )
            except ArmError as e:
                status, headers, answer = (
                    e.status,
                    {},
                    {"error": {"code": e.code, "message": e.message}},
                )
            data = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", uuid.uuid4().hex)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any

    return Handler


@contextmanager
def serve(
    fake: FakeArm, tls: ssl.SSLContext, workspaces: tuple[str, ...] = ("shop-dev",)
) -> Iterator[FakeArm]:
    """Run ``fake`` over TLS on a free port of 127.0.0.1 until the block ends, whatever happens."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    fake.base = f"https://127.0.0.1:{server.server_address[1]}"
    fake.state.workspaces.update(workspaces)
    fake.blobs_of.setdefault(workspaces[0], fake.container)
    thread = threading.Thread(target=server.serve_forever, name="fake-arm", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)
        shutil.rmtree(fake.workdir, ignore_errors=True)
