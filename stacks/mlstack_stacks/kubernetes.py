"""What a KServe environment needs in its namespace, as one Pulumi ComponentResource.

- the namespace (unless it exists and ``create_namespace`` is off);
- the storage secret KServe's storage initializer reads, attached to a service account: for S3
  the ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` keys with the ``serving.kserve.io/s3-*``
  annotations (endpoint, region, https), for GCS the ``gcloud-application-credentials.json`` key
  (KServe's "Deploy InferenceService with a saved model on S3/GCS" guides). Credentials are
  Pulumi secrets: they reach the cluster, never mlstack's state or logs;
- RBAC for whoever runs mlstack (a CI service account, a user or a group): exactly the calls the
  backend makes (server-side apply = ``create`` + ``patch``; ``get``/``list``/``delete``) on
  stage Jobs and their pods' logs, the ConfigMaps that hold the registry and pipeline,
  InferenceServices and HTTPRoutes, and nothing cluster-wide;
- the HTTPRoute's parent: an existing Gateway's reference, or a Gateway of ``gateway_class``
  whose listener admits routes from this namespace only (RawDeployment mode).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

# (apiGroup, resources, verbs): what mlstack_kserve.cluster calls, and no more
RUNNER_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("batch", ("jobs",), ("create", "patch", "get", "list", "watch", "delete")),
    ("", ("pods",), ("get", "list", "watch")),
    ("", ("pods/log",), ("get",)),
    ("", ("configmaps",), ("create", "patch", "get", "list", "delete")),
    ("serving.kserve.io", ("inferenceservices",), ("create", "patch", "get", "list", "delete")),
    ("gateway.networking.k8s.io", ("httproutes",), ("create", "patch", "get", "list", "delete")),
)


@dataclass(frozen=True)
class KServeStackArgs:
    namespace: str
    storage_uri: str  # s3://bucket/prefix or gs://bucket/prefix
    service_account: str = "mlstack"
    create_namespace: bool = True
    # S3 (or S3-compatible) credentials, or the GCS service-account key: Pulumi secrets
    s3_access_key_id: pulumi.Input[str] | None = None
    s3_secret_access_key: pulumi.Input[str] | None = None
    s3_endpoint: str | None = None  # host[:port] of an S3-compatible store; AWS when unset
    s3_region: str = "us-east-1"
    gcs_credentials_json: pulumi.Input[str] | None = None
    # who runs mlstack: ("ServiceAccount", "ci", "ci-namespace"), ("User", "alice"), ("Group", ...)
    runner: tuple[str, ...] = ("ServiceAccount", "mlstack-runner")
    # RawDeployment: the Gateway routes attach to; created when gateway_class is given
    gateway_name: str | None = None
    gateway_namespace: str | None = None
    gateway_class: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


class KServeStack(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: KServeStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlstack:kubernetes:KServeStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/managed-by": "mlstack", **args.labels}
        ns = args.namespace
        deps: list[pulumi.Resource] = []
        if args.create_namespace:
            namespace = k8s.core.v1.Namespace(
                f"{name}-ns", metadata={"name": ns, "labels": labels}, opts=child
            )
            deps.append(namespace)
        after = pulumi.ResourceOptions(parent=self, depends_on=deps)
        secret = k8s.core.v1.Secret(
            f"{name}-storage",
            metadata={
                "name": f"{args.service_account}-storage",
                "namespace": ns,
                "labels": labels,
                "annotations": _storage_annotations(args),
            },
            type="Opaque",
            string_data=_storage_data(args),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=deps, additional_secret_outputs=["stringData", "data"]
            ),
        )
        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={"name": args.service_account, "namespace": ns, "labels": labels},
            secrets=[{"name": secret.metadata.name}],
            opts=after,
        )
        role = k8s.rbac.v1.Role(
            f"{name}-runner",
            metadata={"name": "mlstack-runner", "namespace": ns, "labels": labels},
            rules=[
                {"api_groups": [g], "resources": list(r), "verbs": list(v)}
                for g, r, v in RUNNER_RULES
            ],
            opts=after,
        )
        subject: Any = {"kind": args.runner[0], "name": args.runner[1]}
        if args.runner[0] == "ServiceAccount":
            subject["namespace"] = args.runner[2] if len(args.runner) > 2 else ns
        else:
            subject["api_group"] = "rbac.authorization.k8s.io"
        k8s.rbac.v1.RoleBinding(
            f"{name}-runner",
            metadata={"name": "mlstack-runner", "namespace": ns, "labels": labels},
            role_ref={
                "api_group": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role.metadata.name,
            },
            subjects=[subject],
            opts=after,
        )
        gateway: dict[str, Any] | None = None
        if args.gateway_name:
            gw_ns = args.gateway_namespace or ns
            gateway = {"name": args.gateway_name, "namespace": gw_ns}
            if args.gateway_class:
                k8s.apiextensions.CustomResource(
                    f"{name}-gateway",
                    api_version="gateway.networking.k8s.io/v1",
                    kind="Gateway",
                    metadata={"name": args.gateway_name, "namespace": gw_ns, "labels": labels},
                    spec={
                        "gatewayClassName": args.gateway_class,
                        "listeners": [
                            {
                                "name": "http",
                                "protocol": "HTTP",
                                "port": 80,
                                "allowedRoutes": {
                                    "kinds": [{"kind": "HTTPRoute"}],
                                    "namespaces": {
                                        "from": "Selector",
                                        "selector": {
                                            "matchLabels": {"kubernetes.io/metadata.name": ns}
                                        },
                                    },
                                },
                            }
                        ],
                    },
                    opts=after,
                )
        self.namespace = pulumi.Output.from_input(ns)
        self.service_account = account.metadata.name
        self.storage_secret = secret.metadata.name
        self.gateway = gateway
        self.register_outputs(
            {
                "namespace": self.namespace,
                "service_account": self.service_account,
                "storage_secret": self.storage_secret,
                "gateway": gateway,
            }
        )


def _storage_annotations(args: KServeStackArgs) -> dict[str, str]:
    if args.storage_uri.startswith("gs://"):
        return {}
    out = {"serving.kserve.io/s3-region": args.s3_region}
    if args.s3_endpoint:
        endpoint = args.s3_endpoint
        https = not endpoint.startswith("http://")
        out["serving.kserve.io/s3-endpoint"] = endpoint.split("://", 1)[-1]
        out["serving.kserve.io/s3-usehttps"] = "1" if https else "0"
    return out


def _storage_data(args: KServeStackArgs) -> dict[str, Any]:
    """The storage secret's data; every credential is made a Pulumi secret here, whether the
    caller passed a plain string or a secret, so it is encrypted in the stack's state."""
    secret = pulumi.Output.secret
    if args.storage_uri.startswith("gs://"):
        if args.gcs_credentials_json is None:
            raise ValueError(
                "a gs:// storage_uri needs gcs_credentials_json (a service-account key)"
            )
        return {"gcloud-application-credentials.json": secret(args.gcs_credentials_json)}
    if args.storage_uri.startswith("s3://"):
        if args.s3_access_key_id is None or args.s3_secret_access_key is None:
            raise ValueError("an s3:// storage_uri needs s3_access_key_id and s3_secret_access_key")
        return {
            "AWS_ACCESS_KEY_ID": secret(args.s3_access_key_id),
            "AWS_SECRET_ACCESS_KEY": secret(args.s3_secret_access_key),
        }
    raise ValueError(f"storage_uri {args.storage_uri!r}: use s3:// or gs://")
