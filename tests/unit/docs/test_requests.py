"""docs/requests.md: each request example, sent to a real model server, gets the answer shown."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlstack_runtime import serving

from mlstack.local.serving.sample import write_sample_model

pytestmark = pytest.mark.timeout(120)

PAGE = Path(__file__).resolve().parents[3] / "docs" / "requests.md"
MODEL, VERSION = "churn-model", "3"  # what the page says answered
PATHS = {"v1": f"/v1/models/{MODEL}:predict", "v2": f"/v2/models/{MODEL}/infer"}


def examples() -> dict[str, tuple[Any, int]]:
    """``<!-- request: NAME -->`` / ``<!-- answer: NAME [STATUS] -->`` blocks, parsed."""
    found: dict[str, tuple[Any, int]] = {}
    pattern = r"<!-- (request|answer): ([\w-]+)(?: (\d+))? -->\n```json\n(.*?)```"
    for kind, name, status, body in re.findall(pattern, PAGE.read_text(), re.S):
        found[f"{kind}:{name}"] = (json.loads(body), int(status or 200))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    model_dir = tmp_path_factory.mktemp("requests-model")
    write_sample_model(model_dir, seed=0)
    port = _free_port()
    log = (model_dir.parent / "model-server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlstack.local.serving.model_server", "--model-dir", str(model_dir)]
        + ["--name", MODEL, "--version", VERSION, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # wait for the server to say it is ready (or to die)
            assert proc.poll() is None, (model_dir.parent / "model-server.log").read_text()
            try:
                if httpx.get(url + "/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the model server did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_page_has_a_v1_and_a_v2_example_with_answers() -> None:
    found = examples()
    for name in ("v1", "v2", "bad"):
        assert f"request:{name}" in found and f"answer:{name}" in found, name


@pytest.mark.parametrize("name, protocol", [("v1", "v1"), ("v2", "v2"), ("bad", "v1")])
def test_each_example_gets_the_answer_shown(server: str, name: str, protocol: str) -> None:
    found = examples()
    request, _ = found[f"request:{name}"]
    answer, status = found[f"answer:{name}"]
    r = httpx.post(server + PATHS[protocol], json=request, timeout=30)
    assert (r.status_code, r.json()) == (status, answer)


def test_the_matrix_example_decodes_to_the_same_rows_as_v1() -> None:
    meta = serving.ModelMeta(
        columns=("tenure", "monthly_charges"), dtypes={"tenure": "int", "monthly_charges": "float"}
    )
    request, _ = examples()["request:v2-matrix"]
    rows = serving.decode_payload(request, meta)
    assert rows == serving.rows_from_instances([[5, 70.5], [60, 25.0]], meta)
