"""The GCP infrastructure a Vertex AI environment runs on, as one Pulumi ComponentResource.

- The APIs mlstack calls, enabled (left enabled on destroy: other things in the project may use
  them): Vertex AI, Cloud Storage, Cloud Monitoring, Cloud Logging, Artifact Registry, IAM.
- The artifact bucket (pipeline_root, settings, data, models): uniform bucket-level access,
  object versioning, public access prevention enforced, in the Vertex region.
- A service account that pipeline jobs and deployed models run as, with the least roles they
  need (Vertex AI docs "Configure a service account for Vertex AI Pipelines" and "Use a custom
  service account" for prediction):
  ``roles/aiplatform.user`` (a pipeline's tasks start their jobs and write ML Metadata),
  ``roles/logging.logWriter`` (task and prediction logs), ``roles/artifactregistry.reader``
  (pull the serving image), ``roles/storage.objectUser`` on the artifact bucket only (read
  inputs, write outputs; no project-wide storage role), and ``roles/iam.serviceAccountUser`` on
  itself (a pipeline job started as the account launches its tasks as the same account).

With ``bucket`` or ``service_account`` given, that one is used as it is and not created; roles
are granted only to an account this stack creates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

from mlstack_stacks.names import fit

APIS = (
    "aiplatform.googleapis.com",
    "storage.googleapis.com",
    "monitoring.googleapis.com",
    "logging.googleapis.com",
    "artifactregistry.googleapis.com",
    "iam.googleapis.com",
)
PROJECT_ROLES = (
    "roles/aiplatform.user",
    "roles/logging.logWriter",
    "roles/artifactregistry.reader",
)
BUCKET_ROLE = "roles/storage.objectUser"


@dataclass(frozen=True)
class VertexStackArgs:
    name: str  # e.g. mlstack-churn-staging
    project: str
    region: str
    bucket_name: str  # the bucket to create (ignored when ``bucket`` is given)
    bucket: str | None = None  # an existing bucket: not created
    service_account: str | None = None  # an existing account e-mail: not created, no roles
    labels: dict[str, str] = field(default_factory=dict)


class VertexStack(pulumi.ComponentResource):
    """Everything a Vertex environment needs before mlstack's first run."""

    bucket_name: pulumi.Output[str]
    service_account: pulumi.Output[str]

    def __init__(self, args: VertexStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        name = args.name
        super().__init__("mlstack:gcp:VertexStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        services = [
            gcp.projects.Service(
                f"{name}-{api.split('.')[0]}",
                project=args.project,
                service=api,
                disable_on_destroy=False,
                opts=child,
            )
            for api in APIS
        ]
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=services)
        labels = {"mlstack-stack": name[:63], **args.labels}

        if args.bucket:
            self.bucket_name = pulumi.Output.from_input(args.bucket)
        else:
            bucket = gcp.storage.Bucket(
                f"{name}-artifacts",
                name=args.bucket_name,
                project=args.project,
                location=args.region.upper(),
                uniform_bucket_level_access=True,
                public_access_prevention="enforced",
                versioning=gcp.storage.BucketVersioningArgs(enabled=True),
                # versioned: destroy must delete every object version, or it fails once a
                # run wrote anything
                force_destroy=True,
                labels=labels,
                opts=after_apis,
            )
            self.bucket_name = bucket.name

        if args.service_account:
            self.service_account = pulumi.Output.from_input(args.service_account)
        else:
            account = gcp.serviceaccount.Account(
                f"{name}-runner",
                account_id=_account_id(name),
                display_name=f"mlstack {name}: Vertex pipelines and endpoints",
                project=args.project,
                opts=after_apis,
            )
            member = account.email.apply(lambda e: f"serviceAccount:{e}")
            for role in PROJECT_ROLES:
                gcp.projects.IAMMember(
                    f"{name}-{role.split('/')[1].replace('.', '-')}",
                    project=args.project,
                    role=role,
                    member=member,
                    opts=child,
                )
            gcp.storage.BucketIAMMember(
                f"{name}-bucket-objects",
                bucket=self.bucket_name,
                role=BUCKET_ROLE,
                member=member,
                opts=child,
            )
            gcp.serviceaccount.IAMMember(
                f"{name}-act-as-itself",
                service_account_id=account.name,
                role="roles/iam.serviceAccountUser",
                member=member,
                opts=child,
            )
            self.service_account = account.email
        self.register_outputs({"bucket": self.bucket_name, "service_account": self.service_account})

    def export(self) -> None:
        pulumi.export("bucket", self.bucket_name)
        pulumi.export("service_account", self.service_account)


def _account_id(name: str) -> str:
    """A service account ID: 6-30 characters, lowercase letters, digits, hyphens; a longer name
    is cut with a hash of the whole name at the end (two environments never share one)."""
    text = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    if len(text) < 6:
        text = f"{text}-runner".lstrip("-")
    return fit(text, 30, whole=name)


__all__: list[Any] = ["VertexStack", "VertexStackArgs", "APIS", "PROJECT_ROLES", "BUCKET_ROLE"]
