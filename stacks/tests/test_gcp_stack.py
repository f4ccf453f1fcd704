"""The GCP component under Pulumi's unit-test mocks: the bucket's protections, the service
account's roles (each one the pipeline jobs, model upload or deployed models call for, and no
project-wide storage role), the APIs."""

from __future__ import annotations

from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_gcp")


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Any] = []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ == "gcp:serviceaccount/account:Account":
            email = f"{args.inputs['accountId']}@{args.inputs['project']}.iam.gserviceaccount.com"
            state.update(
                email=email, name=f"projects/{args.inputs['project']}/serviceAccounts/{email}"
            )
        return f"{args.name}-id", state

    def call(self, args: Any) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def _run(args: Any) -> tuple[Mocks, dict[str, Any]]:
    from mlstack_stacks.gcp import VertexStack

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="mlstack", stack="test", preview=False)
    out: dict[str, Any] = {}

    @pulumi.runtime.test
    def build() -> Any:
        stack = VertexStack(args)
        return pulumi.Output.all(stack.bucket_name, stack.service_account).apply(
            lambda v: out.update(bucket=v[0], service_account=v[1])
        )

    build()
    return mocks, out


def _of(mocks: Mocks, typ: str) -> list[Any]:
    return [r for r in mocks.resources if r.typ == typ]


def test_full_stack_bucket_account_roles_and_apis() -> None:
    from mlstack_stacks.gcp import VertexStackArgs

    mocks, out = _run(
        VertexStackArgs(
            name="mlstack-quickstart-dev",
            project="shop-ml-dev",
            region="europe-west4",
            bucket_name="shop-ml-dev-mlstack-quickstart",
        )
    )
    (bucket,) = _of(mocks, "gcp:storage/bucket:Bucket")
    assert bucket.inputs["name"] == "shop-ml-dev-mlstack-quickstart"
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    assert bucket.inputs["publicAccessPrevention"] == "enforced"
    assert bucket.inputs["versioning"] == {"enabled": True}
    assert bucket.inputs["location"] == "EUROPE-WEST4" and bucket.inputs["forceDestroy"] is True
    (account,) = _of(mocks, "gcp:serviceaccount/account:Account")
    assert account.inputs["accountId"] == "mlstack-quickstart-dev"
    email = "mlstack-quickstart-dev@shop-ml-dev.iam.gserviceaccount.com"
    assert out == {"bucket": "shop-ml-dev-mlstack-quickstart", "service_account": email}
    member = f"serviceAccount:{email}"
    project_roles = {
        r.inputs["role"]
        for r in _of(mocks, "gcp:projects/iAMMember:IAMMember")
        if r.inputs["member"] == member and r.inputs["project"] == "shop-ml-dev"
    }
    # what pipeline tasks, their logs and deployed models use; nothing broader
    assert project_roles == {
        "roles/aiplatform.user",
        "roles/logging.logWriter",
        "roles/artifactregistry.reader",
    }
    assert not any("admin" in r or "owner" in r or "editor" in r for r in project_roles)
    (on_bucket,) = _of(mocks, "gcp:storage/bucketIAMMember:BucketIAMMember")
    assert on_bucket.inputs == {
        "bucket": "shop-ml-dev-mlstack-quickstart",
        "role": "roles/storage.objectUser",
        "member": member,
    }
    (act_as,) = _of(mocks, "gcp:serviceaccount/iAMMember:IAMMember")
    assert act_as.inputs["role"] == "roles/iam.serviceAccountUser"
    assert act_as.inputs["member"] == member
    assert act_as.inputs["serviceAccountId"].endswith(f"/serviceAccounts/{email}")
    apis = {r.inputs["service"] for r in _of(mocks, "gcp:projects/service:Service")}
    assert {"aiplatform.googleapis.com", "storage.googleapis.com"} <= apis
    assert all(
        r.inputs["disableOnDestroy"] is False for r in _of(mocks, "gcp:projects/service:Service")
    )


def test_given_bucket_and_account_are_not_created_nor_granted() -> None:
    from mlstack_stacks.gcp import VertexStackArgs

    sa = "runner@shop-ml-dev.iam.gserviceaccount.com"
    mocks, out = _run(
        VertexStackArgs(
            name="mlstack-q-dev",
            project="shop-ml-dev",
            region="us-central1",
            bucket_name="unused",
            bucket="given-bucket",
            service_account=sa,
        )
    )
    assert out == {"bucket": "given-bucket", "service_account": sa}
    types = {r.typ for r in mocks.resources}
    assert types == {"mlstack:gcp:VertexStack", "gcp:projects/service:Service"}


def test_versioned_bucket_is_destroyable_once_written() -> None:
    """A versioned bucket holding objects is only deletable with force_destroy (it removes
    every object version first); without it `destroy` fails once a run wrote anything."""
    from mlstack_stacks.gcp import VertexStackArgs

    mocks, _ = _run(
        VertexStackArgs(
            name="mlstack-q-dev", project="p-123456", region="us-central1", bucket_name="b"
        )
    )
    (bucket,) = _of(mocks, "gcp:storage/bucket:Bucket")
    assert bucket.inputs["versioning"] == {"enabled": True}
    assert bucket.inputs["forceDestroy"] is True


def test_long_service_account_ids_keep_environments_apart() -> None:
    import re

    from mlstack_stacks.gcp import _account_id

    staging = _account_id("mlstack-customer-churn-model-staging")
    prod = _account_id("mlstack-customer-churn-model-staging2")
    assert staging != prod
    for account in (staging, prod):
        assert re.fullmatch(r"[a-z]([-a-z0-9]{4,28}[a-z0-9])", account), account
    assert staging.startswith("mlstack-customer-chur-")
    assert _account_id("mlstack-q-dev") == "mlstack-q-dev"  # short names unchanged
    assert _account_id("ab") == "ab-runner"
