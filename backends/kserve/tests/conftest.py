"""A fake cluster for the KServe backend: the strict API server, KServe/Knative/gateway/kubelet
controllers, the Job controller (stage Jobs run as local processes), an ingress on 127.0.0.1, a
moto S3 server for storage, the storage Secret the Kubernetes stack would create, and a
kubeconfig pointing at them. Everything is started per test module and stopped whatever the outcome."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import k8s_schemas  # noqa: E402
from fake_apiserver import FakeApiServer  # noqa: E402
from fake_controllers import Cluster  # noqa: E402
from fake_jobs import JobController  # noqa: E402
from fake_prometheus import FakePrometheus  # noqa: E402

NAMESPACE = "ml-team"
BUCKET = "ml-artifacts"
# what the Kubernetes stack's Secret holds (moto accepts any key): the stage Jobs read it
STORAGE_SECRET = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FakeCluster:
    api: FakeApiServer
    cluster: Cluster
    jobs: JobController
    api_url: str
    ingress_url: str
    prometheus_url: str
    s3_url: str
    kubeconfig: Path

    def settings(self, mode: str = "Serverless") -> dict[str, object]:
        out: dict[str, object] = {
            "namespace": NAMESPACE,
            "storage_uri": f"s3://{BUCKET}/quickstart",
            "context": "fake",
            "kubeconfig": str(self.kubeconfig),
            "serving_mode": mode,
            "ingress_url": self.ingress_url,
            "prometheus_url": self.prometheus_url,
            "s3_endpoint": self.s3_url,
            "poll_interval": 0.05,
            "timeout": 120,
        }
        if mode == "RawDeployment":
            out["gateway"] = {"name": "mlstack-gw", "namespace": "gateways"}
        return out


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        s3 = _s3(url)
        s3.create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()


def _s3(url: str):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def fake_cluster(moto_s3: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    if not k8s_schemas.have_isvc_crd():
        pytest.skip(f"the InferenceService CRD is not at {k8s_schemas.ISVC_CRD}")
    api = FakeApiServer(namespaces=(NAMESPACE,))
    cluster = Cluster(api, moto_s3)
    jobs = JobController(api, secrets={(NAMESPACE, "mlstack-storage"): STORAGE_SECRET})
    prometheus = FakePrometheus(cluster)
    api_url = api.start()
    try:
        ingress = cluster.start_ingress()
        prom_url = prometheus.start()
        cfg = tmp_path_factory.mktemp("kube") / "config"
        cfg.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": api_url}}],
                    "users": [{"name": "dev", "user": {"token": "not-a-secret"}}],
                    "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "dev"}}],
                    "current-context": "fake",
                }
            )
        )
        yield FakeCluster(api, cluster, jobs, api_url, ingress, prom_url, moto_s3, cfg)
    finally:
        prometheus.stop()
        jobs.stop()
        cluster.stop()
        api.stop()


def upload_model(s3_url: str, prefix: str, threshold: float, flip: bool = False) -> tuple[str, str]:
    """A small fitted scikit-learn pipeline in mlstack's artifact layout, put at
    ``s3://BUCKET/prefix``; returns (uri, digest). Versions differ by ``threshold``/``flip``."""
    import hashlib
    import io

    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(7)
    x = pd.DataFrame(
        {
            "mean_radius": rng.normal(14, 3, 200),
            "tumor_size": rng.choice(["small", "large"], 200),
        }
    )
    y = ((x["mean_radius"] > threshold) != flip).astype(int)
    model = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", "passthrough", ["mean_radius"]),
                        ("cat", OneHotEncoder(), ["tumor_size"]),
                    ]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    ).fit(x, y)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    meta = json.dumps(
        {
            "columns": ["mean_radius", "tumor_size"],
            "dtypes": {"mean_radius": "float", "tumor_size": "str"},
            "target": "diagnosis",
            "task": "classification",
            "classes": [0, 1],
        }
    ).encode()
    s3 = _s3(s3_url)
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/model.joblib", Body=buf.getvalue())
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/mlstack-model.json", Body=meta)
    return f"s3://{BUCKET}/{prefix}", hashlib.sha256(buf.getvalue()).hexdigest()
