"""The environment block checked without the SDK; the plugin light to import; the CLI's view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlstack_sagemaker.plugin import SageMakerConfig, plugin
from pydantic import ValidationError
from quickstart_copy import quickstart_project

ROLE = "arn:aws:iam::123456789012:role/mlstack-sm"
GOOD = {"region": "eu-west-1", "role": ROLE, "bucket": "mlstack-shop-artifacts"}
_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]


def _errors(settings: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as e:
        SageMakerConfig.model_validate(settings)
    return str(e.value)


def test_good_block_and_given_infrastructure() -> None:
    cfg = SageMakerConfig.model_validate(GOOD)
    assert cfg.infrastructure_given and cfg.hosting_instance_type == "ml.m5.large"
    assert not SageMakerConfig.model_validate({**GOOD, "role": "create"}).infrastructure_given
    assert not SageMakerConfig.model_validate(
        {"region": "us-east-1", "role": ROLE}
    ).infrastructure_given


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"region": "eu-west-1"}, "role\n  Field required"),
        (
            {**GOOD, "region": "eu-wset-1"},
            "unknown AWS region 'eu-wset-1'; did you mean 'eu-west-1'?",
        ),
        ({**GOOD, "region": "europe"}, "unknown AWS region 'europe'"),
        ({**GOOD, "role": "MySageMakerRole"}, "is not an IAM role ARN"),
        (
            {**GOOD, "instance_type": "ml.m5.larg"},
            "unknown instance size 'larg' in 'ml.m5.larg'; did you mean 'large'?",
        ),
        ({**GOOD, "instance_type": "ml.m55.large"}, "unknown SageMaker instance family 'm55'"),
        ({**GOOD, "serving_instance_type": "m5.large"}, "did you mean 'ml.m5.large'?"),
        ({**GOOD, "bucket": "My_Bucket"}, "may contain only lowercase letters"),
        ({**GOOD, "bucket": "ab"}, "must be 3 to 63 characters"),
        ({**GOOD, "bucket": "a..b"}, "two adjacent periods"),
        ({**GOOD, "bucket": "192.168.1.1"}, "must not look like an IP address"),
        ({**GOOD, "bucket": "xn--bucket"}, "must not start with 'xn--'"),
        ({**GOOD, "subnets": ["subnet-0123abcd"]}, "needs both `subnets` and `security_groups`"),
        ({**GOOD, "subnets": ["sub-1"], "security_groups": ["sg-0123abcd"]}, "is not a subnet id"),
        ({**GOOD, "regoin": "eu-west-1"}, "regoin\n  Extra inputs are not permitted"),
    ],
)
def test_config_errors_say_what_is_wrong(settings: dict[str, object], expected: str) -> None:
    assert expected in _errors(settings)


def test_unknown_instance_type_can_be_allowed() -> None:
    cfg = SageMakerConfig.model_validate(
        {**GOOD, "instance_type": "ml.m9z.large", "allow_unknown_instance_types": True}
    )
    assert cfg.instance_type == "ml.m9z.large"


def test_capabilities_declare_native_rollout_and_shadow() -> None:
    from mlstack.manifest.models import Deployment

    caps = plugin.capabilities
    assert caps.native_progressive and caps.mirroring and not caps.sticky_sessions
    for strategy in ("all_at_once", "blue_green", "canary", "linear", "shadow"):
        ok = Deployment(endpoint="e", strategy=strategy, gates={"error_rate": "< 1%"})
        assert caps.explain_rollout(ok) == [], strategy
    sticky = caps.explain_rollout(Deployment(endpoint="e", strategy="ab"))
    assert [r.path for r in sticky] == [("strategy",)]
    assert "TargetVariant" in sticky[0].message and "sticky_key: null" in sticky[0].hint
    assert (
        caps.explain_rollout(Deployment(endpoint="e", strategy="ab", ab={"sticky_key": None})) == []
    )


@pytest.mark.parametrize(
    ("deployment", "line_of", "expected", "hint"),
    [
        (
            "  strategy: ab\n",
            "  strategy: ab",
            "strategy 'ab' is not available on this backend: SageMaker routes each request",
            "sticky_key: null",
        ),
        (
            "  strategy: shadow\n  gates:\n    agreement: '>= 0.9'\n",
            "    agreement: '>= 0.9'",
            "gate 'agreement' cannot be checked on this backend",
            "list it under `alarms:`",
        ),
    ],
)
def test_what_sagemaker_cannot_realise_is_refused_at_the_line(
    tmp_path: Path, deployment: str, line_of: str, expected: str, hint: str
) -> None:
    _quickstart(
        tmp_path,
        f"    region: eu-west-1\n    role: {ROLE}\n    bucket: shop-artifacts\n"
        "    deployment:\n  "
        + deployment.replace("\n  ", "\n      ").replace("  strategy", "    strategy", 1),
    )
    text = (tmp_path / "mlstack.yaml").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == line_of.strip())
    for args in (["validate", "-e", "dev"], ["plan", "-e", "dev", "--no-refresh"]):
        r = _cli(args, tmp_path)
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert f"mlstack.yaml:{line}:" in out and expected in out and hint in out, out
        assert "Traceback" not in out
        assert "environment 'dev'" in out
    # the same deployment on the local backend is accepted
    (tmp_path / "mlstack.yaml").write_text(
        text.replace("    backend: sagemaker\n", "    backend: local\n").replace(
            f"    region: eu-west-1\n    role: {ROLE}\n    bucket: shop-artifacts\n", ""
        )
    )
    r = _cli(["validate", "-e", "dev"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_plugin_import_loads_no_sdk() -> None:
    code = (
        "import sys, mlstack_sagemaker.plugin as p; from mlstack.engine.backend import "
        "get_plugin; get_plugin('sagemaker').config_model.model_validate("
        f"{GOOD!r}); heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'sagemaker', 'pulumi', 'pulumi_aws', 'moto')]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _quickstart(tmp_path: Path, settings: str) -> Path:
    """The quickstart with `backend: sagemaker` plus settings in dev, and no other change."""
    return quickstart_project(tmp_path, "sagemaker", settings)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(NO_COLOR="1", AWS_EC2_METADATA_DISABLED="true")
    return subprocess.run(
        [*MLSTACK, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def test_validate_reports_config_errors_at_file_line(tmp_path: Path) -> None:
    _quickstart(
        tmp_path, "    region: eu-wset-1\n    bucket: Bad_Bucket\n    instance_type: ml.m5.huge\n"
    )
    r = _cli(["validate", "-e", "dev"], tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert (
        "mlstack.yaml:8:5: region: unknown AWS region 'eu-wset-1'; did you mean 'eu-west-1'?" in out
    )
    assert "mlstack.yaml:9:5: bucket: bucket name 'Bad_Bucket'" in out
    assert "mlstack.yaml:10:5: instance_type: unknown instance size 'huge'" in out
    assert "role" in out and "Traceback" not in out


def test_quickstart_on_sagemaker_plans(tmp_path: Path) -> None:
    _quickstart(
        tmp_path,
        f"    region: eu-west-1\n    role: {ROLE}\n    bucket: mlstack-quickstart-artifacts\n",
    )
    r = _cli(["plan", "-e", "dev", "--json", "--no-refresh"], tmp_path)
    assert r.returncode in (0, 2), r.stdout + r.stderr
    assert r.stderr.strip() == ""  # the SDK's logging does not leak to the user
    plan = json.loads(r.stdout)
    changes = {
        c["address"]: {d["path"]: d["after"] for d in c["diff"]} for c in plan["resource_changes"]
    }
    assert plan["backend"] == "sagemaker"
    assert changes["infra.dev"]["provider"] == "environment"
    assert changes["infra.dev"]["model_package_group"] == "cancer-classifier-dev"
    assert changes["infra.dev"]["endpoint"] == "cancer-dev"
    assert changes["pipeline.quickstart"]["format"] == "sagemaker-pipeline"
    assert changes["pipeline.quickstart"]["digest"].startswith("sha256:")
    assert {"run.quickstart", "model.cancer-classifier", "endpoint.cancer"} <= set(changes)
    human = _cli(["plan", "-e", "dev", "--no-refresh"], tmp_path)
    assert "backend sagemaker" in human.stdout and "+ pipeline.quickstart" in human.stdout
    # plan says how the endpoint will roll out, from the strategy table and the backend's notes
    assert (
        "Note: endpoint.cancer rolls out a new version by all traffic to the new version at "
        "once; gates: error_rate < 1%, latency_p99 < 500ms (sagemaker: DeploymentConfig "
        "ALL_AT_ONCE)" in human.stdout
    ), human.stdout


def test_missing_pulumi_cli_is_a_clear_message(tmp_path: Path) -> None:
    _quickstart(tmp_path, "    region: eu-west-1\n    role: create\n")
    r = _cli(["plan", "-e", "dev"], tmp_path)
    assert r.returncode == 1
    out = r.stdout + r.stderr
    assert "the `pulumi` CLI is not on PATH" in out
    assert "curl -fsSL https://get.pulumi.com | sh" in out
    assert "bucket: NAME" in out  # ... or how to skip Pulumi
    assert "Traceback" not in out


def test_missing_pulumi_cli_stops_provision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlstack.engine.backend import Context, get_plugin
    from mlstack.errors import BackendError
    from mlstack.manifest.load import load, resolve

    _quickstart(tmp_path, "    region: eu-west-1\n    role: create\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing named pulumi here
    backend = get_plugin("sagemaker").load(
        resolve(load(str(tmp_path / "mlstack.yaml")), "dev"), tmp_path / ".mlstack"
    )
    with pytest.raises(BackendError) as e:
        backend.provision(
            {"stack": "s", "model_package_group": "g"},
            Context(workdir=tmp_path / ".mlstack", environment="dev"),
        )
    assert "get.pulumi.com" in e.value.render()


def test_refresh_without_aws_credentials_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from mlstack.engine.backend import get_plugin
    from mlstack.errors import BackendError
    from mlstack.manifest.load import load, resolve

    # port 9 on 127.0.0.1: should credentials turn up after all, nothing leaves this machine
    settings = f"    region: eu-west-1\n    role: {ROLE}\n    bucket: qs-artifacts\n"
    _quickstart(tmp_path, settings + "    endpoint_url: http://127.0.0.1:9\n")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # no credentials cached by other tests
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    backend = get_plugin("sagemaker").load(
        resolve(load(str(tmp_path / "mlstack.yaml")), "dev"), tmp_path / ".mlstack"
    )
    with pytest.raises(BackendError) as e:
        backend.observe()
    text = e.value.render()
    assert "cannot reach AWS" in text and "Unable to locate credentials" in text
    assert "mlstack plan --no-refresh" in text


def test_a_function_stage_is_refused_by_validate_and_plan(tmp_path: Path) -> None:
    _quickstart(
        tmp_path,
        "    region: eu-west-1\n    role: arn:aws:iam::123456789012:role/ml\n"
        "    bucket: shop-artifacts\n",
    )
    spec = tmp_path / "mlstack.yaml"
    text = spec.read_text()
    text = text.replace(
        "    - name: register\n",
        "    - name: report\n      function: steps.report:main\n      needs: [evaluate]\n"
        "    - name: register\n",
    )
    spec.write_text(text)
    # the module exists (validate checks that first); what SageMaker refuses is the kind
    (tmp_path / "steps").mkdir(exist_ok=True)
    (tmp_path / "steps" / "report.py").write_text("def main(**_):\n    return None\n")
    line = text.splitlines().index("    - name: report") + 1
    for args in (["validate", "-e", "dev"], ["plan", "-e", "dev", "--no-refresh"]):
        r = _cli(args, tmp_path)
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert f"mlstack.yaml:{line}:" in out
        assert "'function' stages are not available on this backend" in out
        assert "run: python -m" in out and "Traceback" not in out
    # staging receives models by promotion and trains nothing: its stages are not checked
    assert _cli(["validate", "-e", "staging"], tmp_path).returncode == 0


def test_stack_gets_parsed_gates_and_the_job_types_the_pipeline_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stack program is given the gates as parse_threshold reads them (one parser) and the
    job kinds its role must be allowed to create, derived from the stages."""
    pytest.importorskip("pulumi")
    import mlstack_stacks.aws as stack_module
    from mlstack_sagemaker import infra
    from mlstack_sagemaker import pipeline_definition as pdef
    from pulumi import automation as auto

    from mlstack.engine.backend import get_plugin
    from mlstack.manifest.load import load, resolve

    _quickstart(tmp_path, "    region: eu-west-1\n    role: create\n")
    backend = get_plugin("sagemaker").load(
        resolve(load(str(tmp_path / "mlstack.yaml")), "dev"), tmp_path / ".mlstack"
    )
    seen: list[Any] = []
    monkeypatch.setattr(infra, "require_pulumi_cli", lambda: "pulumi")
    monkeypatch.setattr(stack_module, "program", lambda args: seen.append(args))

    class Stack:
        def set_config(self, *_: Any) -> None:
            pass

    monkeypatch.setattr(auto, "create_or_select_stack", lambda **_: Stack())
    inputs = infra.desired(backend.platform)
    assert inputs["job_types"] == ["processing", "training"]
    infra._stack(backend.platform, inputs)
    (args,) = seen
    assert args.job_types == ("processing", "training")
    assert args.gates == {"error_rate": ("<", 0.01), "latency_p99": ("<", 0.5)}

    # a pipeline of processing stages only: its role may not start training jobs
    spec = tmp_path / "mlstack.yaml"
    text = spec.read_text()
    start = text.index("    - name: train")
    spec.write_text(text[:start] + text[text.index("\nmodel:") + 1 :])
    assert pdef.job_types(resolve(load(str(spec)), "dev")) == ("processing",)
