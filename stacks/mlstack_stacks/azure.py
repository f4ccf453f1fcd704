"""The Azure infrastructure an Azure ML environment runs on, as one Pulumi ComponentResource.

Resource group; storage account (no public blob access, HTTPS and TLS 1.2 only, blob
versioning); key vault (RBAC authorisation, purge protection); Log Analytics workspace and
workspace-based Application Insights; container registry (no admin user); the Azure ML
workspace; a compute cluster that scales to zero. One user-assigned identity is the workspace's
and the cluster's, holding only the roles its jobs and deployments need, each scoped to one
resource: Storage Blob Data Contributor on the storage account (datastore reads and writes),
AcrPush on the registry (environment image builds and pulls), Key Vault Secrets Officer on the
vault (the workspace's connection secrets), AzureML Data Scientist on the workspace (register
models, submit jobs). Outputs are what the backend's environment block names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi
from pulumi_azure_native import (
    applicationinsights,
    authorization,
    containerregistry,
    keyvault,
    machinelearningservices,
    managedidentity,
    operationalinsights,
    resources,
    storage,
)

from mlstack_stacks.names import fit

# Built-in role definition ids (Azure RBAC "Azure built-in roles").
ROLES = {
    "storage": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",  # Storage Blob Data Contributor
    "registry": "8311e382-0749-4cb8-b61a-753f48b4bb2d",  # AcrPush
    "vault": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",  # Key Vault Secrets Officer
    "workspace": "f6c7c914-8db3-469d-8ca1-694a8f32e121",  # AzureML Data Scientist
}


@dataclass(frozen=True)
class AzureMLStackArgs:
    name: str  # e.g. mlstack-churn-staging
    location: str
    workspace: str
    compute: str = "cpu-cluster"
    compute_sku: str = "Standard_DS3_v2"
    max_nodes: int = 2
    resource_group: str | None = None  # an existing group: not created
    tags: Mapping[str, str] = field(default_factory=dict)


def compact(name: str, limit: int) -> str:
    """Storage accounts, key vaults and registries here take only lowercase letters and digits;
    a name longer than ``limit`` is cut with a hash of the whole name at the end, so two
    environments of one project never get the same (globally unique) name."""
    return fit(re.sub(r"[^a-z0-9]", "", name.lower()), limit, sep="", whole=name)


class AzureMLStack(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: AzureMLStackArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlstack:azure:AzureMLStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {"managed-by": "mlstack", **args.tags}
        loc = args.location
        client = authorization.get_client_config()

        if args.resource_group:
            group_name: pulumi.Input[str] = args.resource_group
        else:
            group = resources.ResourceGroup(
                f"{name}-rg", resource_group_name=name, location=loc, tags=tags, opts=child
            )
            group_name = group.name
        common: dict[str, Any] = {"resource_group_name": group_name, "location": loc, "tags": tags}

        identity = managedidentity.UserAssignedIdentity(f"{name}-id", **common, opts=child)
        account = storage.StorageAccount(
            f"{name}-st",
            account_name=compact(f"{name}st", 24),
            kind="StorageV2",
            sku={"name": "Standard_LRS"},
            allow_blob_public_access=False,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            **common,
            opts=child,
        )
        storage.BlobServiceProperties(
            f"{name}-blob",
            account_name=account.name,
            resource_group_name=group_name,
            blob_services_name="default",
            is_versioning_enabled=True,
            delete_retention_policy={"enabled": True, "days": 7},
            opts=child,
        )
        vault_properties: Any = {
            "tenant_id": client.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enable_rbac_authorization": True,
            "enable_soft_delete": True,
            "enable_purge_protection": True,
        }
        vault = keyvault.Vault(
            f"{name}-kv",
            vault_name=compact(f"{name}kv", 24),
            properties=vault_properties,
            **common,
            opts=child,
        )
        logs = operationalinsights.Workspace(
            f"{name}-logs",
            sku={"name": "PerGB2018"},
            retention_in_days=30,
            **common,
            opts=child,
        )
        insights = applicationinsights.Component(
            f"{name}-ai",
            kind="web",
            application_type="web",
            workspace_resource_id=logs.id,
            ingestion_mode="LogAnalytics",
            **common,
            opts=child,
        )
        registry = containerregistry.Registry(
            f"{name}-acr",
            registry_name=compact(f"{name}acr", 50),
            sku={"name": "Basic"},
            admin_user_enabled=False,
            **common,
            opts=child,
        )
        user_identity: Any = identity.id.apply(lambda i: {i: {}})
        uses_identity: Any = {"type": "UserAssigned", "user_assigned_identities": user_identity}
        workspace = machinelearningservices.Workspace(
            f"{name}-ws",
            workspace_name=args.workspace,
            identity=uses_identity,
            primary_user_assigned_identity=identity.id,
            storage_account=account.id,
            key_vault=vault.id,
            application_insights=insights.id,
            container_registry=registry.id,
            sku=cast(Any, {"name": "Basic", "tier": "Basic"}),
            **common,
            opts=child,
        )
        self.role_assignments = [
            authorization.RoleAssignment(
                f"{name}-role-{what}",
                principal_id=identity.principal_id,
                principal_type="ServicePrincipal",
                role_definition_id=pulumi.Output.concat(
                    "/subscriptions/",
                    client.subscription_id,
                    "/providers/Microsoft.Authorization/roleDefinitions/",
                    ROLES[what],
                ),
                scope=scope,
                opts=child,
            )
            for what, scope in (
                ("storage", account.id),
                ("registry", registry.id),
                ("vault", vault.id),
                ("workspace", workspace.id),
            )
        ]
        machinelearningservices.Compute(
            f"{name}-cluster",
            compute_name=args.compute,
            workspace_name=workspace.name,
            identity=uses_identity,
            properties=cast(
                Any,
                {
                    "compute_type": "AmlCompute",
                    "properties": {
                        "vm_size": args.compute_sku,
                        "scale_settings": {
                            "max_node_count": args.max_nodes,
                            "min_node_count": 0,
                            "node_idle_time_before_scale_down": "PT120S",
                        },
                        "remote_login_port_public_access": "Disabled",
                    },
                },
            ),
            **common,
            opts=child,
        )
        self.resource_group = pulumi.Output.from_input(group_name)
        self.workspace_name = workspace.name
        self.identity_id = identity.id
        self.storage_account = account.name
        self.register_outputs(
            {
                "resource_group": self.resource_group,
                "workspace": self.workspace_name,
                "identity_id": self.identity_id,
                "storage_account": self.storage_account,
            }
        )
