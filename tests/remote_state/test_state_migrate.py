"""`mlstack state migrate`: local SQLite state moves to a remote store with its serial, lineage
and history; the project then plans against the remote copy; a target holding other state is
refused unless --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import TOY_SPEC, make_env, run_cli

pytestmark = pytest.mark.e2e


def test_migrate_local_state_to_the_remote_store(remote, tmp_path: Path) -> None:
    srv, block = remote
    env = make_env(**srv.env)
    spec = yaml.safe_load(TOY_SPEC)
    (tmp_path / "mlstack.yaml").write_text(yaml.safe_dump(spec))
    assert run_cli("apply", "--auto-approve", cwd=tmp_path, env=env).returncode == 0
    before = json.loads(run_cli("state", "history", "--json", cwd=tmp_path, env=env).stdout)
    listed = run_cli("state", "list", cwd=tmp_path, env=env).stdout

    spec["state"] = block
    (tmp_path / "mlstack.yaml").write_text(yaml.safe_dump(spec))
    fresh = run_cli("plan", "--detailed-exitcode", "--no-refresh", cwd=tmp_path, env=env)
    assert fresh.returncode == 2  # the remote store is empty: everything would be created

    moved = run_cli("state", "migrate", "--from", "local", cwd=tmp_path, env=env)
    assert moved.returncode == 0, moved.stderr
    assert f"copied from {tmp_path / '.mlstack' / 'state' / 'dev.db'} to " in moved.stdout
    assert run_cli("state", "list", cwd=tmp_path, env=env).stdout == listed
    after = json.loads(run_cli("state", "history", "--json", cwd=tmp_path, env=env).stdout)
    assert after == before
    plan = run_cli("plan", "--detailed-exitcode", cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stdout + plan.stderr

    # another project's state at the target is never overwritten silently
    other = tmp_path / "other"
    other.mkdir()
    (other / "mlstack.yaml").write_text(yaml.safe_dump(yaml.safe_load(TOY_SPEC)))
    assert run_cli("apply", "--auto-approve", cwd=other, env=env).returncode == 0
    refused = run_cli(
        "state",
        "migrate",
        "--from",
        "local",
        "-f",
        str(other / "mlstack.yaml"),
        "--to",
        _url(block),
        cwd=other,
        env=env,
    )
    assert refused.returncode == 1
    assert "already holds state (lineage" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    forced = run_cli(
        "state", "migrate", "--from", "local", "--to", _url(block), "--force", cwd=other, env=env
    )
    assert forced.returncode == 0, forced.stderr


def _url(block: dict) -> str:
    scheme = {"s3": "s3", "gcs": "gs", "azblob": "az"}[block["backend"]]
    bucket = block.get("bucket") or block["container"]
    return f"{scheme}://{bucket}/{block['prefix']}"


def test_a_bad_location_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "mlstack.yaml").write_text(TOY_SPEC)
    r = run_cli("state", "migrate", "--from", "ftp://x/y", cwd=tmp_path)
    assert r.returncode == 1
    assert "'ftp://x/y' is not a state location" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("s3://My_Bucket/p", "bucket 'My_Bucket': String should match pattern"),
        ("az://xyz/p q", "prefix 'p q': String should match pattern"),
    ],
)
def test_a_location_with_a_bad_name_is_a_clear_error(
    tmp_path: Path, url: str, problem: str
) -> None:
    (tmp_path / "mlstack.yaml").write_text(TOY_SPEC)
    r = run_cli("state", "migrate", "--from", url, cwd=tmp_path)
    assert r.returncode == 1
    assert f"{url!r} is not a valid state location: {problem}" in r.stderr
    assert "hint: bucket and container names are lower-case" in r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr


def test_an_unreachable_store_is_a_clear_error(tmp_path: Path) -> None:
    from tests.remote_state.servers import free_port

    spec = yaml.safe_load(TOY_SPEC)
    spec["state"] = {
        "backend": "s3",
        "bucket": "nowhere",
        "prefix": "p",
        "endpoint_url": f"http://127.0.0.1:{free_port()}",
    }
    (tmp_path / "mlstack.yaml").write_text(yaml.safe_dump(spec))
    env = make_env(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
    r = run_cli("plan", cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 1
    assert "s3://nowhere: read failed: EndpointConnectionError" in r.stderr
    assert "Traceback" not in r.stderr
