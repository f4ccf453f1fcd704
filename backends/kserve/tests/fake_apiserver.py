"""A Kubernetes API server stand-in on 127.0.0.1, as strict as a real one for what mlstack uses.

Documents followed:

- Kubernetes API Concepts (https://kubernetes.io/docs/reference/using-api/api-concepts/): URL
  layout (``/api/v1``, ``/apis/GROUP/VERSION/namespaces/NS/PLURAL/NAME``), ``resourceVersion``
  and optimistic concurrency (409 ``Conflict`` on a stale version), ``metadata.generation``
  bumped on spec changes only, label selectors, the ``status`` subresource (writes to the main
  resource leave ``status`` alone and the reverse), strict field validation (unknown fields
  rejected: mlstack sends ``fieldValidation=Strict`` semantics).
- Server-Side Apply (https://kubernetes.io/docs/reference/using-api/server-side-apply/):
  ``application/apply-patch+yaml`` with a required ``fieldManager``; fields owned per manager in
  ``metadata.managedFields``; a field another manager owns with a different value is a 409
  conflict unless ``force=true``, which takes ownership; fields a manager stops applying are
  removed when nobody else owns them. Simplification: every list is atomic (the real server
  merges lists marked ``x-kubernetes-list-type: map`` by key).
- The ``Status`` kind (``kind: Status``, ``status: Failure``, ``reason``, ``code``,
  ``details.causes``) for 404 ``NotFound``, 409 ``AlreadyExists``/``Conflict``, 422 ``Invalid``,
  400 ``BadRequest``, 415 ``UnsupportedMediaType``, and 500 ``InternalError`` ("Internal error
  occurred: ...") for anything the server did not expect.
- ``DeleteOptions.propagationPolicy`` (query parameter or body): ``Orphan``, ``Background`` or
  ``Foreground``; a ``batch/v1`` Job deleted without one orphans its pods (the API's legacy
  default for Jobs), other kinds default to ``Background``. What happens to the dependents is the
  garbage collector's business (``fake_jobs``); this server records the policy by ``uid``.
- Object creation: ``metadata.name`` or ``metadata.generateName`` is required (422
  ``FieldValueRequired`` otherwise); a rejected request (4xx) changes nothing, field ownership
  included.
- ``pods/NAME/log?container=C``: ``container`` may be left out only when the pod has one
  container; a name the pod does not have is 400 ``BadRequest``.
- Object schemas: ``k8s_schemas`` (the KServe 0.21 InferenceService CRD, the Gateway API v1.6.1
  HTTPRoute CRD, ``kubernetes-validate``'s strict schemas for built-in kinds).

Controllers move status the way KServe (``fake_controllers``) and the Job controller, garbage
collector and kubelet (``fake_jobs``) document.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import k8s_schemas
import yaml


@dataclass(frozen=True)
class Kind:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    status_subresource: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS = {
    k.plural: k
    for k in (
        Kind("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService", True),
        Kind("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", True),
        Kind("batch", "v1", "jobs", "Job", True),
        Kind("", "v1", "pods", "Pod", True),
        Kind("", "v1", "configmaps", "ConfigMap", False),
    )
}
_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)"
    r"(?:/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>status|log))?)?)?$"
)
Path = tuple[str, ...]


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def leaf_paths(obj: Any, prefix: Path = ()) -> Iterator[Path]:
    """Field paths set in an applied configuration (lists are atomic leaves)."""
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from leaf_paths(v, (*prefix, k))
    else:
        yield prefix


def _get(obj: Any, path: Path) -> Any:
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return _MISSING
        obj = obj[p]
    return obj


def _set(obj: dict[str, Any], path: Path, value: Any) -> None:
    for p in path[:-1]:
        obj = obj.setdefault(p, {})
    obj[path[-1]] = copy.deepcopy(value)


def _delete(obj: dict[str, Any], path: Path) -> None:
    parents = [obj]
    for p in path[:-1]:
        nxt = parents[-1].get(p)
        if not isinstance(nxt, dict):
            return
        parents.append(nxt)
    parents[-1].pop(path[-1], None)
    for i in range(len(parents) - 1, 0, -1):  # drop maps left empty
        if not parents[i]:
            parents[i - 1].pop(path[i - 1], None)


_MISSING = object()
_IDENTITY = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for p in path:
            node = node.setdefault(f"f:{p}", {})
    return tree


class FakeApiServer:
    """Objects in memory behind the HTTP API; ``controllers`` run on every change and tick."""

    def __init__(self, namespaces: tuple[str, ...] = ("default",)) -> None:
        self.namespaces = set(namespaces)
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name)
        self.owners: dict[tuple[str, str, str], dict[str, tuple[str, set[Path]]]] = {}
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._rv = 100
        self.requests: list[tuple[str, str, str]] = []  # (method, path, content-type)
        self.accepted: list[dict[str, Any]] = []  # every object stored, for schema assertions
        self.controllers: list[Callable[[FakeApiServer], None]] = []
        # (ns, pod, container) -> log text; the kubelet (fake_jobs) replaces this reader
        self.log_source: Callable[[str, str, str], str] = lambda ns, pod, c: ""
        self.deletions: dict[str, str] = {}  # uid -> propagationPolicy it was deleted with
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                server._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        t = threading.Thread(target=self._server.serve_forever, daemon=True)
        c = threading.Thread(target=self._control_loop, daemon=True)
        self._threads = [t, c]
        t.start()
        c.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=10)

    def _control_loop(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                for c in self.controllers:
                    c(self)
                self.changed.wait(timeout=0.05)

    # --- storage helpers for controllers and tests ----------------------------------------------
    def next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def list(self, plural: str, ns: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [o for (p, n, _), o in self.objects.items() if p == plural and ns in (None, n)]

    def get(self, plural: str, ns: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.objects.get((plural, ns, name))

    def write_status(self, plural: str, ns: str, name: str, status: dict[str, Any]) -> None:
        """What a controller does: replace ``status`` (a status-subresource write)."""
        with self.lock:
            obj = self.objects[(plural, ns, name)]
            if obj.get("status") != status:
                obj["status"] = copy.deepcopy(status)
                obj["metadata"]["resourceVersion"] = self.next_rv()
                self.changed.notify_all()

    def remove(self, plural: str, ns: str, name: str) -> None:
        """What the garbage collector or a controller deletes (dependents: Background)."""
        with self.lock:
            obj = self.objects.pop((plural, ns, name), None)
            self.owners.pop((plural, ns, name), None)
            if obj is not None:
                self.deletions[obj["metadata"]["uid"]] = "Background"
                self.changed.notify_all()

    def put_object(self, plural: str, obj: dict[str, Any]) -> None:
        """What a controller creates (pods): validated like any other object."""
        self._validate(obj)
        with self.lock:
            meta = obj["metadata"]
            meta.setdefault("uid", str(uuid.uuid4()))
            meta["resourceVersion"] = self.next_rv()
            meta.setdefault("creationTimestamp", _now())
            self.objects[(plural, meta["namespace"], meta["name"])] = obj
            self.changed.notify_all()

    # --- HTTP ---------------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        url = urlparse(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        ctype = h.headers.get("Content-Type", "").split(";")[0].strip()
        self.requests.append((h.command, url.path, ctype))
        try:
            length = int(h.headers.get("Content-Length") or 0)
            raw = h.rfile.read(length) if length else b""
            code, body = self._route(h.command, url.path, query, ctype, raw)
        except ApiError as e:
            code, body = e.code, e.body()
        except Exception as e:  # noqa: BLE001 - what the API server answers for its own bugs
            err = ApiError(
                500,
                "InternalError",
                f"Internal error occurred: {type(e).__name__}: {e}",
                causes=[{"message": f"{type(e).__name__}: {e}"}],
            )
            code, body = 500, err.body()
        if isinstance(body, str):
            data, out_type = body.encode(), "text/plain"
        else:
            data, out_type = json.dumps(body).encode(), "application/json"
        h.send_response(code)
        h.send_header("Content-Type", out_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(
        self, method: str, path: str, query: dict[str, str], ctype: str, raw: bytes
    ) -> tuple[int, Any]:
        m = _PATH.match(path)
        if not m:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        ns, plural, name, sub = m["ns"], m["plural"], m["name"], m["sub"]
        if ns not in self.namespaces:
            raise ApiError(
                404, "NotFound", f'namespaces "{ns}" not found', name=ns, kind="namespaces"
            )
        if plural is None:
            return 200, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        kind = KINDS.get(plural)
        if (
            kind is None
            or (m["group"] or "") != kind.group
            or (m["version"] or "v1") != kind.version
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        key = (plural, ns, name or "")
        with self.lock:
            if name is None:
                if method == "GET":
                    return 200, self._list(kind, ns, query.get("labelSelector"))
                if method == "POST":
                    return 201, self._create(kind, ns, self._body(raw, ctype), query)
                raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here")
            if sub == "log":
                return 200, self._log(kind, key, query.get("container"))
            if method == "GET":
                return 200, self._existing(kind, key)
            if method == "DELETE":
                policy = query.get("propagationPolicy")
                if raw:
                    policy = self._body(raw, ctype or "application/json").get(
                        "propagationPolicy", policy
                    )
                if policy not in (None, "Orphan", "Background", "Foreground"):
                    raise ApiError(
                        400,
                        "BadRequest",
                        f'propagationPolicy: Unsupported value: "{policy}": supported values: '
                        '"Foreground", "Background", "Orphan"',
                    )
                obj = self._existing(kind, key)
                del self.objects[key]
                self.owners.pop(key, None)
                default = "Orphan" if plural == "jobs" else "Background"
                self.deletions[obj["metadata"]["uid"]] = policy or default
                self.changed.notify_all()
                return 200, obj
            if method == "PUT":
                return 200, self._replace(kind, key, self._body(raw, ctype), sub, query)
            if method == "PATCH":
                return self._patch(kind, key, raw, ctype, sub, query)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed here")

    def _log(self, kind: Kind, key: tuple[str, str, str], container: str | None) -> str:
        if kind.plural != "pods":
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        pod = self._existing(kind, key)
        spec = pod.get("spec", {})
        mains = [c["name"] for c in spec.get("containers", [])]
        inits = [c["name"] for c in spec.get("initContainers", [])]
        if container is None:
            if len(mains) != 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {key[2]}, choose one of: "
                    f"[{' '.join(mains)}] or one of the init containers: [{' '.join(inits)}]",
                )
            container = mains[0]
        if container not in mains + inits:
            raise ApiError(
                400, "BadRequest", f"container {container} is not valid for pod {key[2]}"
            )
        return self.log_source(key[1], key[2], container)

    @staticmethod
    def _body(raw: bytes, ctype: str) -> dict[str, Any]:
        try:
            body = yaml.safe_load(raw) if ctype.endswith("yaml") else json.loads(raw or b"{}")
        except (ValueError, yaml.YAMLError) as e:
            raise ApiError(
                400, "BadRequest", f"the body of the request could not be decoded: {e}"
            ) from None
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be an object")
        return body

    @staticmethod
    def _not_found(kind: Kind, name: str) -> ApiError:
        what = f"{kind.plural}.{kind.group}" if kind.group else kind.plural
        return ApiError(
            404,
            "NotFound",
            f'{what} "{name}" not found',
            name=name,
            group=kind.group,
            kind=kind.plural,
        )

    def _existing(self, kind: Kind, key: tuple[str, str, str]) -> dict[str, Any]:
        obj = self.objects.get(key)
        if obj is None:
            raise self._not_found(kind, key[2])
        return copy.deepcopy(obj)

    def _list(self, kind: Kind, ns: str, selector: str | None) -> dict[str, Any]:
        want = dict(p.split("=", 1) for p in selector.split(",")) if selector else {}
        items = [
            copy.deepcopy(o)
            for (p, n, _), o in sorted(self.objects.items())
            if p == kind.plural
            and n == ns
            and all(o["metadata"].get("labels", {}).get(k) == v for k, v in want.items())
        ]
        return {
            "apiVersion": kind.api_version,
            "kind": f"{kind.kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _check_identity(self, kind: Kind, ns: str, body: dict[str, Any], name: str | None) -> None:
        if body.get("apiVersion") != kind.api_version or body.get("kind") != kind.kind:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) does not match the "
                f"expected API version ({kind.api_version})",
            )
        meta = body.get("metadata") or {}
        if meta.get("namespace", ns) != ns:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the "
                "namespace sent on the request",
            )
        if name is not None and meta.get("name") != name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )

    def _validate(self, obj: dict[str, Any]) -> None:
        problems = k8s_schemas.problems(obj)
        if problems:
            name = obj.get("metadata", {}).get("name", "")
            raise ApiError(
                422,
                "Invalid",
                f'{obj.get("kind")} "{name}" is invalid: ' + "; ".join(problems),
                name=name,
                kind=obj.get("kind"),
                causes=[
                    {"reason": "FieldValueInvalid", "message": p, "field": p.split(":", 1)[0]}
                    for p in problems
                ],
            )

    def _store(
        self,
        kind: Kind,
        key: tuple[str, str, str],
        obj: dict[str, Any],
        old: Any,
        owners: dict[str, tuple[str, set[Path]]],
    ) -> None:
        """Validate ``obj`` and only then commit it with its field ``owners``: a rejected
        request leaves the object and its field ownership as they were."""
        meta = obj["metadata"]
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
        else:
            for k in ("uid", "creationTimestamp", "generation"):
                meta[k] = old["metadata"][k]
            if obj.get("spec") != old.get("spec"):
                meta["generation"] = old["metadata"]["generation"] + 1
        meta["namespace"] = key[1]
        self._validate(
            {k: v for k, v in obj.items() if k != "status"}
            | ({"status": obj["status"]} if "status" in obj and kind.plural != "pods" else {})
        )
        self.owners[key] = owners
        meta["resourceVersion"] = self.next_rv()
        meta["managedFields"] = [
            {
                "manager": m,
                "operation": op,
                "apiVersion": kind.api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(paths),
                "time": _now(),
            }
            for m, (op, paths) in sorted(owners.items())
            if paths
        ]
        self.objects[key] = obj
        self.accepted.append(copy.deepcopy(obj))
        self.changed.notify_all()

    def _create(self, kind: Kind, ns: str, body: dict[str, Any], query: dict[str, str]) -> Any:
        self._check_identity(kind, ns, body, None)
        meta = body.get("metadata")
        if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
            raise ApiError(
                422,
                "Invalid",
                f'{kind.kind}.{kind.group or "core"} "" is invalid: metadata.name: Required '
                "value: name or generateName is required",
                kind=kind.kind,
                causes=[
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: name or generateName is required",
                        "field": "metadata.name",
                    }
                ],
            )
        body = copy.deepcopy(body)
        if not meta.get("name"):
            suffix = uuid.uuid4().hex[:5]
            body["metadata"]["name"] = f"{meta['generateName']}{suffix}"
        name = body["metadata"]["name"]
        key = (kind.plural, ns, name)
        if key in self.objects:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{kind.plural}.{kind.group} "{name}" already exists',
                name=name,
                group=kind.group,
                kind=kind.plural,
            )
        if kind.status_subresource:
            body.pop("status", None)
        manager = query.get("fieldManager", "unknown")
        self._store(kind, key, body, None, {manager: ("Update", set(_owned_paths(body)))})
        return copy.deepcopy(body)

    def _check_rv(self, given: Any, old: dict[str, Any], kind: Kind, name: str) -> None:
        if given and given != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.plural}.{kind.group} "{name}": the '
                "object has been modified; please apply your changes to the latest version "
                "and try again",
                name=name,
                group=kind.group,
                kind=kind.plural,
            )

    def _replace(
        self,
        kind: Kind,
        key: tuple[str, str, str],
        body: dict[str, Any],
        sub: str | None,
        query: dict[str, str],
    ) -> Any:
        old = self._existing(kind, key)
        self._check_identity(kind, key[1], body, key[2])
        self._check_rv(body["metadata"].get("resourceVersion"), old, kind, key[2])
        new = copy.deepcopy(old)
        owners = copy.deepcopy(self.owners.get(key, {}))
        if sub == "status":
            new["status"] = copy.deepcopy(body.get("status", {}))
        else:
            new = copy.deepcopy(body)
            new.setdefault("metadata", {})
            if kind.status_subresource:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = old["status"]
            manager = query.get("fieldManager", "unknown")
            owners[manager] = ("Update", set(_owned_paths(new)))
        self._store(kind, key, new, old, owners)
        return copy.deepcopy(new)

    def _patch(
        self,
        kind: Kind,
        key: tuple[str, str, str],
        raw: bytes,
        ctype: str,
        sub: str | None,
        query: dict[str, str],
    ) -> tuple[int, Any]:
        body = self._body(raw, ctype)
        if ctype == "application/apply-patch+yaml":
            return self._apply(kind, key, body, query)
        if ctype != "application/merge-patch+json":
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format"
                " - accepted media types include: application/json-patch+json, "
                "application/merge-patch+json, application/apply-patch+yaml",
            )
        old = self._existing(kind, key)
        self._check_rv((body.get("metadata") or {}).get("resourceVersion"), old, kind, key[2])
        owners = copy.deepcopy(self.owners.get(key, {}))
        if sub == "status":
            new = copy.deepcopy(old)
            new["status"] = merge_patch(old.get("status", {}), body.get("status", {}))
        else:
            if kind.status_subresource:
                body.pop("status", None)
            new = merge_patch(old, body)
            manager = query.get("fieldManager", "unknown")
            op, paths = owners.get(manager, ("Update", set()))
            owners[manager] = (op, paths | set(_owned_paths(body)))
        self._store(kind, key, new, old, owners)
        return 200, copy.deepcopy(new)

    def _apply(
        self, kind: Kind, key: tuple[str, str, str], config: dict[str, Any], query: dict[str, str]
    ) -> tuple[int, Any]:
        manager = query.get("fieldManager")
        if not manager:
            raise ApiError(
                400, "BadRequest", "PATCH /apply requires a fieldManager query parameter"
            )
        self._check_identity(kind, key[1], config, key[2])
        force = query.get("force") in ("1", "t", "T", "true", "TRUE", "True")  # Go ParseBool
        if kind.status_subresource:
            config = {k: v for k, v in config.items() if k != "status"}
        applied = set(_owned_paths(config))
        old = self.objects.get(key)
        owners = copy.deepcopy(self.owners.get(key, {}))  # committed by _store once valid
        if old is None:
            obj = copy.deepcopy(config)
            self._store(kind, key, obj, None, {manager: ("Apply", applied)})
            return 201, copy.deepcopy(obj)
        self._check_rv((config.get("metadata") or {}).get("resourceVersion"), old, kind, key[2])
        conflicts = []
        for other, (_op, paths) in owners.items():
            if other == manager:
                continue
            for p in paths & applied:
                if _get(old, p) != _get(config, p):
                    conflicts.append((other, p))
        if conflicts and not force:
            lines = [f'conflict with "{m}": .{".".join(p)}' for m, p in sorted(conflicts)]
            raise ApiError(
                409,
                "Conflict",
                f"Apply failed with {len(conflicts)} conflict{'s' if len(conflicts) > 1 else ''}: "
                + "; ".join(lines),
                name=key[2],
                group=kind.group,
                kind=kind.plural,
                causes=[{"reason": "FieldManagerConflict", "message": line} for line in lines],
            )
        for other, p in conflicts:  # force: ownership moves to this manager
            op, paths = owners[other]
            owners[other] = (op, paths - {p})
        new = copy.deepcopy(old)
        _, before = owners.get(manager, ("Apply", set()))
        still = set().union(*(paths for m, (_, paths) in owners.items() if m != manager))
        for p in before - applied:
            if p not in still:
                _delete(new, p)
        for p in applied:
            _set(new, p, _get(config, p))
        owners[manager] = ("Apply", applied)
        self._store(kind, key, new, old, owners)
        return 200, copy.deepcopy(new)


def _owned_paths(obj: dict[str, Any]) -> Iterator[Path]:
    for p in leaf_paths(obj):
        if (
            p
            and p not in _IDENTITY
            and p[0] != "status"
            and p[:2] != ("metadata", "resourceVersion")
        ):
            yield p


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
