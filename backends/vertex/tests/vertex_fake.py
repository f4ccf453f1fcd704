"""A strict stand-in for the Vertex AI and Cloud Monitoring REST APIs: a real HTTP server on
127.0.0.1 that the real ``google-cloud-aiplatform`` clients (REST transport, anonymous
credentials) talk to.

Documents followed (facts, not code):

- Vertex AI REST reference v1: ``projects.locations.models`` (upload, get, listVersions,
  mergeVersionAliases, delete, deleteVersion), ``projects.locations.endpoints`` (create, get,
  list, patch, deployModel, undeployModel, delete, predict), ``projects.locations.pipelineJobs``
  (create, get, list, cancel, delete) and ``projects.locations.operations``.
- The routes are the HTTP rules of the client library itself
  (``aiplatform_v1/services/*/transports/rest_base.py``); every request body is parsed into the
  ``google.cloud.aiplatform_v1`` message the rule names with ``json_format.ParseDict`` and
  ``ignore_unknown_fields=False``; fields whose proto comment begins "Required." (the field
  behaviour annotation, kept in the generated docstrings) must be set, at every level.
- "Long-running operations" (google.longrunning.Operation, ``done`` false for ``polls`` polls,
  then true with ``response`` or ``error``) and "Errors" (``google.rpc.Status`` in
  ``{"error": {...}}``, HTTP code from the canonical code) of the Google Cloud API design guide.
  ``fail_next`` makes an operation end with ``error``; it then changes nothing: a failed
  ``DeployModel`` leaves the endpoint's deployed models and traffic split as they were (the
  ``DeployModelRequest.traffic_split`` comment says the split is overwritten by the method, i.e.
  by a deployment that succeeds; no reference page spells out the failure case, so this is the
  reading the backend relies on, checked by nothing real yet).
- Display names and labels: ``Model.display_name`` / ``Endpoint.display_name`` "up to 128
  characters"; ``labels`` per the proto comments and "Requirements for labels" they link to
  (``check_names``).
- Documented rules: ``Endpoint.traffic_split`` / ``DeployModelRequest.traffic_split`` values add
  up to 100 (or the map is empty) and name deployed models only ("0" means the one being
  deployed); ``UndeployModelRequest``: a deployed model is undeployed only if it has no traffic
  after the call; an endpoint with deployed models cannot be deleted; a model with a deployed
  version cannot be deleted; the ``default`` alias cannot be removed and its version cannot be
  deleted; a version alias is unique within a model and matches ``[a-z][a-zA-Z0-9-]{0,126}
  [a-z0-9]``; resource names ``projects/{project}/locations/{location}/...`` with the server's
  one project and location; model and endpoint IDs as their proto comments say; a model upload
  carries a ``containerSpec`` (only AutoML models go without); pipeline job IDs
  ``[a-z][-a-z0-9]{0,127}``; a pipeline spec that KFP's ``PipelineSpec`` proto parses; ``runtimeConfig.gcsOutputDirectory`` a ``gs://`` URI.
- Cloud Monitoring API v3 ``projects.timeSeries.list`` (request parsed into
  ``google.cloud.monitoring_v3.ListTimeSeriesRequest``) and the Vertex AI metrics list
  (``aiplatform.googleapis.com/prediction/online/prediction_count``, ``error_count``,
  ``prediction_latencies`` on resource ``aiplatform.googleapis.com/Endpoint``, label
  ``deployed_model_id``).
- Cloud Logging API v2 ``entries.list`` (REST reference: body fields ``resourceNames``
  (required), ``filter``, ``orderBy``, ``pageSize`` up to 1000, ``pageToken``; unknown fields
  refused) and Vertex AI "View logs for custom training": a pipeline task runs as a CustomJob
  (``PipelineTaskExecutorDetail.ContainerDetail.main_job``) whose lines are logged on resource
  ``ml_job`` labelled ``job_id``.

What it does not do: authenticate, paginate Vertex lists (they answer in one page; log entries
do page), run pipeline tasks by itself (a test passes an ``executor``), or model Monitoring's
ingestion delay or Logging's.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from google.cloud import aiplatform_v1 as aip
from google.cloud import monitoring_v3
from google.longrunning import operations_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

ALIAS_RE = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")
JOB_ID_RE = re.compile(r"^[a-z][-a-z0-9]{0,127}$")
# UploadModelRequest.model_id / CreateEndpointRequest.endpoint_id (their proto comments)
MODEL_ID_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
ENDPOINT_ID_RE = re.compile(r"^(?:[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?|[1-9][0-9]{0,8})$")
_CODES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
}
_NUMS = {"INVALID_ARGUMENT": 3, "FAILED_PRECONDITION": 9, "NOT_FOUND": 5, "ALREADY_EXISTS": 6}
_NUMS.update({"INTERNAL": 13, "UNIMPLEMENTED": 12})


class ApiError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def body(self) -> dict[str, Any]:
        return {
            "error": {"code": _CODES[self.status], "message": self.message, "status": self.status}
        }


# --- routes from the client library's own HTTP rules -------------------------------------------


@dataclass(frozen=True)
class Route:
    rpc: str
    method: str
    pattern: re.Pattern[str]
    body: str | None
    request: Any  # a proto-plus message class (or a protobuf class for operations)


def _template_regex(uri: str) -> re.Pattern[str]:
    out, pos = "", 0
    for m in re.finditer(r"\{([\w.]+)(?:=([^}]*))?\}", uri):
        out += re.escape(uri[pos : m.start()])
        var, pat = m.group(1), m.group(2) or "*"
        seg = "".join(
            "[^/:]+" if part == "*" else ".+" if part == "**" else re.escape(part)
            for part in re.split(r"(\*\*|\*)", pat)
            if part
        )
        out += f"(?P<{var.replace('.', '__')}>{seg})"
        pos = m.end()
    return re.compile(out + re.escape(uri[pos:]) + "$")


def _routes() -> list[Route]:
    from google.cloud.aiplatform_v1.services.endpoint_service.transports import rest_base as es
    from google.cloud.aiplatform_v1.services.model_service.transports import rest_base as ms
    from google.cloud.aiplatform_v1.services.pipeline_service.transports import rest_base as ps
    from google.cloud.aiplatform_v1.services.prediction_service.transports import rest_base as pr

    wanted = {
        es._BaseEndpointServiceRestTransport: (
            "CreateEndpoint GetEndpoint ListEndpoints UpdateEndpoint DeleteEndpoint "
            "DeployModel UndeployModel"
        ),
        ms._BaseModelServiceRestTransport: (
            "UploadModel GetModel ListModels ListModelVersions MergeVersionAliases DeleteModel "
            "DeleteModelVersion"
        ),
        ps._BasePipelineServiceRestTransport: (
            "CreatePipelineJob GetPipelineJob ListPipelineJobs CancelPipelineJob DeletePipelineJob"
        ),
        pr._BasePredictionServiceRestTransport: "Predict",
    }
    routes = []
    for base, rpcs in wanted.items():
        for rpc in rpcs.split():
            for rule in getattr(base, f"_Base{rpc}")._get_http_options():
                routes.append(
                    Route(
                        rpc,
                        rule["method"].upper(),
                        _template_regex(rule["uri"]),
                        rule.get("body"),
                        getattr(aip, f"{rpc}Request"),
                    )
                )
    # the operations client polls by the ``/ui/`` rules as well as the ``/v1/`` ones
    for rule in es._BaseEndpointServiceRestTransport._BaseGetOperation._get_http_options():
        if rule["uri"].startswith(("/v1/", "/ui/")):
            routes.append(
                Route(
                    "GetOperation",
                    "GET",
                    _template_regex(rule["uri"]),
                    None,
                    operations_pb2.GetOperationRequest,
                )
            )
    # Cloud Monitoring v3 REST: GET /v3/{name=projects/*}/timeSeries (monitoring_v3 ships gRPC
    # transports only, so the rule is written from the REST reference)
    routes.append(
        Route(
            "ListTimeSeries",
            "GET",
            _template_regex("/v3/{name=projects/*}/timeSeries"),
            None,
            monitoring_v3.ListTimeSeriesRequest,
        )
    )
    # Cloud Logging v2 REST: POST /v2/entries:list, body "*" (google-cloud-logging is not a
    # dependency: the body is checked against the REST reference's fields, ``LOG_LIST_FIELDS``)
    routes.append(Route("ListLogEntries", "POST", _template_regex("/v2/entries:list"), "*", None))
    return routes


# entries.list request body (Cloud Logging REST reference v2): resourceNames is required
LOG_LIST_FIELDS = {"resourceNames": list, "filter": str, "orderBy": str, "pageSize": int}
LOG_LIST_FIELDS["pageToken"] = str


def _required(cls: Any) -> list[str]:
    """Fields whose proto comment starts with "Required." (the generated docstring keeps it)."""
    return re.findall(r"^\s+(\w+) \([^)]*\):\n\s+Required\.", cls.__doc__ or "", re.M)


def check_required(cls: Any, msg: Message, where: str = "") -> None:
    """Every "Required." field of ``msg`` (a protobuf of proto-plus ``cls``) is set, recursively.

    An update (a request with ``update_mask``) needs the resource's required fields only where
    the mask names them (AIP-134: the mask says which fields the request carries)."""
    fields = cls.meta.fields
    if "update_mask" in fields and msg.HasField("update_mask"):
        resource = next(n for n in fields if n not in ("update_mask",))
        sub = fields[resource].message
        masked = set(msg.update_mask.paths)
        for name in _required(sub):
            if (
                name in masked
                and getattr(msg, resource).ByteSize()
                and not _present(getattr(msg, resource), name)
            ):
                raise ApiError("INVALID_ARGUMENT", f"{_camel(resource)}.{_camel(name)} is required")
        return
    for name in _required(cls):
        if not _present(msg, name):
            raise ApiError("INVALID_ARGUMENT", f"{where}{_camel(name)} is required")
    for name, pf in fields.items():
        sub = getattr(pf, "message", None)
        if sub is None or not hasattr(sub, "meta"):
            continue
        f = msg.DESCRIPTOR.fields_by_name[name]
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            continue
        if f.label == f.LABEL_REPEATED:
            for i, item in enumerate(getattr(msg, name)):
                check_required(sub, item, f"{where}{_camel(name)}[{i}].")
        elif msg.HasField(name):
            check_required(sub, getattr(msg, name), f"{where}{_camel(name)}.")


DISPLAY_NAME_MAX = 128  # Model.display_name, Endpoint.display_name: "up to 128 characters"
LABELS_MAX, LABEL_CHARS_MAX = 64, 63  # "Requirements for labels" (Resource Manager)


def _label_text_ok(text: str) -> bool:
    """ "lowercase letters, numeric characters, underscores and dashes. International characters
    are allowed" (a letter with no upper/lower case counts as lowercase)."""
    return all(c in "_-" or c.isdigit() or (c.isalpha() and not c.isupper()) for c in text)


def check_names(where: str, display_name: str, labels: Any) -> None:
    """``display_name`` and ``labels`` as Vertex accepts them on a Model or an Endpoint.

    Display name: at most 128 characters (the Model / Endpoint proto comments). Labels: the
    proto comments point to "Requirements for labels" (goo.gl/xmQnxf): at most 64 labels per
    resource; keys and values at most 63 characters (the proto comment says 64; the stricter of
    the two is kept) of lowercase letters, digits, ``_`` and ``-``; keys are not empty and start
    with a lowercase letter; values may be empty."""
    if len(display_name) > DISPLAY_NAME_MAX:
        raise ApiError(
            "INVALID_ARGUMENT",
            f"{where}.displayName is {len(display_name)} characters; "
            f"the limit is {DISPLAY_NAME_MAX}",
        )
    labels = dict(labels)
    if len(labels) > LABELS_MAX:
        raise ApiError(
            "INVALID_ARGUMENT", f"{where}.labels: {len(labels)} labels; at most {LABELS_MAX}"
        )
    for key, value in labels.items():
        if not key or not (key[0].isalpha() and not key[0].isupper()):
            raise ApiError(
                "INVALID_ARGUMENT",
                f"{where}.labels: key {key!r} must start with a lowercase letter",
            )
        for what, text in (("key", key), ("value", value)):
            if len(text) > LABEL_CHARS_MAX or not _label_text_ok(text):
                raise ApiError(
                    "INVALID_ARGUMENT",
                    f"{where}.labels: {what} {text!r} must be at most {LABEL_CHARS_MAX} "
                    "lowercase letters, digits, '_' or '-'",
                )


def _copy(msg: Any) -> Any:
    """A copy that shares no memory with the request it came from (upb arenas are freed with
    the request; a sub-message kept past the handler must be its own)."""
    return type(msg).deserialize(type(msg).serialize(msg))


def _rfc3339(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat()


def _now() -> Any:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc)


def _present(msg: Message, name: str) -> bool:
    f = msg.DESCRIPTOR.fields_by_name[name]
    if f.label == f.LABEL_REPEATED:
        return bool(getattr(msg, name))
    if f.enum_type is not None:  # a zero that means something (FULL) is a value; UNSPECIFIED not
        zero = f.enum_type.values_by_number.get(0)
        return getattr(msg, name) != 0 or not (zero and zero.name.endswith("UNSPECIFIED"))
    if f.message_type is None:
        return bool(getattr(msg, name) != f.default_value)
    return msg.HasField(name)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _set_path(d: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        d = d.setdefault(_camel(p), {})
    d[_camel(last)] = value


def _query_dict(query: str) -> dict[str, Any]:
    """``a.b=1&c=2&c=3`` -> {"a": {"b": "1"}, "c": ["2", "3"]}; system parameters ($alt) dropped."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.startswith("$") or key in ("alt", "prettyPrint"):
            continue
        *parents, last = key.split(".")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        if last in d:
            d[last] = [*(d[last] if isinstance(d[last], list) else [d[last]]), value]
        else:
            d[last] = value
    return out


# --- the state a Vertex project keeps ------------------------------------------------------------


@dataclass
class Operation:
    name: str
    rpc: str
    apply: Callable[[], Message | None]  # runs when the operation completes; returns the response
    polls_left: int = 2
    fails: ApiError | None = None  # set at creation: the operation ends with this error
    done: bool = False
    response: Message | None = None
    error: ApiError | None = None


@dataclass
class Served:
    """One recorded prediction call, for Cloud Monitoring."""

    at: float
    endpoint_id: str
    deployed_model_id: str
    error: bool
    latency_ms: float


@dataclass
class FakeVertex:
    project: str
    location: str
    # deployed model id, or model version id, -> share of its requests answered with a 500
    error_rates: dict[str, float] = field(default_factory=dict)
    # (deployed model, its model version, instances) -> predictions: the serving container
    predictor: Callable[[aip.DeployedModel, aip.Model, list[Any]], list[Any]] | None = None
    # runs a submitted pipeline job's tasks: (job, report(task, state, error)); set by tests
    executor: Callable[[aip.PipelineJob, Callable[..., None]], None] | None = None
    # how many GetOperation answers say ``done: false`` before a long-running operation ends
    polls: int = 2
    # rpc (e.g. "DeployModel") -> message: the next long-running operation that rpc starts is
    # accepted, polls as usual and then ends with ``error`` (INTERNAL) having changed nothing
    fail_next: dict[str, str] = field(default_factory=dict)
    models: dict[str, list[aip.Model]] = field(default_factory=dict)  # model id -> versions
    endpoints: dict[str, aip.Endpoint] = field(default_factory=dict)
    jobs: dict[str, aip.PipelineJob] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    # Cloud Logging: CustomJob id -> (timestamp, text) of its container's lines
    job_logs: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    served: list[Served] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (rpc, resource name)
    url: str = ""  # where ``serve`` answers
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    _rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"

    def _id(self) -> str:
        return str(next(self._ids))

    def _check_parent(self, name: str, kind: str = "") -> str:
        """``name`` under this project and location; returns what follows the parent."""
        m = re.match(r"^projects/([^/]+)/locations/([^/]+)(?:/(.*))?$", name)
        if not m:
            raise ApiError("INVALID_ARGUMENT", f"invalid resource name {name!r}")
        if m.group(1) != self.project:
            raise ApiError("NOT_FOUND", f"project {m.group(1)!r} not found (permission denied)")
        if m.group(2) != self.location:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"location {m.group(2)!r} does not match the regional endpoint "
                f"{self.location}-aiplatform.googleapis.com",
            )
        return m.group(3) or ""

    def _op(self, rpc: str, owner: str, apply: Callable[[], Message | None]) -> Message:
        """A long-running operation: ``done`` false for ``polls`` polls, then ``apply`` runs (its
        answer is the response) or, if the test armed ``fail_next[rpc]``, the operation ends
        with an error and ``apply`` never runs: a failed operation leaves the resource as it
        was (a failed DeployModel: deployed models and traffic split unchanged)."""
        name = f"{owner}/operations/{self._id()}"
        message = self.fail_next.pop(rpc, None)
        fails = ApiError("INTERNAL", message) if message is not None else None
        self.operations[name] = Operation(name, rpc, apply, polls_left=self.polls, fails=fails)
        return operations_pb2.Operation(name=name, done=False)

    # --- models ----------------------------------------------------------------------------
    def _model(self, name: str) -> tuple[str, list[aip.Model], aip.Model]:
        rest = self._check_parent(name)
        m = re.match(r"^models/([^/@]+)(?:@([^/]+))?$", rest)
        if not m:
            raise ApiError("INVALID_ARGUMENT", f"invalid model name {name!r}")
        versions = self.models.get(m.group(1))
        if not versions:
            raise ApiError("NOT_FOUND", f"Model {name} not found")
        want = m.group(2)
        for v in versions:
            if want is None and "default" in v.version_aliases:
                return m.group(1), versions, v
            if want is not None and (v.version_id == want or want in v.version_aliases):
                return m.group(1), versions, v
        raise ApiError("NOT_FOUND", f"Model version {name} not found")

    def UploadModel(self, req: aip.UploadModelRequest) -> Message:
        self._check_parent(req.parent)
        model = _copy(req.model)
        check_names("model", model.display_name, model.labels)
        if "container_spec" not in model:  # "Not required for AutoML Models" (never uploaded)
            raise ApiError("INVALID_ARGUMENT", "model.containerSpec is required for upload")
        if req.model_id and not MODEL_ID_RE.match(req.model_id):
            raise ApiError("INVALID_ARGUMENT", f"modelId {req.model_id!r} is invalid")
        for alias in model.version_aliases:
            if not ALIAS_RE.match(alias):
                raise ApiError("INVALID_ARGUMENT", f"invalid version alias {alias!r}")
        if req.parent_model:
            model_id = self._model(req.parent_model)[0]
        else:
            model_id = req.model_id or self._id()
            if model_id in self.models:
                raise ApiError("ALREADY_EXISTS", f"Model {self.parent}/models/{model_id} exists")

        def apply() -> Message:
            existing = self.models.setdefault(model_id, [])
            now = _now()
            model.name = f"{self.parent}/models/{model_id}"
            model.version_id = str(max((int(v.version_id) for v in existing), default=0) + 1)
            model.create_time = model.version_create_time = model.update_time = now
            if not existing and "default" not in model.version_aliases:
                model.version_aliases = ["default", *model.version_aliases]
            for other in existing:  # an alias names one version of a model
                other.version_aliases = [
                    a for a in other.version_aliases if a not in model.version_aliases
                ]
            existing.append(model)
            return aip.UploadModelResponse.pb(
                aip.UploadModelResponse(model=model.name, model_version_id=model.version_id)
            )

        return self._op("UploadModel", f"{self.parent}/models/{model_id}", apply)

    def GetModel(self, req: aip.GetModelRequest) -> Message:
        return aip.Model.pb(self._model(req.name)[2])

    def ListModels(self, req: aip.ListModelsRequest) -> Message:
        self._check_parent(req.parent)
        out = [next(v for v in vs if "default" in v.version_aliases) for vs in self.models.values()]
        if req.filter:
            m = re.fullmatch(r'display_name="([^"]*)"', req.filter.strip())
            if not m:
                raise ApiError("INVALID_ARGUMENT", f"unsupported filter {req.filter!r}")
            out = [v for v in out if v.display_name == m.group(1)]
        return aip.ListModelsResponse.pb(aip.ListModelsResponse(models=out))

    def ListModelVersions(self, req: aip.ListModelVersionsRequest) -> Message:
        _, versions, _ = self._model(req.name)
        return aip.ListModelVersionsResponse.pb(aip.ListModelVersionsResponse(models=versions))

    def MergeVersionAliases(self, req: aip.MergeVersionAliasesRequest) -> Message:
        _, versions, model = self._model(req.name)
        for alias in req.version_aliases:
            bare = alias.removeprefix("-")
            if not ALIAS_RE.match(bare):
                raise ApiError("INVALID_ARGUMENT", f"invalid version alias {alias!r}")
            if bare == "default" and alias.startswith("-"):
                raise ApiError("INVALID_ARGUMENT", "the default alias cannot be removed")
        for alias in req.version_aliases:
            if alias.startswith("-"):
                model.version_aliases = [a for a in model.version_aliases if a != alias[1:]]
                continue
            for other in versions:
                other.version_aliases = [a for a in other.version_aliases if a != alias]
            model.version_aliases = [*model.version_aliases, alias]
        return aip.Model.pb(model)

    def _deployed_somewhere(self, model_name: str, version: str | None) -> str | None:
        for ep in self.endpoints.values():
            for d in ep.deployed_models:
                base, _, ver = d.model.partition("@")
                if base == model_name and (version is None or ver == version):
                    return ep.name
        return None

    def DeleteModel(self, req: aip.DeleteModelRequest) -> Message:
        model_id, versions, _ = self._model(req.name)
        where = self._deployed_somewhere(f"{self.parent}/models/{model_id}", None)
        if where:
            raise ApiError(
                "FAILED_PRECONDITION",
                f"Model {req.name} is deployed to endpoint {where}; undeploy it first",
            )
        return self._op("DeleteModel", req.name, lambda: self.models.pop(model_id) and None)

    def DeleteModelVersion(self, req: aip.DeleteModelVersionRequest) -> Message:
        model_id, versions, model = self._model(req.name)
        if "default" in model.version_aliases:
            raise ApiError("FAILED_PRECONDITION", "the default version cannot be deleted")
        if self._deployed_somewhere(f"{self.parent}/models/{model_id}", model.version_id):
            raise ApiError("FAILED_PRECONDITION", f"Model version {req.name} is deployed")
        return self._op("DeleteModelVersion", req.name, lambda: versions.remove(model) or None)

    # --- endpoints -------------------------------------------------------------------------
    def _endpoint(self, name: str) -> aip.Endpoint:
        rest = self._check_parent(name)
        ep = self.endpoints.get(rest.removeprefix("endpoints/"))
        if not rest.startswith("endpoints/") or ep is None:
            raise ApiError("NOT_FOUND", f"Endpoint {name} not found")
        return ep

    def _check_split(self, split: dict[str, int], ids: set[str], where: str) -> None:
        unknown = sorted(set(split) - ids)
        if unknown:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"{where}: traffic_split names {', '.join(unknown)}, which are not deployed",
            )
        if any(v < 0 or v > 100 for v in split.values()):
            raise ApiError("INVALID_ARGUMENT", f"{where}: traffic percentages are 0..100")
        if split and sum(split.values()) != 100:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"{where}: traffic_split must add up to 100, got {sum(split.values())}",
            )

    def CreateEndpoint(self, req: aip.CreateEndpointRequest) -> Message:
        self._check_parent(req.parent)
        ep_id = req.endpoint_id or self._id()
        if req.endpoint_id and not ENDPOINT_ID_RE.match(req.endpoint_id):
            raise ApiError("INVALID_ARGUMENT", f"endpointId {req.endpoint_id!r} is invalid")
        if ep_id in self.endpoints:
            raise ApiError("ALREADY_EXISTS", f"Endpoint {ep_id} already exists")
        ep = _copy(req.endpoint)
        check_names("endpoint", ep.display_name, ep.labels)
        if ep.deployed_models or ep.traffic_split:
            raise ApiError("INVALID_ARGUMENT", "a new endpoint has no deployed models")

        def apply() -> Message:
            ep.name = f"{self.parent}/endpoints/{ep_id}"
            ep.create_time = ep.update_time = _now()
            self.endpoints[ep_id] = ep
            return aip.Endpoint.pb(ep)

        return self._op("CreateEndpoint", f"{self.parent}/endpoints/{ep_id}", apply)

    def GetEndpoint(self, req: aip.GetEndpointRequest) -> Message:
        return aip.Endpoint.pb(self._endpoint(req.name))

    def ListEndpoints(self, req: aip.ListEndpointsRequest) -> Message:
        self._check_parent(req.parent)
        return aip.ListEndpointsResponse.pb(
            aip.ListEndpointsResponse(endpoints=list(self.endpoints.values()))
        )

    def UpdateEndpoint(self, req: aip.UpdateEndpointRequest) -> Message:
        ep = self._endpoint(req.endpoint.name)
        paths = list(req.update_mask.paths)
        allowed = {"display_name", "description", "labels", "traffic_split"}
        bad = sorted(set(paths) - allowed)
        if not paths or bad:
            raise ApiError("INVALID_ARGUMENT", f"update_mask: cannot update {bad or 'nothing'}")
        if "traffic_split" in paths:
            self._check_split(
                dict(req.endpoint.traffic_split),
                {d.id for d in ep.deployed_models},
                "UpdateEndpoint",
            )
        new = _copy(req.endpoint)
        check_names(
            "endpoint",
            new.display_name if "display_name" in paths else "",
            new.labels if "labels" in paths else {},
        )
        for p in paths:
            setattr(
                ep,
                p,
                dict(getattr(new, p)) if p in ("labels", "traffic_split") else getattr(new, p),
            )
        ep.update_time = _now()
        return aip.Endpoint.pb(ep)

    def DeleteEndpoint(self, req: aip.DeleteEndpointRequest) -> Message:
        ep = self._endpoint(req.name)
        if ep.deployed_models:
            raise ApiError(
                "FAILED_PRECONDITION",
                f"Endpoint {req.name} has deployed models; undeploy them before deleting it",
            )
        return self._op(
            "DeleteEndpoint",
            req.name,
            lambda: self.endpoints.pop(ep.name.rsplit("/", 1)[1]) and None,
        )

    def DeployModel(self, req: aip.DeployModelRequest) -> Message:
        ep = self._endpoint(req.endpoint)
        dm = _copy(req.deployed_model)
        # DeployedModel has no labels; its display name defaults to the Model's, whose limit
        # (128) is the one applied here
        check_names("deployedModel", dm.display_name, {})
        self._model(dm.model)  # the model version exists
        if "@" not in dm.model:
            versions = self._model(dm.model)[1]
            dm.model = f"{dm.model}@{next(v.version_id for v in versions if 'default' in v.version_aliases)}"
        if not dm.dedicated_resources.machine_spec.machine_type and "dedicated_resources" in dm:
            dm.dedicated_resources.machine_spec.machine_type = "n1-standard-2"
        if "dedicated_resources" not in dm and "automatic_resources" not in dm:
            raise ApiError(
                "INVALID_ARGUMENT",
                "deployedModel: custom-trained models need dedicatedResources",
            )
        split = dict(req.traffic_split)
        ids = {d.id for d in ep.deployed_models}
        self._check_split(split, ids | {"0"}, "DeployModel")
        if dm.id and dm.id in ids:
            raise ApiError("ALREADY_EXISTS", f"DeployedModel {dm.id} already exists")

        def apply() -> Message:
            dm.id = dm.id or self._id()
            dm.create_time = _now()
            ep.deployed_models.append(dm)
            if split:
                ep.traffic_split = {(dm.id if k == "0" else k): v for k, v in split.items()}
            elif not ids:
                ep.traffic_split = {dm.id: 100}
            return aip.DeployModelResponse.pb(aip.DeployModelResponse(deployed_model=dm))

        return self._op("DeployModel", req.endpoint, apply)

    def UndeployModel(self, req: aip.UndeployModelRequest) -> Message:
        ep = self._endpoint(req.endpoint)
        ids = {d.id for d in ep.deployed_models}
        if req.deployed_model_id not in ids:
            raise ApiError("NOT_FOUND", f"DeployedModel {req.deployed_model_id} not found")
        split = dict(req.traffic_split) if req.traffic_split else dict(ep.traffic_split)
        if req.traffic_split:
            self._check_split(split, ids, "UndeployModel")
        last = ids == {req.deployed_model_id}
        if not last and split.get(req.deployed_model_id, 0) > 0:
            raise ApiError(
                "FAILED_PRECONDITION",
                f"DeployedModel {req.deployed_model_id} has {split[req.deployed_model_id]}% of "
                "the traffic; move it to other deployed models (traffic_split) first",
            )

        def apply() -> Message:
            ep.deployed_models = [d for d in ep.deployed_models if d.id != req.deployed_model_id]
            ep.traffic_split = {} if last else {k: v for k, v in split.items() if v > 0}
            return aip.UndeployModelResponse.pb(aip.UndeployModelResponse())

        return self._op("UndeployModel", req.endpoint, apply)

    def Predict(self, req: aip.PredictRequest) -> Message:
        ep = self._endpoint(req.endpoint)
        split = {k: v for k, v in ep.traffic_split.items() if v > 0}
        if not split:
            raise ApiError("FAILED_PRECONDITION", f"Endpoint {req.endpoint} has no traffic split")
        if not req.instances:
            raise ApiError("INVALID_ARGUMENT", "instances must not be empty")
        with self.lock:
            dm_id = self._rng.choices(list(split), weights=list(split.values()))[0]
            dm = next(d for d in ep.deployed_models if d.id == dm_id)
            rate = self.error_rates.get(dm_id, self.error_rates.get(dm.model.rpartition("@")[2], 0))
            failing = self._rng.random() < rate
        start = time.perf_counter()
        instances = [json_format.MessageToDict(v) for v in aip.PredictRequest.pb(req).instances]
        try:
            if failing:
                raise ApiError("INTERNAL", "the model server answered 500 (injected by the test)")
            if self.predictor is None:
                raise ApiError("UNIMPLEMENTED", "no predictor configured in this fake")
            predictions = self.predictor(dm, self._model(dm.model)[2], instances)
        except ApiError:
            self._record(ep, dm_id, True, start)
            raise
        self._record(ep, dm_id, False, start)
        resp = aip.PredictResponse(
            deployed_model_id=dm_id,
            model=dm.model.partition("@")[0],
            model_version_id=dm.model.partition("@")[2],
        )
        pb = aip.PredictResponse.pb(resp)
        for p in predictions:
            json_format.ParseDict(p, pb.predictions.add())
        return pb

    def _record(self, ep: aip.Endpoint, dm_id: str, error: bool, start: float) -> None:
        with self.lock:
            self.served.append(
                Served(
                    time.time(),
                    ep.name.rsplit("/", 1)[1],
                    dm_id,
                    error,
                    (time.perf_counter() - start) * 1000.0,
                )
            )

    # --- pipeline jobs ---------------------------------------------------------------------
    def CreatePipelineJob(self, req: aip.CreatePipelineJobRequest) -> Message:
        from kfp.pipeline_spec import pipeline_spec_pb2

        self._check_parent(req.parent)
        job = _copy(req.pipeline_job)
        job_id = req.pipeline_job_id or f"job-{self._id()}"
        if not JOB_ID_RE.match(job_id):
            raise ApiError("INVALID_ARGUMENT", f"pipeline_job_id {job_id!r} is invalid")
        if job_id in self.jobs:
            raise ApiError("ALREADY_EXISTS", f"PipelineJob {job_id} already exists")
        spec = json_format.MessageToDict(aip.PipelineJob.pb(job).pipeline_spec)
        try:
            json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
        except json_format.ParseError as e:
            raise ApiError(
                "INVALID_ARGUMENT", f"pipelineSpec is not a KFP PipelineSpec: {e}"
            ) from None
        if not spec.get("root") or not spec.get("deploymentSpec"):
            raise ApiError("INVALID_ARGUMENT", "pipelineSpec needs root and deploymentSpec")
        if not job.runtime_config.gcs_output_directory.startswith("gs://"):
            raise ApiError(
                "INVALID_ARGUMENT", "runtimeConfig.gcsOutputDirectory must be a gs:// URI"
            )
        job.name = f"{self.parent}/pipelineJobs/{job_id}"
        job.state = aip.PipelineState.PIPELINE_STATE_PENDING
        job.create_time = _now()
        self.jobs[job_id] = job
        return aip.PipelineJob.pb(job)

    def _job(self, name: str) -> aip.PipelineJob:
        rest = self._check_parent(name)
        job = self.jobs.get(rest.removeprefix("pipelineJobs/"))
        if job is None:
            raise ApiError("NOT_FOUND", f"PipelineJob {name} not found")
        return job

    def GetPipelineJob(self, req: aip.GetPipelineJobRequest) -> Message:
        job = self._job(req.name)
        s = aip.PipelineState
        if job.state == s.PIPELINE_STATE_PENDING:
            job.state = s.PIPELINE_STATE_RUNNING
            job.start_time = _now()
            threading.Thread(target=self._execute, args=(job,), daemon=True).start()
        elif job.state == s.PIPELINE_STATE_CANCELLING:
            job.state = s.PIPELINE_STATE_CANCELLED
        return aip.PipelineJob.pb(job)

    def ListPipelineJobs(self, req: aip.ListPipelineJobsRequest) -> Message:
        """``filter``: ``display_name="x"`` and ``labels.KEY="v"`` clauses joined by AND (a subset
        of the documented filter language; anything else is refused); ``order_by``: create_time
        (``desc`` allowed), as the reference lists."""
        self._check_parent(req.parent)
        jobs = list(self.jobs.values())
        if req.filter:
            for clause in re.split(r"\s+AND\s+", req.filter.strip()):
                m = re.fullmatch(r'(display_name|labels\.[a-z][\w-]*)\s*=\s*"([^"]*)"', clause)
                if not m:
                    raise ApiError("INVALID_ARGUMENT", f"unsupported filter {clause!r}")
                key, value = m.groups()
                jobs = [
                    j
                    for j in jobs
                    if (j.display_name if key == "display_name" else j.labels.get(key[7:])) == value
                ]
        if req.order_by not in ("", "create_time", "create_time desc"):
            raise ApiError("INVALID_ARGUMENT", f"unsupported order_by {req.order_by!r}")
        jobs.sort(key=lambda j: j.create_time, reverse=req.order_by.endswith("desc"))
        return aip.ListPipelineJobsResponse.pb(aip.ListPipelineJobsResponse(pipeline_jobs=jobs))

    def _execute(self, job: aip.PipelineJob) -> None:
        """The job's tasks, run by the test's executor; their states land in job_detail as they
        change, as Vertex reports them."""

        def report(task: str, state: str, error: str = "", log: str = "") -> None:
            """A task's state; a task that runs gets a CustomJob (``main_job``), whose
            container's output (``log``) lands in Cloud Logging under that job's id."""
            with self.lock:
                detail = next((t for t in job.job_detail.task_details if t.task_name == task), None)
                if detail is None:
                    job.job_detail.task_details.append(aip.PipelineTaskDetail(task_name=task))
                    detail = job.job_detail.task_details[-1]
                detail.state = getattr(aip.PipelineTaskDetail.State, state)
                container = detail.executor_detail.container_detail
                if state == "RUNNING" and not container.main_job:
                    container.main_job = f"{self.parent}/customJobs/{self._id()}"
                if error:
                    detail.error = {"code": 13, "message": error}  # type: ignore[assignment]
                if log and container.main_job:
                    entries = self.job_logs.setdefault(container.main_job.rsplit("/", 1)[1], [])
                    entries.extend((time.time(), line) for line in log.splitlines())

        try:
            if self.executor is not None:
                self.executor(job, report)
        except Exception as e:  # the executor broke: the job fails, loudly
            report("executor", "FAILED", repr(e))
        with self.lock:
            s = aip.PipelineState
            if job.state != s.PIPELINE_STATE_RUNNING:
                return
            failed = any(t.error.message for t in job.job_detail.task_details)
            job.state = s.PIPELINE_STATE_FAILED if failed else s.PIPELINE_STATE_SUCCEEDED
            if failed:
                job.error = {"code": 9, "message": "The DAG failed because some tasks failed."}  # type: ignore[assignment]
            job.end_time = _now()

    def CancelPipelineJob(self, req: aip.CancelPipelineJobRequest) -> Message:
        job = self._job(req.name)
        s = aip.PipelineState
        if job.state not in (s.PIPELINE_STATE_PENDING, s.PIPELINE_STATE_RUNNING):
            raise ApiError("FAILED_PRECONDITION", f"PipelineJob {req.name} is not running")
        job.state = s.PIPELINE_STATE_CANCELLING
        from google.protobuf import empty_pb2

        return empty_pb2.Empty()

    def DeletePipelineJob(self, req: aip.DeletePipelineJobRequest) -> Message:
        job = self._job(req.name)
        s = aip.PipelineState
        if job.state in (s.PIPELINE_STATE_PENDING, s.PIPELINE_STATE_RUNNING):
            raise ApiError("FAILED_PRECONDITION", "a running PipelineJob cannot be deleted")
        return self._op(
            "DeletePipelineJob",
            req.name,
            lambda: self.jobs.pop(req.name.rsplit("/", 1)[1]) and None,
        )

    # --- operations --------------------------------------------------------------------------
    def GetOperation(self, req: operations_pb2.GetOperationRequest) -> Message:
        op = self.operations.get(req.name)
        if op is None:
            raise ApiError("NOT_FOUND", f"Operation {req.name} not found")
        if not op.done:
            if op.polls_left > 0:
                op.polls_left -= 1
            else:
                op.done = True
                try:
                    if op.fails is not None:
                        raise op.fails
                    op.response = op.apply()
                except ApiError as e:
                    op.error = e
        out = operations_pb2.Operation(name=op.name, done=op.done)
        if op.error is not None:
            out.error.code = _NUMS[op.error.status]
            out.error.message = op.error.message
        elif op.done:
            from google.protobuf import empty_pb2

            out.response.Pack(op.response if op.response is not None else empty_pb2.Empty())
        return out

    # --- Cloud Logging -----------------------------------------------------------------------
    def ListLogEntries(self, body: dict[str, Any]) -> Message:
        """entries.list for ``resource.type="ml_job" AND resource.labels.job_id="ID"``: the
        CustomJob's lines as ``textPayload`` entries, ``pageSize`` at a time (at most 1000)."""
        from google.protobuf import struct_pb2

        names = body.get("resourceNames")
        if not names:
            raise ApiError("INVALID_ARGUMENT", "resourceNames is required")
        for name in names:
            if name != f"projects/{self.project}":
                raise ApiError("NOT_FOUND", f"{name} not found (permission denied)")
        clauses = dict(re.findall(r'([\w.]+)\s*=\s*"([^"]*)"', body.get("filter", "")))
        if clauses.get("resource.type") != "ml_job" or "resource.labels.job_id" not in clauses:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"filter {body.get('filter')!r}: this fake answers "
                'resource.type="ml_job" AND resource.labels.job_id="..." only',
            )
        order = body.get("orderBy", "timestamp asc")
        if order not in ("timestamp asc", "timestamp desc"):
            raise ApiError("INVALID_ARGUMENT", f"orderBy {order!r}: timestamp asc|desc")
        size = body.get("pageSize", 50)
        if not 1 <= size <= 1000:
            raise ApiError("INVALID_ARGUMENT", "pageSize must be 1..1000")
        token = body.get("pageToken", "0")
        if not token.isdigit():
            raise ApiError("INVALID_ARGUMENT", f"invalid pageToken {token!r}")
        with self.lock:
            entries = list(self.job_logs.get(clauses["resource.labels.job_id"], []))
        if order.endswith("desc"):
            entries.reverse()
        start = int(token)
        page = entries[start : start + size]
        out: dict[str, Any] = {
            "entries": [
                {
                    "logName": f"projects/{self.project}/logs/workerpool0-0",
                    "resource": {
                        "type": "ml_job",
                        "labels": {
                            "job_id": clauses["resource.labels.job_id"],
                            "project_id": self.project,
                            "task_name": "workerpool0-0",
                        },
                    },
                    "textPayload": text,
                    "timestamp": _rfc3339(at),
                }
                for at, text in page
            ]
        }
        if start + size < len(entries):
            out["nextPageToken"] = str(start + size)
        answer = struct_pb2.Struct()
        answer.update(out)
        return answer

    # --- Cloud Monitoring --------------------------------------------------------------------
    def ListTimeSeries(self, req: monitoring_v3.ListTimeSeriesRequest) -> Message:
        if req.name != f"projects/{self.project}":
            raise ApiError("NOT_FOUND", f"{req.name} not found")
        clauses = dict(
            re.findall(r'([\w.]+)\s*=\s*"([^"]*)"', req.filter)  # a = "b" AND c = "d"
        )
        if not clauses or " OR " in req.filter or "metric.type" not in clauses:
            raise ApiError("INVALID_ARGUMENT", f"filter {req.filter!r}: need metric.type = ...")
        kinds = {
            "aiplatform.googleapis.com/prediction/online/prediction_count": "count",
            "aiplatform.googleapis.com/prediction/online/error_count": "errors",
            "aiplatform.googleapis.com/prediction/online/prediction_latencies": "latency",
        }
        kind = kinds.get(clauses["metric.type"])
        if kind is None:
            raise ApiError("INVALID_ARGUMENT", f"unknown metric type {clauses['metric.type']!r}")
        start = req.interval.start_time.timestamp() if "start_time" in req.interval else 0.0
        end = req.interval.end_time.timestamp()
        with self.lock:
            rows = [
                s
                for s in self.served
                if start <= s.at <= end
                and s.endpoint_id == clauses.get("resource.labels.endpoint_id", s.endpoint_id)
                and s.deployed_model_id
                == clauses.get("metric.labels.deployed_model_id", s.deployed_model_id)
            ]
        series = []
        for dm_id in sorted({r.deployed_model_id for r in rows}):
            mine = [r for r in rows if r.deployed_model_id == dm_id]
            ts = monitoring_v3.TimeSeries(
                metric={"type": clauses["metric.type"], "labels": {"deployed_model_id": dm_id}},
                resource={
                    "type": "aiplatform.googleapis.com/Endpoint",
                    "labels": {
                        "resource_container": self.project,
                        "location": self.location,
                        "endpoint_id": mine[0].endpoint_id,
                    },
                },
            )
            interval = {"start_time": req.interval.start_time, "end_time": req.interval.end_time}
            if kind == "latency":
                bounds = [1.0 * 2**i for i in range(20)]
                counts = [0] * (len(bounds) + 1)
                for r in mine:
                    counts[sum(1 for b in bounds if r.latency_ms >= b)] += 1
                value = {
                    "distribution_value": {
                        "count": len(mine),
                        "mean": sum(r.latency_ms for r in mine) / len(mine),
                        "bucket_options": {"explicit_buckets": {"bounds": bounds}},
                        "bucket_counts": counts,
                    }
                }
            else:
                n = sum(1 for r in mine if kind == "count" or r.error)
                value = {"int64_value": n}
            ts.points = [monitoring_v3.Point(interval=interval, value=value)]
            series.append(ts)
        return monitoring_v3.ListTimeSeriesResponse.pb(
            monitoring_v3.ListTimeSeriesResponse(time_series=series)
        )


# --- the HTTP server ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    fake: FakeVertex
    routes: list[Route]
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet server
        pass

    def _answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            route, params = self._route(method, url.path)
            msg = self._parse(route, params, url.query, raw)
            with self.fake.lock:
                self.fake.calls.append((route.rpc, next(iter(params.values()), "")))
                out = getattr(self.fake, route.rpc)(msg)
            self._answer(200, json_format.MessageToDict(out))
        except ApiError as e:
            self._answer(_CODES[e.status], e.body())
        except Exception as e:  # a bug in the fake: say so as the service would, and loudly
            import traceback

            traceback.print_exc()
            self._answer(500, ApiError("INTERNAL", f"fake failed: {e!r}").body())

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        for r in self.routes:
            m = r.pattern.match(path)
            if m and r.method == method:
                return r, {k.replace("__", "."): unquote(v) for k, v in m.groupdict().items()}
        raise ApiError("NOT_FOUND", f"no Vertex AI method answers {method} {path}")

    def _parse(self, route: Route, params: dict[str, str], query: str, raw: bytes) -> Any:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as e:
            raise ApiError("INVALID_ARGUMENT", f"request body is not JSON: {e}") from None
        if route.body not in (None, "*"):
            body = {_camel(route.body): body}
        elif route.body is None and body:
            raise ApiError("INVALID_ARGUMENT", f"{route.rpc} takes no request body")
        body.update(_query_dict(query))
        for key, value in params.items():
            _set_path(body, key, value)
        if route.request is None:  # a REST body checked against its reference's fields
            for key, value in body.items():
                want = LOG_LIST_FIELDS.get(key)
                if want is None:
                    raise ApiError("INVALID_ARGUMENT", f"{route.rpc}: unknown field {key!r}")
                if not isinstance(value, want):
                    raise ApiError("INVALID_ARGUMENT", f"{route.rpc}: {key} must be {want}")
            return body
        pb_cls = route.request.pb() if hasattr(route.request, "pb") else route.request
        pb = pb_cls()
        try:
            json_format.ParseDict(body, pb, ignore_unknown_fields=False)
        except json_format.ParseError as e:
            raise ApiError("INVALID_ARGUMENT", f"{route.rpc}: {e}") from None
        if hasattr(route.request, "meta"):
            check_required(route.request, pb)
            return route.request.wrap(pb)
        return pb

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


@contextmanager
def serve(fake: FakeVertex) -> Iterator[str]:
    """Serve ``fake`` on 127.0.0.1 (a free port) while the block runs; yields http://host:port."""
    handler = type("Handler", (_Handler,), {"fake": fake, "routes": _routes()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-vertex", daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
