"""Artifacts in the environment's storage (``storage_uri``), where KServe's storage initializer
reads them. S3 and S3-compatible stores (``s3_endpoint``) through boto3, with the credentials of
the environment that runs mlstack (never stored by mlstack)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlstack.errors import BackendError
from mlstack_kserve.platform import Platform


def _s3(p: Platform) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=p.config.s3_endpoint)


def local_dir(uri: str) -> Path | None:
    """The folder a ``file://`` URI or a plain path names; None for remote URIs."""
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    if "://" in uri:
        return None
    return Path(uri)


def upload_dir(p: Platform, folder: Path, key: str) -> str:
    """Copy ``folder`` to ``<storage_uri>/<key>/``; returns that URI."""
    c = p.config
    if not c.storage_uri.startswith("s3://"):
        raise BackendError(
            f"copying artifacts to {c.storage_uri} is not implemented (only s3:// so far)",
            hint="use an s3:// (or S3-compatible) storage_uri",
        )
    if not folder.is_dir():
        raise BackendError(f"artifact folder {folder} does not exist")
    prefix = "/".join(x for x in (c.prefix, key) if x)
    s3 = _s3(p)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                s3.upload_file(str(f), c.bucket, f"{prefix}/{f.relative_to(folder).as_posix()}")
    except (BotoCoreError, ClientError) as e:
        raise BackendError(
            f"cannot upload the model artifact to s3://{c.bucket}/{prefix}: {e}",
            hint="check the storage credentials (AWS_* variables) and s3_endpoint",
        ) from None
    return f"s3://{c.bucket}/{prefix}"


def _split(p: Platform, uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise BackendError(
            f"reading {uri} is not implemented (only s3:// so far)",
            hint="use an s3:// (or S3-compatible) storage_uri",
        )
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _storage_error(e: Exception, what: str) -> BackendError:
    return BackendError(
        f"cannot {what}: {e}",
        hint="check the storage credentials (AWS_* variables) and s3_endpoint",
    )


def uri_of(p: Platform, key: str) -> str:
    """``<storage_uri>/<key>``."""
    return f"{p.config.storage_uri}/{key}"


def put_bytes(p: Platform, uri: str, data: bytes) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _split(p, uri)
    try:
        _s3(p).put_object(Bucket=bucket, Key=key, Body=data)
    except (BotoCoreError, ClientError) as e:
        raise _storage_error(e, f"write {uri}") from None


def exists(p: Platform, uri: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _split(p, uri)
    try:
        _s3(p).head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise _storage_error(e, f"read {uri}") from None
    except BotoCoreError as e:
        raise _storage_error(e, f"read {uri}") from None
    return True


def read_tree(p: Platform, uri: str) -> dict[str, bytes]:
    """Every object under ``uri/`` as ``{relative path: bytes}`` (stage outputs are small)."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split(p, uri.rstrip("/"))
    s3 = _s3(p)
    out: dict[str, bytes] = {}
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
        for page in pages:
            for o in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                out[o["Key"][len(prefix) + 1 :]] = body
    except (BotoCoreError, ClientError) as e:
        raise _storage_error(e, f"read {uri}") from None
    return out


def has_objects(p: Platform, uri: str) -> bool:
    """Whether anything lies under ``uri/``."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split(p, uri.rstrip("/"))
    try:
        out = _s3(p).list_objects_v2(Bucket=bucket, Prefix=prefix + "/", MaxKeys=1)
    except (BotoCoreError, ClientError) as e:
        raise _storage_error(e, f"list {uri}") from None
    return bool(out.get("KeyCount") or out.get("Contents"))
