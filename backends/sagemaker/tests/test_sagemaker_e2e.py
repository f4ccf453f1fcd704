"""The SageMaker backend end to end against a moto server on 127.0.0.1 (real HTTP, boto3 + SDK).

moto records pipeline executions but runs no container, so when the backend announces an
execution (``run.started``) the test stands in for the jobs: it writes what the train and evaluate
steps write, ``model.tar.gz`` and ``evaluation.json``, under the execution's S3 prefix.

moto 5.2 lacks UpdateEndpoint: the fixture in conftest.py adds a faithful one (see its docstring),
because a rollout between versions is exactly an UpdateEndpoint with a DeploymentConfig.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SPEC = """\
project: shop
environments:
  dev:
    backend: sagemaker
    region: eu-west-1
    role: arn:aws:iam::123456789012:role/mlstack-sm
    bucket: shop-artifacts
    endpoint_url: {url}
    poll_interval: 0.05
    traffic_shifting: {shifting}
data:
  source: data/rows.csv
  target: label
pipeline:
  stages:
    - name: ingest
      uses: builtin/ingest
    - name: features
      uses: builtin/features
      needs: [ingest]
      with: {{numeric: [x]}}
    - name: train
      uses: builtin/train
      needs: [features]
      with: {{estimator: sklearn.linear_model.LogisticRegression}}
    - name: evaluate
      uses: builtin/evaluate
      needs: [train]
      gates: ["accuracy >= 0.5", "accuracy >= champion.accuracy - 0.05"]
    - name: register
      uses: builtin/register
      needs: [evaluate]
model:
  name: shop-model
deployment:
  endpoint: shop
  strategy: canary
  canary: {{steps: [10, 50, 100], interval: 0s}}
  gates: {{error_rate: "< 1%", latency_p99: "< 300ms"}}
"""


def _project(tmp_path: Path, url: str, shifting: str = "native") -> Any:
    from mlstack.engine.backend import get_plugin
    from mlstack.manifest.load import load, resolve

    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "rows.csv").write_text("x,label\n1,0\n2,1\n3,1\n")
    (tmp_path / "mlstack.yaml").write_text(SPEC.format(url=url, shifting=shifting))
    resolved = resolve(load(str(tmp_path / "mlstack.yaml")), "dev")
    return get_plugin("sagemaker").load(resolved, tmp_path / ".mlstack")


def _model_tar(tag: str) -> bytes:
    files = {
        "model.joblib": f"fitted-pipeline-{tag}".encode(),
        "mlstack-model.json": json.dumps(
            {
                "columns": ["x"],
                "dtypes": {"x": "float"},
                "target": "label",
                "task": "classification",
                "classes": [0, 1],
            }
        ).encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Jobs:
    """Plays the SageMaker jobs moto does not run, and records every event."""

    def __init__(self, s3: Any, accuracy: float, tag: str) -> None:
        self.s3, self.accuracy, self.tag = s3, accuracy, tag
        self.events: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        if event.kind == "run.started":
            prefix, bucket = event.data["prefix"], event.data["bucket"]
            self.s3.put_object(
                Bucket=bucket,
                Body=_model_tar(self.tag),
                Key=f"{prefix}/train/shop-train-0001/output/model.tar.gz",
            )
            self.s3.put_object(
                Bucket=bucket,
                Key=f"{prefix}/evaluate/evaluation.json",
                Body=json.dumps({"metrics": {"accuracy": self.accuracy}}),
            )


def _ctx(tmp_path: Path, emit: Any) -> Any:
    from mlstack.engine.backend import Context

    return Context(workdir=tmp_path / ".mlstack", environment="dev", emit=emit)


def _train(backend: Any, tmp_path: Path, s3: Any, accuracy: float, tag: str) -> Any:
    from mlstack.engine.backend import RunRequest

    jobs = Jobs(s3, accuracy, tag)
    ctx = _ctx(tmp_path, jobs)
    compiled = backend.compile()
    backend.upsert_pipeline(compiled, ctx)
    run = backend.run_pipeline(
        compiled,
        RunRequest(
            stages=("ingest", "features", "train", "evaluate", "register"),
            reasons={},
            cache_keys={"train": tag},
            data_digest=f"sha256:{tag}",
        ),
        ctx,
    )
    return run, backend.register(run, ctx), jobs


def _state(version: Any, weight: float = 100.0, shadow: float = 0.0) -> Any:
    from mlstack.engine.backend import Backing, EndpointState

    return EndpointState(
        name="shop",
        model="shop-model",
        backings=(
            Backing(
                version=version.version,
                uri=version.uri,
                digest=version.digest,
                weight=weight,
                shadow=shadow,
            ),
        ),
    )


def _plan(new: Any, previous: Any, strategy: str, gates: dict[str, str], **params: Any) -> Any:
    """The controller's plan for ``strategy`` (the strategy table's phases made concrete)."""
    from mlstack.engine.backend import Backing, RolloutPlan
    from mlstack.engine.rollout import plan_phases
    from mlstack.manifest.models import Deployment

    spec: dict[str, Any] = {"endpoint": "shop", "strategy": strategy, "gates": gates}
    if params:
        spec[strategy] = params
    d = Deployment.model_validate(spec)
    backing = Backing(new.version, new.uri, new.digest, 100.0)
    phases, _ = plan_phases(d, "shop-model", backing, previous)
    return RolloutPlan(
        target=phases[-1].state,
        previous=previous,
        strategy=strategy,
        phases=tuple(phases),
        gates=gates,
        min_requests=d.min_requests,
        # these runs send no traffic: an environment that opted in to promote unjudged, so the
        # guarded update is SageMaker's own (holding is tested in test_sagemaker_rollout_plan)
        on_inconclusive="promote",
    )


def _weights(sm: Any) -> dict[str, float]:
    d = sm.describe_endpoint(EndpointName="shop-dev")
    return {v["VariantName"]: v["CurrentWeight"] for v in d["ProductionVariants"]}


def test_apply_promote_rollout_rollback_destroy(
    aws_env: str, tmp_path: Path, strict_aws: Any, fail_updates: dict[str, str]
) -> None:
    import boto3
    from mlstack_sagemaker.pipelines import artifact_digest

    from mlstack.engine.backend import Backing, EndpointState

    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="eu-west-1")
    sm = boto3.client("sagemaker", endpoint_url=aws_env, region_name="eu-west-1")
    cw = boto3.client("cloudwatch", endpoint_url=aws_env, region_name="eu-west-1")
    s3.create_bucket(
        Bucket="shop-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    backend = _project(tmp_path, aws_env)
    ctx = _ctx(tmp_path, lambda e: None)

    # apply: infrastructure given in the environment block -> no Pulumi; the group is ensured
    infra = backend.provision(backend.infrastructure(), ctx)
    assert infra.provisioned_by == "environment"
    assert sm.describe_model_package_group(ModelPackageGroupName="shop-model-dev")

    # apply: pipeline created, execution started and followed, model package registered
    run1, v1, jobs = _train(backend, tmp_path, s3, accuracy=0.9, tag="a")
    pipe = sm.describe_pipeline(PipelineName="mlstack-shop-dev")
    definition = json.loads(pipe["PipelineDefinition"])
    assert [s["Name"] for s in definition["Steps"]] == [
        "ingest",
        "features",
        "train",
        "evaluate",
        "evaluate-gates",
    ]
    execs = sm.list_pipeline_executions(PipelineName="mlstack-shop-dev")
    assert len(execs["PipelineExecutionSummaries"]) == 1
    params = {
        p["Name"]: p["Value"]
        for p in sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=run1.run_id)[
            "PipelineParameters"
        ]
    }
    assert params["ArtifactBucket"] == "shop-artifacts"
    assert params["InputData"].startswith("s3://shop-artifacts/mlstack/shop/data/")
    assert float(params["GateEvaluate1"]) < -1e29  # no champion yet: the regression gate passes
    assert run1.status == "succeeded" and run1.metrics == {"accuracy": 0.9}
    assert run1.model_digest == artifact_digest(_model_tar("a"))
    assert {e.kind for e in jobs.events} >= {"pipeline.created", "run.started", "run.done"}
    assert (v1.version, v1.approved, v1.metrics) == ("1", False, {"accuracy": 0.9})
    pkg = sm.describe_model_package(ModelPackageName=v1.uri)
    assert pkg["ModelApprovalStatus"] == "PendingManualApproval"

    # first deployment creates the endpoint
    first = backend.rollout(_plan(v1, None, "canary", {"error_rate": "< 1%"}), ctx)
    assert sm.describe_endpoint(EndpointName="shop-dev")["EndpointStatus"] == "InService"
    assert first.endpoint.weights() == {"1": 100.0} and first.outcome == "promoted"
    assert _weights(sm) == {"primary": 1.0}  # the variant the stack's alarms watch
    assert backend.deploy(_state(v1), ctx).weights() == {"1": 100.0}  # idempotent

    # promote: approval is the gate; the champion's metric becomes the regression bound
    backend.set_alias("shop-model", "champion", "1", ctx)
    pkg = sm.describe_model_package(ModelPackageName=v1.uri)
    assert pkg["ModelApprovalStatus"] == "Approved"
    assert pkg["CustomerMetadataProperties"]["mlstack:alias:champion"] == "true"
    run2, v2, _ = _train(backend, tmp_path, s3, accuracy=0.93, tag="b")
    params = {
        p["Name"]: p["Value"]
        for p in sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=run2.run_id)[
            "PipelineParameters"
        ]
    }
    assert float(params["GateEvaluate1"]) == pytest.approx(0.85)
    assert v2.version == "2" and v2.digest != v1.digest

    # a one-step canary is what SageMaker does itself: one UpdateEndpoint carrying the whole
    # strategy and the gate alarms
    gates = {"error_rate": "< 1%", "latency_p99": "< 300ms"}
    plan = _plan(v2, _state(v1), "canary", gates, steps=[10, 100], interval=300)
    out = backend.rollout(plan, ctx)
    assert out.endpoint.weights() == {"2": 100.0} and out.outcome == "promoted"
    described = sm.describe_endpoint(EndpointName="shop-dev")
    policy = described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "WaitIntervalInSeconds": 300,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
    }
    alarms = [
        a["AlarmName"]
        for a in described["LastDeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    assert alarms == ["shop-dev-error-rate", "shop-dev-latency-p99"]
    assert {a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]} >= set(alarms)

    # a firing alarm: SageMaker rolls back by itself; the backend reports it as a failed gate
    run3, v3, _ = _train(backend, tmp_path, s3, accuracy=0.94, tag="c")
    cw.set_alarm_state(
        AlarmName="shop-dev-error-rate", StateValue="ALARM", StateReason="test: errors"
    )
    rolled_back = backend.rollout(
        _plan(v3, _state(v2), "linear", {"error_rate": "< 1%"}, step=20, interval=60), ctx
    )
    linear = sm.describe_endpoint(EndpointName="shop-dev")["LastDeploymentConfig"]
    assert linear["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["LinearStepSize"] == {
        "Type": "CAPACITY_PERCENT",
        "Value": 20,
    }
    assert rolled_back.outcome == "rolled_back"
    assert "SageMaker rolled shop-dev back" in rolled_back.reason
    assert "shop-dev-error-rate in ALARM" in rolled_back.reason
    assert backend.endpoint_status("shop").weights() == {"2": 100.0}
    cw.set_alarm_state(AlarmName="shop-dev-error-rate", StateValue="OK", StateReason="test")

    # a failed update (SageMaker back in service on the old config, with a FailureReason) is a
    # failure, never a deployment: the error says why and the old version still serves
    from mlstack.errors import BackendError

    fail_updates["shop-dev"] = (
        "The primary container for production variant primary did not pass the ping health check."
    )
    with pytest.raises(BackendError, match="update of endpoint shop-dev failed: The primary"):
        backend.rollout(_plan(v3, _state(v2), "canary", gates, steps=[10, 100], interval=60), ctx)
    assert backend.endpoint_status("shop").weights() == {"2": 100.0}
    assert sm.describe_endpoint(EndpointName="shop-dev")["EndpointStatus"] == "InService"

    # several canary steps (SageMaker's CANARY has one): every step is realised as weighted
    # variants, the alarms watch the new version's own variant, so a bad canary is caught at
    # its first step although it has only 10 % of the traffic
    stepped = backend
    canary_alarm = "shop-dev-v3-error-rate"

    def break_canary(event: Any) -> None:
        if event.kind == "rollout.step" and event.data["traffic"] == 10:
            assert _weights(sm) == {"v2": 0.9, "v3": 0.1}
            cw.set_alarm_state(AlarmName=canary_alarm, StateValue="ALARM", StateReason="test: 5xx")

    v2_to_v3 = _plan(v3, _state(v2), "canary", gates, steps=[10, 50, 100], interval=0)
    stopped = stepped.rollout(v2_to_v3, _ctx(tmp_path, break_canary))
    assert stopped.outcome == "rolled_back"
    assert f"stopped at canary 10%: alarm {canary_alarm} fired" in stopped.reason
    # the restored version serves alone again as `primary`, which the stack's alarms watch
    assert _weights(sm) == {"primary": 1.0}
    watched = {
        a["AlarmName"]: {
            d["Name"]: d["Value"]
            for d in a.get("Dimensions")
            or [
                d
                for q in a.get("Metrics", [])
                if "MetricStat" in q
                for d in q["MetricStat"]["Metric"]["Dimensions"]
            ]
        }
        for a in cw.describe_alarms(AlarmNamePrefix="shop-dev-v3-")["MetricAlarms"]
    }
    assert watched == {
        "shop-dev-v3-error-rate": {"EndpointName": "shop-dev", "VariantName": "v3"},
        "shop-dev-v3-latency-p99": {"EndpointName": "shop-dev", "VariantName": "v3"},
    }

    # weights change step by step; the stale ALARM of the failed attempt does not block a retry
    seen: list[dict[str, float]] = []

    def watch(event: Any) -> None:
        if event.kind == "rollout.step":
            seen.append(_weights(sm))

    out = stepped.rollout(v2_to_v3, _ctx(tmp_path, watch))
    assert seen == [{"v2": 0.9, "v3": 0.1}, {"v2": 0.5, "v3": 0.5}, {"primary": 1.0}]
    assert out.endpoint.weights() == {"3": 100.0}
    assert out.phases_done == ("canary 10%", "canary 50%", "canary 100%")
    state = cw.describe_alarms(AlarmNames=[canary_alarm])["MetricAlarms"][0]["StateValue"]
    assert state != "ALARM"

    # strategy shadow: during the shadow phase the new version is a ShadowProductionVariant
    # (looked at through the AWS API while the phase holds), then it takes all traffic
    run4, v4, _ = _train(backend, tmp_path, s3, accuracy=0.95, tag="d")
    during: list[Any] = []

    def look(event: Any) -> None:
        if event.kind == "rollout.step" and event.data["shadow"]:
            d = sm.describe_endpoint(EndpointName="shop-dev")
            cfg = sm.describe_endpoint_config(EndpointConfigName=d["EndpointConfigName"])
            during.append(
                (
                    _weights(sm),
                    [
                        (v["VariantName"], v["InitialVariantWeight"])
                        for v in cfg.get("ShadowProductionVariants", [])
                    ],
                    [v["VariantName"] for v in d.get("ShadowProductionVariants", [])],
                )
            )

    mirrored = backend.rollout(
        _plan(v4, _state(v3), "shadow", gates, percent=50, duration=0), _ctx(tmp_path, look)
    )
    assert during == [({"primary": 1.0}, [("v4", 0.5)], ["v4"])]
    assert mirrored.outcome == "promoted"
    assert mirrored.phases_done == ("shadow 50% mirrored", "all traffic to new version")
    after = sm.describe_endpoint(EndpointName="shop-dev")
    assert _weights(sm) == {"primary": 1.0} and not after.get("ShadowProductionVariants")
    assert {
        a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix="shop-dev-v4-")["MetricAlarms"]
    } == {
        "shop-dev-v4-error-rate",
        "shop-dev-v4-latency-p99",
    }

    # a breach on the shadow variant's own alarm stops it before it serves anyone
    run5, v5, _ = _train(backend, tmp_path, s3, accuracy=0.96, tag="e")

    def break_shadow(event: Any) -> None:
        if event.kind == "rollout.step" and event.data["shadow"]:
            cw.set_alarm_state(
                AlarmName="shop-dev-v5-error-rate", StateValue="ALARM", StateReason="test: 5xx"
            )

    blocked = backend.rollout(
        _plan(v5, _state(v4), "shadow", gates, percent=50, duration=0),
        _ctx(tmp_path, break_shadow),
    )
    assert blocked.outcome == "rolled_back"
    assert "stopped at shadow 50% mirrored: alarm shop-dev-v5-error-rate fired" in blocked.reason
    assert blocked.phases_done == ("shadow 50% mirrored",)
    assert _weights(sm) == {"primary": 1.0}
    assert not sm.describe_endpoint(EndpointName="shop-dev").get("ShadowProductionVariants")

    # SageMaker accepts one shadow variant beside one production variant: more is refused here,
    # before any model or config is made
    two_shadows = EndpointState(
        "shop",
        "shop-model",
        _state(v4).backings
        + tuple(Backing(v.version, v.uri, v.digest, 0.0, shadow=20.0) for v in (v3, v5)),
    )
    configs = len(sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"])
    with pytest.raises(BackendError, match="one production and one shadow variant"):
        backend.deploy(two_shadows, ctx)
    assert len(sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]) == configs

    # a/b without a sticky key (a sticky one is refused by validate): weighted variants
    from mlstack.engine.rollout import run_rollout
    from mlstack.manifest.models import Deployment

    ab = Deployment.model_validate(
        {
            "endpoint": "shop",
            "strategy": "ab",
            "ab": {"weights": {"champion": 70, "challenger": 30}, "sticky_key": None},
        }
    )
    split = run_rollout(
        backend, ab, "shop-model", Backing(v5.version, v5.uri, v5.digest, 100.0), _state(v4), ctx
    )
    assert split.outcome == "promoted" and split.state.weights() == {"4": 70.0, "5": 30.0}
    assert _weights(sm) == {"v4": 0.7, "v5": 0.3}
    backend.deploy(_state(v4), ctx)

    # shadow: v2 mirrors half the requests of v3 as a ShadowProductionVariant
    shadow = EndpointState(
        name="shop",
        model="shop-model",
        backings=(
            Backing(v3.version, v3.uri, v3.digest, weight=100.0),
            Backing(v2.version, v2.uri, v2.digest, weight=0.0, shadow=50.0),
        ),
    )
    stepped.deploy(shadow, ctx)
    d = sm.describe_endpoint(EndpointName="shop-dev")
    cfg = sm.describe_endpoint_config(EndpointConfigName=d["EndpointConfigName"])
    assert [
        (v["VariantName"], v["InitialVariantWeight"]) for v in cfg["ShadowProductionVariants"]
    ] == [("v2", 0.5)]

    # rollback: the previous known-good state, restored at once
    backend.deploy(_state(v1), ctx)
    assert backend.endpoint_status("shop").weights() == {"1": 100.0}
    metrics = backend.metrics("shop", since=0.0)  # moto has no datapoints: zeros, not errors
    assert metrics["1"].requests == 0 and metrics["1"].latency_p99 is None

    observed = backend.observe()
    assert set(observed.resources) == {
        "infra.dev",
        "pipeline.shop",
        "model.shop-model",
        "endpoint.shop",
    }
    assert observed.resources["model.shop-model"]["version"] == "5"
    assert observed.resources["endpoint.shop"]["champion"] == "1"
    assert observed.resources["pipeline.shop"]["digest"] == backend.compile().digest

    # destroy removes endpoint (configs, models), pipeline and registry entries
    for address, kind in (
        ("endpoint.shop", "endpoint"),
        ("model.shop-model", "model"),
        ("pipeline.shop", "pipeline"),
    ):
        backend.destroy(address, kind, {}, ctx)
    assert [
        e for e in sm.list_endpoints()["Endpoints"] if e["EndpointName"].startswith("shop-")
    ] == []
    assert [
        c
        for c in sm.list_endpoint_configs()["EndpointConfigs"]
        if c["EndpointConfigName"].startswith("shop-dev")
    ] == []
    assert [m for m in sm.list_models()["Models"] if m["ModelName"].startswith("shop-dev")] == []
    assert [
        p
        for p in sm.list_pipelines()["PipelineSummaries"]
        if p["PipelineName"].startswith("mlstack-shop-")
    ] == []
    assert [
        g
        for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
        if g["ModelPackageGroupName"].startswith("shop-model-")
    ] == []
    assert cw.describe_alarms(AlarmNamePrefix="shop-dev-")["MetricAlarms"] == []
    # The backend's own calls went through the strict check (conftest's autouse strict_aws).
    assert {
        "sagemaker:CreatePipeline",
        "sagemaker:StartPipelineExecution",
        "sagemaker:CreateModel",
        "sagemaker:CreateEndpointConfig",
        "sagemaker:CreateEndpoint",
        "sagemaker:UpdateEndpoint",
        "sagemaker:DeleteEndpoint",
    } <= set(strict_aws.calls)


def test_a_failed_run_and_a_cancelled_run(
    aws_env: str,
    tmp_path: Path,
    fail_executions: dict[str, tuple[str, str]],
    stop_calls: dict[str, int],
) -> None:
    """Step statuses come from ListPipelineExecutionSteps: a failing step is reported with
    SageMaker's reason, and a cancel stops the execution once and waits for Stopped."""
    import boto3
    from botocore.exceptions import ClientError

    from mlstack.engine.backend import RunRequest

    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="eu-west-1")
    try:
        s3.create_bucket(
            Bucket="shop-artifacts", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    except ClientError as e:
        assert e.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    backend = _project(tmp_path, aws_env)
    backend.provision(backend.infrastructure(), _ctx(tmp_path, lambda e: None))
    compiled = backend.compile()
    backend.upsert_pipeline(compiled, _ctx(tmp_path, lambda e: None))

    def run(tag: str, ctx: Any) -> Any:
        request = RunRequest(
            stages=("ingest", "features", "train", "evaluate", "register"),
            reasons={},
            cache_keys={"train": tag},
            data_digest=f"sha256:{tag}",
        )
        return backend.run_pipeline(compiled, request, ctx)

    reason = "AlgorithmError: the training container exited with code 1"
    fail_executions["mlstack-shop-dev"] = ("train", reason)
    jobs = Jobs(s3, 0.9, "failing")
    failed = run("failing", _ctx(tmp_path, jobs))
    assert failed.status == "failed"
    assert reason in failed.detail
    assert failed.stages["ingest"] == "ran" and failed.stages["features"] == "ran"
    assert failed.stages["train"] == "failed"
    assert failed.stages["evaluate"] == "skipped" and failed.stages["register"] == "skipped"
    stage_events = [(e.kind, e.subject) for e in jobs.events if e.kind.startswith("stage.")]
    assert stage_events == [
        ("stage.start", "ingest"),
        ("stage.done", "ingest"),
        ("stage.done", "features"),
        ("stage.failed", "train"),
    ]
    assert next(e for e in jobs.events if e.kind == "stage.failed").data == {"reason": reason}

    cancel = _ctx(tmp_path, lambda e: None)

    def cancel_on_start(event: Any) -> None:
        if event.kind == "run.started":
            cancel.cancel.set()

    cancelled = run("cancelled", replace(cancel, emit=cancel_on_start))
    assert cancelled.status == "cancelled"
    assert stop_calls == {cancelled.run_id: 1}


def test_predict_is_one_invoke_endpoint_as_the_backend_builds_it(
    aws_env: str, tmp_path: Path, strict_aws: Any
) -> None:
    """``Backend.predict`` on SageMaker: one ``InvokeEndpoint`` (sagemaker-runtime).

    moto's sagemaker-runtime does not run a model: ``InvokeEndpoint`` answers with a canned body,
    here one queued through moto's ``/moto-api/static/sagemaker/endpoint-results``. So the test
    asserts what the backend decides: a missing or still-Creating endpoint is a clear error
    before any call, the request goes to this environment's endpoint with the body as JSON, the
    content types the model package declares, the environment's credentials and the caller's
    read timeout, and the answer is decoded with the version of the variant that served it.
    """
    import urllib.request

    import boto3
    from mlstack_sagemaker.invoke import REQUEST_CONTENT_TYPE, RESPONSE_CONTENT_TYPE

    from mlstack.errors import BackendError

    backend = _project(tmp_path, aws_env)
    with pytest.raises(BackendError, match="SageMaker endpoint shop-dev does not exist"):
        backend.predict("shop", {"instances": [{"x": 1.0}]}, timeout=5)

    # an endpoint to call (its model is never run by moto)
    sm = boto3.client("sagemaker", endpoint_url=aws_env, region_name="eu-west-1")
    sm.create_model(
        ModelName="shop-dev-m",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/mlstack-sm",
        PrimaryContainer={"Image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="shop-dev-c",
        ProductionVariants=[
            {
                "VariantName": "v7",
                "ModelName": "shop-dev-m",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="shop-dev", EndpointConfigName="shop-dev-c")
    with pytest.raises(BackendError, match="shop-dev is Creating, not serving"):
        backend.predict("shop", {"instances": [{"x": 1.0}]}, timeout=5)
    for _ in range(10):
        if sm.describe_endpoint(EndpointName="shop-dev")["EndpointStatus"] == "InService":
            break
    answer = {"predictions": [1], "probabilities": [[0.2, 0.8]]}
    queued = {
        "region": "eu-west-1",
        "results": [
            {
                "Body": json.dumps(answer),
                "ContentType": "application/json",
                "InvokedProductionVariant": "v7",
                "CustomAttributes": "",
            }
        ],
    }
    urllib.request.urlopen(
        urllib.request.Request(
            f"{aws_env}/moto-api/static/sagemaker/endpoint-results",
            data=json.dumps(queued).encode(),
            headers={"content-type": "application/json"},
        )
    ).read()

    sent: list[Any] = []
    runtime = backend.aws.client("sagemaker-runtime", 5)  # the client predict's timeout picks
    runtime.meta.events.register(
        "before-send.sagemaker-runtime.InvokeEndpoint", lambda request, **kw: sent.append(request)
    )
    try:
        got = backend.predict("shop", {"instances": [{"x": 1.0}]}, timeout=5)
        assert got.body == answer and got.version == "7"
        assert got.target == "shop-dev (InvokeEndpoint)"
        assert runtime.meta.config.read_timeout == 5
        (req,) = sent
        assert req.method == "POST" and req.url == f"{aws_env}/endpoints/shop-dev/invocations"
        headers = {
            k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in req.headers.items()
        }
        assert headers["content-type"] == REQUEST_CONTENT_TYPE == "application/json"
        assert headers["accept"] == RESPONSE_CONTENT_TYPE == "application/json"
        assert json.loads(req.body) == {"instances": [{"x": 1.0}]}
        assert "Credential=testing/" in headers["authorization"]  # the environment's keys
        # the backend's calls (checked against docs/sagemaker-aws.md), not the test's setup
        assert strict_aws.backend_calls[-2:] == [
            ("sagemaker", "DescribeEndpoint"),
            ("sagemaker-runtime", "InvokeEndpoint"),
        ]
        assert ("sagemaker", "CreateEndpoint") not in strict_aws.backend_calls
    finally:
        sm.delete_endpoint(EndpointName="shop-dev")
        sm.delete_endpoint_config(EndpointConfigName="shop-dev-c")
        sm.delete_model(ModelName="shop-dev-m")


def test_promotion_into_an_environment_with_its_own_bucket_copies_the_artifact(
    aws_env: str, tmp_path: Path
) -> None:
    """The target's role can read only the target's bucket: import_version copies the model
    artifact there (S3 CopyObject), registers the copy, and the digest is unchanged."""
    import boto3

    from mlstack.engine.backend import get_plugin
    from mlstack.errors import BackendError
    from mlstack.manifest.load import load, resolve

    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="eu-west-1")
    have = {b["Name"] for b in s3.list_buckets()["Buckets"]}  # the moto server is shared
    for bucket in {"shop-artifacts", "shop-prod-artifacts"} - have:
        s3.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    dev = _project(tmp_path, aws_env)
    ctx = _ctx(tmp_path, lambda e: None)
    dev.provision(dev.infrastructure(), ctx)
    _, v1, _ = _train(dev, tmp_path, s3, accuracy=0.9, tag="copy")

    spec = tmp_path / "mlstack.yaml"
    prod_env = (
        "  prod:\n    backend: sagemaker\n    region: eu-west-1\n"
        "    role: arn:aws:iam::123456789012:role/mlstack-sm-prod\n"
        f"    bucket: shop-prod-artifacts\n    endpoint_url: {aws_env}\n"
        "    poll_interval: 0.05\n    promote_from: dev\n"
    )
    spec.write_text(spec.read_text().replace("data:\n", prod_env + "data:\n", 1))
    prod = get_plugin("sagemaker").load(resolve(load(str(spec)), "prod"), tmp_path / ".mlstack")
    events: list[Any] = []
    prod_ctx = _ctx(tmp_path, events.append)
    prod.provision(prod.infrastructure(), prod_ctx)

    source_uri = v1.lineage["model_data_url"]
    assert source_uri.startswith("s3://shop-artifacts/")
    imported = prod.import_version(v1, prod_ctx)
    copied_uri = imported.lineage["model_data_url"]
    assert copied_uri.startswith("s3://shop-prod-artifacts/mlstack/shop/prod/models/")
    assert imported.digest == v1.digest
    key = copied_uri.removeprefix("s3://shop-prod-artifacts/")
    src_key = source_uri.removeprefix("s3://shop-artifacts/")
    copied = s3.get_object(Bucket="shop-prod-artifacts", Key=key)["Body"].read()
    assert copied == s3.get_object(Bucket="shop-artifacts", Key=src_key)["Body"].read()
    assert any(e.kind == "log" and "copied" in e.message for e in events)

    # an artifact changed in the source bucket after registration is refused, not promoted
    s3.put_object(Bucket="shop-artifacts", Key=src_key, Body=_model_tar("tampered"))
    with pytest.raises(BackendError, match="not the version's"):
        prod.import_version(replace(v1, version="1"), prod_ctx)
