"""One place for what every KServe module needs: settings, the cluster client, names."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from mlstack_kserve.k8s_names import object_name
from mlstack_kserve.plugin import KServeConfig

if TYPE_CHECKING:
    from mlstack.manifest.models import ResolvedProject
    from mlstack_kserve.cluster import Cluster


class Platform:
    def __init__(self, config: KServeConfig, project: ResolvedProject, workdir: Path) -> None:
        self.config = config
        self.project = project
        self.workdir = workdir

    @cached_property
    def cluster(self) -> Cluster:
        from mlstack_kserve.cluster import Cluster

        c = self.config
        return Cluster(context=c.context, kubeconfig=c.kubeconfig, namespace=c.namespace)

    @property
    def raw(self) -> bool:
        return self.config.serving_mode == "RawDeployment"

    def isvc_name(self, endpoint: str, version: str | None = None) -> str:
        """A DNS-1035 label (KServe's webhook rule): the endpoint, and the version in
        RawDeployment mode where each version has its own InferenceService."""
        name = object_name(endpoint, f"v{version}" if version is not None else "", limit=45)
        return name if name[0].isalpha() else f"e-{name}"[:45]

    def host(self, name: str) -> str:
        return f"{name}.{self.config.namespace}.{self.config.domain}"

    def model_name(self) -> str:
        return self.project.model.name if self.project.model else self.project.project
