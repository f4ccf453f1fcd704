"""The `local` backend's `artifacts:` setting: an object-store URL checked without any SDK.

``artifacts: s3://bucket/prefix`` (or ``gs://``, ``az://``) makes the content-addressed store
(``store.py``) write every stage output and model to that URL and read what is missing locally
from it, so two machines with the same remote state and the same URL share trained models.

The bucket (container) name is checked against the rules each provider publishes:

- S3: "Bucket naming rules" (Amazon S3 User Guide, general purpose buckets): 3-63 characters,
  lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit, no
  two adjacent dots, not an IP address, not starting ``xn--``/``sthree-`` nor ending
  ``-s3alias``/``--ol-s3``.
- GCS: "Bucket naming guidelines" (Cloud Storage docs): lowercase letters, digits, hyphens,
  underscores and dots, beginning and ending with a letter or digit, 3-63 characters (up to 222
  with dots, each dot-separated part at most 63), not an IP address, not starting ``goog`` and
  not containing ``google``.
- Azure Blob: "Naming and Referencing Containers, Blobs, and Metadata": 3-63 characters,
  lowercase letters, digits and hyphens, beginning with a letter or digit, no two adjacent
  hyphens (and, as containers are addressed in URLs, not ending with one).

Credentials never go in the URL (they would reach state through the recorded model URI): a
``user:password@`` part or a query string is refused; each filesystem reads its SDK's usual
environment (AWS profile or role, Google ADC, ``AZURE_STORAGE_CONNECTION_STRING``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# scheme -> (fsspec protocol, the package that implements it, the extra that installs it)
SCHEMES: dict[str, tuple[str, str, str]] = {
    "s3": ("s3", "s3fs", "artifacts-s3"),
    "gs": ("gcs", "gcsfs", "artifacts-gcs"),
    "gcs": ("gcs", "gcsfs", "artifacts-gcs"),
    "az": ("az", "adlfs", "artifacts-azure"),
    "abfs": ("az", "adlfs", "artifacts-azure"),
}

_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_S3 = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_GCS = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_AZ = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class ArtifactsURL:
    scheme: str
    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    @property
    def protocol(self) -> str:
        return SCHEMES[self.scheme][0]

    @property
    def package(self) -> str:
        return SCHEMES[self.scheme][1]

    @property
    def extra(self) -> str:
        return SCHEMES[self.scheme][2]

    @property
    def root(self) -> str:
        """The path fsspec is given: ``bucket/prefix`` (no scheme)."""
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def __str__(self) -> str:
        return f"{self.scheme}://{self.root}"


def parse_url(url: str) -> ArtifactsURL:
    """The URL, checked; ``ValueError`` saying what is wrong and what is accepted."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ValueError(
            f"{url!r} is not an object-store URL: use s3://BUCKET/PREFIX, gs://BUCKET/PREFIX "
            "or az://CONTAINER/PREFIX"
        )
    scheme = scheme.lower()
    if "?" in rest or "#" in rest:
        raise ValueError(  # not repeated: a query may hold a SAS token or a key
            f"the {scheme}:// URL has a query or fragment: credentials and options never go in "
            "the URL "
            "(the storage SDK's usual environment variables supply them)"
        )
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket:
        raise ValueError(  # the URL itself is not repeated: it holds a secret
            f"the {scheme}:// URL has a user or key before '@': credentials never go in the URL "
            "(they would be recorded in state); the storage SDK's usual environment supplies them"
        )
    problem = bucket_problem(scheme, bucket)
    if problem:
        raise ValueError(f"{url!r}: {problem}")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ValueError(f"{url!r}: the prefix has an empty, '.' or '..' part")
    return ArtifactsURL(scheme, bucket, prefix)


def bucket_problem(scheme: str, bucket: str) -> str | None:
    """Why ``bucket`` is not a valid bucket (container) name for ``scheme``, or None."""
    kind = {"s3": "S3 bucket", "az": "Azure container", "abfs": "Azure container"}.get(
        scheme, "GCS bucket"
    )
    if not bucket:
        return f"the {kind} name is missing"
    if scheme == "s3":
        ok = (
            bool(_S3.match(bucket))
            and ".." not in bucket
            and not _IP.match(bucket)
            and not bucket.startswith(("xn--", "sthree-"))
            and not bucket.endswith(("-s3alias", "--ol-s3"))
        )
        rule = (
            "3-63 lowercase letters, digits, dots and hyphens, beginning and ending with a letter "
            "or digit, no '..', not an IP address"
        )
    elif scheme in ("az", "abfs"):
        ok = bool(_AZ.match(bucket)) and "--" not in bucket
        rule = (
            "3-63 lowercase letters, digits and hyphens, no '--', beginning with a letter or digit"
        )
    else:
        parts = bucket.split(".")
        ok = (
            bool(_GCS.match(bucket))
            and (len(bucket) <= 63 or "." in bucket)
            and all(0 < len(p) <= 63 for p in parts)
            and not _IP.match(bucket)
            and not bucket.startswith("goog")
            and "google" not in bucket
        )
        rule = (
            "3-63 lowercase letters, digits, '-', '_' and '.', beginning and ending with a "
            "letter or digit, not starting with 'goog' nor containing 'google'"
        )
    return None if ok else f"{bucket!r} is not a valid {kind} name ({rule})"
