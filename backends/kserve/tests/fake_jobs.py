"""The Job controller, garbage collector and kubelet of the fake cluster, for ``batch/v1`` Jobs.

Documents followed:

- Kubernetes "Jobs" (concepts/workloads/controllers/job) and the ``batch/v1`` ``JobStatus``
  reference: the controller creates a pod from ``spec.template`` (labels ``job-name``,
  ``batch.kubernetes.io/job-name``, ``controller-uid``; an ``ownerReference`` to the Job with
  ``controller: true``); a pod that fails is replaced until ``status.failed`` exceeds
  ``spec.backoffLimit``, then the Job gets ``FailureTarget`` and ``Failed`` (reason
  ``BackoffLimitExceeded``); a Job running longer than ``spec.activeDeadlineSeconds`` has its
  active pods deleted and fails with reason ``DeadlineExceeded``; one succeeded pod (the default
  ``completions: 1``) gives ``SuccessCriteriaMet`` and ``Complete``. ``status.active``,
  ``ready``, ``succeeded``, ``failed``, ``startTime``, ``completionTime`` as documented.
  Simplification: a failed pod is replaced at once (the real controller waits 10 s, 20 s, ...).
- "Pod Lifecycle": phase ``Pending`` while init containers run (one after another, each only
  after the one before exited 0; with ``restartPolicy: Never`` a failing one fails the pod),
  ``Running`` once the app containers started, ``Succeeded``/``Failed`` when they all ended;
  ``initContainerStatuses``/``containerStatuses`` with ``waiting``/``running``/``terminated``
  (``exitCode``, ``reason`` ``Completed``/``Error``, ``message``).
- "Determine the Reason for Pod Failure": the termination message is what the container wrote
  to ``terminationMessagePath``; with ``FallbackToLogsOnError`` and nothing written, the last
  80 lines (at most 2048 bytes) of its log when it failed.
- "Garbage Collection" and ``DeleteOptions.propagationPolicy``: ``Background`` and
  ``Foreground`` delete a Job's pods (this fake deletes the owner at once in both cases);
  ``Orphan`` (the default for ``batch/v1`` Jobs deleted through the API) leaves them running
  with the ``ownerReference`` removed.
- "Pods" / ``GET .../pods/NAME/log?container=C``: a pod with more than one container needs
  ``container``; a container that has not started is 400 ``BadRequest`` ("is waiting to
  start"); ``envFrom.secretRef`` of a missing Secret leaves the container waiting with
  ``CreateContainerConfigError``.

What runs: containers of the runtime image run their ``command``/``args`` as a local process
(``python`` is this interpreter, which has ``mlstack_runtime`` installed), with the container's
environment only (plus ``PATH``, ``HOME``, ``HOSTNAME``), paths under its volume mounts mapped
to one folder per ``emptyDir`` volume. Two images are emulated by what they document doing:
KServe's storage initializer (``kserve/storage-initializer``: ``SRC_URI DEST_DIR``, an object
or every object under a prefix, ``AWS_ENDPOINT_URL`` and the ``AWS_*`` credentials) and the AWS
CLI (``amazon/aws-cli``: ``s3 cp --recursive DIR s3://...``), both against the moto server.
A storage container without ``AWS_ENDPOINT_URL`` fails: the fake cannot reach AWS.
"""

from __future__ import annotations

import copy
import os
import random
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fake_images
from fake_apiserver import ApiError, FakeApiServer

STORAGE_INITIALIZER = "kserve/storage-initializer:"
AWS_CLI = "amazon/aws-cli:"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _cond(type_: str, reason: str, message: str) -> dict[str, str]:
    t = _now()
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": t,
        "lastTransitionTime": t,
    }


@dataclass
class PodRun:
    """One pod the kubelet runs: its folder, processes and container logs."""

    ns: str
    name: str
    job_uid: str
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    killed: threading.Event = field(default_factory=threading.Event)
    logs: dict[str, Path] = field(default_factory=dict)  # container -> log file
    started: set[str] = field(default_factory=set)


@dataclass
class JobState:
    start: float
    done: bool = False
    pods: list[str] = field(default_factory=list)


class JobController:
    """Job controller + garbage collector + kubelet over one ``FakeApiServer``."""

    def __init__(
        self,
        api: FakeApiServer,
        secrets: dict[tuple[str, str], dict[str, str]] | None = None,
    ) -> None:
        self.api = api
        self.secrets = dict(secrets or {})  # (namespace, name) -> data
        self.jobs: dict[str, JobState] = {}  # Job uid -> state
        self.runs: dict[tuple[str, str], PodRun] = {}  # (ns, pod) -> run
        self.rng = random.Random(11)
        self.tmp = tempfile.TemporaryDirectory(prefix="fake-jobs-")
        self.threads: list[threading.Thread] = []
        self.commands: list[list[str]] = []  # every process started, for assertions
        api.controllers.append(self.reconcile)
        api.log_source = self.read_log

    def stop(self) -> None:
        with self.api.lock:
            runs = list(self.runs.values())
        for r in runs:
            self._kill(r)
        for t in self.threads:
            t.join(timeout=30)
        self.tmp.cleanup()

    # --- the controllers (called with the API server's lock held) -------------------------------
    def reconcile(self, api: FakeApiServer) -> None:
        self._collect_garbage(api)
        for job in api.list("jobs"):
            self._sync(api, job)
        for (ns, name), run in self.runs.items():  # the kubelet stops pods that were deleted
            if not run.killed.is_set() and api.get("pods", ns, name) is None:
                run.killed.set()
                threading.Thread(target=self._kill, args=(run,), daemon=True).start()

    def _collect_garbage(self, api: FakeApiServer) -> None:
        uids = {o["metadata"].get("uid") for o in api.list("jobs")}
        for pod in list(api.list("pods")):
            refs = pod["metadata"].get("ownerReferences") or []
            gone = [r for r in refs if r.get("kind") == "Job" and r["uid"] not in uids]
            if not gone:
                continue
            policy = api.deletions.get(gone[0]["uid"], "Orphan")
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            if policy == "Orphan":
                pod["metadata"]["ownerReferences"] = [r for r in refs if r not in gone]
                if not pod["metadata"]["ownerReferences"]:
                    del pod["metadata"]["ownerReferences"]
                pod["metadata"]["resourceVersion"] = api.next_rv()
                api.changed.notify_all()
            else:
                api.remove("pods", ns, name)
                run = self.runs.get((ns, name))
                if run is not None:
                    run.killed.set()
                    threading.Thread(target=self._kill, args=(run,), daemon=True).start()

    def _sync(self, api: FakeApiServer, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job["spec"]
        state = self.jobs.setdefault(meta["uid"], JobState(time.monotonic()))
        if state.done:
            return
        ns = meta["namespace"]
        pods = [
            p
            for p in api.list("pods", ns)
            if any(r.get("uid") == meta["uid"] for r in p["metadata"].get("ownerReferences", []))
        ]
        phases = [p.get("status", {}).get("phase", "Pending") for p in pods]
        active = [p for p, ph in zip(pods, phases, strict=True) if ph in ("Pending", "Running")]
        succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
        status: dict[str, Any] = copy.deepcopy(job.get("status", {}))
        status.setdefault("startTime", _now())
        conditions: list[dict[str, Any]] = []
        deadline = spec.get("activeDeadlineSeconds")
        if succeeded >= 1:
            conditions = [
                _cond(
                    "SuccessCriteriaMet",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                _cond(
                    "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
                ),
            ]
            status["completionTime"] = _now()
        elif failed > int(spec.get("backoffLimit", 6)):
            conditions = [
                _cond(
                    "FailureTarget",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                ),
                _cond(
                    "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
                ),
            ]
        elif deadline is not None and time.monotonic() - state.start > float(deadline):
            for p in active:  # the controller deletes the Job's active pods
                self._delete_pod(api, p)
            active = []
            conditions = [
                _cond(
                    "FailureTarget",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ),
                _cond(
                    "Failed", "DeadlineExceeded", "Job was active longer than specified deadline"
                ),
            ]
        elif not active:
            active = [self._create_pod(api, job, state)]
        if conditions:
            state.done = True
            status["conditions"] = conditions
        status.update(
            active=len(active),
            ready=sum(1 for p in active if p.get("status", {}).get("phase") == "Running"),
            succeeded=succeeded,
            failed=failed,
        )
        for k in ("active", "succeeded", "failed"):
            if not status[k]:
                del status[k]
        api.write_status("jobs", ns, meta["name"], status)

    def _create_pod(self, api: FakeApiServer, job: dict[str, Any], state: JobState) -> Any:
        meta = job["metadata"]
        template = job["spec"]["template"]
        suffix = "".join(self.rng.choices(string.ascii_lowercase + string.digits, k=5))
        name = f"{meta['name']}-{suffix}"
        labels = {
            **template.get("metadata", {}).get("labels", {}),
            "batch.kubernetes.io/controller-uid": meta["uid"],
            "batch.kubernetes.io/job-name": meta["name"],
            "controller-uid": meta["uid"],
            "job-name": meta["name"],
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": copy.deepcopy(template["spec"]),
        }
        api.put_object("pods", pod)
        api.write_status("pods", meta["namespace"], name, {"phase": "Pending"})
        state.pods.append(name)
        run = PodRun(meta["namespace"], name, meta["uid"], Path(self.tmp.name) / name)
        self.runs[(run.ns, name)] = run
        t = threading.Thread(target=self._run_pod, args=(run, copy.deepcopy(pod)), daemon=True)
        self.threads.append(t)
        t.start()
        return api.get("pods", meta["namespace"], name)

    def _delete_pod(self, api: FakeApiServer, pod: dict[str, Any]) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        api.remove("pods", ns, name)
        run = self.runs.get((ns, name))
        if run is not None:
            run.killed.set()
            threading.Thread(target=self._kill, args=(run,), daemon=True).start()

    def _kill(self, run: PodRun) -> None:
        with self.api.lock:  # no container starts after this
            run.killed.set()
            proc = run.proc
        if proc is not None and proc.poll() is None:
            # the container's every process (a stage's `run:` command is a grandchild)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        if proc is not None:
            try:  # what is left of the group once its leader exited
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # --- the kubelet ------------------------------------------------------------------------------
    def _status(self, run: PodRun, status: dict[str, Any]) -> bool:
        """Write the pod's status; False once the pod is gone (deleted: stop)."""
        with self.api.lock:
            if run.killed.is_set() or self.api.get("pods", run.ns, run.name) is None:
                return False
            self.api.write_status("pods", run.ns, run.name, status)
            return True

    def _run_pod(self, run: PodRun, pod: dict[str, Any]) -> None:
        spec = pod["spec"]
        inits, mains = spec.get("initContainers", []), spec["containers"]
        run.root.mkdir(parents=True)
        volumes = {}
        for v in spec.get("volumes", []):
            volumes[v["name"]] = run.root / "volumes" / v["name"]
            volumes[v["name"]].mkdir(parents=True)
        other = [v["name"] for v in spec.get("volumes", []) if "emptyDir" not in v]
        if other:  # a stricter refusal than a kubelet's: this fake mounts emptyDir only
            self._status(run, {"phase": "Pending", "message": f"unsupported volumes {other}"})
            return

        def waiting(c: dict[str, Any], reason: str, message: str = "") -> dict[str, Any]:
            state = {"reason": reason} | ({"message": message} if message else {})
            return _container_status(c, {"waiting": state})

        init_st = [waiting(c, "PodInitializing") for c in inits]
        main_st = [waiting(c, "PodInitializing") for c in mains]
        start = _now()

        def write(phase: str) -> bool:
            status: dict[str, Any] = {"phase": phase, "startTime": start}
            if init_st:
                status["initContainerStatuses"] = init_st
            status["containerStatuses"] = main_st
            return self._status(run, status)

        for i, c in enumerate(inits):
            self._begin(run, c)
            init_st[i] = _container_status(c, {"running": {"startedAt": _now()}})
            if not write("Pending"):
                return
            result = self._run_container(run, c, volumes)
            if result is None:
                return
            if isinstance(result, str):  # cannot start: stays waiting (e.g. a missing Secret)
                init_st[i] = waiting(c, "CreateContainerConfigError", result)
                write("Pending")
                return
            init_st[i] = _container_status(c, {"terminated": result})
            if result["exitCode"] != 0:
                write("Failed")
                return
        for c in mains:
            self._begin(run, c)
        main_st = [_container_status(c, {"running": {"startedAt": _now()}}) for c in mains]
        if not write("Running"):
            return
        ok = True
        for i, c in enumerate(mains):
            result = self._run_container(run, c, volumes)
            if result is None:
                return
            if isinstance(result, str):
                main_st[i] = waiting(c, "CreateContainerConfigError", result)
                write("Running")
                return
            main_st[i] = _container_status(c, {"terminated": result})
            ok = ok and result["exitCode"] == 0
        write("Succeeded" if ok else "Failed")

    @staticmethod
    def _begin(run: PodRun, c: dict[str, Any]) -> None:
        """The container starts: its log exists from now on."""
        log = run.root / f"log-{c['name']}"
        log.write_text("")
        run.logs[c["name"]] = log
        run.started.add(c["name"])

    def _env(self, run: PodRun, c: dict[str, Any]) -> dict[str, str] | str:
        # the image's `python` is this interpreter
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = {"PATH": path, "HOSTNAME": run.name}
        env["HOME"] = str(run.root)
        for src in c.get("envFrom", []):
            ref = src.get("secretRef")
            if ref is None:
                return "fake kubelet: only envFrom.secretRef is supported"
            data = self.secrets.get((run.ns, ref["name"]))
            if data is None:
                if ref.get("optional"):
                    continue
                return f'secret "{ref["name"]}" not found'
            env.update(data)
        for e in c.get("env", []):
            if "value" not in e:
                return f"fake kubelet: env {e['name']} uses valueFrom, which is not supported"
            env[e["name"]] = e["value"]
        return env

    def _run_container(
        self, run: PodRun, c: dict[str, Any], volumes: dict[str, Path]
    ) -> dict[str, Any] | str | None:
        """Run one container to its end: its ``terminated`` state, a reason it could not start,
        or None when the pod was deleted meanwhile."""
        env = self._env(run, c)
        if isinstance(env, str):
            return env
        mounts = {m["mountPath"]: volumes[m["name"]] for m in c.get("volumeMounts", [])}
        term_path = c.get("terminationMessagePath", DEFAULT_TERMINATION_PATH)
        term_file = run.root / f"termination-{c['name']}"
        term_file.write_text("")
        mounts[term_path] = term_file

        def local(arg: str) -> str:
            for mount, path in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
                if arg == mount or arg.startswith(mount.rstrip("/") + "/"):
                    return str(path) + arg[len(mount) :]
            return arg

        log = run.logs[c["name"]]
        image = str(c.get("image", ""))
        args = [local(a) for a in c.get("args", [])]
        emulated = (
            "storage-init"
            if image.startswith(STORAGE_INITIALIZER)
            else "aws"
            if image.startswith(AWS_CLI)
            else None
        )
        if emulated is not None:
            if run.killed.is_set():
                return None
            code = fake_images.run(emulated, args, env, log)
        else:
            cmd = [local(a) for a in c.get("command", [])]
            if cmd[:1] == ["python"]:
                cmd[0] = sys.executable
            with self.api.lock:
                if run.killed.is_set():
                    return None
                self.commands.append([*cmd, *args])
                with open(log, "wb") as out:
                    run.proc = subprocess.Popen(
                        [*cmd, *args],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=str(run.root),
                        start_new_session=True,
                    )
            code = run.proc.wait()
        if run.killed.is_set():
            return None
        message = term_file.read_text(errors="replace").strip()
        if (
            not message
            and code != 0
            and c.get("terminationMessagePolicy") == ("FallbackToLogsOnError")
        ):
            lines = log.read_text(errors="replace").splitlines()[-80:]
            message = "\n".join(lines)[-2048:]
        out: dict[str, Any] = {
            "exitCode": code,
            "reason": "Completed" if code == 0 else "Error",
            "startedAt": _now(),
            "finishedAt": _now(),
        }
        if message:
            out["message"] = message
        return out

    # --- pods/log ---------------------------------------------------------------------------------
    def read_log(self, ns: str, pod: str, container: str) -> str:
        run = self.runs.get((ns, pod))
        if run is None or container not in run.started:
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{pod}" is waiting to start: PodInitializing',
            )
        return run.logs[container].read_text(errors="replace")


def _container_status(c: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": c["name"],
        "image": c.get("image", ""),
        "imageID": "",
        "ready": "running" in state,
        "restartCount": 0,
        "started": "running" in state,
        "state": state,
    }
