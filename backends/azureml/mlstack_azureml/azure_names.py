"""What Azure accepts, written down so ``validate`` can check it with no SDK and no network.

Sources (facts only): "Naming rules and restrictions for Azure resources" (Microsoft.Resources
resourcegroups, Microsoft.MachineLearningServices workspaces / computes / onlineEndpoints /
deployments), "Manage workspaces" (workspace names), "Create an Azure Machine Learning compute
cluster" (cluster names), "Managed online endpoints SKU list" and "Azure geographies" (regions).
Lists go stale; ``allow_unknown_skus`` lets a user through when Azure offers something newer.
"""

from __future__ import annotations

import re

SUBSCRIPTION_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
# Resource groups: 1-90 characters: letters, digits, underscores, parentheses, hyphens and
# periods; must not end in a period.
RESOURCE_GROUP_RE = re.compile(r"^[-\w.()]{1,90}$", re.ASCII)
# Workspaces: 3-33 characters, letters, digits, hyphens and underscores, starting with a
# letter or digit.
WORKSPACE_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$")
# Compute clusters: 2-16 characters: letters, digits and hyphens, starting with a letter.
COMPUTE_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,15}$")
# Online endpoints: 3-32 characters, letters, digits and hyphens, starting with a letter, not
# ending with a hyphen; unique within the region. Deployments: same rule, per endpoint.
ENDPOINT_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$")
# VM sizes: Standard_<family><vCPUs><features>[_v<gen>], e.g. Standard_DS3_v2, Standard_F4s_v2
SKU_RE = re.compile(r"^Standard_([A-Z]+)(\d+)([a-z]*)(?:_v(\d))?$")
# Families managed online endpoints and AmlCompute offer CPU SKUs for (and the GPU NC/ND).
SKU_FAMILIES = ("A", "D", "DS", "E", "F", "FX", "NC", "ND", "NV")
MANAGED_ONLINE_SKUS = (
    "Standard_DS1_v2",
    "Standard_DS2_v2",
    "Standard_DS3_v2",
    "Standard_DS4_v2",
    "Standard_DS5_v2",
    "Standard_F2s_v2",
    "Standard_F4s_v2",
    "Standard_F8s_v2",
    "Standard_F16s_v2",
    "Standard_F32s_v2",
    "Standard_F48s_v2",
    "Standard_F64s_v2",
    "Standard_F72s_v2",
    "Standard_E2s_v3",
    "Standard_E4s_v3",
    "Standard_E8s_v3",
    "Standard_E16s_v3",
    "Standard_E32s_v3",
    "Standard_E48s_v3",
    "Standard_E64s_v3",
    "Standard_NC6s_v3",
    "Standard_NC12s_v3",
    "Standard_NC24s_v3",
    "Standard_NC24ads_A100_v4",
    "Standard_NC48ads_A100_v4",
    "Standard_NC96ads_A100_v4",
    "Standard_ND40rs_v2",
    "Standard_ND96asr_v4",
    "Standard_ND96amsr_A100_v4",
)
# Public Azure regions in which Azure Machine Learning is offered.
REGIONS = (
    "eastus",
    "eastus2",
    "centralus",
    "northcentralus",
    "southcentralus",
    "westcentralus",
    "westus",
    "westus2",
    "westus3",
    "canadacentral",
    "canadaeast",
    "brazilsouth",
    "mexicocentral",
    "northeurope",
    "westeurope",
    "uksouth",
    "ukwest",
    "francecentral",
    "germanywestcentral",
    "italynorth",
    "norwayeast",
    "polandcentral",
    "spaincentral",
    "swedencentral",
    "switzerlandnorth",
    "switzerlandwest",
    "uaenorth",
    "qatarcentral",
    "israelcentral",
    "southafricanorth",
    "centralindia",
    "southindia",
    "westindia",
    "eastasia",
    "southeastasia",
    "japaneast",
    "japanwest",
    "koreacentral",
    "koreasouth",
    "australiaeast",
    "australiasoutheast",
    "australiacentral",
    "newzealandnorth",
)
# Azure Monitor metrics of managed online endpoints: RequestsPerMinute (split by
# statusCodeClass, deployment) and RequestLatency_P50/P90/P95/P99 per deployment.
GATE_METRICS = ("error_rate", "latency_p50", "latency_p90", "latency_p95", "latency_p99")
MAX_MIRROR_PERCENT = 50.0


def sku_problem(value: str, *, serving: bool) -> str | None:
    """Why ``value`` is not an Azure VM size mlstack knows, or None."""
    m = SKU_RE.match(value)
    if not m:
        lower = value.lower()
        guess = next((s for s in MANAGED_ONLINE_SKUS if s.lower() == lower), None)
        if guess is None and SKU_RE.match(f"Standard_{value}"):
            guess = f"Standard_{value}"
        hint = f"; did you mean {guess!r}?" if guess else ""
        return f"{value!r} is not an Azure VM size (they look like Standard_DS3_v2){hint}"
    if m.group(1) not in SKU_FAMILIES:
        return f"unknown Azure VM family {m.group(1)!r} in {value!r}"
    if serving and value not in MANAGED_ONLINE_SKUS:
        from mlstack.manifest.suggest import did_you_mean

        return (
            f"{value!r} is not offered for managed online endpoints"
            f"{did_you_mean(value, MANAGED_ONLINE_SKUS)}"
        )
    return None


def resource_group_problem(value: str) -> str | None:
    if not RESOURCE_GROUP_RE.match(value):
        return (
            f"resource group {value!r}: use 1 to 90 letters, digits, underscores, "
            "parentheses, hyphens and periods"
        )
    if value.endswith("."):
        return f"resource group {value!r} must not end with a period"
    return None


# The workspace's default blob datastore (every workspace has it): the data, stage settings and
# outputs, the code asset and the registered models live there.
DATASTORE = "workspaceblobstore"
