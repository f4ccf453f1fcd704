"""What the Azure ML modules work with: the environment's settings, its ``MLClient`` (made on
first use), and the names it gives things on Azure.

The backend class makes one ``Platform`` and hands it to the work modules (``endpoints``,
``registry``, ``invoke``, ``observe``); none of them imports the backend.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack_azureml.azure_names import DATASTORE
from mlstack_azureml.plugin import AzureMLConfig

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from mlstack.manifest.models import ResolvedProject
    from mlstack_azureml.azure import Arm

# tags on deployments and endpoints: which model version a deployment serves, its digest
VERSION_TAG = "mlstack-version"
DIGEST_TAG = "mlstack-digest"
MODEL_TAG = "mlstack-model"


def azure_name(*parts: str, limit: int = 32) -> str:
    """A name online endpoints and deployments accept (3-32 letters, digits, hyphens, starting
    with a letter); too long names keep a hash of the whole so they stay distinct."""
    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", raw).strip("-")
    if not name or not name[0].isalpha():
        name = f"m-{name}"
    if len(name) > limit:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:6]
        name = f"{name[: limit - 7].rstrip('-')}-{digest}"
    return name.ljust(3, "0")


class Platform:
    def __init__(self, config: AzureMLConfig, project: ResolvedProject, workdir: Path) -> None:
        self.config = config
        self.project = project
        self.workdir = workdir
        self._client: MLClient | None = None
        self._arm: Arm | None = None
        self._credential: Any = None
        self._blobs: Any = None

    @property
    def credential(self) -> Any:
        """One credential for every call of this environment (its token cache is reused)."""
        if self._credential is None:
            from mlstack_azureml.azure import credential

            self._credential = credential()
        return self._credential

    @property
    def client(self) -> MLClient:
        if self._client is None:
            from mlstack_azureml.azure import ml_client

            self._client = ml_client(self.config, cred=self.credential)
        return self._client

    @property
    def arm(self) -> Arm:
        """ARM REST calls the SDK does not make (jobs, components, metrics, datastores)."""
        if self._arm is None:
            from mlstack_azureml.azure import Arm

            self._arm = Arm(self.config, self.credential)
        return self._arm

    @property
    def blobs(self) -> Any:
        """The ``ContainerClient`` of the workspace's default blob datastore."""
        if self._blobs is None:
            from mlstack_azureml.azure import datastore_container

            self._blobs = datastore_container(self.arm, self.workspace_id, DATASTORE)
        return self._blobs

    @property
    def workspace_id(self) -> str:
        c = self.config
        return (
            f"/subscriptions/{c.subscription_id}/resourceGroups/{c.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{c.workspace}"
        )

    def endpoint_name(self, endpoint: str) -> str:
        """The Azure name of a spec endpoint in this environment (names are unique per region,
        so the environment is part of it)."""
        return azure_name(endpoint, self.project.environment)

    @staticmethod
    def deployment_name(version: str) -> str:
        """One deployment per model version."""
        return azure_name("v", version)

    def model_name(self, model: str) -> str:
        return model

    def info(self) -> dict[str, Any]:
        c = self.config
        return {
            "subscription_id": c.subscription_id,
            "resource_group": c.resource_group,
            "workspace": c.workspace,
            "region": c.region,
        }
