"""Google Cloud clients for one environment: Vertex AI (REST), Cloud Storage, Cloud Monitoring.

Imported only when work on Vertex starts. With ``api_endpoint`` set to a plain ``http://`` URL
(a stand-in on this machine) the clients use anonymous credentials; otherwise Application
Default Credentials. Every Google API error becomes a ``BackendError`` that says which call
failed and what the service said.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, TypeVar

from mlstack.errors import BackendError
from mlstack_vertex.plugin import VertexConfig

T = TypeVar("T")
MONITORING = "https://monitoring.googleapis.com"
LOGGING = "https://logging.googleapis.com"


class Gcp:
    def __init__(self, config: VertexConfig) -> None:
        self.config = config

    @property
    def local(self) -> bool:
        return bool(self.config.api_endpoint and self.config.api_endpoint.startswith("http://"))

    @cached_property
    def credentials(self) -> Any:
        if self.local:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            creds, _ = google.auth.default(
                scopes=["https://www.googleapis.com/auth/cloud-platform"]
            )
        except DefaultCredentialsError as e:
            raise BackendError(
                f"cannot reach Google Cloud: {e}",
                hint="run `gcloud auth application-default login`, or set "
                "GOOGLE_APPLICATION_CREDENTIALS; `mlstack plan --no-refresh` needs neither",
            ) from None
        return creds

    def _options(self) -> dict[str, str]:
        endpoint = self.config.api_endpoint or f"{self.config.region}-aiplatform.googleapis.com"
        return {"api_endpoint": endpoint}

    def _client(self, name: str) -> Any:
        from google.cloud import aiplatform_v1

        cls = getattr(aiplatform_v1, name)
        return cls(credentials=self.credentials, transport="rest", client_options=self._options())

    @cached_property
    def models(self) -> Any:
        return self._client("ModelServiceClient")

    @cached_property
    def endpoints(self) -> Any:
        return self._client("EndpointServiceClient")

    @cached_property
    def pipelines(self) -> Any:
        return self._client("PipelineServiceClient")

    @cached_property
    def prediction(self) -> Any:
        return self._client("PredictionServiceClient")

    @cached_property
    def storage(self) -> Any:
        from google.cloud import storage  # type: ignore[attr-defined]

        options = (
            {"api_endpoint": self.config.storage_endpoint} if self.config.storage_endpoint else None
        )
        return storage.Client(
            project=self.config.project, credentials=self.credentials, client_options=options
        )

    @cached_property
    def session(self) -> Any:
        """An authorised HTTP session for Cloud Monitoring's and Cloud Logging's REST APIs (the
        monitoring_v3 client ships gRPC transports only; its message types parse the answers)."""
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(self.credentials)  # type: ignore[no-untyped-call]

    @property
    def monitoring_url(self) -> str:
        return self.config.api_endpoint if self.local else MONITORING  # type: ignore[return-value]

    @property
    def logging_url(self) -> str:
        return self.config.api_endpoint if self.local else LOGGING  # type: ignore[return-value]

    @property
    def parent(self) -> str:
        return f"projects/{self.config.project}/locations/{self.config.region}"

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with google_errors(what):
            return fn(*args, **kwargs)

    def exists(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``fn``'s answer, or None when the resource does not exist (404)."""
        from google.api_core import exceptions as gex

        try:
            with google_errors(what, passthrough=(gex.NotFound,)):
                return fn(*args, **kwargs)
        except gex.NotFound:
            return None

    def wait(self, what: str, operation: Any) -> Any:
        """Poll a long-running operation every ``poll_interval`` until done; its result."""
        deadline = time.monotonic() + self.config.timeout
        with google_errors(what):
            while not operation.done():
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"{what}: the operation {operation.operation.name} did not finish "
                        f"within {self.config.timeout:g}s",
                        hint="look at it in the Vertex AI console; raise `timeout:`",
                    )
                time.sleep(self.config.poll_interval)
            return operation.result()


@contextmanager
def google_errors(what: str, passthrough: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    from google.api_core import exceptions as gex
    from google.auth import exceptions as gauth

    try:
        yield
    except passthrough:
        raise
    except gex.GoogleAPICallError as e:
        raise BackendError(
            f"{what}: Vertex AI answered {e.code} {getattr(e, 'message', e)}",
            hint=_hint(e),
        ) from None
    except gauth.GoogleAuthError as e:
        raise BackendError(
            f"{what}: cannot authenticate to Google Cloud: {e}",
            hint="run `gcloud auth application-default login`",
        ) from None
    except OSError as e:
        raise BackendError(f"{what}: cannot reach Google Cloud: {e}") from None


def _hint(e: Any) -> str:
    code = getattr(e, "code", None)
    if code in (401, 403):
        return "check that the credentials may use Vertex AI in this project"
    if code == 404:
        return "check `project:` and `region:`; `mlstack refresh` if it was deleted by hand"
    return "see the Vertex AI console for the resource named above"
