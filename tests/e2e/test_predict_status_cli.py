"""`mlstack predict` and `status` go through the backend seam, so they work on a backend the CLI
knows nothing about (the toy backend, a real entry point): predict calls ``Backend.predict`` and
status prints the fields the backend's ``EndpointView`` provides."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import TOY_SPEC, run_cli, write_spec

SPEC = (
    TOY_SPEC
    + """\
deployment:
  endpoint: shop
  strategy: canary
  canary: {steps: [50, 100], interval: 0s}
"""
)


def _ok(*args: str, cwd: Path) -> str:
    r = run_cli(*args, cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout


def test_predict_and_status_through_a_third_party_backend(tmp_path: Path) -> None:
    write_spec(tmp_path, SPEC)
    refused = run_cli("predict", "--data", '{"a": 1}', cwd=tmp_path)
    assert refused.returncode == 1 and "not deployed" in refused.stderr
    assert "Traceback" not in refused.stderr

    _ok("apply", "--auto-approve", cwd=tmp_path)
    # the toy model answers each row with its number of fields, from the serving version
    out = _ok("predict", "--data", '[{"a": 1, "b": 2}, {"a": 3}]', cwd=tmp_path)
    assert json.loads(out) == {"predictions": [2, 1]}
    out = _ok("predict", "--data", '{"inputs": [{"a": 1, "b": 2, "c": 3}]}', cwd=tmp_path)
    assert json.loads(out) == {"predictions": [3]}
    bad = run_cli("predict", "--data", "42", cwd=tmp_path)
    assert bad.returncode == 1 and "a JSON object or a list of rows" in bad.stderr

    status = _ok("status", cwd=tmp_path)
    assert "url: toy://shop" in status and "state: serving" in status
    assert "flavour: vanilla" in status  # a field only the toy backend knows
    live = json.loads(_ok("status", "--json", cwd=tmp_path))["live"]
    assert live["name"] == "toy-shop" and live["weights"] == {"1": 100.0}
