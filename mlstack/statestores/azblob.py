"""Remote state in Azure Blob Storage (azure-storage-blob), locked by a blob lease.

Follows the Blob service REST reference: Put Blob with ``If-None-Match: *`` (409
BlobAlreadyExists when it exists) and ``If-Match: <etag>`` (412 ConditionNotMet); Lease Blob
(``acquire`` on a leased blob is 409 LeaseAlreadyPresent, a write without the lease id is 412,
``break`` with period 0 frees it at once). Data is encrypted at rest by the service; with
``state.kms_key`` it is written under that encryption scope. Credentials:
AZURE_STORAGE_CONNECTION_STRING, else ``state.account_url`` with AZURE_STORAGE_KEY (and
AZURE_STORAGE_ACCOUNT), else azure-identity's DefaultAzureCredential.
"""

from __future__ import annotations

import os
import time
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobLeaseClient, BlobServiceClient

from mlstack.engine.objectstore import Blob, Conflict
from mlstack.errors import StateError


def _service(settings: dict[str, Any]) -> BlobServiceClient:
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        return BlobServiceClient.from_connection_string(conn)
    url = settings.get("account_url")
    if not url:
        raise StateError(
            "state backend azblob needs `account_url:` or AZURE_STORAGE_CONNECTION_STRING",
            hint="e.g. account_url: https://ACCOUNT.blob.core.windows.net",
        )
    key = os.environ.get("AZURE_STORAGE_KEY")
    if key:
        account = os.environ.get("AZURE_STORAGE_ACCOUNT") or url.split("//")[1].split(".")[0]
        return BlobServiceClient(url, credential={"account_name": account, "account_key": key})
    from azure.identity import DefaultAzureCredential  # optional: pip install azure-identity

    return BlobServiceClient(url, credential=DefaultAzureCredential())


class AzureBlobStore:
    def __init__(self, settings: dict[str, Any]) -> None:
        self_container = settings["container"]
        self.service = _service(settings)
        self.url = f"az://{self_container}"
        self.client = self.service.get_container_client(self_container)
        scope = settings.get("kms_key")
        self.extra: dict[str, Any] = {"encryption_scope": scope} if scope else {}

    def _fail(self, e: Exception, key: str, what: str) -> StateError:
        return StateError(
            f"Azure Blob {what} of {self.url}/{key} failed: {e}".splitlines()[0],
            hint="check the container and the Azure credentials of this shell",
        )

    def read(self, key: str) -> Blob | None:
        try:
            d = self.client.get_blob_client(key).download_blob()
            return Blob(d.readall(), str(d.properties.etag))
        except ResourceNotFoundError:
            return None
        except HttpResponseError as e:
            raise self._fail(e, key, "read") from None

    def create(self, key: str, data: bytes) -> str:
        try:
            r = self.client.get_blob_client(key).upload_blob(data, overwrite=False, **self.extra)
        except ResourceExistsError:
            raise Conflict(key) from None
        except HttpResponseError as e:
            raise self._fail(e, key, "write") from None
        return str(r["etag"])

    def replace(self, key: str, data: bytes, version: str) -> str:
        try:
            r = self.client.get_blob_client(key).upload_blob(
                data,
                overwrite=True,
                etag=version,
                match_condition=MatchConditions.IfNotModified,
                **self.extra,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise Conflict(key) from None
        except HttpResponseError as e:
            if e.status_code in (409, 412):
                raise Conflict(key) from None
            raise self._fail(e, key, "write") from None
        return str(r["etag"])

    def delete(self, key: str, version: str | None = None) -> None:
        cond: dict[str, Any] = (
            {"etag": version, "match_condition": MatchConditions.IfNotModified} if version else {}
        )
        try:
            self.client.get_blob_client(key).delete_blob(**cond)
        except ResourceNotFoundError:
            return
        except ResourceModifiedError:
            raise Conflict(key) from None
        except HttpResponseError as e:
            raise self._fail(e, key, "delete") from None

    # --- the lock: an infinite lease on the lock blob; its content names the holder ----------
    def lock_acquire(self, key: str, data: bytes) -> str:
        blob = self.client.get_blob_client(key)
        try:
            blob.upload_blob(b"", overwrite=False, **self.extra)
        except ResourceExistsError:
            pass  # the lock blob outlives its leases
        except HttpResponseError as e:
            if e.status_code != 412:  # leased by someone right now
                raise self._fail(e, key, "lock") from None
        try:
            lease = blob.acquire_lease(lease_duration=-1)
        except HttpResponseError as e:
            if e.status_code == 409:
                raise Conflict(key) from None
            raise self._fail(e, key, "lock") from None
        try:
            blob.upload_blob(data, overwrite=True, lease=lease.id, **self.extra)  # type: ignore[arg-type]  # a lease id is accepted
        except HttpResponseError as e:
            lease.release()
            raise self._fail(e, key, "lock") from None
        return str(lease.id)

    def lock_refresh(self, key: str, token: str, data: bytes) -> str:
        try:
            self.client.get_blob_client(key).upload_blob(
                data,
                overwrite=True,
                lease=token,  # type: ignore[arg-type]  # a lease id is accepted
                **self.extra,
            )
        except HttpResponseError as e:
            if e.status_code in (409, 412):
                raise Conflict(key) from None
            raise
        return token

    def lock_read(self, key: str) -> bytes | None:
        blob = self.client.get_blob_client(key)
        for _ in range(50):
            try:
                props = blob.get_blob_properties()
                if props.lease.state != "leased":
                    return None
                data = blob.download_blob().readall()
            except ResourceNotFoundError:
                return None
            if data:
                return bytes(data)
            time.sleep(0.02)  # leased a moment ago; the holder is writing its record
        return None

    def lock_release(self, key: str, token: str) -> None:
        blob = self.client.get_blob_client(key)
        try:
            blob.upload_blob(b"", overwrite=True, lease=token, **self.extra)  # type: ignore[arg-type]
            BlobLeaseClient(blob, lease_id=token).release()
        except HttpResponseError as e:
            if e.status_code in (409, 412):
                raise Conflict(key) from None
            raise self._fail(e, key, "unlock") from None

    def lock_break(self, key: str) -> None:
        blob = self.client.get_blob_client(key)
        try:
            BlobLeaseClient(blob).break_lease(lease_break_period=0)
        except ResourceNotFoundError:
            return
        except HttpResponseError as e:
            if e.status_code != 409:  # 409: there was no lease to break
                raise self._fail(e, key, "force-unlock") from None


def open_store(settings: dict[str, Any]) -> AzureBlobStore:
    return AzureBlobStore(settings)
