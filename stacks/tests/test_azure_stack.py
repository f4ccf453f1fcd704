"""The Azure ML component under Pulumi's unit-test mocks: what it creates and the properties that
make it safe (no public blobs, versioning, RBAC vault, one identity with four scoped roles)."""

from __future__ import annotations

from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_azure_native")

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        rid = f"/subscriptions/{SUB}/resourceGroups/rg/providers/{args.typ}/{args.name}"
        physical = {  # the input Azure takes as the resource's name
            "azure-native:resources:ResourceGroup": "resourceGroupName",
            "azure-native:machinelearningservices:Workspace": "workspaceName",
            "azure-native:storage:StorageAccount": "accountName",
        }.get(args.typ, "")
        state = {**args.inputs, "id": rid, "name": args.inputs.get(physical, args.name)}
        if args.typ.endswith("UserAssignedIdentity"):
            state["principalId"] = "11111111-2222-3333-4444-555555555555"
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        if args.token == "azure-native:authorization:getClientConfig":
            return {
                "clientId": "c",
                "objectId": "o",
                "subscriptionId": SUB,
                "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            }, []
        return {}, []


def _run(**kw: Any) -> tuple[Mocks, dict[str, Any]]:
    from mlstack_stacks.azure import AzureMLStack, AzureMLStackArgs

    mocks = Mocks()
    pulumi.runtime.set_mocks(mocks, project="mlstack", stack="test", preview=False)
    out: dict[str, Any] = {}
    args = AzureMLStackArgs(
        name="mlstack-shop-dev", location="westeurope", workspace="shop-dev", **kw
    )

    @pulumi.runtime.test
    def build() -> Any:
        stack = AzureMLStack(args.name, args)
        return pulumi.Output.all(stack.workspace_name, stack.resource_group).apply(
            lambda v: out.update(workspace=v[0], group=v[1])
        )

    build()
    return mocks, out


def _one(mocks: Mocks, suffix: str) -> Any:
    found = [r for r in mocks.resources if r.typ.endswith(suffix)]
    assert len(found) == 1, (suffix, [r.typ for r in mocks.resources])
    return found[0]


def test_stack_creates_safe_resources_and_least_roles() -> None:
    mocks, out = _run(max_nodes=4)
    assert out["workspace"] == "shop-dev" and out["group"] == "mlstack-shop-dev"
    st = _one(mocks, ":StorageAccount")
    assert st.inputs["allowBlobPublicAccess"] is False
    assert (
        st.inputs["enableHttpsTrafficOnly"] is True and st.inputs["minimumTlsVersion"] == "TLS1_2"
    )
    assert st.inputs["accountName"].isalnum() and len(st.inputs["accountName"]) <= 24
    assert _one(mocks, ":BlobServiceProperties").inputs["isVersioningEnabled"] is True
    kv = _one(mocks, ":Vault").inputs["properties"]
    assert kv["enableRbacAuthorization"] is True and kv["enablePurgeProtection"] is True
    assert _one(mocks, ":Registry").inputs["adminUserEnabled"] is False
    assert (
        _one(mocks, "applicationinsights:Component").inputs["workspaceResourceId"].endswith("-logs")
    )
    ws = _one(mocks, "machinelearningservices:Workspace").inputs
    identity = _one(mocks, ":UserAssignedIdentity")
    assert ws["identity"]["type"] == "UserAssigned"
    assert ws["primaryUserAssignedIdentity"].endswith(identity.name)
    for key in ("storageAccount", "keyVault", "applicationInsights", "containerRegistry"):
        assert ws[key].startswith(f"/subscriptions/{SUB}/"), key
    cluster = _one(mocks, ":Compute").inputs
    scale = cluster["properties"]["properties"]["scaleSettings"]
    assert cluster["properties"]["computeType"] == "AmlCompute"
    assert scale["minNodeCount"] == 0 and scale["maxNodeCount"] == 4
    assert cluster["identity"]["type"] == "UserAssigned"
    roles = [r.inputs for r in mocks.resources if r.typ.endswith(":RoleAssignment")]
    by_role = {r["roleDefinitionId"].rsplit("/", 1)[1]: r["scope"] for r in roles}
    assert len(roles) == 4
    assert all(r["principalId"] == "11111111-2222-3333-4444-555555555555" for r in roles)
    assert all(r["roleDefinitionId"].startswith(f"/subscriptions/{SUB}/providers/") for r in roles)
    # each role is scoped to the one resource it is for; none to the group or subscription
    assert by_role["ba92f5b4-2d11-453d-a403-e96b0029c9fe"].endswith("-st")
    assert by_role["8311e382-0749-4cb8-b61a-753f48b4bb2d"].endswith("-acr")
    assert by_role["b86a8fe4-44ce-4948-aee5-eccb2c155cd7"].endswith("-kv")
    assert by_role["f6c7c914-8db3-469d-8ca1-694a8f32e121"].endswith("-ws")


def test_existing_resource_group_is_not_created() -> None:
    mocks, out = _run(resource_group="shared-rg")
    assert not [r for r in mocks.resources if r.typ.endswith(":ResourceGroup")]
    assert out["group"] == "shared-rg"
    assert _one(mocks, ":StorageAccount").inputs["resourceGroupName"] == "shared-rg"


def test_long_storage_and_vault_names_keep_environments_apart() -> None:
    """Storage account and key vault names are global and at most 24 characters: a longer name
    ends with a hash of the whole name, so two environments of one project never collide."""
    from mlstack_stacks.azure import compact

    staging = compact("mlstack-customer-churn-staging-st", 24)
    staging2 = compact("mlstack-customer-churn-staging2-st", 24)
    assert staging != staging2
    assert all(n.isalnum() and n.islower() and len(n) == 24 for n in (staging, staging2))
    assert staging.startswith("mlstackcustomerc")
    assert compact("mlstack-q-dev-st", 24) == "mlstackqdevst"  # short names unchanged
