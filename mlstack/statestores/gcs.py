"""Remote state in Google Cloud Storage (google-cloud-storage), with generation preconditions.

Follows the Cloud Storage documentation "Request preconditions": ``ifGenerationMatch=0``
writes only when no live object exists, ``ifGenerationMatch=<generation>`` only over that
generation; a failed precondition is HTTP 412. Objects are encrypted at rest by Google; with
``state.kms_key`` (a Cloud KMS key name) they are written with that customer-managed key.
Credentials come from Application Default Credentials; STORAGE_EMULATOR_HOST points the client
at an emulator.
"""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import storage

from mlstack.engine.objectstore import Blob, Conflict, CreateDeleteLock
from mlstack.errors import StateError


class GCSStore(CreateDeleteLock):
    def __init__(self, settings: dict[str, Any]) -> None:
        self.url = f"gs://{settings['bucket']}"
        self.client = storage.Client()
        self.bucket = self.client.bucket(settings["bucket"])
        self.kms_key = settings.get("kms_key")

    def _blob(self, key: str) -> Any:
        return self.bucket.blob(key, kms_key_name=self.kms_key)

    def _fail(self, e: Exception, key: str, what: str) -> StateError:
        return StateError(
            f"GCS {what} of {self.url}/{key} failed: {e}",
            hint="check the bucket and the Google credentials of this shell",
        )

    def read(self, key: str) -> Blob | None:
        for _ in range(5):
            try:
                meta = self.bucket.get_blob(key)
                if meta is None:
                    return None
                data = meta.download_as_bytes(if_generation_match=meta.generation)
                return Blob(data, str(meta.generation))
            except gexc.PreconditionFailed:
                continue  # rewritten between the two requests: read again
            except gexc.NotFound:
                return None
            except gexc.GoogleAPIError as e:
                raise self._fail(e, key, "read") from None
        raise StateError(f"{self.url}/{key} keeps changing while being read", hint="retry")

    def create(self, key: str, data: bytes) -> str:
        return self._put(key, data, 0)

    def replace(self, key: str, data: bytes, version: str) -> str:
        return self._put(key, data, int(version))

    def _put(self, key: str, data: bytes, generation: int) -> str:
        blob = self._blob(key)
        try:
            blob.upload_from_string(
                data, content_type="application/json", if_generation_match=generation
            )
        except gexc.PreconditionFailed:
            raise Conflict(key) from None
        except gexc.GoogleAPIError as e:
            raise self._fail(e, key, "write") from None
        return str(blob.generation)

    def delete(self, key: str, version: str | None = None) -> None:
        try:
            self._blob(key).delete(if_generation_match=int(version) if version else None)
        except gexc.NotFound:
            return
        except gexc.PreconditionFailed:
            raise Conflict(key) from None
        except gexc.GoogleAPIError as e:
            raise self._fail(e, key, "delete") from None


def open_store(settings: dict[str, Any]) -> GCSStore:
    return GCSStore(settings)
