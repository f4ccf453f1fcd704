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


def ml_client(config: AzureMLConfig, workspace: str | None = None) -> MLClient:
    """An ``MLClient`` for the environment's workspace (or ``workspace``)."""
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
        credential(),
        subscription_id=config.subscription_id,
        resource_group_name=config.resource_group,
        workspace_name=workspace or config.workspace,
        **kwargs,
    )


def arm_base(config: AzureMLConfig) -> str:
    return (config.base_url or "https://management.azure.com").rstrip("/")


def arm_request(
    config: AzureMLConfig,
    method: str,
    url: str,
    doing: str,
    params: dict[str, str] | None = None,
    body: Any = None,
) -> Any:
    """One ARM REST call (``url`` below the ARM base) through azure-core with the environment's
    credential; the JSON answer, or a ``BackendError`` saying what was being done."""
    from azure.core import PipelineClient
    from azure.core.exceptions import HttpResponseError
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy, RetryPolicy
    from azure.core.rest import HttpRequest

    base = arm_base(config)
    client: PipelineClient[Any, Any] = PipelineClient(
        base_url=base,
        policies=[
            RetryPolicy(retry_total=3),
            BearerTokenCredentialPolicy(credential(), "https://management.azure.com/.default"),
        ],
    )
    request = HttpRequest(method, base + url, params=params, json=body)
    response = client.send_request(request)
    try:
        response.raise_for_status()
    except HttpResponseError as e:
        raise arm_error(e, doing) from None
    return response.json() if response.content else None


def arm_error(e: Exception, doing: str) -> BackendError:
    """An SDK/ARM failure as a message a person can act on (code and message, no traceback)."""
    from azure.core.exceptions import ClientAuthenticationError

    message = getattr(e, "message", None) or str(e)
    code = getattr(getattr(e, "error", None), "code", None)
    first = str(message).strip().splitlines()[0] if str(message).strip() else type(e).__name__
    if isinstance(e, ClientAuthenticationError) or "failed to retrieve a token" in first:
        return BackendError(
            f"no Azure credential for {doing}: {first}",
            hint=f"sign in with `az login` (or set AZURE_CLIENT_ID/AZURE_TENANT_ID/"
            f"AZURE_CLIENT_SECRET), or export {TOKEN_ENV}",
        )
    return BackendError(
        f"Azure ML refused {doing}: {code + ': ' if code else ''}{first}",
        hint="check the workspace in the Azure ML studio, fix what it says, and apply again",
    )
