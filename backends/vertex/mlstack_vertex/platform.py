"""What the Vertex modules work with: the environment's settings, its Google Cloud clients, the
names it gives things and the infrastructure's outputs.

The backend class makes one ``Platform`` and hands it to the modules that do the work
(``infra``, ``pipelines``, ``registry``, ``endpoints``, ``monitoring``, ``observe``); none of
them imports the backend.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.engine import address
from mlstack.engine.backend import Context
from mlstack.errors import BackendError
from mlstack_vertex import names
from mlstack_vertex.plugin import VertexConfig

if TYPE_CHECKING:
    from mlstack.manifest.models import ResolvedProject
    from mlstack_vertex.gcp import Gcp


class Platform:
    def __init__(self, config: VertexConfig, project: ResolvedProject, workdir: Path) -> None:
        self.config = config
        self.project = project
        self.workdir = workdir
        self._outputs: dict[str, Any] = {}

    @cached_property
    def gcp(self) -> Gcp:
        from mlstack_vertex.gcp import Gcp

        return Gcp(self.config)

    @property
    def parent(self) -> str:
        return f"projects/{self.config.project}/locations/{self.config.region}"

    def model_name(self) -> str:
        """The parent model's resource name (every version lives under it)."""
        return f"{self.parent}/models/{names.model_id(self.project)}"

    def endpoint_name(self, endpoint: str) -> str:
        return f"{self.parent}/endpoints/{names.endpoint_id(endpoint, self.project)}"

    def given_outputs(self) -> dict[str, Any] | None:
        cfg = self.config
        if not cfg.infrastructure_given:
            return None
        return {
            "bucket": cfg.bucket,
            "service_account": cfg.service_account,
            "provisioned_by": "environment",
        }

    def remember_outputs(self, outputs: dict[str, Any]) -> None:
        self._outputs = outputs

    def infra_outputs(self, ctx: Context | None = None) -> dict[str, Any]:
        if ctx is not None:
            recorded = ctx.outputs.get(address.infra(self.project.environment))
            if recorded:
                self._outputs = dict(recorded)
        if self._outputs:
            return self._outputs
        given = self.given_outputs()
        if given is not None:
            return given
        raise BackendError(
            "the GCP infrastructure of this environment has not been provisioned",
            hint="run `mlstack apply` (needs the pulumi CLI), or give an existing `bucket:` and "
            "`service_account:` in the environment block",
        )
