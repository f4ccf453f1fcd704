"""The quickstart on SageMaker, driven through the `mlstack` CLI against the moto server.

The CLI runs as a subprocess (as a user runs it); the moto server runs in this process, so the
test can stand in for the SageMaker jobs moto does not run: when an execution starts, it writes
what the train and evaluate steps would write (``model.tar.gz``, ``evaluation.json``) under the
execution's prefix (``EXECUTION_HOOKS`` in conftest.py). UpdateEndpoint is the fixture's faithful
addition (see conftest.py). After every command the AWS side is checked with boto3.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from quickstart_copy import quickstart_project

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROLE = "arn:aws:iam::123456789012:role/mlstack-sm"
BUCKET = "quickstart-artifacts"
_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]


def _settings(url: str) -> str:
    return (
        f"    region: eu-west-1\n    role: {ROLE}\n    bucket: {BUCKET}\n"
        f"    endpoint_url: {url}\n    poll_interval: 0.05\n"
    )


def _write_project(root: Path, url: str, n_estimators: int = 100) -> None:
    """The quickstart, with `backend: sagemaker` (+ settings) in every environment."""
    quickstart_project(root, "sagemaker", _settings(url), envs=("dev", "staging", "prod"))
    spec = root / "mlstack.yaml"
    text = spec.read_text()
    # moto's CloudWatch has no datapoints, so no canary can be judged here: staging opts in to
    # promote unjudged (holding by default is tested in test_sagemaker_rollout_plan.py)
    at = text.index("  staging:\n")
    text = text[:at] + text[at:].replace(
        "deployment: {strategy: canary}",
        "deployment: {strategy: canary, on_inconclusive: promote}",
        1,
    )
    spec.write_text(text.replace("n_estimators: 100,", f"n_estimators: {n_estimators},"))


def _model_tar(tag: str) -> bytes:
    files = {
        "model.joblib": f"fitted-pipeline-{tag}".encode(),
        "mlstack-model.json": json.dumps(
            {"columns": ["mean_radius"], "dtypes": {"mean_radius": "float"},
             "target": "diagnosis", "task": "classification", "classes": [0, 1]}
        ).encode(),
    }  # fmt: skip
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Jobs:
    """Stands in for the pipeline's train and evaluate jobs of every execution."""

    def __init__(self) -> None:
        self.executions: list[tuple[str, dict[str, str]]] = []

    def __call__(self, pipeline: str, params: dict[str, str], s3: Any) -> None:
        self.executions.append((pipeline, params))
        env = pipeline.rsplit("-", 1)[-1]
        prefix = f"mlstack/quickstart/{env}/runs/{params['RunKey']}"
        bucket = params["ArtifactBucket"]
        tag = f"{env}-{len(self.executions)}"
        s3.put(
            bucket, f"{prefix}/train/quickstart-train-{tag}/output/model.tar.gz", _model_tar(tag)
        )
        metrics = {"roc_auc": 0.97, "accuracy": 0.93}
        s3.put(
            bucket, f"{prefix}/evaluate/evaluation.json", json.dumps({"metrics": metrics}).encode()
        )


@pytest.fixture
def jobs(execution_hooks: list[Any]) -> Jobs:
    hook = Jobs()
    execution_hooks.append(hook)
    return hook


def _cli(root: Path, *args: str, status: int = 0) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSTACK_")}
    env.update(NO_COLOR="1")
    r = subprocess.run(
        [*MLSTACK, *args], cwd=root, capture_output=True, text=True, env=env, timeout=180
    )
    assert r.returncode == status, f"mlstack {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr
    return r.stdout + r.stderr


def _serving(sm: Any, endpoint: str) -> dict[str, float]:
    """version -> weight, read from the endpoint's variants and their models' tags."""
    d = sm.describe_endpoint(EndpointName=endpoint)
    cfg = sm.describe_endpoint_config(EndpointConfigName=d["EndpointConfigName"])
    models = {v["VariantName"]: v["ModelName"] for v in cfg["ProductionVariants"]}
    out = {}
    for v in d["ProductionVariants"]:
        arn = sm.describe_model(ModelName=models[v["VariantName"]])["ModelArn"]
        tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
        out[tags["mlstack:version"]] = v["CurrentWeight"]
    return out


def _queue_invoke_answer(url: str, body: Any, variant: str) -> None:
    """The next InvokeEndpoint answer of moto's sagemaker-runtime (it runs no model)."""
    import urllib.request

    results = {
        "region": "eu-west-1",
        "results": [
            {
                "Body": json.dumps(body),
                "ContentType": "application/json",
                "InvokedProductionVariant": variant,
                "CustomAttributes": "",
            }
        ],
    }
    request = urllib.request.Request(
        f"{url}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(results).encode(),
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request).read()


def _packages(sm: Any, group: str) -> list[dict[str, Any]]:
    summaries = sm.list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime")
    arns = [p["ModelPackageArn"] for p in summaries["ModelPackageSummaryList"]]
    return sorted(
        (sm.describe_model_package(ModelPackageName=a) for a in arns),
        key=lambda p: p["ModelPackageVersion"],
    )


def test_quickstart_apply_promote_rollback_destroy_through_the_cli(
    jobs: Jobs, aws_env: str, tmp_path: Path
) -> None:
    import boto3

    sm = boto3.client("sagemaker", endpoint_url=aws_env, region_name="eu-west-1")
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    _write_project(tmp_path, aws_env)

    # apply dev: pipeline created, one execution, package registered, endpoint created
    out = _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
    assert "Apply complete" in out
    pipe = sm.describe_pipeline(PipelineName="mlstack-quickstart-dev")
    steps = [s["Name"] for s in json.loads(pipe["PipelineDefinition"])["Steps"]]
    assert steps[:4] == ["ingest", "validate", "split", "features"]
    assert [p for p, _ in jobs.executions] == ["mlstack-quickstart-dev"]
    assert jobs.executions[0][1]["InputData"].startswith(f"s3://{BUCKET}/mlstack/quickstart/data/")
    (dev_v1,) = _packages(sm, "cancer-classifier-dev")
    meta = dev_v1["CustomerMetadataProperties"]
    assert meta["mlstack:metric:roc_auc"] == "0.97" and meta["mlstack:alias:challenger"] == "true"
    assert meta["mlstack:alias:champion"] == "true"  # fully rolled out -> champion, approved
    assert dev_v1["ModelApprovalStatus"] == "Approved"
    assert sm.describe_endpoint(EndpointName="cancer-dev")["EndpointStatus"] == "InService"
    assert _serving(sm, "cancer-dev") == {"1": 1.0}

    # a second apply with nothing changed starts no execution
    _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
    assert len(jobs.executions) == 1

    # refresh sees exactly what state recorded (no false drift); an endpoint deleted outside
    # mlstack is reported and `apply --refresh` deploys it again
    _cli(tmp_path, "plan", "-e", "dev", "--refresh", "--detailed-exitcode")
    sm.delete_endpoint(EndpointName="cancer-dev")
    out = _cli(tmp_path, "plan", "-e", "dev", "--refresh", "--detailed-exitcode", status=2)
    assert "endpoint.cancer: deleted outside mlstack" in out
    _cli(tmp_path, "apply", "-e", "dev", "--auto-approve", "--refresh")
    assert _serving(sm, "cancer-dev") == {"1": 1.0} and len(jobs.executions) == 1

    # promote dev -> staging: the same artifact registered in staging's group, deployed there
    out = _cli(tmp_path, "promote", "dev", "staging", "--auto-approve")
    assert "Promoted cancer-classifier v1 (dev)" in out
    (stg_v1,) = _packages(sm, "cancer-classifier-staging")
    assert stg_v1["ModelApprovalStatus"] == "Approved"
    assert (
        stg_v1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        == dev_v1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    )
    assert _serving(sm, "cancer-staging") == {"1": 1.0}
    # the promotion is staging's desired state: no changes to plan or apply (AWS unchanged)
    _cli(tmp_path, "plan", "-e", "staging", "--detailed-exitcode")
    assert "No changes." in _cli(tmp_path, "apply", "-e", "staging", "--auto-approve")
    assert len(_packages(sm, "cancer-classifier-staging")) == 1
    assert _serving(sm, "cancer-staging") == {"1": 1.0}

    # predict and status on staging go through the backend: a signed InvokeEndpoint (moto
    # answers InvokeEndpoint with a canned body, queued here) and DescribeEndpoint's fields
    canned = {"predictions": [1], "probabilities": [[0.1, 0.9]]}
    _queue_invoke_answer(aws_env, canned, "v1")
    out = _cli(tmp_path, "predict", "-e", "staging", "--data", '{"mean_radius": 14.2}')
    assert json.loads(out) == canned
    out = _cli(tmp_path, "status", "-e", "staging")
    assert "state: InService" in out, out
    assert re.search(r"v1\s+100%\s+healthy\s+variant primary", out), out
    assert "arn: arn:aws:sagemaker:eu-west-1:" in out

    # retrain in dev (a parameter changed), promote again: staging's canary (10 -> 50 -> 100)
    # has more steps than SageMaker's CANARY, so every step is a variant weight change with the
    # new version's own alarms watched
    _write_project(tmp_path, aws_env, n_estimators=120)
    _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
    assert len(jobs.executions) == 2 and _serving(sm, "cancer-dev") == {"2": 1.0}
    out = _cli(tmp_path, "promote", "dev", "staging", "--auto-approve")
    assert "Promoted cancer-classifier v2 (dev) → v2 (staging)" in out
    # no request reached it (moto has no datapoints): the canary could not be judged, staging
    # opted in to promote anyway, and the user is told so instead of nothing
    assert (
        "canary 10%: 0 of the 20 requests needed reached version 2; its gates could not be "
        "judged; going on (deployment.on_inconclusive: promote)"
    ) in " ".join(out.split())
    assert _serving(sm, "cancer-staging") == {"2": 1.0}
    cw = boto3.client("cloudwatch", endpoint_url=aws_env, region_name="eu-west-1")
    watched = {
        a["AlarmName"]
        for a in cw.describe_alarms(AlarmNamePrefix="cancer-staging-")["MetricAlarms"]
    }
    assert {"cancer-staging-v2-error-rate", "cancer-staging-v2-latency-p99"} <= watched
    stg = {p["ModelPackageVersion"]: p for p in _packages(sm, "cancer-classifier-staging")}
    assert "mlstack:alias:champion" in stg[2]["CustomerMetadataProperties"]
    assert "mlstack:alias:champion" not in stg[1]["CustomerMetadataProperties"]
    _cli(tmp_path, "plan", "-e", "staging", "--detailed-exitcode")

    # rollback staging: v1 serves again at once and is the champion again (its package is
    # reused, not registered a third time)
    out = _cli(tmp_path, "rollback", "-e", "staging", "--auto-approve")
    assert "v2 → v1" in out
    assert _serving(sm, "cancer-staging") == {"1": 1.0}
    stg = {p["ModelPackageVersion"]: p for p in _packages(sm, "cancer-classifier-staging")}
    assert sorted(stg) == [1, 2]
    assert "mlstack:alias:champion" in stg[1]["CustomerMetadataProperties"]
    _cli(tmp_path, "plan", "-e", "staging", "--detailed-exitcode")

    # promote staging -> prod as a saved plan, then apply exactly that file
    saved = tmp_path / "prod.plan"
    out = _cli(tmp_path, "promote", "staging", "prod", "-out", str(saved))
    assert "Promotion of cancer-classifier to prod" in out and "version:  v1 of staging" in out
    assert sm.list_endpoints(NameContains="cancer-prod")["Endpoints"] == []  # only planned
    out = _cli(tmp_path, "apply", str(saved))
    assert "Apply complete!" in out
    assert _serving(sm, "cancer-prod") == {"1": 1.0}
    (prod_v1,) = _packages(sm, "cancer-classifier-prod")
    assert (
        prod_v1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
        == dev_v1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    )
    _cli(tmp_path, "plan", "-e", "prod", "--detailed-exitcode")

    # a gate alarm fires during the next promotion: the rollout stops at its first step, the
    # CLI says so and fails, and staging still serves v1 with v1 as champion
    cw.set_alarm_state(
        AlarmName="cancer-staging-error-rate", StateValue="ALARM", StateReason="test: 5xx"
    )
    _write_project(tmp_path, aws_env, n_estimators=140)
    _cli(tmp_path, "apply", "-e", "dev", "--auto-approve")
    out = _cli(tmp_path, "promote", "dev", "staging", "--auto-approve", status=1)
    assert "rollout of version 3 to endpoint cancer was rolled back" in out, out
    assert "stopped at canary 10%: alarm cancer-staging-error-rate fired" in out
    assert _serving(sm, "cancer-staging") == {"1": 1.0}
    stg = {p["ModelPackageVersion"]: p for p in _packages(sm, "cancer-classifier-staging")}
    assert "mlstack:alias:champion" in stg[1]["CustomerMetadataProperties"]
    assert "mlstack:alias:champion" not in stg[3]["CustomerMetadataProperties"]

    # destroy prod, staging, then dev: nothing of any is left on the AWS side
    _cli(tmp_path, "destroy", "-e", "prod", "--auto-approve")
    _cli(tmp_path, "destroy", "-e", "staging", "--auto-approve")
    endpoints = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    assert [e for e in endpoints if e.startswith("cancer-")] == ["cancer-dev"]
    groups = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    names = [g["ModelPackageGroupName"] for g in groups]
    assert [g for g in names if g.startswith("cancer-classifier-")] == ["cancer-classifier-dev"]
    _cli(tmp_path, "destroy", "-e", "dev", "--auto-approve")
    assert [
        e for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"].startswith("cancer-")
    ] == []
    assert [
        p
        for p in sm.list_pipelines()["PipelineSummaries"]
        if p["PipelineName"].startswith("mlstack-quickstart-")
    ] == []
    assert [
        g
        for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        if g["ModelPackageGroupName"].startswith("cancer-classifier-")
    ] == []
    assert [
        c["EndpointConfigName"]
        for c in sm.list_endpoint_configs()["EndpointConfigs"]
        if c["EndpointConfigName"].startswith("cancer-")
    ] == []
    assert [m for m in sm.list_models()["Models"] if m["ModelName"].startswith("cancer-")] == []
    assert cw.describe_alarms(AlarmNamePrefix="cancer-")["MetricAlarms"] == []
