"""The environment's GCP infrastructure: given in the environment block (bucket and service
account named), or provisioned by mlstack's GCP stack (``mlstack_stacks.gcp``) through Pulumi's
Automation API when either is ``create``.

Pulumi's engine is the ``pulumi`` CLI; without it on PATH this stops with a clear message saying
how to install it or how to skip Pulumi by naming existing infrastructure.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Context, Event, Provisioned
from mlstack.errors import BackendError
from mlstack_vertex import names

if TYPE_CHECKING:
    from mlstack_vertex.platform import Platform

INSTALL_HINT = (
    "install the Pulumi CLI: `curl -fsSL https://get.pulumi.com | sh` and make sure `pulumi` is "
    "on PATH; or skip Pulumi by naming existing infrastructure in the environment block: "
    "`bucket: NAME` and `service_account: NAME@PROJECT.iam.gserviceaccount.com`"
)


def desired(platform: Platform) -> Mapping[str, Any]:
    cfg, project = platform.config, platform.project
    return {
        "provider": "environment" if cfg.infrastructure_given else "pulumi",
        "stack": names.resource_id("mlstack", project.project, project.environment),
        "project": cfg.project,
        "region": cfg.region,
        "bucket": names.bucket_name(project, cfg),
        "service_account": cfg.service_account,
        "model": names.model_id(project) if project.model else None,
        "endpoint": (
            names.endpoint_id(project.deployment.endpoint, project) if project.deployment else None
        ),
    }


def provision(platform: Platform, inputs: Mapping[str, Any], ctx: Context) -> Provisioned:
    cfg = platform.config
    if cfg.infrastructure_given:
        gcp = platform.gcp
        if gcp.exists("get bucket", gcp.storage.get_bucket, cfg.bucket) is None:
            raise BackendError(
                f"bucket {cfg.bucket!r} does not exist in project {cfg.project}",
                hint="create it (uniform access, versioning) or write `bucket: create`",
            )
        made = Provisioned(
            {"bucket": cfg.bucket, "service_account": cfg.service_account}, "environment"
        )
    else:
        made = Provisioned(dict(pulumi_up(platform, inputs, ctx)), "pulumi")
    platform.remember_outputs(made.record())
    return made


def require_pulumi_cli() -> str:
    path = shutil.which("pulumi")
    if path is None:
        raise BackendError(
            "the Vertex backend provisions this environment's GCP infrastructure with Pulumi, "
            "and the `pulumi` CLI is not on PATH",
            hint=INSTALL_HINT,
        )
    return path


def _stack(platform: Platform, inputs: Mapping[str, Any]) -> Any:
    require_pulumi_cli()
    import pulumi.automation as auto
    from mlstack_stacks.gcp import VertexStack, VertexStackArgs

    cfg = platform.config
    args = VertexStackArgs(
        name=str(inputs["stack"]),
        project=cfg.project,
        region=cfg.region,
        bucket=None if cfg.bucket == "create" else cfg.bucket,
        bucket_name=str(inputs["bucket"]),
        service_account=None if cfg.service_account == "create" else cfg.service_account,
    )

    def program() -> None:
        VertexStack(args).export()

    opts = auto.LocalWorkspaceOptions(
        project_settings=auto.ProjectSettings(
            name="mlstack-vertex",
            runtime="python",
            backend=auto.ProjectBackend(url=cfg.pulumi_backend_url)
            if cfg.pulumi_backend_url
            else None,
        ),
    )
    stack = auto.create_or_select_stack(
        stack_name=str(inputs["stack"]), project_name="mlstack-vertex", program=program, opts=opts
    )
    stack.set_config("gcp:project", auto.ConfigValue(cfg.project))
    stack.set_config("gcp:region", auto.ConfigValue(cfg.region))
    return stack


def pulumi_up(platform: Platform, inputs: Mapping[str, Any], ctx: Context) -> Mapping[str, Any]:
    stack = _stack(platform, inputs)
    result = stack.up(on_output=lambda line: ctx.emit(Event("log", "pulumi", line.rstrip())))
    return {k: v.value for k, v in result.outputs.items()}


def pulumi_destroy(platform: Platform, ctx: Context) -> None:
    stack = _stack(platform, desired(platform))
    stack.destroy(on_output=lambda line: ctx.emit(Event("log", "pulumi", line.rstrip())))
