"""The Kubernetes objects mlstack sends, as plain mappings: pure, no client, no network.

Shapes follow KServe's v1beta1 ``InferenceService`` API reference (predictor with a custom
container, ``canaryTrafficPercent``, the ``serving.kserve.io/deploymentMode`` annotation), the
Gateway API v1 ``HTTPRoute`` reference (``backendRefs`` weights, ``RequestMirror`` with
``percent``) and the Kubernetes ``batch/v1`` Job reference. The test suite validates every object
built here against the published schemas (the InferenceService and HTTPRoute CRDs and the
built-in kinds' OpenAPI).

Why a predictor image and not KServe's scikit-learn runtime: mlstack's artifact is a fitted
scikit-learn ``Pipeline`` whose first step selects columns by name (numeric and categorical
features, e.g. ``tumor_size`` as strings). KServe's sklearn server turns V1 ``instances`` into a
NumPy array, which loses the column names and mixes strings into a float array, so the
pipeline cannot take the spec's rows. The predictor image is built from the shared runtime
(``backends/kserve/docker/Dockerfile``); it reads ``model.joblib`` + ``mlstack-model.json``,
builds the DataFrame in the spec's column order and speaks V1 and V2 on port 8080.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mlstack_kserve.k8s_names import object_name

ISVC_API = ("serving.kserve.io", "v1beta1", "inferenceservices")
ROUTE_API = ("gateway.networking.k8s.io", "v1", "httproutes")
MANAGED_BY = {"app.kubernetes.io/managed-by": "mlstack"}
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
VERSION_LABEL = "mlstack.dev/version"
ENDPOINT_LABEL = "mlstack.dev/endpoint"
PROJECT_LABEL = "mlstack.dev/project"
PREVIOUS_ANNOTATION = "mlstack.dev/previous-version"
PREDICTOR_PORT = 8080
# the model server the predictor image runs: KServe's Python server with the artifact contract
SERVER_MODULE = "mlstack.local.serving.model_server"


def labels(project: str, **more: str) -> dict[str, str]:
    out = {**MANAGED_BY, PROJECT_LABEL: object_name(project)}
    out.update({f"mlstack.dev/{k}": object_name(v) for k, v in more.items()})
    return out


def predictor(
    *,
    image: str,
    storage_uri: str,
    model: str,
    version: str,
    service_account: str,
    resources: Mapping[str, Any],
    replicas: int,
    canary_percent: float | None = None,
    batcher: tuple[int, float] | None = None,
) -> dict[str, Any]:
    """``spec.predictor``: the runtime image with the artifact fetched by KServe's storage
    initializer (``STORAGE_URI`` on a custom container), listening on 8080."""
    spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "minReplicas": replicas,
        "containers": [
            {
                "name": "kserve-container",
                "image": image,
                "command": ["python", "-m", SERVER_MODULE],
                "args": [
                    "--model-dir",
                    "/mnt/models",
                    "--name",
                    model,
                    "--version",
                    version,
                    "--host",
                    "0.0.0.0",
                    "--port",
                    str(PREDICTOR_PORT),
                ],
                "env": [{"name": "STORAGE_URI", "value": storage_uri}],
                "ports": [{"containerPort": PREDICTOR_PORT, "protocol": "TCP"}],
                "resources": {k: dict(v) for k, v in resources.items()},
                "readinessProbe": {
                    "httpGet": {"path": f"/v1/models/{model}", "port": PREDICTOR_PORT}
                },
            }
        ],
    }
    if canary_percent is not None:
        spec["canaryTrafficPercent"] = int(round(canary_percent))
    if batcher is not None:
        # KServe's batcher (a sidecar of the model server's pod): rows of concurrent V1
        # requests gathered into one request; maxLatency is in milliseconds
        max_batch, max_latency = batcher
        spec["batcher"] = {
            "maxBatchSize": int(max_batch),
            "maxLatency": max(1, int(round(max_latency * 1000))),
        }
    return spec


def inference_service(
    *,
    name: str,
    namespace: str,
    project: str,
    endpoint: str,
    version: str,
    mode: str,
    predictor_spec: Mapping[str, Any],
    previous: str | None = None,
) -> dict[str, Any]:
    annotations = {MODE_ANNOTATION: mode}
    if previous:
        annotations[PREVIOUS_ANNOTATION] = previous
    return {
        "apiVersion": f"{ISVC_API[0]}/{ISVC_API[1]}",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels(project, endpoint=endpoint), VERSION_LABEL: object_name(version)},
            "annotations": annotations,
        },
        "spec": {"predictor": dict(predictor_spec)},
    }


def http_route(
    *,
    name: str,
    namespace: str,
    project: str,
    endpoint: str,
    gateway: Mapping[str, str | None],
    hostname: str | None,
    weights: Mapping[str, int],  # predictor service name -> weight
    mirror: tuple[str, float] | None = None,  # (predictor service name, percent)
) -> dict[str, Any]:
    """One rule sending the endpoint's traffic to the versions' predictor services by weight;
    shadow adds a ``RequestMirror`` filter (answers from the mirror are discarded)."""
    parent: dict[str, Any] = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": gateway["name"],
    }
    if gateway.get("namespace"):
        parent["namespace"] = gateway["namespace"]
    if gateway.get("section"):
        parent["sectionName"] = gateway["section"]
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [
            {"kind": "Service", "name": svc, "port": 80, "weight": int(w)}
            for svc, w in sorted(weights.items())
        ],
    }
    if mirror is not None:
        svc, percent = mirror
        rule["filters"] = [
            {
                "type": "RequestMirror",
                "requestMirror": {
                    "backendRef": {"kind": "Service", "name": svc, "port": 80},
                    "percent": int(round(percent)),
                },
            }
        ]
    spec: dict[str, Any] = {"parentRefs": [parent], "rules": [rule]}
    if hostname:
        spec["hostnames"] = [hostname]
    return {
        "apiVersion": f"{ROUTE_API[0]}/{ROUTE_API[1]}",
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(project, endpoint=endpoint),
        },
        "spec": spec,
    }


def stage_job(
    *,
    name: str,
    namespace: str,
    project: str,
    run_id: str,
    stage: str,
    image: str,
    service_account: str,
    resources: Mapping[str, Any],
    run_uri: str,
    upstream: Sequence[str],
    data_uri: str | None,
    retries: int,
    timeout: float | None,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """One pipeline stage as a ``batch/v1`` Job running the shared runtime.

    Inputs come from storage through KServe's storage initializer image as init containers (one
    per upstream stage, and the data for ingest); the main container runs
    ``python -m mlstack_runtime STAGE --spec ... --inputs ... --outputs ...`` and the image's
    entry point uploads ``/mnt/outputs`` to ``<run_uri>/<stage>`` when the stage succeeds."""
    init = [
        {
            "name": object_name("fetch", up),
            "image": "kserve/storage-initializer:v0.21.0",
            "args": [f"{run_uri}/{up}", f"/mnt/inputs/{up}"],
            "volumeMounts": [{"name": "inputs", "mountPath": "/mnt/inputs"}],
        }
        for up in upstream
    ]
    if data_uri:
        init.append(
            {
                "name": "fetch-data",
                "image": "kserve/storage-initializer:v0.21.0",
                "args": [data_uri, "/mnt/inputs/data"],
                "volumeMounts": [{"name": "inputs", "mountPath": "/mnt/inputs"}],
            }
        )
    init.append(
        {
            "name": "fetch-spec",
            "image": "kserve/storage-initializer:v0.21.0",
            "args": [f"{run_uri}/_spec/{stage}.json", "/mnt/spec"],
            "volumeMounts": [{"name": "spec", "mountPath": "/mnt/spec"}],
        }
    )
    job_spec: dict[str, Any] = {
        "backoffLimit": retries,
        "ttlSecondsAfterFinished": 86400,
        "template": {
            "metadata": {"labels": labels(project, run=run_id, stage=stage)},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": service_account,
                "initContainers": init,
                "containers": [
                    {
                        "name": "stage",
                        "image": image,
                        "command": ["python", "-m", "mlstack_runtime", stage],
                        "args": [
                            "--spec",
                            f"/mnt/spec/{stage}.json",
                            "--inputs",
                            "/mnt/inputs",
                            "--outputs",
                            "/mnt/outputs",
                        ],
                        "env": [
                            {"name": "MLSTACK_OUTPUT_URI", "value": f"{run_uri}/{stage}"},
                            *({"name": k, "value": v} for k, v in sorted(env.items())),
                        ],
                        "resources": {k: dict(v) for k, v in resources.items()},
                        "volumeMounts": [
                            {"name": "inputs", "mountPath": "/mnt/inputs"},
                            {"name": "spec", "mountPath": "/mnt/spec"},
                            {"name": "outputs", "mountPath": "/mnt/outputs"},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "inputs", "emptyDir": {}},
                    {"name": "spec", "emptyDir": {}},
                    {"name": "outputs", "emptyDir": {}},
                ],
            },
        },
    }
    if timeout:
        job_spec["activeDeadlineSeconds"] = int(timeout)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels(project, run=run_id, stage=stage),
        },
        "spec": job_spec,
    }
