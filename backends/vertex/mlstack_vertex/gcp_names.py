"""What Google Cloud accepts, written down so ``validate`` can check it with no SDK and no network.

Sources (facts only): "Vertex AI locations" (regions where Vertex AI Pipelines, Model Registry
and online prediction are offered), "Creating and managing projects" (project ID rules),
"Bucket naming guidelines" (Cloud Storage), "Service accounts" (e-mail forms), "Machine types
for custom training / online prediction", and "Specify a VPC network" (the peered network's
resource name with a project *number*). Lists go stale; ``allow_unknown_machine_types`` lets a
user through when Google has launched something newer than this file.
"""

from __future__ import annotations

import ipaddress
import re

REGIONS = (
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
    "us-west2",
    "us-west3",
    "us-west4",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "southamerica-east1",
    "southamerica-west1",
    "europe-central2",
    "europe-north1",
    "europe-southwest1",
    "europe-west1",
    "europe-west2",
    "europe-west3",
    "europe-west4",
    "europe-west6",
    "europe-west8",
    "europe-west9",
    "europe-west12",
    "me-central1",
    "me-central2",
    "me-west1",
    "africa-south1",
    "asia-east1",
    "asia-east2",
    "asia-northeast1",
    "asia-northeast2",
    "asia-northeast3",
    "asia-south1",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "australia-southeast2",
)

# 6 to 30 characters: lowercase letters, digits, hyphens; starts with a letter, no trailing hyphen
PROJECT_ID_RE = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
# a user-managed account NAME@PROJECT.iam.gserviceaccount.com (NAME: 6-30 characters), or
# Compute Engine's default PROJECT_NUMBER-compute@developer.gserviceaccount.com
SERVICE_ACCOUNT_RE = re.compile(
    r"^(?:[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com"
    r"|[0-9]+-compute@developer\.gserviceaccount\.com)$"
)
NETWORK_RE = re.compile(r"^projects/[0-9]+/global/networks/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
# Vertex resource IDs mlstack chooses (model and endpoint display names are free text, but the
# labels we attach are not): label keys/values, lowercase letters, digits, _ and -, <= 63
LABEL_RE = re.compile(r"^[a-z0-9_-]{0,63}$")

MACHINE_RE = re.compile(r"^([a-z][a-z0-9]*)-([a-z]+)-([0-9]+)$")
MACHINE_SERIES = {
    "n1": ("standard", "highmem", "highcpu"),
    "n2": ("standard", "highmem", "highcpu"),
    "n2d": ("standard", "highmem", "highcpu"),
    "e2": ("standard", "highmem", "highcpu"),
    "c2": ("standard",),
    "c2d": ("standard", "highmem", "highcpu"),
    "c3": ("standard", "highmem", "highcpu"),
    "m1": ("ultramem", "megamem"),
    "a2": ("highgpu", "ultragpu", "megagpu"),
    "a3": ("highgpu", "megagpu"),
    "g2": ("standard",),
}
MACHINE_CPUS = frozenset({1, 2, 4, 8, 12, 16, 22, 24, 30, 32, 40, 48, 56, 60, 64, 80, 88, 96, 112})

# What Cloud Monitoring reports for a Vertex endpoint (aiplatform.googleapis.com/prediction/
# online/prediction_count, error_count, prediction_latencies), per deployed model.
GATE_METRICS = (
    "error_rate",
    "requests",
    "latency_p50",
    "latency_p90",
    "latency_p95",
    "latency_p99",
)


def bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a Cloud Storage bucket name, or None when it is one."""
    parts = name.split(".")
    if not 3 <= len(name) <= (222 if len(parts) > 1 else 63):
        return f"bucket {name!r} must be 3 to 63 characters (222 with dots)"
    if any(not 1 <= len(p) <= 63 for p in parts):
        return f"bucket {name!r}: each dot-separated part must be 1 to 63 characters"
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*[a-z0-9]", name):
        return (
            f"bucket {name!r} may contain only lowercase letters, digits, '-', '_' and '.', "
            "and must start and end with a letter or digit"
        )
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return f"bucket {name!r} must not look like an IP address"
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return f"bucket {name!r} must not start with 'goog' or contain 'google'"
    return None


def machine_problem(value: str) -> str | None:
    """Why ``value`` is not a Compute Engine machine type Vertex runs on, or None."""
    m = MACHINE_RE.match(value)
    if not m:
        return f"{value!r} is not a machine type (they look like n1-standard-4)"
    series, kind, cpus = m.group(1), m.group(2), int(m.group(3))
    if series not in MACHINE_SERIES:
        from mlstack.manifest.suggest import did_you_mean

        return (
            f"unknown machine series {series!r} in {value!r}{did_you_mean(series, MACHINE_SERIES)}"
        )
    if kind not in MACHINE_SERIES[series]:
        kinds = ", ".join(MACHINE_SERIES[series])
        return f"{series} has no {kind!r} machines (it has {kinds}) in {value!r}"
    if cpus not in MACHINE_CPUS:
        return f"{value!r}: {cpus} is not a vCPU count machine types come in"
    return None
