"""`mlstack monitor` end to end on the quickstart (`local` backend: real pipeline, model server
and router on 127.0.0.1): requests whose mean_radius is shifted by +6 are sent over HTTP, each
answer's x-request-id is kept, the true diagnoses come back through `mlstack feedback`, then

- `monitor --json` exits 2 naming mean_radius (and not the unshifted mean_texture), with the
  live accuracy beside the version's evaluation accuracy over the labelled answers;
- `monitor` (table) exits 2 and says "Drift in ... mean_radius";
- `report` writes one HTML file holding a plot per monitored feature.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

QUICKSTART = REPO / "examples" / "quickstart"
REQUESTS = 240
MONITORING = """
monitoring:
  sample_rate: 1.0
  drift: {method: psi, threshold: 0.2, min_samples: 100}
"""


def _cli(root: Path, *args: str, status: int | None = 0) -> subprocess.CompletedProcess[str]:
    p = run_cli(*args, cwd=root, timeout=400)
    assert status is None or p.returncode == status, (
        f"mlstack {' '.join(args)} -> {p.returncode}:\n{p.stdout}\n{p.stderr}"
    )
    assert "Traceback" not in p.stderr
    return p


@pytest.fixture()
def quickstart(tmp_path: Path) -> Iterator[Path]:
    for name in ("mlstack.yaml", "prepare_data.py", "sample.json"):
        shutil.copy(QUICKSTART / name, tmp_path / name)
    with (tmp_path / "mlstack.yaml").open("a") as f:
        f.write(MONITORING)
    subprocess.run([sys.executable, "prepare_data.py"], cwd=tmp_path, check=True, timeout=120)
    try:
        yield tmp_path
    finally:  # whatever the outcome: no model server or router outlives the test
        run_cli("destroy", "-e", "dev", "--auto-approve", cwd=tmp_path, timeout=300)


def _rows(root: Path) -> list[dict[str, object]]:
    with (root / "data" / "cancer.csv").open() as f:
        out: list[dict[str, object]] = []
        for r in csv.DictReader(f):
            out.append({k: (v if k == "tumor_size" else float(v)) for k, v in r.items()})
        return out


def _wait_lines(path: Path, n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        time.sleep(0.05)
    have = len(path.read_text().splitlines()) if path.exists() else 0
    raise AssertionError(f"{path}: {have} lines, expected {n}")


def test_monitor_names_the_shifted_feature_and_reports_live_accuracy(quickstart: Path) -> None:
    root = quickstart
    _cli(root, "apply", "-e", "dev", "--auto-approve")
    url = json.loads(_cli(root, "status", "-e", "dev", "--json").stdout)["recorded"]["url"]
    rows = _rows(root)[:REQUESTS]
    labels: list[tuple[str, int]] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for row in rows:
            inst = {k: v for k, v in row.items() if k != "diagnosis"}
            inst["mean_radius"] = float(inst["mean_radius"]) + 6.0  # type: ignore[arg-type]
            r = client.post("/v1/models/cancer-classifier:predict", json={"instances": [inst]})
            assert r.status_code == 200, r.text
            rid = r.headers["x-request-id"]
            assert len(rid) == 16
            labels.append((rid, int(float(row["diagnosis"]))))  # type: ignore[arg-type]
    assert len({rid for rid, _ in labels}) == REQUESTS  # one id per answer
    log = root / ".mlstack" / "envs" / "dev" / "serving" / "cancer" / "requests.jsonl"
    _wait_lines(log, REQUESTS)  # the router flushes its sampled log once a second

    feedback = root / "labels.csv"
    feedback.write_text("request_id,label\n" + "".join(f"{rid},{y}\n" for rid, y in labels[:200]))
    stored = _cli(root, "feedback", "-e", "dev", str(feedback))
    assert "Stored 200 label(s)" in stored.stdout

    p = _cli(root, "monitor", "-e", "dev", "--since", "1h", "--json", status=2)
    report = json.loads(p.stdout)
    assert "mean_radius" in report["drifted_features"]
    assert "mean_texture" not in report["drifted_features"]
    by = {f["feature"]: f for f in report["features"]}
    radius = by["mean_radius"]
    assert radius["verdict"] == "drift" and radius["n_live"] == REQUESTS
    assert radius["psi"] > 0.2 and radius["p_value"] < 1e-6
    assert report["reason"].startswith("drift in mean_radius, PSI ")
    live = report["live_quality"]
    assert live["labelled"] == 200 and live["task"] == "classification"
    assert 0.0 <= live["metrics"]["accuracy"] <= 1.0
    assert set(live["evaluation"]) >= {"accuracy"}  # the version's own evaluation metric

    table = _cli(root, "monitor", "-e", "dev", status=2)
    assert "Drift in" in table.stdout and "mean_radius" in table.stdout
    assert "at evaluation" in table.stdout

    out = root / "report.html"
    made = _cli(root, "report", "-e", "dev", "-o", str(out))
    assert f"Wrote {out}" in made.stdout and "mean_radius" in made.stdout
    text = out.read_text()
    assert 'data-feature="mean_radius"' in text and 'data-feature="live accuracy"' in text
