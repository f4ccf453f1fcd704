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

from collections.abc import Mapping
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


STORAGE_INITIALIZER = "kserve/storage-initializer:v0.21.0"
UPLOADER = "amazon/aws-cli:2.22.35"
TERMINATION_LOG = "/dev/termination-log"


def stage_job(
    *,
    name: str,
    namespace: str,
    project: str,
    run_id: str,
    stage: str,
    image: str,
    service_account: str,
    storage_secret: str,
    s3_endpoint: str | None,
    resources: Mapping[str, Any],
    spec_uri: str,
    output_uri: str,
    inputs: Mapping[str, str],
    data_uri: str | None,
    retries: int,
    timeout: float | None,
    env: Mapping[str, str],
) -> dict[str, Any]:
    """One pipeline stage as a ``batch/v1`` Job running the shared runtime.

    Init containers run one after another, each only once the one before it succeeded: KServe's
    storage initializer fetches the stage's settings (``spec_uri``), each upstream stage's output
    (``inputs``: name -> URI) and, for ingest, the data; then the ``stage`` init container runs
    ``python -m mlstack_runtime STAGE --spec ... --inputs ... --outputs ...`` in the runtime image
    (its failure reason goes to the termination log, which the pod's status shows). The main
    container copies ``/mnt/outputs`` to ``output_uri`` with the AWS CLI, so outputs reach
    storage only when the stage succeeded. Storage credentials come from ``storage_secret`` (the
    Kubernetes stack's ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``) in the containers that
    touch storage, never in the stage's own."""
    storage_env = [{"name": "AWS_ENDPOINT_URL", "value": s3_endpoint}] if s3_endpoint else []
    from_secret = [{"secretRef": {"name": storage_secret}}]

    def fetch(container: str, uri: str, dest: str, volume: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": container,
            "image": STORAGE_INITIALIZER,
            "args": [uri, dest],
            "envFrom": from_secret,
            "volumeMounts": [{"name": volume, "mountPath": f"/mnt/{volume}"}],
        }
        if storage_env:
            out["env"] = storage_env
        return out

    init = [fetch("fetch-spec", spec_uri, "/mnt/spec", "spec")]
    init += [
        fetch(object_name("fetch", up), uri, f"/mnt/inputs/{up}", "inputs")
        for up, uri in inputs.items()
    ]
    if data_uri:
        init.append(fetch("fetch-data", data_uri, "/mnt/inputs/data", "inputs"))
    init.append(
        {
            "name": "stage",
            "image": image,
            "command": ["python", "-m", "mlstack_runtime", stage],
            "args": [
                "--spec",
                f"/mnt/spec/{spec_uri.rsplit('/', 1)[-1]}",
                "--inputs",
                "/mnt/inputs",
                "--outputs",
                "/mnt/outputs",
                "--failure-file",
                TERMINATION_LOG,
            ],
            "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
            "resources": {k: dict(v) for k, v in resources.items()},
            "terminationMessagePath": TERMINATION_LOG,
            "terminationMessagePolicy": "FallbackToLogsOnError",
            "volumeMounts": [
                {"name": "inputs", "mountPath": "/mnt/inputs"},
                {"name": "spec", "mountPath": "/mnt/spec"},
                {"name": "outputs", "mountPath": "/mnt/outputs"},
            ],
        }
    )
    upload: dict[str, Any] = {
        "name": "upload",
        "image": UPLOADER,
        "args": ["s3", "cp", "--recursive", "--only-show-errors", "/mnt/outputs", output_uri + "/"],
        "envFrom": from_secret,
        "volumeMounts": [{"name": "outputs", "mountPath": "/mnt/outputs"}],
    }
    if storage_env:
        upload["env"] = storage_env
    job_spec: dict[str, Any] = {
        "backoffLimit": retries,
        "ttlSecondsAfterFinished": 86400,
        "template": {
            "metadata": {"labels": labels(project, run=run_id, stage=stage)},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": service_account,
                "initContainers": init,
                "containers": [upload],
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
