"""The environment block checked without the Kubernetes client; capabilities per serving mode;
the quickstart through the CLI's validate and plan with only `backend:` and cluster settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlstack_kserve.plugin import RAW, SERVERLESS, KServeConfig, plugin
from pydantic import ValidationError
from quickstart_copy import quickstart_project

GOOD = {"namespace": "ml-team", "storage_uri": "s3://ml-artifacts/quickstart"}
RAW_GOOD = {**GOOD, "serving_mode": "RawDeployment", "gateway": {"name": "mlstack-gw"}}
_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]
HEAVY = ("kubernetes", "kserve", "urllib3", "boto3", "botocore", "pulumi", "pulumi_kubernetes")


def _errors(settings: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as e:
        KServeConfig.model_validate(settings)
    return str(e.value)


def test_good_blocks() -> None:
    cfg = KServeConfig.model_validate(GOOD)
    assert (cfg.serving_mode, cfg.bucket, cfg.prefix) == (
        "Serverless",
        "ml-artifacts",
        "quickstart",
    )
    assert cfg.resources.requirements()["limits"] == {"cpu": "500m", "memory": "512Mi"}
    raw = KServeConfig.model_validate(
        {**RAW_GOOD, "storage_uri": "s3://bucket/", "pipelines": "jobs"}
    )
    assert raw.gateway is not None and raw.storage_uri == "s3://bucket"
    assert raw.job_storage_secret == "mlstack-storage"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"storage_uri": "s3://b"}, "namespace\n  Field required"),
        ({**GOOD, "namespace": "ML_team"}, "is not a DNS-1123 label"),
        ({**GOOD, "namespace": "x" * 64}, "at most 63"),
        ({**GOOD, "storage_uri": "file:///tmp/models"}, "must start with s3://"),
        ({**GOOD, "storage_uri": "s3:///prefix"}, "names no bucket"),
        ({**GOOD, "serving_mode": "Raw"}, "'Serverless' or 'RawDeployment'"),
        ({**GOOD, "serving_mode": "RawDeployment"}, "Gateway API HTTPRoute"),
        ({**GOOD, "gateway": {"name": "gw"}}, "only with serving_mode RawDeployment"),
        ({**GOOD, "resources": {"cpu": "half"}}, "is not a Kubernetes quantity"),
        ({**GOOD, "resources": {"memory": "2GB"}}, "is not a Kubernetes quantity"),
        ({**GOOD, "prometheus_url": "prometheus:9090"}, "is not an http(s):// URL"),
        ({**GOOD, "pipelines": "kfp"}, "pipelines: kfp (Kubeflow Pipelines) is not implemented"),
        ({**GOOD, "kfp_host": "http://kfp:8888"}, "kfp_host is for pipelines: kfp"),
        ({**GOOD, "storage_uri": "gs://b/q"}, "gs:// is not supported yet"),
        ({**GOOD, "storage_secret": "S3"}, "is not a DNS-1123 label"),
        ({**GOOD, "service_account": "Ml"}, "is not a DNS-1123 label"),
        ({**GOOD, "namespce": "x"}, "namespce\n  Extra inputs are not permitted"),
    ],
)
def test_config_errors_say_what_is_wrong(settings: dict[str, object], expected: str) -> None:
    assert expected in _errors(settings)


def test_capabilities_per_serving_mode() -> None:
    from mlstack.manifest.models import Deployment

    assert plugin.capabilities_for(GOOD) is SERVERLESS
    assert plugin.capabilities_for(RAW_GOOD) is RAW
    shadow = Deployment(endpoint="e", strategy="shadow", gates={"error_rate": "< 1%"})
    refused = SERVERLESS.explain_rollout(shadow)
    assert refused and "Knative" in refused[0].message and "RawDeployment" in refused[0].hint
    assert RAW.explain_rollout(shadow) == []
    for strategy in ("all_at_once", "blue_green", "canary", "linear"):
        d = Deployment(endpoint="e", strategy=strategy, gates={"latency_p99": "< 500ms"})
        assert SERVERLESS.explain_rollout(d) == [] and RAW.explain_rollout(d) == []
    sticky = Deployment(endpoint="e", strategy="ab")
    assert "request key" in RAW.explain_rollout(sticky)[0].message
    custom = Deployment(endpoint="e", strategy="canary", gates={"accuracy": ">= 0.9"})
    assert "Prometheus" in SERVERLESS.explain_rollout(custom)[0].message


def test_descriptor_imports_no_kubernetes_client() -> None:
    code = (
        "import sys; from mlstack.engine.backend import get_plugin; "
        f"get_plugin('kserve').config_model.model_validate({RAW_GOOD!r}); "
        f"print([m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def quickstart(tmp_path: Path, settings: str) -> Path:
    """The quickstart with `backend: kserve` plus cluster settings in dev, and no other change."""
    return quickstart_project(tmp_path, "kserve", settings)


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "AWS_"))}
    full.update(NO_COLOR="1", **env)
    return subprocess.run(
        [*MLSTACK, *args], cwd=cwd, capture_output=True, text=True, env=full, timeout=120
    )


def test_validate_reports_cluster_settings_at_file_line(tmp_path: Path) -> None:
    quickstart(
        tmp_path,
        "    namespace: ML_team\n    storage_uri: file:///models\n"
        "    serving_mode: RawDeployment\n",
    )
    r = cli(["validate", "-e", "dev"], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "mlstack.yaml:8:5: namespace: namespace 'ML_team' is not a DNS-1123 label" in out
    assert (
        "mlstack.yaml:9:5: storage_uri: storage_uri 'file:///models' must start with s3://" in out
    )
    assert "Traceback" not in out
    # with the names right, the missing gateway is said at the environment's line
    quickstart(
        tmp_path,
        "    namespace: ml-team\n    storage_uri: s3://ml-artifacts/q\n"
        "    serving_mode: RawDeployment\n",
    )
    r = cli(["validate", "-e", "dev"], tmp_path)
    assert r.returncode == 1
    assert "mlstack.yaml:6:3: settings: serving_mode RawDeployment routes traffic with a " in (
        r.stdout + r.stderr
    )


def test_validate_and_help_import_no_kubernetes_client(tmp_path: Path) -> None:
    """The CLI's own process: after validate (and --help) no Kubernetes/KServe module is loaded."""
    quickstart(tmp_path, "    namespace: ml-team\n    storage_uri: s3://ml-artifacts/q\n")
    code = (
        "import sys; from mlstack.cli.main import main\n"
        "for args in (['--help'], ['validate', '--no-cache']):\n"
        "    try:\n        main(args)\n    except SystemExit as e:\n"
        "        assert e.code in (0, None), (args, e.code)\n"
        f"print('HEAVY', [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}])"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "is valid" in r.stdout
    assert "HEAVY []" in r.stdout


def test_shadow_on_serverless_is_refused_at_its_line(tmp_path: Path) -> None:
    quickstart(tmp_path, "    namespace: ml-team\n    storage_uri: s3://ml-artifacts/q\n")
    text = (tmp_path / "mlstack.yaml").read_text()
    (tmp_path / "mlstack.yaml").write_text(
        text.replace("  strategy: all_at_once\n", "  strategy: shadow\n")
    )
    r = cli(["validate"], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1
    assert "strategy 'shadow' is not available on this backend: Knative" in out
    assert "serving_mode: RawDeployment" in out


def test_plan_compiles_stage_jobs_without_a_cluster(tmp_path: Path) -> None:
    import k8s_schemas

    quickstart(tmp_path, "    namespace: ml-team\n    storage_uri: s3://ml-artifacts/q\n")
    r = cli(["plan", "-e", "dev", "--json", "--no-refresh"], tmp_path)
    assert r.returncode in (0, 2), r.stdout + r.stderr
    plan = json.loads(r.stdout)
    changes = {
        c["address"]: {d["path"]: d["after"] for d in c["diff"]} for c in plan["resource_changes"]
    }
    assert plan["backend"] == "kserve"
    assert changes["pipeline.quickstart"]["format"] == "k8s-jobs"
    assert {"model.cancer-classifier", "endpoint.cancer"} <= set(changes)
    # every Job the pipeline would create is a valid batch/v1 Job
    from mlstack.engine.backend import get_plugin
    from mlstack.manifest.load import load, resolve

    backend = get_plugin("kserve").load(
        resolve(load(str(tmp_path / "mlstack.yaml")), "dev"), tmp_path / ".mlstack"
    )
    compiled = backend.compile()
    assert compiled.steps[0] == "ingest" and compiled.steps[-1] == "register"
    for job in compiled.definition["jobs"]:
        assert k8s_schemas.problems(job) == [], job["metadata"]["name"]


def test_kfp_and_gcs_are_refused_at_their_lines(tmp_path: Path) -> None:
    """Accepted settings that apply could not honour are refused by validate, at their line."""
    quickstart(
        tmp_path,
        "    namespace: ml-team\n    storage_uri: gs://models/q\n    pipelines: kfp\n",
    )
    r = cli(["validate", "-e", "dev"], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "mlstack.yaml:9:5: storage_uri: storage_uri 'gs://models/q' must start with s3://" in out
    assert "gs:// is not supported yet" in out
    assert "mlstack.yaml:10:5: pipelines: pipelines: kfp (Kubeflow Pipelines) is not " in out
    assert "use jobs" in out and "Traceback" not in out
