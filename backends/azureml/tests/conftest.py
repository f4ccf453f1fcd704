"""Fixtures: the fake ARM / Azure ML server on 127.0.0.1 (stopped whatever happens) over a blob
container in Azurite (Microsoft's storage emulator, one process for the session, a container per
test), and the settings whose real ``MLClient`` talks to them with a static token."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.append(str(Path(__file__).resolve().parents[3] / "tests"))

from fakes.arm import FakeArm, serve  # noqa: E402
from fakes.tls import make_cert, server_context  # noqa: E402
from remote_state.servers import Server, azurite  # noqa: E402

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"


def echo_scorer(deployment: dict[str, Any], body: Any) -> tuple[int, Any]:
    """What a deployment's scoring script answers in these tests: its version and row count."""
    tags = deployment.get("tags") or {}
    rows = body.get("instances") or body.get("inputs") or []
    return 200, {"predictions": [0] * len(rows), "version": tags.get("mlstack-version")}


def blob_url(fake: FakeArm) -> str:
    """Azurite's blob service URL (path style: .../devstoreaccount1)."""
    return str(fake.container.url).rsplit("/", 1)[0]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def blob_server() -> Iterator[Server]:
    with azurite() as server:
        yield server


@pytest.fixture
def blob_containers(blob_server: Server) -> Iterator[Callable[[str], Any]]:
    """Makes a blob container per workspace (deleted after the test)."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(
        blob_server.env["AZURE_STORAGE_CONNECTION_STRING"]
    )
    made: list[Any] = []

    def new(workspace: str) -> Any:
        made.append(service.create_container(f"azureml-blobstore-{uuid.uuid4().hex[:12]}"))
        return made[-1]

    try:
        yield new
    finally:
        for container in made:
            container.delete_container()


@pytest.fixture
def fake(
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    blob_containers: Callable[[str], Any],
) -> Iterator[FakeArm]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files[0]))
    first = blob_containers("shop-dev")
    with serve(
        FakeArm(echo_scorer, first, polls=2, new_container=blob_containers),
        server_context(*tls_files),
    ) as f:
        yield f


@pytest.fixture
def settings(fake: FakeArm, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("MLSTACK_AZURE_ACCESS_TOKEN", "fake-token")
    return {
        "subscription_id": SUB,
        "resource_group": "ml-rg",
        "workspace": "shop-dev",
        "region": "westeurope",
        "base_url": fake.base,
        "blob_url": blob_url(fake),
        "poll_interval": 0.05,
    }


@pytest.fixture(autouse=True)
def _no_current_cloud_left_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """``MLClient`` writes the custom cloud it was given into this process's environment
    (``AZUREML_CURRENT_CLOUD``, azure.ai.ml's ``_set_cloud``). A CLI process a later test starts
    inherits it and fails with "Unknown cloud environment" (its fake has another URL, so another
    cloud name): each test starts without it and takes it away when it ends."""
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
