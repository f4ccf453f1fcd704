"""Kubernetes naming and value rules, as the API server checks them (no client import).

Follows the Kubernetes documentation "Object Names and IDs" (DNS-1123 label and subdomain) and
"Resource Management for Pods and Containers" (quantities), and KServe's storage documentation
for the storage URI schemes its storage initializer reads.
"""

from __future__ import annotations

import re

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_SUBDOMAIN_MAX = 253
# resource.Quantity: a signed decimal with an optional binary (Ki..Ei), decimal (n..E) suffix or
# exponent; mlstack accepts only non-negative values
QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$")
# KServe's storage initializer also reads gs://, but mlstack cannot copy artifacts there yet
# (storage.py): accept only what apply can do
STORAGE_SCHEMES = ("s3",)
SERVING_MODES = ("Serverless", "RawDeployment")


def label_problem(value: str, what: str) -> str | None:
    """Why ``value`` is not a DNS-1123 label (namespace, service account, endpoint), or None."""
    if len(value) > DNS1123_LABEL_MAX:
        return f"{what} {value!r} is {len(value)} characters; at most {DNS1123_LABEL_MAX}"
    if not DNS1123_LABEL.match(value):
        fixed = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
        return (
            f"{what} {value!r} is not a DNS-1123 label: lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit" + (f" (e.g. {fixed!r})" if fixed else "")
        )
    return None


def subdomain_problem(value: str, what: str) -> str | None:
    if len(value) > DNS1123_SUBDOMAIN_MAX or not DNS1123_SUBDOMAIN.match(value):
        return (
            f"{what} {value!r} is not a DNS-1123 subdomain: lowercase letters, digits, '-' "
            f"and '.', at most {DNS1123_SUBDOMAIN_MAX} characters"
        )
    return None


def quantity_problem(value: str, what: str) -> str | None:
    if not QUANTITY.match(value):
        return (
            f"{what} {value!r} is not a Kubernetes quantity (e.g. 500m or 1 for CPU, "
            "512Mi or 2Gi for memory)"
        )
    return None


def storage_problem(uri: str) -> str | None:
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme not in STORAGE_SCHEMES:
        later = " (gs:// is not supported yet: mlstack cannot copy artifacts there)"
        return f"storage_uri {uri!r} must start with s3:// (S3 or S3-compatible, e.g. MinIO)" + (
            later if scheme == "gs" else ""
        )
    bucket = rest.split("/", 1)[0]
    if not bucket:
        return f"storage_uri {uri!r} names no bucket (s3://BUCKET/prefix)"
    return None


def object_name(*parts: str, limit: int = DNS1123_LABEL_MAX) -> str:
    """A DNS-1123 label from parts; too long ones keep a stable hash suffix."""
    import hashlib

    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-") or "x"
    name = re.sub(r"-{2,}", "-", name)
    if len(name) > limit:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = name[: limit - 9].rstrip("-") + "-" + digest
    return name
