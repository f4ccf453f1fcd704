"""Remote state in Amazon S3 (boto3), with S3's conditional writes.

Follows the S3 API reference for PutObject / DeleteObject / GetObject (``If-None-Match: *``
creates only when the key is absent, ``If-Match: <etag>`` writes only over that version; S3
answers 412 PreconditionFailed, or 409 ConditionalRequestConflict when two conditional writes
race) and "Protecting data with server-side encryption" (``x-amz-server-side-encryption``
AES256 by default, ``aws:kms`` with ``state.kms_key``). Credentials and region come from
boto3's usual chain; ``state.endpoint_url`` or AWS_ENDPOINT_URL_S3 points at an S3-compatible
server.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from mlstack.engine.objectstore import Blob, Conflict, CreateDeleteLock
from mlstack.errors import StateError

_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}


class S3Store(CreateDeleteLock):
    def __init__(self, settings: dict[str, Any]) -> None:
        self.bucket = settings["bucket"]
        self.url = f"s3://{self.bucket}"
        self.client = boto3.client(
            "s3",
            region_name=settings.get("region"),
            endpoint_url=settings.get("endpoint_url"),
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )
        kms = settings.get("kms_key")
        self.sse: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms}
            if kms
            else {"ServerSideEncryption": "AES256"}
        )

    def _fail(self, e: ClientError, key: str, what: str) -> Exception:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in _CONFLICT:
            return Conflict(f"{key}: {code}")
        return StateError(
            f"S3 {what} of {self.url}/{key} failed: {code or e}",
            hint="check the bucket, region and the AWS credentials of this shell",
        )

    def read(self, key: str) -> Blob | None:
        try:
            r = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._fail(e, key, "read") from None
        return Blob(r["Body"].read(), str(r["ETag"]))

    def create(self, key: str, data: bytes) -> str:
        return self._put(key, data, IfNoneMatch="*")

    def replace(self, key: str, data: bytes, version: str) -> str:
        return self._put(key, data, IfMatch=version)

    def _put(self, key: str, data: bytes, **cond: str) -> str:
        try:
            r = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/json",
                **self.sse,
                **cond,
            )
        except ClientError as e:
            if "IfMatch" in cond and e.response.get("Error", {}).get("Code") == "NoSuchKey":
                raise Conflict(f"{key}: deleted") from None
            raise self._fail(e, key, "write") from None
        return str(r["ETag"])

    def delete(self, key: str, version: str | None = None) -> None:
        try:
            if version is None:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            else:
                self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=version)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return
            raise self._fail(e, key, "delete") from None


def open_store(settings: dict[str, Any]) -> S3Store:
    return S3Store(settings)
