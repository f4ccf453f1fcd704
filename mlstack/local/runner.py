"""Runs a compiled stage DAG: cache lookups, scheduling, retries, timeouts, logs, cancellation.

Each stage runs in its own process, forked by a zygote that imported the ML stack once (see
``zygote.py``); this module only decides what to start and when, and reads back results from the
artifact store. Independent stages run at once, up to ``parallelism``. A stage whose cache key
has a completed entry in the store is reused without starting anything.

Logs: ``<workdir>/envs/<env>/logs/<run_id>/<stage>.log`` (attempts appended), with
``logs/latest`` pointing at the newest run.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack_runtime.job import ancestors

from mlstack.engine.backend import Event
from mlstack.engine.digest import digest
from mlstack.local.stages import PRELOAD
from mlstack.local.store import ArtifactStore, atomic_write_json
from mlstack.manifest.dag import toposort

if TYPE_CHECKING:
    from mlstack.local.remote import RemoteArtifacts

BACKOFF_BASE = 0.25  # seconds before the first retry; doubles per attempt
BACKOFF_MAX = 10.0
ZYGOTE_EXIT_WAIT = 5.0


@dataclass
class StageOutcome:
    name: str
    status: str = "pending"  # ran | cached | failed | skipped | cancelled
    attempts: int = 0
    seconds: float = 0.0
    entry: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # the stage's report (message, problems, traceback)
    log: str | None = None


@dataclass
class RunOutcome:
    run_id: str
    status: str  # succeeded | failed | cancelled
    stages: dict[str, StageOutcome]
    order: list[str]
    logs: Path
    interrupted: bool = False  # Ctrl-C (KeyboardInterrupt), as opposed to ctx.cancel
    seconds: float = 0.0

    def first_failure(self) -> StageOutcome | None:
        for name in self.order:
            if self.stages[name].status == "failed":
                return self.stages[name]
        return None


def default_cache_keys(definition: Mapping[str, Any], data_digest: str | None) -> dict[str, str]:
    """Keys from the compiled definition alone, for callers that do not pass core's keys."""
    stages = {s["name"]: s for s in definition["stages"]}
    keys: dict[str, str] = {}
    for name in toposort({n: s["needs"] for n, s in stages.items()}):
        s = stages[name]
        keys[name] = digest(
            [s, definition.get("data"), data_digest, {n: keys[n] for n in s["needs"]}]
        )
    return keys


def champion_metrics(gates: list[str]) -> list[str]:
    """The champion's metrics that these gate expressions compare with."""
    from mlstack.manifest.gates import parse_gate

    refs: set[str] = set()
    for text in gates:
        try:
            gate = parse_gate(str(text))
        except Exception:  # noqa: BLE001 - validate reports bad gates; the stage will too
            continue
        if gate.champion_metric:
            refs.add(gate.champion_metric)
    return sorted(refs)


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


def logs_root(workdir: Path, env: str) -> Path:
    return Path(workdir) / "envs" / env / "logs"


def read_logs(workdir: str | os.PathLike[str], env: str, stage: str | None = None) -> str:
    """The latest run's log of ``stage``, or of every stage in run order (for `mlstack logs`)."""
    from mlstack.errors import BackendError

    root = logs_root(Path(workdir), env)
    latest = root / "latest"
    if not latest.exists():
        raise BackendError(
            f"no pipeline run has been logged in environment {env!r} yet",
            hint=f"run `mlstack apply -e {env}` first",
        )
    run_dir = latest.resolve()
    order_file = run_dir / "order.json"
    order = (
        json.loads(order_file.read_text())
        if order_file.exists()
        else sorted(p.stem for p in run_dir.glob("*.log"))
    )
    if stage is not None:
        f = run_dir / f"{stage}.log"
        if not f.exists():
            from mlstack.manifest.suggest import did_you_mean

            raise BackendError(
                f"no log for stage {stage!r} in run {run_dir.name}{did_you_mean(stage, order)}",
                hint="stages in that run: " + ", ".join(order),
            )
        return f.read_text(errors="replace")
    parts = []
    for name in order:
        f = run_dir / f"{name}.log"
        body = f.read_text(errors="replace") if f.exists() else "(cached: did not run)\n"
        parts.append(f"==> {name} <==\n{body}")
    return "\n".join(parts)


class _Zygote:
    """The runner's handle on the zygote process."""

    def __init__(self, modules: list[str], sys_path: list[str], cwd: Path, stderr: Path) -> None:
        self.err = open(stderr, "ab")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlstack.local.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            cwd=cwd,
            start_new_session=True,
            bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.win = self.proc.stdin.fileno()
        self.rout = self.proc.stdout.fileno()
        os.set_blocking(self.rout, False)
        self.buf = b""
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.rout, selectors.EVENT_READ)
        self.send({"op": "preload", "modules": modules, "sys_path": sys_path})

    def send(self, msg: dict[str, Any]) -> None:
        data = (json.dumps(msg) + "\n").encode()
        while data:
            n = os.write(self.win, data)
            data = data[n:]

    def receive(self, timeout: float) -> list[dict[str, Any]]:
        msgs: list[dict[str, Any]] = []
        if not self.sel.select(timeout):
            return msgs
        try:
            chunk = os.read(self.rout, 1 << 16)
        except BlockingIOError:
            return msgs
        if not chunk:
            msgs.append({"op": "gone", "code": self.proc.poll()})
            self.sel.unregister(self.rout)
            return msgs
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            msgs.append(json.loads(line))
        return msgs

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # EOF: the zygote kills what is left and exits
        except OSError:
            pass
        try:
            self.proc.wait(ZYGOTE_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.sel.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.err.close()


@dataclass
class Runner:
    workdir: Path
    env: str
    project_root: Path
    definition: Mapping[str, Any]
    parallelism: int = 2
    emit: Callable[[Event], None] = lambda e: None
    cancelled: Callable[[], bool] = lambda: False
    champion: dict[str, float] | None = None
    backoff: float = BACKOFF_BASE
    remote: RemoteArtifacts | None = None  # the `artifacts:` URL's store, if any
    store: ArtifactStore = field(init=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.store = ArtifactStore(self.workdir, self.remote)
        self.specs: dict[str, dict[str, Any]] = {s["name"]: s for s in self.definition["stages"]}
        self.needs = {n: list(s["needs"]) for n, s in self.specs.items()}
        self.order = toposort(self.needs)
        # nearest first, in the order every platform hands a job its upstream outputs
        stages = self.definition["stages"]
        self.ancestors = {n: ancestors(stages, n) for n in self.order}

    # ------------------------------------------------------------------------------------------
    def effective_keys(
        self, cache_keys: Mapping[str, str] | None = None, data_digest: str | None = None
    ) -> dict[str, str]:
        """The keys outputs are stored and looked up under.

        Core's keys (or keys from the definition) plus, for a stage whose gates compare with
        the champion, the champion's values of those metrics: a cached verdict against one
        champion says nothing about another, so such a stage (and what follows it) runs again
        when the champion changes.
        """
        keys = dict(default_cache_keys(self.definition, data_digest))
        keys.update(cache_keys or {})
        out: dict[str, str] = {}
        for n in self.order:
            refs = champion_metrics(self.specs[n].get("gates") or [])
            moved = any(out[u] != keys[u] for u in self.needs[n])
            if not refs and not moved:
                out[n] = keys[n]
                continue
            champ = {m: (self.champion or {}).get(m) for m in refs}
            out[n] = digest([keys[n], champ, {u: out[u] for u in self.needs[n]}])
        return out

    def run(
        self,
        cache_keys: Mapping[str, str] | None = None,
        data_digest: str | None = None,
        run_id: str | None = None,
    ) -> RunOutcome:
        t0 = time.monotonic()
        keys = self.effective_keys(cache_keys, data_digest)
        run_id = run_id or new_run_id()
        self.store.ensure()
        self.store.sweep_tmp()
        logs = logs_root(self.workdir, self.env) / run_id
        logs.mkdir(parents=True, exist_ok=True)
        (logs / "order.json").write_text(json.dumps(self.order))
        _point_latest(logs)
        out = {n: StageOutcome(n, log=str(logs / f"{n}.log")) for n in self.order}
        outcome = RunOutcome(run_id, "succeeded", out, self.order, logs)

        todo: list[str] = []
        for n in self.order:
            entry = self.store.lookup(keys[n])
            if entry is not None:
                self.store.ensure_published(keys[n], entry)
                out[n].status, out[n].entry = "cached", entry
                self.emit(Event("stage.cached", n, "cached", {"output": entry["output"]}))
            else:
                todo.append(n)
        if todo:
            try:
                self._execute(todo, keys, outcome)
            except KeyboardInterrupt:
                outcome.interrupted = True
        for n in self.order:
            if out[n].status == "pending":
                out[n].status = (
                    "cancelled" if outcome.interrupted or self.cancelled() else "skipped"
                )
        if outcome.interrupted or any(s.status == "cancelled" for s in out.values()):
            outcome.status = "cancelled"
        elif any(s.status in ("failed", "skipped") for s in out.values()):
            outcome.status = "failed"
        outcome.seconds = time.monotonic() - t0
        return outcome

    def _preload(self, todo: list[str]) -> list[str]:
        mods: list[str] = [
            "mlstack.local.stage_exec",
            "mlstack.local.stages.context",
            "mlstack.local.stages.adapter",
            "mlstack_runtime.job",
            "mlstack_runtime.artifacts",
            "mlstack_runtime.stages",
            "mlstack.local.store",
            "mlstack.errors",
        ]
        for n in todo:
            s = self.specs[n]
            kind = s["kind"]
            if kind in PRELOAD:
                mods += [*PRELOAD[kind], f"mlstack_runtime.stages.{kind}"]
            if kind == "train" and isinstance((s.get("with") or {}).get("estimator"), str):
                mods.append(s["with"]["estimator"].rpartition(".")[0])
            if s.get("function"):
                mods.append(s["function"].partition(":")[0])
        return list(dict.fromkeys(m for m in mods if m))

    def _job(self, name: str, attempt: int, key: str, outcome: RunOutcome) -> dict[str, Any]:
        out = outcome.stages

        def path_of(n: str) -> str:
            entry = out[n].entry
            assert entry is not None
            return str(self.store.object_path(entry["output"]))

        spec = self.specs[name]
        return {
            "id": f"{name}#{attempt}",
            "stage": spec,
            "attempt": attempt,
            "run_id": outcome.run_id,
            "env": self.env,
            "project_root": str(self.project_root),
            "workdir": str(self.workdir),
            "staging": str(self.store.new_staging(name, attempt)),
            "log": str(outcome.logs / f"{name}.log"),
            "error_file": str(outcome.logs / f".{name}.{attempt}.error.json"),
            "cache_key": key,
            "inputs": {n: path_of(n) for n in spec["needs"]},
            "ancestors": [[n, path_of(n)] for n in self.ancestors[name]],
            "data": self.definition.get("data"),
            "model": self.definition.get("model"),
            "pipeline": {"stages": self.definition["stages"]},
            "champion": self.champion,
            "timeout": spec.get("timeout"),
        }

    def _execute(self, todo: list[str], keys: Mapping[str, str], outcome: RunOutcome) -> None:
        out = outcome.stages
        zyg = _Zygote(
            self._preload(todo),
            [str(self.project_root)],
            self.project_root,
            outcome.logs / "_zygote.log",
        )
        waiting = list(todo)
        running: dict[str, tuple[str, dict[str, Any], float]] = {}  # job id -> (stage, job, t)
        not_before: dict[str, float] = {}
        stopping = False  # a stage failed for good or cancel was asked: start nothing new
        try:
            while waiting or running:
                if not stopping and self.cancelled():
                    stopping = True
                    zyg.send({"op": "cancel"})
                if not stopping:
                    now = time.monotonic()
                    for n in list(waiting):
                        if len(running) >= self.parallelism:
                            break
                        deps = [out[d].status for d in self.needs[n]]
                        if any(s in ("failed", "skipped", "cancelled") for s in deps):
                            waiting.remove(n)
                            out[n].status = "skipped"
                            continue
                        if not all(s in ("ran", "cached") for s in deps):
                            continue
                        if not_before.get(n, 0.0) > now:
                            continue
                        waiting.remove(n)
                        out[n].attempts += 1
                        job = self._job(n, out[n].attempts, keys[n], outcome)
                        running[job["id"]] = (n, job, time.monotonic())
                        zyg.send({"op": "run", "job": job})
                        self.emit(
                            Event(
                                "stage.start",
                                n,
                                f"attempt {out[n].attempts}",
                                {"attempt": out[n].attempts, "log": job["log"]},
                            )
                        )
                elif not running:
                    break
                timeout = 0.1
                if not_before and not stopping:
                    timeout = min(timeout, max(0.0, min(not_before.values()) - time.monotonic()))
                for msg in zyg.receive(timeout):
                    if msg["op"] == "exit":
                        name, job, started = running.pop(msg["id"])
                        out[name].seconds += time.monotonic() - started
                        if self._finished(name, job, msg, keys[name], out[name], stopping):
                            continue
                        spec = self.specs[name]
                        if (
                            out[name].attempts <= int(spec.get("retries") or 0)
                            and not stopping
                            and not _deterministic(out[name].error)
                        ):
                            delay = min(self.backoff * 2 ** (out[name].attempts - 1), BACKOFF_MAX)
                            not_before[name] = time.monotonic() + delay
                            waiting.insert(0, name)
                            self.emit(
                                Event(
                                    "stage.retry",
                                    name,
                                    f"{_summary(out[name].error)}; retry in {delay:.2f}s",
                                    {"attempt": out[name].attempts, "delay": delay},
                                )
                            )
                        else:
                            out[name].status = (
                                "cancelled" if stopping and self.cancelled() else "failed"
                            )
                            self.emit(
                                Event(
                                    "stage.cancelled"
                                    if out[name].status == "cancelled"
                                    else "stage.failed",
                                    name,
                                    "cancelled"
                                    if out[name].status == "cancelled"
                                    else _summary(out[name].error),
                                    {"error": out[name].error, "log": out[name].log},
                                )
                            )
                            stopping = True
                    elif msg["op"] == "gone":
                        for jid, (name, job, _) in list(running.items()):
                            out[name].status = "failed"
                            out[name].error = {
                                "message": "the stage runner process exited "
                                f"unexpectedly (status {msg.get('code')})"
                            }
                            shutil.rmtree(job["staging"], ignore_errors=True)
                            del running[jid]
                        waiting.clear()
        except KeyboardInterrupt:
            zyg.send({"op": "cancel"})
            deadline = time.monotonic() + 3.0
            while running and time.monotonic() < deadline:
                for msg in zyg.receive(0.1):
                    if msg["op"] == "exit":
                        name, job, _ = running.pop(msg["id"])
                        shutil.rmtree(job["staging"], ignore_errors=True)
                        out[name].status = "cancelled"
            for name, job, _ in running.values():
                out[name].status = "cancelled"
                shutil.rmtree(job["staging"], ignore_errors=True)
            raise
        finally:
            zyg.close()

    def _finished(
        self,
        name: str,
        job: dict[str, Any],
        msg: dict[str, Any],
        key: str,
        st: StageOutcome,
        stopping: bool,
    ) -> bool:
        """Record one attempt's end; True when the stage is done (ran), False when it failed."""
        if msg.get("code") == 0:
            entry = self.store.lookup(key)
            if entry is not None:
                self.store.publish(key, entry)  # with an `artifacts:` URL: upload, then record
                st.status, st.entry, st.error = "ran", entry, None
                self.emit(
                    Event(
                        "stage.done",
                        name,
                        f"{st.seconds:.2f}s",
                        {
                            "output": entry["output"],
                            "metrics": entry.get("metrics", {}),
                            "seconds": st.seconds,
                        },
                    )
                )
                return True
            st.error = {"message": "the stage exited without storing its output"}
        else:
            shutil.rmtree(job["staging"], ignore_errors=True)
            report = _read_json(Path(job["error_file"]))
            if msg.get("timeout"):
                limit = job.get("timeout")
                st.error = {
                    "message": f"timed out after {limit:g}s; the stage was killed",
                    "timeout": True,
                }
            elif report is not None:
                st.error = report
            elif msg.get("signal"):
                st.error = {"message": f"killed by signal {msg['signal']}"}
            else:
                st.error = {"message": f"exited with status {msg.get('code')}"}
        _append(job["log"], f"--- attempt {job['attempt']} failed: {_summary(st.error)} ---\n")
        return False


def _deterministic(error: dict[str, Any] | None) -> bool:
    """A gate, a validation report or a wrong setting: the same input fails the same way."""
    return bool(error and (error.get("stopped") or error.get("config")))


def _summary(error: dict[str, Any] | None) -> str:
    if not error:
        return "failed"
    return str(error.get("message") or error.get("type") or "failed").splitlines()[0]


def _read_json(p: Path) -> dict[str, Any] | None:
    try:
        value: dict[str, Any] = json.loads(p.read_text())
        return value
    except (OSError, ValueError):
        return None


def _append(path: str, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def _point_latest(run_dir: Path) -> None:
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, link)


def save_run_record(workdir: Path, env: str, outcome: RunOutcome, extra: Mapping[str, Any]) -> Path:
    path = Path(workdir) / "envs" / env / "runs" / f"{outcome.run_id}.json"
    atomic_write_json(
        path,
        {
            "run_id": outcome.run_id,
            "status": outcome.status,
            "seconds": outcome.seconds,
            "order": outcome.order,
            "stages": {
                n: {
                    "status": s.status,
                    "attempts": s.attempts,
                    "seconds": s.seconds,
                    "output": (s.entry or {}).get("output"),
                    "metrics": (s.entry or {}).get("metrics", {}),
                    "error": s.error,
                }
                for n, s in outcome.stages.items()
            },
            **extra,
        },
    )
    return path
