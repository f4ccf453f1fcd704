"""AWS access for the SageMaker backend: boto3 clients and AWS errors as BackendErrors.

boto3 is imported on first use. Every AWS call goes through one ``Aws`` so ``endpoint_url`` (or
``AWS_ENDPOINT_URL``) points the whole backend at another implementation of the APIs, such as the
moto server the tests start.
"""

from __future__ import annotations

import os
from typing import Any

from mlstack.errors import BackendError
from mlstack_sagemaker.plugin import SageMakerConfig


class Aws:
    """One backend's boto3 clients, made on first use and reused."""

    def __init__(self, config: SageMakerConfig) -> None:
        self.config = config
        self._clients: dict[str, Any] = {}

    def client(self, service: str, read_timeout: float | None = None) -> Any:
        key = service if read_timeout is None else f"{service}@{read_timeout:g}"
        if key not in self._clients:
            import boto3
            from botocore.config import Config

            url = self.config.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
            # "-probe" clients ask once: a missing operation should not be retried with backoff.
            real, probe, _ = service.partition("-probe")
            timeouts = {} if read_timeout is None else {"read_timeout": read_timeout}
            self._clients[key] = boto3.client(
                real,
                region_name=self.config.region,
                endpoint_url=url,
                config=Config(
                    retries={"max_attempts": 1 if probe else 5, "mode": "standard"}, **timeouts
                ),
            )
        return self._clients[key]

    def call(
        self, service: str, op: str, *, read_timeout: float | None = None, **kwargs: Any
    ) -> Any:
        """One AWS call; AWS's own complaint becomes a BackendError the CLI can print."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client(service, read_timeout), op)(**kwargs)
        except ClientError as e:
            err = e.response.get("Error", {})
            raise BackendError(
                f"SageMaker backend: {service}.{op} failed: "
                f"{err.get('Code', '?')}: {err.get('Message', e)}",
                hint=_hint_for(err.get("Code", "")),
            ) from None
        except BotoCoreError as e:
            raise BackendError(
                f"SageMaker backend: {service}.{op} failed: {e}",
                hint="check AWS credentials, region and network access",
            ) from None

    def exists(self, service: str, op: str, **kwargs: Any) -> Any | None:
        """Describe something; None when it does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client(service), op)(**kwargs)
        except BotoCoreError as e:
            # e.g. no credentials: plan refreshes by asking AWS what exists
            raise BackendError(
                f"SageMaker backend: cannot reach AWS ({service}.{op}): {e}",
                hint="configure AWS credentials (AWS_PROFILE, aws configure, or an instance "
                "role), or plan without asking AWS: mlstack plan --no-refresh",
            ) from None
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            msg = e.response.get("Error", {}).get("Message", "")
            if code in (
                "ResourceNotFound",
                "ValidationException",
                "NoSuchKey",
                "404",
                "ResourceNotFoundException",
            ) and ("not" in msg.lower() or code != "ValidationException"):
                return None
            raise BackendError(f"SageMaker backend: {service}.{op} failed: {code}: {msg}") from None


def _hint_for(code: str) -> str | None:
    return {
        "AccessDeniedException": "the credentials lack a permission; see the policy in "
        "mlstack_stacks.aws",
        "ResourceLimitExceeded": "ask AWS for a higher quota for this instance type",
        "ThrottlingException": "AWS is throttling; retry in a minute",
    }.get(code)
