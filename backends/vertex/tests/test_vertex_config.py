"""The environment block checked without Google's SDKs; the descriptor light to import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlstack_vertex.plugin import VertexConfig, plugin
from pydantic import ValidationError
from vertex_cli import SA, cli, quickstart

GOOD = {
    "project": "shop-ml-dev",
    "region": "europe-west4",
    "bucket": "shop-ml-dev-artifacts",
    "service_account": SA,
}
# google-cloud-aiplatform's *-nspkg.pth makes the empty namespace ``google.cloud`` at start-up
# in every interpreter; the SDKs are the packages under it and beside it.
GOOGLE_SDKS = (
    "google.cloud.",
    "google.api_core",
    "google.auth",
    "google.protobuf",
    "proto",
    "kfp",
    "pulumi",
    "grpc",
)


def _errors(settings: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as e:
        VertexConfig.model_validate(settings)
    return str(e.value)


def test_good_block_and_given_infrastructure() -> None:
    cfg = VertexConfig.model_validate({**GOOD, "bucket": "gs://shop-ml-dev-artifacts/"})
    assert cfg.bucket == "shop-ml-dev-artifacts" and cfg.infrastructure_given
    assert not VertexConfig.model_validate({**GOOD, "bucket": "create"}).infrastructure_given
    assert not VertexConfig.model_validate(
        {**GOOD, "service_account": "create"}
    ).infrastructure_given
    default_sa = "123456789012-compute@developer.gserviceaccount.com"
    assert VertexConfig.model_validate({**GOOD, "service_account": default_sa})


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"project": "shop-ml-dev", "region": "europe-west4"}, "bucket\n  Field required"),
        ({**GOOD, "region": "europe-wset4"}, "not offered in 'europe-wset4'; did you mean"),
        ({**GOOD, "region": "eu"}, "needs a region such as us-central1"),
        ({**GOOD, "project": "Shop ML"}, "is not a Google Cloud project ID"),
        ({**GOOD, "project": "shop"}, "is not a Google Cloud project ID"),
        ({**GOOD, "bucket": "Shop_Artifacts"}, "may contain only lowercase letters"),
        ({**GOOD, "bucket": "ab"}, "must be 3 to 63 characters"),
        ({**GOOD, "bucket": "google-models"}, "must not start with 'goog'"),
        ({**GOOD, "bucket": "10.0.0.1"}, "must not look like an IP address"),
        ({**GOOD, "bucket": "gs://b-1/models"}, "without a path"),
        ({**GOOD, "service_account": "runner@gmail.com"}, "is not a service account e-mail"),
        ({**GOOD, "machine_type": "n1-standart-4"}, "n1 has no 'standart' machines"),
        ({**GOOD, "machine_type": "n9-standard-4"}, "unknown machine series 'n9'"),
        ({**GOOD, "serving_machine_type": "ml.m5.large"}, "is not a machine type"),
        ({**GOOD, "machine_type": "n1-standard-3"}, "3 is not a vCPU count"),
        ({**GOOD, "network": "projects/shop/global/networks/default"}, "project number"),
        ({**GOOD, "regoin": "europe-west4"}, "regoin\n  Extra inputs are not permitted"),
    ],
)
def test_config_errors_say_what_is_wrong(settings: dict[str, object], expected: str) -> None:
    assert expected in _errors(settings)


def test_unknown_machine_type_can_be_allowed() -> None:
    cfg = VertexConfig.model_validate(
        {**GOOD, "machine_type": "z9-turbo-7", "allow_unknown_machine_types": True}
    )
    assert cfg.machine_type == "z9-turbo-7"


def test_capabilities_weighted_traffic_only() -> None:
    from mlstack.manifest.models import Deployment

    caps = plugin.capabilities
    assert caps.weighted_traffic and not caps.mirroring and not caps.sticky_sessions
    for strategy in ("all_at_once", "blue_green", "canary", "linear"):
        ok = Deployment(endpoint="e", strategy=strategy, gates={"error_rate": "< 1%"})
        assert caps.explain_rollout(ok) == [], strategy
    shadow = caps.explain_rollout(Deployment(endpoint="e", strategy="shadow"))
    assert [r.path for r in shadow][0] == ("strategy",)
    assert "no request mirroring" in shadow[0].message
    sticky = caps.explain_rollout(Deployment(endpoint="e", strategy="ab"))
    assert [r.path for r in sticky] == [("strategy",)] and "sticky_key: null" in sticky[0].hint
    assert (
        caps.explain_rollout(Deployment(endpoint="e", strategy="ab", ab={"sticky_key": None})) == []
    )
    custom = caps.explain_rollout(
        Deployment(endpoint="e", strategy="canary", gates={"agreement": ">= 0.9"})
    )
    assert [r.path for r in custom] == [("gates", "agreement")]


@pytest.mark.parametrize(
    ("block", "line_of", "expected"),
    [
        ("strategy: shadow", "strategy: shadow", "Vertex endpoint splits traffic"),
        ("strategy: ab", "strategy: ab", "no assignment by a request key"),
    ],
)
def test_refused_strategies_at_the_line(
    tmp_path: Path, block: str, line_of: str, expected: str
) -> None:
    from vertex_cli import SETTINGS

    quickstart(tmp_path, SETTINGS + f"    deployment:\n      {block}\n")
    text = (tmp_path / "mlstack.yaml").read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == line_of)
    for args in (["validate", "-e", "dev"], ["plan", "-e", "dev", "--no-refresh"]):
        r = cli(args, tmp_path)
        out = r.stdout + r.stderr
        assert r.returncode == 1, out
        assert f"mlstack.yaml:{line}:" in out and expected in out, out
        assert "Traceback" not in out


def test_validate_reports_config_errors_at_file_line(tmp_path: Path) -> None:
    quickstart(
        tmp_path,
        "    project: shop-ml-dev\n    region: europe-wset4\n    bucket: Bad_Bucket\n"
        "    service_account: create\n",
    )
    r = cli(["validate", "-e", "dev"], tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "mlstack.yaml:9:5: region: Vertex AI is not offered in 'europe-wset4'" in out, out
    assert "mlstack.yaml:10:5: bucket: bucket 'Bad_Bucket'" in out, out
    assert "Traceback" not in out


def test_descriptor_and_validate_import_no_google_sdk(tmp_path: Path) -> None:
    code = (
        "import sys; from mlstack.engine.backend import get_plugin; "
        f"get_plugin('vertex').config_model.model_validate({GOOD!r}); "
        f"print([m for m in sys.modules if m.startswith({GOOGLE_SDKS!r})])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    quickstart(tmp_path)
    # the CLI in-process, as `mlstack --help` and `mlstack validate` run it
    probe = (
        "import sys; from mlstack.cli.main import main\n"
        "for argv in (['--help'], ['validate', '-e', 'dev']):\n"
        "    try:\n        main(argv)\n    except SystemExit as e:\n"
        "        assert e.code in (0, None), (argv, e.code)\n"
        f"print('LOADED', [m for m in sys.modules if m.startswith({GOOGLE_SDKS!r})])\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "LOADED []" in r.stdout, r.stdout


def test_quickstart_on_vertex_plans_without_credentials(tmp_path: Path) -> None:
    quickstart(tmp_path)
    r = cli(["plan", "-e", "dev", "--json", "--no-refresh"], tmp_path)
    assert r.returncode in (0, 2), r.stdout + r.stderr
    plan = json.loads(r.stdout)
    changes = {
        c["address"]: {d["path"]: d["after"] for d in c["diff"]} for c in plan["resource_changes"]
    }
    assert plan["backend"] == "vertex"
    assert changes["pipeline.quickstart"]["format"] == "kfp-v2"
    assert changes["pipeline.quickstart"]["digest"].startswith("sha256:")
    assert changes["infra.dev"]["bucket"] == "shop-ml-dev-artifacts"
    assert {"run.quickstart", "model.cancer-classifier", "endpoint.cancer"} <= set(changes)


def test_an_unchanged_plan_is_answered_from_the_compile_cache(tmp_path: Path) -> None:
    """The second plan of an unchanged spec imports neither KFP nor any Google SDK."""
    quickstart(tmp_path)
    first = cli(["plan", "-e", "dev", "--no-refresh", "--json"], tmp_path)
    assert first.returncode in (0, 2), first.stdout + first.stderr
    probe = (
        "import sys; from mlstack.cli.main import main\n"
        "try:\n    main(['plan', '-e', 'dev', '--no-refresh', '--json'])\n"
        "except SystemExit as e:\n    assert e.code in (0, 2, None), e.code\n"
        f"print('LOADED', [m for m in sys.modules if m.startswith({GOOGLE_SDKS!r})], "
        "file=sys.stderr)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "LOADED []" in r.stderr, r.stderr
    assert json.loads(r.stdout)["resource_changes"] == json.loads(first.stdout)["resource_changes"]
