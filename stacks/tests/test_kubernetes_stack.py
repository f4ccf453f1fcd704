"""The Kubernetes component under Pulumi's mocks: namespace, storage secret on the service
account (as KServe's storage initializer reads it), least-privilege runner RBAC, the gateway."""

from __future__ import annotations

from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_kubernetes")


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        return {}, []


def _run(args: Any) -> tuple[Mocks, dict[str, Any]]:
    from mlstack_stacks.kubernetes import KServeStack

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="mlstack", stack="test", preview=False)
    out: dict[str, Any] = {}

    @pulumi.runtime.test
    def build() -> Any:
        stack = KServeStack("qs", args)
        return pulumi.Output.all(stack.service_account, stack.storage_secret).apply(
            lambda v: out.update(sa=v[0], secret=v[1], gateway=stack.gateway)
        )

    build()
    return mocks, out


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value


def _secret(value: Any) -> Any:
    """The value inside a Pulumi secret; fails when the value is not marked secret."""
    assert isinstance(value, dict) and SECRET_SIG in value, "credentials must be Pulumi secrets"
    return value["value"]


def _one(mocks: Mocks, typ: str) -> Any:
    found = [r for r in mocks.resources if r.typ == typ]
    assert len(found) == 1, (typ, [r.typ for r in mocks.resources])
    return found[0]


def test_s3_secret_service_account_rbac_and_gateway() -> None:
    from mlstack_stacks.kubernetes import KServeStackArgs

    mocks, out = _run(
        KServeStackArgs(
            namespace="ml-team",
            storage_uri="s3://ml-artifacts/quickstart",
            s3_access_key_id="AKIAEXAMPLE",  # plain: the program makes it secret
            s3_secret_access_key="not-a-real-secret",
            s3_endpoint="http://minio.storage:9000",
            runner=("ServiceAccount", "ci", "ci"),
            gateway_name="mlstack-gw",
            gateway_namespace="gateways",
            gateway_class="istio",
        )
    )
    assert _one(mocks, "kubernetes:core/v1:Namespace").inputs["metadata"]["name"] == "ml-team"
    secret = _one(mocks, "kubernetes:core/v1:Secret").inputs
    assert secret["metadata"]["annotations"] == {
        "serving.kserve.io/s3-region": "us-east-1",
        "serving.kserve.io/s3-endpoint": "minio.storage:9000",
        "serving.kserve.io/s3-usehttps": "0",
    }
    assert set(_secret(secret["stringData"])) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    sa = _one(mocks, "kubernetes:core/v1:ServiceAccount").inputs
    assert sa["metadata"] == {
        "name": "mlstack",
        "namespace": "ml-team",
        "labels": {"app.kubernetes.io/managed-by": "mlstack"},
    }
    assert sa["secrets"] == [{"name": "mlstack-storage"}]
    assert out["sa"] == "mlstack" and out["secret"] == "mlstack-storage"

    role = _one(mocks, "kubernetes:rbac.authorization.k8s.io/v1:Role").inputs
    rules = {(r["apiGroups"][0], r["resources"][0]): set(r["verbs"]) for r in role["rules"]}
    # what the backend calls: server-side apply needs create + patch; no wildcard anywhere
    for key in (
        ("serving.kserve.io", "inferenceservices"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("", "configmaps"),
        ("batch", "jobs"),
    ):
        assert {"create", "patch", "get", "list", "delete"} <= rules[key]
    assert rules[("", "pods/log")] == {"get"}
    assert all("*" not in v for v in rules.values())
    assert ("", "secrets") not in rules  # the runner never reads the storage credentials
    binding = _one(mocks, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding").inputs
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}]
    assert binding["roleRef"]["kind"] == "Role"

    gw = _one(mocks, "kubernetes:gateway.networking.k8s.io/v1:Gateway").inputs
    listener = gw["spec"]["listeners"][0]
    assert gw["metadata"]["namespace"] == "gateways"
    assert listener["allowedRoutes"]["namespaces"] == {
        "from": "Selector",
        "selector": {"matchLabels": {"kubernetes.io/metadata.name": "ml-team"}},
    }
    assert out["gateway"] == {"name": "mlstack-gw", "namespace": "gateways"}


def test_gcs_key_and_existing_namespace() -> None:
    from mlstack_stacks.kubernetes import KServeStackArgs

    mocks, out = _run(
        KServeStackArgs(
            namespace="ml-team",
            storage_uri="gs://ml-artifacts/q",
            create_namespace=False,
            gcs_credentials_json="{}",
            runner=("Group", "ml-engineers"),
        )
    )
    assert not [r for r in mocks.resources if r.typ == "kubernetes:core/v1:Namespace"]
    secret = _one(mocks, "kubernetes:core/v1:Secret").inputs
    assert set(_secret(secret["stringData"])) == {"gcloud-application-credentials.json"}
    binding = _one(mocks, "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding").inputs
    assert binding["subjects"] == [
        {"kind": "Group", "name": "ml-engineers", "apiGroup": "rbac.authorization.k8s.io"}
    ]
    assert out["gateway"] is None


def test_missing_credentials_are_refused() -> None:
    from mlstack_stacks.kubernetes import KServeStackArgs

    with pytest.raises(ValueError, match="needs s3_access_key_id"):
        _run(KServeStackArgs(namespace="ml-team", storage_uri="s3://b/p"))


@pytest.mark.parametrize(
    ("uri", "credentials"),
    [
        ("s3://b/p", {"s3_access_key_id": "AKIAEXAMPLE", "s3_secret_access_key": "not-real"}),
        ("gs://b/p", {"gcs_credentials_json": "{}"}),
    ],
)
def test_plain_credentials_are_made_secrets_by_the_program(
    uri: str, credentials: dict[str, str]
) -> None:
    """Whatever resource takes them, the credentials the program hands on are Pulumi secrets
    even when the caller passed plain strings."""
    from mlstack_stacks.kubernetes import KServeStackArgs, _storage_data

    pulumi.runtime.set_mocks(Mocks(), project="mlstack", stack="test", preview=False)
    flags: list[bool] = []

    @pulumi.runtime.test
    def check() -> Any:
        data = _storage_data(KServeStackArgs(namespace="n", storage_uri=uri, **credentials))
        assert data and all(isinstance(v, pulumi.Output) for v in data.values())
        return pulumi.Output.all(
            *[pulumi.Output.from_input(v.is_secret()) for v in data.values()]
        ).apply(flags.extend)

    check()
    assert flags and all(flags)
