"""The Azure ML client: one ``MLClient`` per environment block, built lazily.

Credentials: ``MLSTACK_AZURE_ACCESS_TOKEN`` (a bearer token, e.g. from
``az account get-access-token``) when set, else ``azure.identity.DefaultAzureCredential``
(environment, workload identity, managed identity, Azure CLI). The token is read at the moment
of use and never written to state, logs or plans.

``base_url`` in the environment block points Azure Resource Manager elsewhere (a sovereign
cloud's endpoint, or the tests' fake on 127.0.0.1) through the SDK's own custom-cloud support.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import TYPE_CHECKING, Any

from mlstack.errors import BackendError

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from mlstack_azureml.plugin import AzureMLConfig

TOKEN_ENV = "MLSTACK_AZURE_ACCESS_TOKEN"
_CLOUD = "mlstack-custom"


class StaticTokenCredential:
    """A ``TokenCredential`` that hands out one bearer token (azure-core's protocol)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)


def credential() -> Any:
    token = os.environ.get(TOKEN_ENV)
    if token:
        return StaticTokenCredential(token)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise BackendError(
            "no Azure credential: azure-identity is not installed",
            hint=f"pip install azure-identity, or export {TOKEN_ENV}=$(az account "
            "get-access-token --query accessToken -o tsv)",
        ) from None
    return DefaultAzureCredential(exclude_interactive_browser_credential=True)


def ml_client(config: AzureMLConfig, workspace: str | None = None, cred: Any = None) -> MLClient:
    """An ``MLClient`` for the environment's workspace (or ``workspace``), with ``cred`` (or a
    new credential)."""
    import logging

    from azure.ai.ml import MLClient

    for noisy in ("azure", "azure.ai.ml", "azure.core.pipeline.policies.http_logging_policy"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    kwargs: dict[str, Any] = {
        "show_progress": False,
        "enable_telemetry": False,
        # long-running operations are polled this often when ARM sends no Retry-After
        "polling_interval": config.poll_interval,
    }
    if config.base_url:
        base = config.base_url.rstrip("/") + "/"
        # the SDK keeps custom clouds per process by name and never overwrites one
        kwargs["cloud"] = f"{_CLOUD}-{hashlib.sha256(base.encode()).hexdigest()[:12]}"
        kwargs["cloud_metadata"] = {
            "azure_portal": base,
            "resource_manager": base,
            "active_directory": base,
            "aml_resource_id": base,
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": base,
        }
    return MLClient(
        cred if cred is not None else credential(),
        subscription_id=config.subscription_id,
        resource_group_name=config.resource_group,
        workspace_name=workspace or config.workspace,
        **kwargs,
    )


def arm_base(config: AzureMLConfig) -> str:
    return (config.base_url or "https://management.azure.com").rstrip("/")


class Arm:
    """ARM REST calls (``url`` below the ARM base) through one azure-core ``PipelineClient`` and
    one credential, made on first use and kept: a run's polls reuse its connections and token
    instead of building a credential chain per call."""

    def __init__(self, config: AzureMLConfig, cred: Any = None) -> None:
        self.config = config
        self._credential = cred
        self._client: Any = None

    @property
    def base(self) -> str:
        return arm_base(self.config)

    @property
    def client(self) -> Any:
        if self._client is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy

            cred = self._credential if self._credential is not None else credential()
            self._client = PipelineClient(
                base_url=arm_base(self.config),
                policies=[
                    RetryPolicy(retry_total=3),
                    BearerTokenCredentialPolicy(cred, "https://management.azure.com/.default"),
                ],
            )
        return self._client

    def request(
        self,
        method: str,
        url: str,
        doing: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        absent_ok: bool = False,
    ) -> Any:
        """One call; the JSON answer (None for a 404 when ``absent_ok``), or a ``BackendError``
        saying what was being done. ``url`` may also be a whole URL ARM handed back (nextLink)."""
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.core.rest import HttpRequest

        full = url if url.startswith(self.base + "/") else self.base + url
        request = HttpRequest(method, full, params=params, json=body)
        try:
            response = self.client.send_request(request)
            if absent_ok and response.status_code == 404:
                return None
            response.raise_for_status()
        except HttpResponseError as e:
            raise arm_error(e, doing) from None
        except AzureError as e:  # ServiceRequestError: no answer at all (DNS, refused, TLS)
            raise arm_error(e, doing) from None
        return response.json() if response.content else None


DATASTORE_API = "2024-10-01"


def datastore_container(arm: Arm, workspace_id: str, datastore: str) -> Any:
    """A ``ContainerClient`` on the blob container behind a workspace datastore (REST
    "Datastores - Get" for its account and container, "Datastores - List Secrets" for the
    account key; the key stays in memory)."""
    from azure.storage.blob import ContainerClient

    url = f"{workspace_id}/datastores/{datastore}"
    params = {"api-version": DATASTORE_API}
    found = arm.request("GET", url, f"reading datastore {datastore}", params=params)
    props = found.get("properties") or {}
    if str(props.get("datastoreType", "")).lower() != "azureblob":
        raise BackendError(
            f"datastore {datastore} is {props.get('datastoreType')}, not an Azure Blob datastore",
            hint="mlstack keeps stage outputs in the workspace's default blob datastore",
        )
    secrets = arm.request("POST", f"{url}/listSecrets", f"reading the key of {datastore}", params)
    key = (secrets or {}).get("key")
    if not key:
        raise BackendError(
            f"datastore {datastore} has no account key mlstack can use",
            hint="identity-based datastore access is not supported yet; give the datastore "
            "its storage account key",
        )
    account = str(props["accountName"])
    account_url = arm.config.blob_url or (
        f"{props.get('protocol') or 'https'}://{account}.blob.{props.get('endpoint')}"
    )
    return ContainerClient(
        account_url.rstrip("/"),
        str(props["containerName"]),
        credential={"account_name": account, "account_key": key},
    )


def arm_error(e: Exception, doing: str) -> BackendError:
    """An SDK/ARM failure as a message a person can act on (code and message, no traceback)."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        ServiceRequestError,
        ServiceResponseError,
    )

    message = getattr(e, "message", None) or str(e)
    code = getattr(getattr(e, "error", None), "code", None)
    first = str(message).strip().splitlines()[0] if str(message).strip() else type(e).__name__
    if isinstance(e, ClientAuthenticationError) or "failed to retrieve a token" in first:
        return BackendError(
            f"no Azure credential for {doing}: {first}",
            hint=f"sign in with `az login` (or set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
            f"AZURE_CLIENT_SECRET), or export {TOKEN_ENV}",
        )
    if isinstance(e, (ServiceRequestError, ServiceResponseError)):
        return BackendError(
            f"Azure could not be reached for {doing}: {first}",
            hint="check the network (proxy, DNS, firewall) and, if set, `base_url` in the "
            "environment block; then apply again",
        )
    return BackendError(
        f"Azure ML refused {doing}: {code + ': ' if code else ''}{first}",
        hint="check the workspace in the Azure ML studio, fix what it says, and apply again",
    )
