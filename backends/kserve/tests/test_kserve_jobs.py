"""Pipeline runs on the fake cluster's Job controller: a failing stage retried up to its
``backoffLimit`` and named with its pod's reason and log, a cancelled run whose Jobs (and pods,
and processes) are deleted, ``activeDeadlineSeconds``, and the API's orphaning default for Jobs.
Stages here are `run:` commands (fast); the quickstart's built-in stages run in the CLI e2e."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import NAMESPACE, STORAGE_SECRET, FakeCluster

from mlstack.engine.backend import Context, Event, RunRequest, RunResult

pytestmark = [pytest.mark.e2e]


@pytest.fixture(autouse=True)
def _storage_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the user running mlstack has for the storage (moto takes any key)."""
    for k, v in STORAGE_SECRET.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def _backend(root: Path, fc: FakeCluster, stages: list[dict[str, Any]]) -> Any:
    from mlstack.engine.backend import get_plugin
    from mlstack.manifest.load import load, resolve

    settings = fc.settings()
    spec = {
        "project": "jobs-probe",
        "environments": {"dev": {"backend": "kserve", **settings}},
        "pipeline": {"stages": stages},
    }
    (root / "mlstack.yaml").write_text(json.dumps(spec))
    resolved = resolve(load(str(root / "mlstack.yaml")), "dev")
    return get_plugin("kserve").load(resolved, root / ".mlstack")


def _run(backend: Any, ctx: Context) -> RunResult:
    compiled = backend.compile()
    request = RunRequest(stages=compiled.steps, reasons={}, cache_keys={}, data_digest=None)
    result: RunResult = backend.run_pipeline(compiled, request, ctx)
    return result


def _wait(fc: FakeCluster, what: Callable[[], bool], timeout: float = 60) -> None:
    with fc.api.lock:
        assert fc.api.changed.wait_for(what, timeout=timeout), "condition not reached"


def _until(what: Callable[[], bool], timeout: float = 60) -> None:
    """For what the API server is not told about (a log growing): poll the condition."""
    end = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.05)


def _pods(fc: FakeCluster, stage: str) -> list[dict[str, Any]]:
    return [
        p
        for p in fc.api.list("pods", NAMESPACE)
        if p["metadata"]["labels"].get("mlstack.dev/project") == "jobs-probe"
        and p["metadata"]["labels"].get("mlstack.dev/stage") == stage
    ]


def test_a_failing_stage_is_retried_then_named_with_its_pod(
    fake_cluster: FakeCluster, tmp_path: Path
) -> None:
    fc = fake_cluster
    backend = _backend(
        tmp_path,
        fc,
        [
            {"name": "hello", "run": "python -c \"print('hello from the pod')\""},
            {
                "name": "boom",
                "needs": ["hello"],
                "retries": 1,
                "run": "python -c \"print('about to fail'); raise SystemExit(3)\"",
            },
            {"name": "after", "needs": ["boom"], "run": "true"},
        ],
    )
    events: list[Event] = []
    result = _run(backend, Context(tmp_path, "dev", emit=events.append))
    assert result.status == "failed", result
    assert result.stages == {"hello": "ran", "boom": "failed", "after": "skipped"}
    # the reason: Job condition, the failing container, its termination message, its log
    assert "Job jobs-probe-" in result.detail and "BackoffLimitExceeded" in result.detail
    assert "container 'stage' Error (exit code 1)" in result.detail, result.detail
    assert "command exited with status 3" in result.detail, result.detail
    assert "about to fail" in result.detail, result.detail
    kinds = [(e.kind, e.subject) for e in events]
    assert kinds.index(("stage.done", "hello")) < kinds.index(("stage.start", "boom"))
    assert ("stage.retry", "boom") in kinds and ("stage.failed", "boom") in kinds
    assert not any(s == "after" for k, s in kinds if k == "stage.start")
    phases = [e.message for e in events if e.kind == "log" and e.subject == "boom"]
    assert any("Init:" in m for m in phases), phases
    # backoffLimit 1: two pods, both Failed; the Job says so
    pods = _pods(fc, "boom")
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Failed"]
    job = fc.api.get("jobs", NAMESPACE, pods[0]["metadata"]["labels"]["job-name"])
    assert job is not None and job["status"]["failed"] == 2
    assert {c["type"] for c in job["status"]["conditions"]} == {"FailureTarget", "Failed"}
    # the stage ran the shared runtime with the Job's arguments
    ran = [c for c in fc.jobs.commands if "mlstack_runtime" in c and "boom" in c]
    assert len(ran) == 2 and ran[0][ran[0].index("--failure-file") + 1].endswith(
        "termination-stage"
    )
    # logs: the stage containers' output of this run
    logs = backend.logs("hello")
    assert "hello from the pod" in logs and "Succeeded" in logs
    assert "about to fail" in backend.logs("boom")


def test_cancel_deletes_the_jobs_with_their_pods(fake_cluster: FakeCluster, tmp_path: Path) -> None:
    fc = fake_cluster
    backend = _backend(
        tmp_path, fc, [{"name": "slow", "run": 'python -c "import time; time.sleep(120)"'}]
    )
    ctx = Context(tmp_path, "dev")
    out: list[RunResult] = []
    t = threading.Thread(target=lambda: out.append(_run(backend, ctx)))
    t.start()
    try:
        _wait(
            fc,
            lambda: any(
                "running" in s["state"]
                for p in _pods(fc, "slow")
                for s in p.get("status", {}).get("initContainerStatuses", [])
                if s["name"] == "stage"
            ),
        )
        run = next(r for r in fc.jobs.runs.values() if "-slow-" in r.name)
        _until(lambda: run.proc is not None)  # started right after its status says so
        proc = run.proc
        assert proc is not None and proc.poll() is None
    finally:
        ctx.cancel.set()
        t.join(timeout=60)
    assert out and out[0].status == "cancelled", out
    assert out[0].stages == {"slow": "cancelled"}
    assert not [
        j for j in fc.api.list("jobs", NAMESPACE) if j["metadata"]["name"].endswith("-slow")
    ]
    _wait(fc, lambda: not _pods(fc, "slow"))  # Background: the garbage collector took them
    assert proc.wait(timeout=30) is not None  # and the kubelet stopped the stage


def test_active_deadline_fails_the_job(fake_cluster: FakeCluster, tmp_path: Path) -> None:
    fc = fake_cluster
    backend = _backend(
        tmp_path,
        fc,
        [{"name": "late", "timeout": "2s", "run": 'python -c "import time; time.sleep(120)"'}],
    )
    result = _run(backend, Context(tmp_path, "dev"))
    assert result.status == "failed"
    assert "DeadlineExceeded" in result.detail, result.detail
    assert "Job was active longer than specified deadline" in result.detail


def test_a_job_deleted_without_policy_orphans_its_pod(fake_cluster: FakeCluster) -> None:
    """What the API defaults to for batch/v1 Jobs (why mlstack says Background)."""
    from kubernetes import client, config

    fc = fake_cluster
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "orphan-probe", "labels": {"probe": "orphan"}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"probe": "orphan"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "python:3.11-slim",
                            "command": [
                                "python",
                                "-c",
                                "print('hi', flush=True); import time; time.sleep(120)",
                            ],
                        }
                    ],
                },
            },
        },
    }
    cfg = client.Configuration()
    config.load_kube_config(str(fc.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        client.BatchV1Api(api).create_namespaced_job(NAMESPACE, job)
        core = client.CoreV1Api(api)

        def pod() -> dict[str, Any] | None:
            found = [
                p
                for p in fc.api.list("pods", NAMESPACE)
                if p["metadata"]["labels"].get("job-name") == "orphan-probe"
            ]
            return found[0] if found else None

        _wait(fc, lambda: (pod() or {}).get("status", {}).get("phase") == "Running")
        name = pod()["metadata"]["name"]  # type: ignore[index]
        _until(lambda: "hi" in fc.jobs.read_log(NAMESPACE, name, "main"))
        assert core.read_namespaced_pod_log(name, NAMESPACE).strip() == "hi"
        client.BatchV1Api(api).delete_namespaced_job("orphan-probe", NAMESPACE)
        _wait(fc, lambda: "ownerReferences" not in (pod() or {}).get("metadata", {}))
        # the orphan keeps running: nothing owns it any more
        assert pod() is not None and pod()["status"]["phase"] == "Running"  # type: ignore[index]
        run = fc.jobs.runs[(NAMESPACE, name)]
        assert run.proc is not None and run.proc.poll() is None
        core.delete_namespaced_pod(name, NAMESPACE)  # the kubelet stops a deleted pod
    assert run.proc.wait(timeout=30) is not None


def test_evaluate_gates_compare_with_the_registry_champion(
    fake_cluster: FakeCluster, tmp_path: Path
) -> None:
    """What run_pipeline checks once an evaluate stage's Job is Complete."""
    from mlstack_kserve import pipelines, registry
    from quickstart_copy import quickstart_project

    from mlstack.engine.backend import ModelVersion, get_plugin
    from mlstack.manifest.load import load, resolve

    settings = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in fake_cluster.settings().items())
    quickstart_project(tmp_path, "kserve", settings)
    resolved = resolve(load(str(tmp_path / "mlstack.yaml")), "dev")
    p = get_plugin("kserve").load(resolved, tmp_path / ".mlstack").platform
    # no champion yet: a champion-relative gate has nothing to compare with
    assert pipelines._check_gates(p, "evaluate", {"roc_auc": 0.95}) == []
    assert pipelines._check_gates(p, "evaluate", {"roc_auc": 0.5})[0].startswith(
        "gate `roc_auc >= 0.9` failed: roc_auc = 0.5 fails >= 0.9"
    )
    champion = ModelVersion(
        name="cancer-classifier",
        version="1",
        digest="sha256:x",
        uri="s3://ml-artifacts/none",
        metrics={"roc_auc": 0.99},
        aliases=("champion",),
    )
    registry.save(p, champion)
    try:
        failed = pipelines._check_gates(p, "evaluate", {"roc_auc": 0.95})
        assert failed == [
            "gate `roc_auc >= champion.roc_auc - 0.02` failed: roc_auc = 0.95 fails >= 0.97"
        ]
    finally:
        registry.delete_all(p, "cancer-classifier")
