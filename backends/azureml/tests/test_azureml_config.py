"""The Azure ML environment block checked without the SDK; the descriptor light to import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlstack_azureml.plugin import AzureMLConfig, endpoint_name_problem, plugin
from pydantic import ValidationError
from quickstart_copy import quickstart_project

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
GOOD = {
    "subscription_id": SUB,
    "resource_group": "ml-rg",
    "workspace": "shop-dev",
    "region": "westeurope",
}
_SCRIPT = Path(sys.executable).parent / "mlstack"
MLSTACK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "mlstack.cli.main"]
AZURE_SETTINGS = (
    f"    subscription_id: {SUB}\n    resource_group: ml-rg\n    workspace: shop-dev\n"
    "    region: westeurope\n"
)


def _errors(settings: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as e:
        AzureMLConfig.model_validate(settings)
    return str(e.value)


def test_good_block_defaults() -> None:
    cfg = AzureMLConfig.model_validate({**GOOD, "subscription_id": SUB.upper()})
    assert cfg.subscription_id == SUB and not cfg.creates_workspace
    assert cfg.compute == "cpu-cluster" and cfg.serving_sku == "Standard_DS3_v2"
    assert AzureMLConfig.model_validate({**GOOD, "workspace": "create"}).creates_workspace


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"subscription_id": SUB}, "resource_group\n  Field required"),
        ({**GOOD, "subscription_id": "my-subscription"}, "is not a GUID"),
        ({**GOOD, "resource_group": "rg with space"}, "use 1 to 90 letters"),
        ({**GOOD, "resource_group": "rg."}, "must not end with a period"),
        ({**GOOD, "resource_group": "r" * 91}, "use 1 to 90 letters"),
        ({**GOOD, "workspace": "ws"}, "use 3 to 33 letters"),
        ({**GOOD, "workspace": "-ws-dev"}, "use 3 to 33 letters"),
        ({**GOOD, "workspace": "w" * 34}, "use 3 to 33 letters"),
        (
            {**GOOD, "region": "westeurpe"},
            "unknown Azure region 'westeurpe'; did you mean 'westeurope'?",
        ),
        ({**GOOD, "region": "eu-west-1"}, "unknown Azure region 'eu-west-1'"),
        ({**GOOD, "compute": "1cluster"}, "cluster names are 2 to 16"),
        ({**GOOD, "compute": "c" * 17}, "cluster names are 2 to 16"),
        ({**GOOD, "compute_sku": "DS3_v2"}, "did you mean 'Standard_DS3_v2'?"),
        ({**GOOD, "compute_sku": "standard_ds3_v2"}, "did you mean 'Standard_DS3_v2'?"),
        ({**GOOD, "compute_sku": "Standard_Q4_v2"}, "unknown Azure VM family 'Q'"),
        ({**GOOD, "serving_sku": "Standard_D2_v3"}, "not offered for managed online endpoints"),
        ({**GOOD, "max_nodes": 0}, "greater than or equal to 1"),
        ({**GOOD, "regoin": "westeurope"}, "regoin\n  Extra inputs are not permitted"),
    ],
)
def test_config_errors_say_what_is_wrong(settings: dict[str, object], expected: str) -> None:
    assert expected in _errors(settings)


def test_unknown_skus_can_be_allowed_and_cluster_skus_need_not_serve() -> None:
    cfg = AzureMLConfig.model_validate(
        {**GOOD, "allow_unknown_skus": True, "serving_sku": "Standard_Z9_v9"}
    )
    assert cfg.serving_sku == "Standard_Z9_v9"
    assert AzureMLConfig.model_validate({**GOOD, "compute_sku": "Standard_D2_v3"})


def test_endpoint_names() -> None:
    assert endpoint_name_problem("cancer-dev") is None
    for bad in ("ab", "1cancer", "cancer-", "c" * 33, "cancer_dev"):
        assert endpoint_name_problem(bad), bad


def test_capabilities_shadow_native_at_most_half_and_ab_refused() -> None:
    from mlstack.manifest.models import Deployment

    caps = plugin.capabilities
    assert caps.mirroring and caps.max_mirror_percent == 50.0 and not caps.sticky_sessions
    for strategy in ("all_at_once", "blue_green", "canary", "linear", "shadow"):
        ok = Deployment(
            endpoint="e", strategy=strategy, gates={"error_rate": "< 1%"}, shadow={"percent": 50}
        )
        assert caps.explain_rollout(ok) == [], strategy
    # shadow's default mirrors every request: more than Azure's 50 %
    assert caps.explain_rollout(Deployment(endpoint="e", strategy="shadow"))
    too_much = caps.explain_rollout(
        Deployment(endpoint="e", strategy="shadow", shadow={"percent": 60})
    )
    assert [r.path for r in too_much] == [("shadow", "percent")]
    sticky = caps.explain_rollout(Deployment(endpoint="e", strategy="ab"))
    assert [r.path for r in sticky] == [("strategy",)]
    assert "azureml-model-deployment" in sticky[0].message and "sticky_key: null" in sticky[0].hint
    custom = caps.explain_rollout(Deployment(endpoint="e", gates={"agreement": ">= 0.9"}))
    assert [r.path for r in custom] == [("gates", "agreement")]


def quickstart(tmp_path: Path, settings: str = AZURE_SETTINGS, extra: str = "") -> Path:
    """The quickstart with `backend: azureml` plus Azure settings in dev, and no other change."""
    return quickstart_project(tmp_path, "azureml", settings + extra)


def cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    full.update(NO_COLOR="1", **env)
    return subprocess.run(
        [*MLSTACK, *args], cwd=cwd, capture_output=True, text=True, env=full, timeout=120
    )


def test_validate_reports_config_errors_at_file_line(tmp_path: Path) -> None:
    quickstart(
        tmp_path,
        "    subscription_id: nope\n    resource_group: ml-rg\n    workspace: shop-dev\n"
        "    region: westeurpe\n    serving_sku: Standard_DS3\n",
    )
    r = cli(["validate", "-e", "dev"], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "mlstack.yaml:8:5: subscription_id: subscription_id 'nope' is not a GUID" in out
    assert "mlstack.yaml:11:5: region: unknown Azure region 'westeurpe'" in out
    assert "mlstack.yaml:12:5: serving_sku:" in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("deployment", "line_of", "expected"),
    [
        ("    deployment:\n      strategy: ab\n", "strategy: ab", "azureml-model-deployment"),
        (
            "    deployment:\n      strategy: shadow\n      shadow: {percent: 80}\n",
            "shadow: {percent: 80}",
            "more than this backend mirrors (50%)",
        ),
    ],
)
def test_what_azure_cannot_realise_is_refused_at_the_line(
    tmp_path: Path, deployment: str, line_of: str, expected: str
) -> None:
    quickstart(tmp_path, extra=deployment)
    text = (tmp_path / "mlstack.yaml").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == line_of)
    r = cli(["validate", "-e", "dev"], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert f"mlstack.yaml:{line}:" in out and expected in out and "Traceback" not in out


def test_help_and_validate_import_no_azure_sdk(tmp_path: Path) -> None:
    quickstart(tmp_path)
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['mlstack'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('mlstack.cli.main', run_name='__main__')\n"
        "except SystemExit as e:\n    code = e.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('azure', 'pulumi', 'pulumi_azure_native', 'mlstack_stacks', 'sklearn'))\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    for args in (["--help"], ["validate", "-e", "dev"]):
        r = subprocess.run(
            [sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True
        )
        assert "HEAVY [] " in r.stderr, r.stdout + r.stderr
        assert r.stderr.strip().endswith(("None", "0")), r.stderr


def test_quickstart_on_azureml_plans_without_credentials_or_sdk(tmp_path: Path) -> None:
    import json

    quickstart(tmp_path)
    r = cli(["plan", "-e", "dev", "--json", "--no-refresh"], tmp_path)
    assert r.returncode in (0, 2), r.stdout + r.stderr
    plan = json.loads(r.stdout)
    changes = {
        c["address"]: {d["path"]: d["after"] for d in c["diff"]} for c in plan["resource_changes"]
    }
    assert plan["backend"] == "azureml"
    assert changes["infra.dev"]["provider"] == "environment"
    assert changes["infra.dev"]["workspace"] == "shop-dev"
    assert changes["infra.dev"]["endpoint"] == "cancer-dev"
    assert changes["pipeline.quickstart"]["format"] == "azureml-pipeline-job"
    assert {"run.quickstart", "model.cancer-classifier", "endpoint.cancer"} <= set(changes)
    human = cli(["plan", "-e", "dev", "--no-refresh"], tmp_path)
    assert "(azureml: the new deployment takes 100% of `traffic`)" in human.stdout, human.stdout
    # plan imported no Azure SDK: run it in-process and look at sys.modules
    probe = (
        "import sys, runpy\nsys.argv = ['mlstack', 'plan', '-e', 'dev', '--no-refresh']\n"
        "try:\n    runpy.run_module('mlstack.cli.main', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] == 'azure'), "
        "file=sys.stderr)\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert "HEAVY []" in r.stderr, r.stderr


def test_workspace_create_plans_the_azure_stack(tmp_path: Path) -> None:
    import json

    quickstart(tmp_path, AZURE_SETTINGS.replace("workspace: shop-dev", "workspace: create"))
    r = cli(["plan", "-e", "dev", "--json", "--no-refresh"], tmp_path)
    assert r.returncode in (0, 2), r.stdout + r.stderr
    infra = next(c for c in json.loads(r.stdout)["resource_changes"] if c["address"] == "infra.dev")
    assert {d["path"]: d["after"] for d in infra["diff"]}["provider"] == "pulumi"


def test_network_errors_are_clear() -> None:
    """No answer at all (DNS, refused connection: azure-core's ServiceRequestError, after its
    retries) is a BackendError saying what was being done, with a hint; not a crash."""
    import socket
    from types import SimpleNamespace

    from mlstack_azureml.azure import StaticTokenCredential
    from mlstack_azureml.platform import Platform

    from mlstack.errors import BackendError

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = AzureMLConfig.model_validate({**GOOD, "base_url": f"https://127.0.0.1:{port}"})
    project: object = SimpleNamespace(project="quickstart", environment="dev")
    p = Platform(cfg, project, Path("."))  # type: ignore[arg-type]
    p._credential = StaticTokenCredential("t")
    with pytest.raises(BackendError) as e:
        p.arm.request("GET", "/subscriptions/x", "reading something", {"api-version": "1"})
    assert "Azure could not be reached for reading something" in str(e.value)
    assert "base_url" in (e.value.problems[0].hint or "")
