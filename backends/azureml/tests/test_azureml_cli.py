"""The quickstart on Azure ML through the CLI against the fakes, end to end: apply runs the
pipeline job (the shared runtime over the data in the datastore), registers the trained model
read back from the train step's output, deploys it to a managed online endpoint whose
deployment runs mlstack's ``score.py`` over the registered files; status, predict (a real
prediction), promotion into another workspace, a second version, rollback, and destroy removing
what it reports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from fakes.arm import FakeArm
from fakes.assets import ACCOUNT_KEY
from fakes.container import container_for
from quickstart_copy import QUICKSTART
from test_azureml_config import AZURE_SETTINGS, cli, quickstart

from mlstack.engine.digest import dir_digest


def _ok(r: subprocess.CompletedProcess[str]) -> str:
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "Traceback" not in out, out
    assert "fake-token" not in out and ACCOUNT_KEY not in out  # no secret in the output
    return out


def test_quickstart_apply_predict_promote_rollback_destroy(
    fake: FakeArm, settings: dict[str, Any], tmp_path: Path
) -> None:
    fake.scorer = None  # deployments run their own scoring script over their model files
    common = f"    base_url: {fake.base}\n    blob_url: {settings['blob_url']}\n"
    common += "    poll_interval: 0.05\n"
    quickstart(tmp_path, AZURE_SETTINGS + common)
    # staging: another workspace (its own storage), promoted into from dev
    spec = tmp_path / "mlstack.yaml"
    staging = "  staging:\n    backend: local\n"
    assert staging in spec.read_text()
    spec.write_text(
        spec.read_text().replace(
            staging,
            "  staging:\n    backend: azureml\n"
            + AZURE_SETTINGS.replace("shop-dev", "shop-stg")
            + common,
        )
    )
    fake.state.workspaces.add("shop-stg")
    shutil.copy(QUICKSTART / "sample.json", tmp_path / "sample.json")
    env = {
        "MLSTACK_AZURE_ACCESS_TOKEN": "fake-token",
        "REQUESTS_CA_BUNDLE": os.environ["REQUESTS_CA_BUNDLE"],
    }
    out = _ok(cli(["apply", "-e", "dev", "--auto-approve"], tmp_path, **env))
    (job,) = fake.jobs.jobs.values()
    assert set(job.steps.values()) == {"Completed"}, job.logs
    # the registered version: the train step's output, its digest the tree digest of its files
    (v1,) = fake.state.models["shop-dev"]["cancer-classifier"].values()
    uri = v1["properties"]["modelUri"]
    path = uri.split("/datastores/workspaceblobstore/paths/", 1)[1].strip("/")
    local = tmp_path / "downloaded"
    for blob in fake.container.list_blobs(name_starts_with=path + "/"):
        target = local / blob.name[len(path) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(fake.container.download_blob(blob.name).readall())
    assert v1["properties"]["tags"]["mlstack.digest"] == dir_digest(local)
    assert "/stages/train/" in path and (local / "model.joblib").is_file()
    assert float(v1["properties"]["properties"]["mlstack.metric.roc_auc"]) > 0.9
    # one deployment serving it through score.py of the code asset, all traffic
    (dep,) = fake.state.deployments["cancer-dev"].values()
    conf = dep["properties"]["codeConfiguration"]
    assert conf["scoringScript"] == "score.py" and "/codes/mlstack-code/" in conf["codeId"]
    assert fake.state.endpoints["cancer-dev"]["properties"]["traffic"] == {dep["name"]: 100}

    status = cli(["status", "-e", "dev", "--json"], tmp_path, **env)
    assert '"1"' in _ok(status) and "Succeeded" in status.stdout

    sample = (tmp_path / "sample.json").read_text()
    pred = cli(["predict", "-e", "dev", "--data", sample, "--timeout", "60"], tmp_path, **env)
    _ok(pred)
    answer = json.loads(pred.stdout[pred.stdout.index("{") :])
    assert answer["predictions"] in ([0], [1])  # the model's answer for the sample row
    # the answer came from score.py over the registered files: the same row scored by that
    # container in this process gives the same answer; a wrong row is refused by the serving
    # hooks with what is wrong (the inference server's error answer), not scored
    row = json.loads(sample)
    container = container_for(fake, dep)
    assert container.score({"instances": [row]}) == (200, answer)
    status_code, refused = container.score({"instances": [{"mean_radius": "x"}]})
    assert status_code == 500 and "missing column" in refused["message"]

    # promote version 1 to staging: its files copied into shop-stg's datastore, registered
    # there with the same digest, deployed (staging's first version: at once) and scoring
    _ok(cli(["promote", "dev", "staging", "--auto-approve"], tmp_path, **env))
    (s1,) = fake.state.models["shop-stg"]["cancer-classifier"].values()
    assert s1["properties"]["tags"]["mlstack.digest"] == v1["properties"]["tags"]["mlstack.digest"]
    assert "/workspaces/shop-stg/" in s1["properties"]["modelUri"]
    (sdep,) = fake.state.deployments["cancer-staging"].values()
    assert fake.state.endpoints["cancer-staging"]["properties"]["traffic"] == {sdep["name"]: 100}
    assert container_for(fake, sdep).score({"instances": [row]}) == (200, answer)

    # a second version: trained, registered, deployed; the first deployment retired
    spec.write_text(spec.read_text().replace("n_estimators: 100", "n_estimators: 40"))
    _ok(cli(["apply", "-e", "dev", "--auto-approve"], tmp_path, **env))
    assert sorted(fake.state.models["shop-dev"]["cancer-classifier"]) == ["1", "2"]
    assert fake.state.endpoints["cancer-dev"]["properties"]["traffic"] == {"v-2": 100}
    assert set(fake.state.deployments["cancer-dev"]) == {"v-2"}

    # rollback: version 1 serves again, from its registered files
    _ok(cli(["rollback", "-e", "dev", "--auto-approve"], tmp_path, **env))
    assert fake.state.endpoints["cancer-dev"]["properties"]["traffic"] == {"v-1": 100}
    (again,) = fake.state.deployments["cancer-dev"].values()
    assert again["properties"]["model"].endswith("/models/cancer-classifier/versions/1")
    assert container_for(fake, again).score({"instances": [row]}) == (200, answer)

    # destroy removes the endpoints and the model versions, and says so
    out = _ok(cli(["destroy", "-e", "staging", "--auto-approve"], tmp_path, **env))
    assert "online endpoint cancer-staging deleted" in out and "versions 1 deleted" in out, out
    assert not fake.state.models["shop-stg"].get("cancer-classifier")
    assert sorted(fake.state.models["shop-dev"]["cancer-classifier"]) == ["1", "2"]
    out = _ok(cli(["destroy", "-e", "dev", "--auto-approve"], tmp_path, **env))
    assert "online endpoint cancer-dev deleted" in out, out
    assert "versions 1, 2 deleted" in out, out
    assert not fake.state.endpoints and "cancer-classifier" not in fake.state.containers["shop-dev"]
    assert not fake.state.models["shop-dev"].get("cancer-classifier")
    state = "".join(
        p.read_text(errors="replace") for p in (tmp_path / ".mlstack").rglob("*") if p.is_file()
    )
    assert "fake-token" not in state and ACCOUNT_KEY not in state
