"""What the SageMaker modules work with: the environment's settings, its AWS clients, the names
it gives things and the infrastructure's outputs.

The backend class makes one ``Platform`` and passes it to the modules that do the work
(``infra``, ``pipelines``, ``registry``, ``endpoints``, ``rollout``, ``alarms``, ``observe``,
``invoke``); none of them imports or calls back into the backend, so the package's imports form
layers: ``plugin``/``aws_names`` < ``aws``/``pipeline_definition`` < ``platform`` < the work
modules < ``backend`` (checked by import-linter, see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlstack.engine import address
from mlstack.engine.backend import Context
from mlstack.errors import BackendError
from mlstack_sagemaker import pipeline_definition as pdef
from mlstack_sagemaker.aws import Aws
from mlstack_sagemaker.aws_names import sagemaker_name
from mlstack_sagemaker.plugin import SageMakerConfig

if TYPE_CHECKING:
    from mlstack.manifest.models import ResolvedProject


class Platform:
    def __init__(self, config: SageMakerConfig, project: ResolvedProject, workdir: Path) -> None:
        self.config = config
        self.project = project
        self.workdir = workdir
        self.aws = Aws(config)
        self.layout = pdef.Layout(project.project, project.environment)
        self._outputs: dict[str, Any] = {}
        # EndpointConfigName -> the version its ``primary`` variant serves. Config names are
        # content hashes (endpoints._ensure_config), so an entry never goes stale.
        self.primary_versions: dict[str, str] = {}

    def endpoint_name(self, endpoint: str) -> str:
        """The SageMaker name of a spec endpoint in this environment."""
        return sagemaker_name(endpoint, self.project.environment)

    def given_outputs(self) -> dict[str, Any] | None:
        """The outputs when the environment block names the infrastructure; None under Pulumi."""
        cfg = self.config
        if not cfg.infrastructure_given:
            return None
        return {
            "bucket": cfg.bucket,
            "role_arn": cfg.role,
            "model_package_group": pdef.model_package_group(self.project, cfg),
            "alarms": [],
            "provisioned_by": "environment",
        }

    def remember_outputs(self, outputs: dict[str, Any]) -> None:
        self._outputs = outputs

    def infra_outputs(self, ctx: Context | None = None) -> dict[str, Any]:
        """The infrastructure's outputs: from the environment block, the apply, or state."""
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
            "the SageMaker infrastructure of this environment has not been provisioned",
            hint="run `mlstack apply` (needs the pulumi CLI), or give `bucket:` and an existing "
            "`role:` ARN in the environment block",
        )
