"""Controllers and data plane for the fake cluster: what KServe, Knative, a Gateway API
implementation and the kubelet would do with the objects the API server holds.

Documents followed:

- KServe "Canary rollout" and "Rollback" guides and the v1beta1 ``InferenceServiceStatus``
  reference: a changed predictor makes a new revision (``<name>-predictor-0000N``); while it is
  not ready traffic stays where it was and ``Ready`` is ``Unknown``; with
  ``canaryTrafficPercent`` the latest ready revision (tag ``latest``) gets that share and the
  last rolled-out one (tag ``prev``) the rest; without it the latest takes 100 % and becomes
  ``latestRolledoutRevision``; 0 sends all traffic to the previous rolled-out revision. A
  revision whose storage initializer or model server fails makes ``PredictorReady``/``Ready``
  ``False`` (``RevisionFailed``) and traffic stays on the last ready revision.
  ``status.url`` is ``http://NAME.NAMESPACE.example.com`` (Knative's default domain).
  RawDeployment: one Deployment/Service ``<name>-predictor``, ``Ready`` when its pod is ready.
- Gateway API v1 HTTPRoute: ``status.parents[].conditions`` ``Accepted`` and ``ResolvedRefs``
  (``BackendNotFound`` when a backend Service does not exist); requests split by
  ``backendRefs[].weight``; ``RequestMirror`` copies ``percent`` of requests to its backend and
  drops the answers.
- The kubelet and KServe's storage initializer: the artifact at ``STORAGE_URI`` is downloaded
  to ``/mnt/models`` (here from the moto S3 server) before the container starts; the container
  here is the real model server process the predictor image runs (mlstack's KServe model server),
  on 127.0.0.1 and a free port instead of the pod IP and 8080.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fake_apiserver import FakeApiServer

DOMAIN = "example.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    c = {"type": type_, "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


@dataclass
class Revision:
    """One predictor revision (Serverless) or the predictor Deployment's pod (Raw)."""

    name: str
    predictor: dict[str, Any]
    state: str = "pending"  # pending, ready, failed
    message: str = ""
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = ""


@dataclass
class Isvc:
    revisions: list[Revision] = field(default_factory=list)
    generation: int = 0
    rolled_out: str | None = None
    previous: str | None = None


class Cluster:
    """KServe + Knative + gateway + kubelet over one ``FakeApiServer``; an ingress on loopback."""

    def __init__(self, api: FakeApiServer, s3_endpoint: str, rng_seed: int = 7) -> None:
        self.api = api
        self.s3_endpoint = s3_endpoint
        self.isvcs: dict[tuple[str, str], Isvc] = {}
        self.rng = random.Random(rng_seed)
        # revision -> (time, status code, seconds), what the queue-proxy would count
        self.served: dict[str, list[tuple[float, int, float]]] = defaultdict(list)
        self.mirrored: dict[str, int] = defaultdict(int)
        self.tmp = tempfile.TemporaryDirectory(prefix="fake-kubelet-")
        self._ingress: ThreadingHTTPServer | None = None
        self.break_versions: set[str] = set()  # versions whose answers become 500s (gate tests)
        api.controllers += [self.reconcile_isvcs, self.reconcile_routes]

    # --- lifecycle ----------------------------------------------------------------------------
    def start_ingress(self) -> str:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                cluster._serve(self)

            do_POST = do_GET

        self._ingress = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._ingress.daemon_threads = True
        threading.Thread(target=self._ingress.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._ingress.server_address[1]}"

    def stop(self) -> None:
        if self._ingress is not None:
            self._ingress.shutdown()
            self._ingress.server_close()
        for isvc in self.isvcs.values():
            for r in isvc.revisions:
                self._kill(r)
        self.tmp.cleanup()

    @staticmethod
    def _kill(r: Revision) -> None:
        if r.proc is not None and r.proc.poll() is None:
            r.proc.terminate()
            try:
                r.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()

    # --- kubelet + storage initializer ----------------------------------------------------------
    def _start_pod(self, r: Revision) -> None:
        threading.Thread(target=self._run_pod, args=(r,), daemon=True).start()

    def _run_pod(self, r: Revision) -> None:
        c = r.predictor["containers"][0]
        uri = next(e["value"] for e in c.get("env", []) if e["name"] == "STORAGE_URI")
        r.workdir = tempfile.mkdtemp(prefix=r.name + "-", dir=self.tmp.name)
        models = Path(r.workdir) / "models"
        try:
            self._download(uri, models)
        except Exception as e:  # the storage initializer's failure ends the pod
            self._finish(r, "failed", f"storage-initializer: {e}")
            return
        args = list(c.get("args", []))
        port = _free_port()
        for flag, value in (
            ("--host", "127.0.0.1"),
            ("--port", str(port)),
            ("--model-dir", str(models)),
        ):
            if flag in args:
                args[args.index(flag) + 1] = value
        cmd = list(c.get("command", []))
        if cmd[:1] == ["python"]:
            cmd[0] = sys.executable
        log = open(Path(r.workdir) / "log", "wb")  # noqa: SIM115 - the process keeps it
        r.proc = subprocess.Popen([*cmd, *args], stdout=log, stderr=subprocess.STDOUT)
        r.port = port
        probe = c.get("readinessProbe", {}).get("httpGet", {}).get("path", "/")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if r.proc.poll() is not None:
                tail = (Path(r.workdir) / "log").read_text(errors="replace")[-400:]
                self._finish(r, "failed", f"container exited {r.proc.returncode}: {tail}")
                return
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", probe)
                if conn.getresponse().status == 200:
                    self._finish(r, "ready", "")
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self._finish(r, "failed", "readiness probe failed for 120s")

    def _finish(self, r: Revision, state: str, message: str) -> None:
        with self.api.lock:
            r.state, r.message = state, message
            self.api.changed.notify_all()

    def _download(self, uri: str, dest: Path) -> None:
        import boto3

        if not uri.startswith("s3://"):
            raise ValueError(f"unsupported storage URI {uri}")
        bucket, _, prefix = uri[5:].partition("/")
        s3 = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])
        ]
        if not keys:
            raise FileNotFoundError(f"Failed to fetch model. No model found in {uri}.")
        for key in keys:
            target = dest / key[len(prefix) :].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))

    # --- KServe / Knative -----------------------------------------------------------------------
    def reconcile_isvcs(self, api: FakeApiServer) -> None:
        live = set()
        for obj in api.list("inferenceservices"):
            meta = obj["metadata"]
            key = (meta["namespace"], meta["name"])
            live.add(key)
            state = self.isvcs.setdefault(key, Isvc())
            predictor = {
                k: v for k, v in obj["spec"]["predictor"].items() if k != "canaryTrafficPercent"
            }
            raw = (
                meta.get("annotations", {}).get("serving.kserve.io/deploymentMode")
                == "RawDeployment"
            )
            if not state.revisions or state.revisions[-1].predictor != predictor:
                if raw and state.revisions:  # a Deployment rolls its pod; no revisions kept
                    self._kill(state.revisions[-1])
                name = f"{meta['name']}-predictor-{len(state.revisions) + 1:05d}"
                rev = Revision(name, predictor)
                state.revisions.append(rev)
                self._start_pod(rev)
            status = self._raw_status(obj, state) if raw else self._serverless_status(obj, state)
            api.write_status("inferenceservices", meta["namespace"], meta["name"], status)
        for key in set(self.isvcs) - live:  # deleted: its pods go
            for r in self.isvcs.pop(key).revisions:
                self._kill(r)

    def _serverless_status(self, obj: dict[str, Any], s: Isvc) -> dict[str, Any]:
        meta = obj["metadata"]
        latest = s.revisions[-1]
        ready = [r for r in s.revisions if r.state == "ready"]
        canary = obj["spec"]["predictor"].get("canaryTrafficPercent")
        if latest.state == "ready" and (canary is None or s.rolled_out is None):
            if s.rolled_out != latest.name:
                s.previous, s.rolled_out = s.rolled_out, latest.name
        traffic: list[dict[str, Any]] = []
        if latest.state == "ready" and canary is not None and s.rolled_out != latest.name:
            traffic = [
                {
                    "revisionName": latest.name,
                    "percent": canary,
                    "latestRevision": True,
                    "tag": "latest",
                },
                {
                    "revisionName": s.rolled_out,
                    "percent": 100 - canary,
                    "latestRevision": False,
                    "tag": "prev",
                },
            ]
        elif s.rolled_out is not None:
            traffic = [
                {
                    "revisionName": s.rolled_out,
                    "percent": 100,
                    "latestRevision": s.rolled_out == latest.name,
                }
            ]
        if latest.state == "failed":
            conds = [
                _cond("PredictorReady", "False", "RevisionFailed", latest.message),
                _cond("Ready", "False", "RevisionFailed", latest.message),
            ]
        elif latest.state == "pending":
            conds = [
                _cond("PredictorReady", "Unknown", "Progressing"),
                _cond("Ready", "Unknown", "Progressing"),
            ]
        else:
            conds = [
                _cond("IngressReady", "True"),
                _cond("PredictorReady", "True"),
                _cond("Ready", "True"),
            ]
        url = f"http://{meta['name']}.{meta['namespace']}.{DOMAIN}"
        pred: dict[str, Any] = {
            "latestCreatedRevision": latest.name,
            "traffic": traffic,
            "url": url,
        }
        if ready:
            pred["latestReadyRevision"] = ready[-1].name
        if s.rolled_out:
            pred["latestRolledoutRevision"] = s.rolled_out
        if s.previous:
            pred["previousRolledoutRevision"] = s.previous
        return {
            "observedGeneration": meta["generation"],
            "conditions": conds,
            "url": url,
            "address": {"url": f"http://{meta['name']}.{meta['namespace']}.svc.cluster.local"},
            "components": {"predictor": pred},
            "deploymentMode": "Serverless",
        }

    def _raw_status(self, obj: dict[str, Any], s: Isvc) -> dict[str, Any]:
        meta = obj["metadata"]
        latest = s.revisions[-1]
        ok = {"ready": "True", "failed": "False", "pending": "Unknown"}[latest.state]
        reason = {"ready": "", "failed": "RevisionFailed", "pending": "Progressing"}[latest.state]
        url = f"http://{meta['name']}-{meta['namespace']}.{DOMAIN}"
        return {
            "observedGeneration": meta["generation"],
            "conditions": [
                _cond("PredictorReady", ok, reason, latest.message),
                _cond("Ready", ok, reason, latest.message),
            ],
            "url": url,
            "components": {"predictor": {"url": url}},
            "deploymentMode": "RawDeployment",
        }

    def _ready_revision(self, ns: str, isvc: str) -> Revision | None:
        s = self.isvcs.get((ns, isvc))
        if s is None:
            return None
        ready = [r for r in s.revisions if r.state == "ready"]
        return ready[-1] if ready else None

    # --- Gateway API ----------------------------------------------------------------------------
    def reconcile_routes(self, api: FakeApiServer) -> None:
        for route in api.list("httproutes"):
            meta = route["metadata"]
            missing = [
                ref["name"]
                for rule in route["spec"].get("rules", [])
                for ref in rule.get("backendRefs", [])
                if api.get(
                    "inferenceservices", meta["namespace"], ref["name"].removesuffix("-predictor")
                )
                is None
            ]
            resolved = (
                _cond("ResolvedRefs", "False", "BackendNotFound", "missing: " + ", ".join(missing))
                if missing
                else _cond("ResolvedRefs", "True", "ResolvedRefs", "all references resolved")
            )
            accepted = _cond("Accepted", "True", "Accepted", "accepted by the gateway")
            for c in (accepted, resolved):
                c["observedGeneration"] = meta["generation"]
            status = {
                "parents": [
                    {
                        "parentRef": p,
                        "controllerName": "example.com/fake-gateway",
                        "conditions": [accepted, resolved],
                    }
                    for p in route["spec"]["parentRefs"]
                ]
            }
            api.write_status("httproutes", meta["namespace"], meta["name"], status)

    # --- the ingress: Knative routes and the Gateway's HTTPRoutes -------------------------------
    def _pick(self, host: str) -> tuple[list[tuple[Revision, float]], Revision | None, float]:
        """(weighted revisions, mirror revision, mirror percent) for a Host."""
        with self.api.lock:
            for obj in self.api.list("inferenceservices"):
                url = obj.get("status", {}).get("url", "")
                if url == f"http://{host}" and obj["status"].get("deploymentMode") == "Serverless":
                    ns = obj["metadata"]["namespace"]
                    s = self.isvcs[(ns, obj["metadata"]["name"])]
                    by_name = {r.name: r for r in s.revisions}
                    traffic = obj["status"]["components"]["predictor"]["traffic"]
                    return [(by_name[t["revisionName"]], t["percent"]) for t in traffic], None, 0
            for route in self.api.list("httproutes"):
                if host in route["spec"].get("hostnames", []):
                    ns = route["metadata"]["namespace"]
                    rule = route["spec"]["rules"][0]
                    out = []
                    for ref in rule.get("backendRefs", []):
                        rev = self._ready_revision(ns, ref["name"].removesuffix("-predictor"))
                        if rev is not None:
                            out.append((rev, float(ref.get("weight", 1))))
                    mirror, pct = None, 0.0
                    for f in rule.get("filters", []):
                        if f["type"] == "RequestMirror":
                            m = f["requestMirror"]
                            mirror = self._ready_revision(
                                ns, m["backendRef"]["name"].removesuffix("-predictor")
                            )
                            pct = float(m.get("percent", 100))
                    return out, mirror, pct
        return [], None, 0

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        host = (h.headers.get("Host") or "").split(":")[0]
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        choices, mirror, pct = self._pick(host)
        choices = [(r, w) for r, w in choices if w > 0]
        if not choices:
            data = json.dumps({"error": f"no route for host {host}"}).encode()
            h.send_response(404)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        rev = self.rng.choices([r for r, _ in choices], [w for _, w in choices])[0]
        if mirror is not None and self.rng.random() * 100 < pct:
            self.mirrored[mirror.name] += 1
            threading.Thread(
                target=self._forward, args=(mirror, h.command, h.path, body), daemon=True
            ).start()
        started = time.monotonic()
        code, data, ctype = self._forward(rev, h.command, h.path, body)
        version = rev.predictor["containers"][0]["args"]
        if version[version.index("--version") + 1] in self.break_versions:
            code, data = 500, b'{"error": "broken on purpose by the test"}'
        self.served[rev.name].append((time.time(), code, time.monotonic() - started))
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _forward(rev: Revision, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", rev.port, timeout=30)
            conn.request(
                method, path, body=body or None, headers={"Content-Type": "application/json"}
            )
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.getheader("Content-Type", "application/json")
        except OSError as e:
            return (
                503,
                json.dumps({"error": f"upstream {rev.name}: {e}"}).encode(),
                "application/json",
            )
