"""The quickstart through the CLI with staging on the fake cluster (Serverless): `dev` trains on
the local backend; `promote dev staging` copies the artifact to S3 storage, registers it in the
namespace and rolls it out as an InferenceService; status and predict go through the cluster's
ingress; a canary whose version fails its error-rate gate (read from Prometheus) is rolled
back to the last revision rolled out; destroy removes what mlstack made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from conftest import NAMESPACE, FakeCluster
from quickstart_copy import QUICKSTART, copy_data

_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]

# each test trains the quickstart on the local backend twice: minutes on a loaded machine
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def _project(root: Path, fc: FakeCluster, n_estimators: int, mode: str = "Serverless") -> None:
    """The quickstart; staging changes only `backend:` and adds the cluster settings (and, in
    RawDeployment mode, rolls out by shadow, which only that mode can realise)."""
    text = (QUICKSTART / "mlstack.yaml").read_text()
    staging = "  staging:\n    backend: local\n"
    assert staging in text
    settings = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in fc.settings(mode).items())
    text = text.replace(staging, "  staging:\n    backend: kserve\n" + settings, 1)
    if mode == "RawDeployment":
        canary = "    deployment: {strategy: canary}\n"
        assert canary in text
        shadow = "    deployment: {strategy: shadow, shadow: {percent: 100, duration: 3s}}\n"
        text = text.replace(canary, shadow, 1)
    text = text.replace("n_estimators: 100", f"n_estimators: {n_estimators}")
    (root / "mlstack.yaml").write_text(text)


def _cli(root: Path, *args: str, status: int = 0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSTACK_", "AWS_", "KUBE"))}
    env.update(
        NO_COLOR="1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    r = subprocess.run(
        [*MLSTACK, *args], cwd=root, capture_output=True, text=True, env=env, timeout=300
    )
    assert r.returncode == status, f"mlstack {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr
    return r.stdout + r.stderr


class Traffic:
    """Clients calling the endpoint through the ingress until stopped (for the gates)."""

    def __init__(self, fc: FakeCluster, row: dict[str, object]) -> None:
        self.fc, self.row = fc, row
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = json.dumps({"instances": [self.row]}).encode()
        while not self.stop.is_set():
            req = urllib.request.Request(
                self.fc.ingress_url + "/v1/models/cancer-classifier:predict",
                data=body,
                headers={"Host": f"cancer.{NAMESPACE}.example.com"},
                method="POST",
            )
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except OSError:
                pass  # 5xx answers are what the gate must see

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=15)


def _data(root: Path) -> dict[str, object]:
    copy_data(root)
    row: dict[str, object] = json.loads((QUICKSTART / "sample.json").read_text())
    return row


def _cleanup(root: Path) -> None:
    subprocess.run(
        [*MLSTACK, "destroy", "-e", "dev", "--auto-approve"],
        cwd=root,
        capture_output=True,
        timeout=120,
    )


def test_quickstart_promoted_to_kserve(fake_cluster: FakeCluster, tmp_path: Path) -> None:
    fc = fake_cluster
    row = _data(tmp_path)
    _project(tmp_path, fc, n_estimators=100)
    try:
        assert "is valid" in _cli(tmp_path, "validate")
        plan = _cli(tmp_path, "plan", "-e", "staging", "--no-refresh")
        assert "backend kserve" in plan
        _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")

        out = _cli(tmp_path, "promote", "dev", "staging", "--auto-approve")
        isvc = fc.api.get("inferenceservices", NAMESPACE, "cancer")
        assert isvc is not None, out
        env = next(e for e in isvc["spec"]["predictor"]["containers"][0]["env"])
        assert env["value"].startswith("s3://ml-artifacts/quickstart/models/cancer-classifier/")
        status = _cli(tmp_path, "status", "-e", "staging")
        assert f"http://cancer.{NAMESPACE}.example.com" in status and "Ready" in status, status
        answer = _cli(tmp_path, "predict", "-e", "staging", "--data", json.dumps(row))
        assert "predictions" in answer or "prediction" in answer.lower(), answer

        # a second version whose answers fail: the canary's error-rate gate rolls it back
        _project(tmp_path, fc, n_estimators=60)
        _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
        fc.cluster.break_versions.add("2")
        with Traffic(fc, row):
            out = _cli(tmp_path, "promote", "dev", "staging", "--auto-approve", status=1)
        assert "rolled back" in out, out
        assert "error_rate" in out, out
        isvc = fc.api.get("inferenceservices", NAMESPACE, "cancer")
        assert isvc is not None
        traffic = isvc["status"]["components"]["predictor"]["traffic"]
        served = {t["revisionName"]: t["percent"] for t in traffic if t["percent"]}
        assert served == {"cancer-predictor-00001": 100}, traffic
        status = _cli(tmp_path, "status", "-e", "staging")
        assert "1" in status and "100" in status, status

        _cli(tmp_path, "destroy", "-e", "staging", "--auto-approve")
        assert fc.api.get("inferenceservices", NAMESPACE, "cancer") is None
    finally:
        _cleanup(tmp_path)
        fc.cluster.break_versions.clear()


def test_quickstart_shadow_and_rollback_on_raw_deployment(
    fake_cluster: FakeCluster, tmp_path: Path
) -> None:
    """RawDeployment: one InferenceService per version behind an HTTPRoute; shadow mirrors
    every request to the new version before it takes the traffic; rollback switches back."""
    fc = fake_cluster
    row = _data(tmp_path)
    try:
        _project(tmp_path, fc, n_estimators=100, mode="RawDeployment")
        assert "is valid" in _cli(tmp_path, "validate")
        _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
        _cli(tmp_path, "promote", "dev", "staging", "--auto-approve")
        assert fc.api.get("httproutes", NAMESPACE, "cancer") is not None
        # a third version is shadowed (every request mirrored, answers dropped), then promoted
        _project(tmp_path, fc, n_estimators=60, mode="RawDeployment")
        _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
        with Traffic(fc, row):
            out = _cli(tmp_path, "promote", "dev", "staging", "--auto-approve", status=1)
        # the shadow phase is realised (every request mirrored to v2, v1 answers); gates in
        # RawDeployment mode are not read yet, so the release engine holds the rollout
        assert "shadow 100% mirrored" in out and "is held" in out, out
        mirrored = sum(n for rev, n in fc.cluster.mirrored.items() if rev.startswith("cancer-v2"))
        assert mirrored > 0, dict(fc.cluster.mirrored)
        route = fc.api.get("httproutes", NAMESPACE, "cancer")
        assert route is not None
        rule = route["spec"]["rules"][0]
        assert {r["name"]: r["weight"] for r in rule["backendRefs"]} == {"cancer-v1-predictor": 100}
        assert rule["filters"][0]["requestMirror"]["backendRef"]["name"] == "cancer-v2-predictor"
        # rollback: version 1 serves again at once
        out = _cli(tmp_path, "rollback", "-e", "staging", "--auto-approve")
        route = fc.api.get("httproutes", NAMESPACE, "cancer")
        assert route is not None
        refs = {r["name"]: r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]}
        assert refs == {"cancer-v1-predictor": 100}, (refs, out)
        assert "filters" not in route["spec"]["rules"][0], route
        answer = _cli(tmp_path, "predict", "-e", "staging", "--data", json.dumps(row))
        assert "predictions" in answer or "prediction" in answer.lower(), answer
        _cli(tmp_path, "destroy", "-e", "staging", "--auto-approve")
        assert fc.api.list("inferenceservices", NAMESPACE) == []
        assert fc.api.get("httproutes", NAMESPACE, "cancer") is None
    finally:
        _cleanup(tmp_path)


def test_quickstart_trains_on_jobs_and_serves(fake_cluster: FakeCluster, tmp_path: Path) -> None:
    """`dev` on the fake cluster, training included: every stage a Job whose pod runs the shared
    runtime, outputs in S3, the trained model registered and served; then destroy."""
    from quickstart_copy import quickstart_project

    fc = fake_cluster
    settings = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in fc.settings().items())
    quickstart_project(tmp_path, "kserve", settings)
    row: dict[str, object] = json.loads((QUICKSTART / "sample.json").read_text())
    destroyed = False
    try:
        assert "is valid" in _cli(tmp_path, "validate", "-e", "dev")
        plan = _cli(tmp_path, "plan", "-e", "dev", "--no-refresh")
        assert "backend kserve" in plan and "run.quickstart" in plan, plan
        out = _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
        # one Job per stage, each Complete, each pod's stage container the shared runtime
        jobs = [
            j for j in fc.api.list("jobs", NAMESPACE) if "quickstart-r" in j["metadata"]["name"]
        ]
        stages = {j["metadata"]["labels"]["mlstack.dev/stage"]: j for j in jobs}
        assert set(stages) == {
            "ingest",
            "validate",
            "split",
            "features",
            "train",
            "evaluate",
            "register",
        }, out
        for j in jobs:
            assert any(c["type"] == "Complete" for c in j["status"]["conditions"]), j["status"]
        ran = {
            c[c.index("mlstack_runtime") + 1] for c in fc.jobs.commands if "mlstack_runtime" in c
        }
        assert set(stages) <= ran
        # the registered version is the train stage's output in S3, and it is what serves
        versions = [
            json.loads(cm["data"]["version.json"])
            for cm in fc.api.list("configmaps", NAMESPACE)
            if cm["metadata"]["labels"].get("mlstack.dev/kind") == "model"
        ]
        assert len(versions) == 1, versions
        v = versions[0]
        assert v["uri"].startswith("s3://ml-artifacts/quickstart/runs/r-") and v["uri"].endswith(
            "/train"
        ), v
        assert v["metrics"]["roc_auc"] >= 0.9 and v["digest"].startswith("sha256:"), v
        isvc = fc.api.get("inferenceservices", NAMESPACE, "cancer")
        assert isvc is not None, out
        env = isvc["spec"]["predictor"]["containers"][0]["env"]
        assert {"name": "STORAGE_URI", "value": v["uri"]} in env
        status = _cli(tmp_path, "status", "-e", "dev")
        assert f"http://cancer.{NAMESPACE}.example.com" in status and "Ready" in status, status
        answer = json.loads(_cli(tmp_path, "predict", "-e", "dev", "--data", json.dumps(row)))
        assert answer["predictions"] in ([0], [1]), answer
        logs = _cli(tmp_path, "logs", "-e", "dev", "evaluate")
        assert "roc_auc = 0." in logs, logs
        _cli(tmp_path, "destroy", "-e", "dev", "--auto-approve")
        destroyed = True
        assert fc.api.get("inferenceservices", NAMESPACE, "cancer") is None
        assert not [
            j for j in fc.api.list("jobs", NAMESPACE) if "quickstart" in j["metadata"]["name"]
        ]
    finally:
        if not destroyed:  # what a failure left behind
            _cleanup(tmp_path)
