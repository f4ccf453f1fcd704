"""The local backend's `artifacts:` URL against the real local servers.

Each store (moto S3, fake-gcs-server, Azurite) through its fsspec filesystem (s3fs, gcsfs, adlfs):
a stage published by one machine's store is found, downloaded and digest-checked by another's.
End to end on S3: two CI runners, simulated as two checkouts with empty `.mlstack/` sharing one
remote state and one artifacts URL. The second trains nothing: it plans `No changes.`, and serves
and answers with the model the first trained, downloaded by digest into its own cache."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from mlstack.local.remote import RemoteArtifacts
from mlstack.local.serving import api
from mlstack.local.store import ArtifactStore
from tests.conftest import make_env, run_cli, write_xy_csv
from tests.remote_state.conftest import BUCKET

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

STAGES = [
    {"name": "ingest", "uses": "builtin/ingest"},
    {"name": "split", "uses": "builtin/split", "needs": ["ingest"]},
    {
        "name": "features",
        "uses": "builtin/features",
        "needs": ["split"],
        "with": {"numeric": ["x1", "x2"]},
    },
    {
        "name": "train",
        "uses": "builtin/train",
        "needs": ["features"],
        "with": {"estimator": "sklearn.linear_model.LogisticRegression"},
    },
    {"name": "register", "uses": "builtin/register", "needs": ["train"]},
]


SCHEME = {"s3": "s3", "gcs": "gs", "azblob": "az"}


def test_each_store_carries_a_stage_between_machines(remote, tmp_path: Path) -> None:
    srv, block = remote
    url = f"{SCHEME[srv.kind]}://{BUCKET}/{block['prefix']}/artifacts"
    first = ArtifactStore(tmp_path / "a", RemoteArtifacts(url))
    first.ensure()
    staging = first.new_staging("train", 0)
    (staging / "model.joblib").write_bytes(b"weights" * 1000)
    (staging / "sub").mkdir()
    (staging / "sub" / "meta.json").write_text("{}")
    digest, _ = first.commit_dir(staging)
    first.record("sha256:k", {"output": digest, "model": True})
    first.publish("sha256:k", {"output": digest, "model": True})

    second = ArtifactStore(tmp_path / "b", RemoteArtifacts(url))
    assert second.lookup("sha256:absent") is None
    entry = second.lookup("sha256:k")
    assert entry is not None and entry["output"] == digest
    assert (second.object_path(digest) / "model.joblib").read_bytes() == b"weights" * 1000
    # the model URI recorded in state names the object there; a third machine resolves it
    uri = first.uri(digest)
    assert uri == f"{url}/objects/{digest.split(':')[1]}"
    third = ArtifactStore(tmp_path / "c")
    assert third.local_dir(uri, digest) == third.object_path(digest)
    assert (third.object_path(digest) / "sub" / "meta.json").read_text() == "{}"


def checkout(root: Path, prefix: str) -> Path:
    root.mkdir()
    write_xy_csv(root, 120)
    spec = {
        "project": "ci",
        "state": {"backend": "s3", "bucket": BUCKET, "prefix": prefix},
        "data": {"source": "data/train.csv", "target": "label"},
        "pipeline": {"stages": STAGES},
        "model": {"name": "ci-model"},
        "deployment": {"endpoint": "ci"},
        "environments": {
            "dev": {"backend": "local", "artifacts": f"s3://{BUCKET}/{prefix}/artifacts"}
        },
    }
    (root / "mlstack.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def ok(*args: str, cwd: Path, env: dict[str, str]) -> str:
    r = run_cli(*args, cwd=cwd, env=env, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout


def test_second_runner_reuses_the_first_runners_model(_servers, tmp_path: Path) -> None:
    import boto3

    srv = _servers("s3")
    secret = f"sk-{uuid.uuid4().hex}"  # moto takes any key; this one must be found nowhere
    env = make_env(**{**srv.env, "AWS_SECRET_ACCESS_KEY": secret})
    prefix = f"art-{uuid.uuid4().hex[:10]}"
    a, b = checkout(tmp_path / "a", prefix), checkout(tmp_path / "b", prefix)
    s3 = boto3.client(
        "s3",
        endpoint_url=srv.url,
        aws_access_key_id="testing",
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    try:
        ok("apply", "-e", "dev", "--auto-approve", cwd=a, env=env)
        keys = {
            o["Key"]
            for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/artifacts/")["Contents"]
        }
        assert any("/cache/" in k for k in keys) and any(k.endswith(".json") for k in keys)
        assert f"{prefix}/artifacts/envs/dev/registry.json" in keys
        # the first runner's job ends: its endpoint's processes go with it, state stays
        api.stop(a / ".mlstack", "dev", "ci")

        # the second runner: an empty .mlstack/, the same state and artifacts
        assert not (b / ".mlstack").exists()
        same = run_cli("plan", "-e", "dev", "--no-refresh", "--detailed-exitcode", cwd=b, env=env)
        assert same.returncode == 0 and "No changes." in same.stdout, same.stdout + same.stderr
        # refreshed: the run, model and pipeline are found through the artifacts URL; only the
        # endpoint, whose processes ran on the first machine, is to be brought up here
        fresh = run_cli("plan", "-e", "dev", "--json", cwd=b, env=env)
        assert fresh.returncode == 0, fresh.stderr
        planned = json.loads(fresh.stdout)
        changes = {c["address"]: c["action"] for c in planned["resource_changes"]}
        assert changes == {"endpoint.ci": "create"}, fresh.stdout
        assert [d["address"] for d in planned["drift"]] == ["endpoint.ci"], fresh.stdout

        ok("apply", "-e", "dev", "--auto-approve", cwd=b, env=env)
        assert not (b / ".mlstack" / "envs" / "dev" / "runs").exists() or not any(
            (b / ".mlstack" / "envs" / "dev" / "runs").iterdir()
        ), "the second runner ran the pipeline"
        state = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/dev/state.json")["Body"].read()
        outputs = json.loads(state)["resources"]["model.ci-model"]["outputs"]
        digest, uri = outputs["digest"], outputs["uri"]
        assert uri == f"s3://{BUCKET}/{prefix}/artifacts/objects/{digest.split(':')[1]}"
        served = b / ".mlstack" / "artifacts" / "objects" / digest.split(":")[1]
        assert (served / "model.joblib").is_file()  # served from the local cache
        answer = json.loads(
            ok("predict", "-e", "dev", "--data", '[{"x1": 2.0, "x2": 0.5}]', cwd=b, env=env)
        )
        assert answer["predictions"] == [1]
        again = run_cli("plan", "-e", "dev", "--detailed-exitcode", cwd=b, env=env)
        assert again.returncode == 0 and "No changes." in again.stdout, again.stdout

        assert secret.encode() not in state
        for root in (a, b):
            for f in (root / ".mlstack").rglob("*"):
                if f.is_file() and f.stat().st_size < 5_000_000:
                    assert secret.encode() not in f.read_bytes(), f
    finally:
        api.stop(a / ".mlstack", "dev", "ci")
        api.stop(b / ".mlstack", "dev", "ci")
