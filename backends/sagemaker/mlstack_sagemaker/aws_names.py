"""What AWS accepts, written down so ``validate`` can check it with no SDK and no network.

Lists go stale; they are a guard against typos, and ``allow_unknown_instance_types`` in the
environment block lets a user through when AWS has launched something newer than this file.
"""

from __future__ import annotations

import re

# Commercial, GovCloud and China regions in which SageMaker is offered.
REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "mx-central-1",
    "sa-east-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "af-south-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "ap-east-1",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "us-gov-west-1",
    "us-gov-east-1",
    "cn-north-1",
    "cn-northwest-1",
)

# A SageMaker instance type: ml.<family>.<size>; which ones exist per job kind: instance_types.py
INSTANCE_RE = re.compile(r"^ml\.([a-z0-9-]+)\.([a-z0-9]+)$")

ROLE_ARN_RE = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SECURITY_GROUP_RE = re.compile(r"^sg-[0-9a-f]{8,17}$")
# Names of SageMaker pipelines, endpoints, models, configs and model package groups.
SAGEMAKER_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name (general purpose buckets), or None."""
    if not 3 <= len(name) <= 63:
        return f"bucket name {name!r} must be 3 to 63 characters long"
    if not BUCKET_RE.match(name):
        return (
            f"bucket name {name!r} may contain only lowercase letters, digits, '.' and '-', "
            "and must start and end with a letter or digit"
        )
    if ".." in name:
        return f"bucket name {name!r} must not contain two adjacent periods"
    if IPV4_RE.match(name):
        return f"bucket name {name!r} must not look like an IP address"
    for p in BUCKET_BAD_PREFIXES:
        if name.startswith(p):
            return f"bucket name {name!r} must not start with {p!r} (reserved by AWS)"
    for s in BUCKET_BAD_SUFFIXES:
        if name.endswith(s):
            return f"bucket name {name!r} must not end with {s!r} (reserved by AWS)"
    return None


def sagemaker_name(*parts: str) -> str:
    """A name SageMaker accepts (letters, digits, single hyphens, at most 63 characters)."""
    raw = "-".join(p for p in parts if p)
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", raw).strip("-")
    cleaned = re.sub(r"-+", "-", cleaned)
    if len(cleaned) > 63:
        import hashlib

        tail = hashlib.sha256(raw.encode()).hexdigest()[:8]
        cleaned = cleaned[:54].rstrip("-") + "-" + tail
    return cleaned or "mlstack"


# Deployment gates a CloudWatch alarm on the endpoint's own metrics can judge (see alarms.py).
GATE_METRICS = ("error_rate", "latency_p50", "latency_p90", "latency_p95", "latency_p99")
