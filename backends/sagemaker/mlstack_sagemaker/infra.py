"""The environment's AWS infrastructure: given in the environment block, or provisioned through
Pulumi's Automation API (inline program); and the outputs the other parts of the backend use.

Pulumi's engine is the ``pulumi`` CLI; without it on PATH this stops with a BackendError that says
how to install it, or how to skip Pulumi altogether by naming existing infrastructure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlstack.engine.backend import Context, Event, Provisioned
from mlstack.errors import BackendError
from mlstack_sagemaker import pipeline_definition as pdef
from mlstack_sagemaker import registry
from mlstack_sagemaker.aws_names import sagemaker_name

if TYPE_CHECKING:
    from mlstack_sagemaker.platform import Platform

INSTALL_HINT = (
    "install the Pulumi CLI: `curl -fsSL https://get.pulumi.com | sh` (or `brew install pulumi`, "
    "or download it from https://www.pulumi.com/docs/install/) and make sure `pulumi` is on "
    "PATH; or skip Pulumi by giving the existing infrastructure in the environment block: "
    "`bucket: NAME` and `role: arn:aws:iam::ACCOUNT:role/NAME`"
)


def desired(platform: Platform) -> Mapping[str, Any]:
    cfg, project = platform.config, platform.project
    if not cfg.infrastructure_given:
        require_pulumi_cli()  # plan stops here, before anything is half-done
    d = project.deployment
    return {
        "provider": "environment" if cfg.infrastructure_given else "pulumi",
        "stack": sagemaker_name("mlstack", project.project, project.environment),
        "region": cfg.region,
        "bucket": cfg.bucket,
        "role": cfg.role,
        "model_package_group": pdef.model_package_group(project, cfg),
        "endpoint": platform.endpoint_name(d.endpoint) if d else None,
        "gates": dict(d.gates) if d else {},
        "job_types": list(pdef.job_types(project)),
    }


def provision(platform: Platform, inputs: Mapping[str, Any], ctx: Context) -> Provisioned:
    cfg = platform.config
    if cfg.infrastructure_given:
        group = str(
            inputs.get("model_package_group") or pdef.model_package_group(platform.project, cfg)
        )
        registry.ensure_group(platform, group)
        outputs: dict[str, Any] = {
            "bucket": cfg.bucket,
            "role_arn": cfg.role,
            "model_package_group": group,
            "alarms": [],
        }
        made = Provisioned(outputs, "environment")
    else:
        made = Provisioned(dict(pulumi_up(platform, inputs, ctx)), "pulumi")
    platform.remember_outputs(made.record())
    return made


def require_pulumi_cli() -> str:
    path = shutil.which("pulumi")
    if path is None:
        raise BackendError(
            "the SageMaker backend provisions this environment's AWS infrastructure with "
            "Pulumi, and the `pulumi` CLI is not on PATH",
            hint=INSTALL_HINT,
        )
    return path


def _stack(platform: Platform, inputs: Mapping[str, Any]) -> Any:
    require_pulumi_cli()
    try:
        from mlstack_stacks.aws import SageMakerStackArgs, program
        from pulumi import automation as auto
    except ImportError as e:
        raise BackendError(
            f"Pulumi's Python packages are missing: {e}", hint="pip install 'mlstack-stacks[aws]'"
        ) from None
    from mlstack.manifest.units import parse_threshold

    cfg = platform.config
    args = SageMakerStackArgs(
        name=str(inputs["stack"]),
        model_package_group=str(inputs["model_package_group"]),
        endpoint=inputs.get("endpoint"),
        gates={k: parse_threshold(v) for k, v in (inputs.get("gates") or {}).items()},
        bucket=cfg.bucket,
        role_arn=None if cfg.role == "create" else cfg.role,
        subnets=tuple(cfg.subnets),
        job_types=tuple(inputs.get("job_types") or pdef.job_types(platform.project)),
        tags={
            "mlstack:project": platform.project.project,
            "mlstack:environment": platform.project.environment,
        },
    )
    project_settings = auto.ProjectSettings(
        name="mlstack",
        runtime="python",
        backend=auto.ProjectBackend(url=cfg.pulumi_backend_url) if cfg.pulumi_backend_url else None,
    )
    workdir = platform.workdir / "envs" / platform.project.environment / "pulumi"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {"PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "")}
    if not cfg.pulumi_backend_url and "PULUMI_BACKEND_URL" not in os.environ:
        env["PULUMI_BACKEND_URL"] = f"file://{workdir}"
    stack = auto.create_or_select_stack(
        stack_name=str(inputs["stack"]),
        project_name="mlstack",
        program=program(args),
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(workdir), project_settings=project_settings, env_vars=env
        ),
    )
    stack.set_config("aws:region", auto.ConfigValue(value=cfg.region))
    return stack


def pulumi_up(platform: Platform, inputs: Mapping[str, Any], ctx: Context) -> Mapping[str, Any]:
    stack = _stack(platform, inputs)

    def out(line: str) -> None:
        ctx.emit(Event("log", "pulumi", line.rstrip()))

    try:
        result = stack.up(on_output=out)
    except Exception as e:  # the Automation API raises CommandError with Pulumi's own message
        raise BackendError(
            f"pulumi up failed for stack {inputs['stack']}: {e}", hint="see the Pulumi output above"
        ) from None
    return {k: v.value for k, v in result.outputs.items()}


def pulumi_destroy(platform: Platform, ctx: Context) -> None:
    stack = _stack(platform, desired(platform))
    try:
        stack.destroy(on_output=lambda line: ctx.emit(Event("log", "pulumi", line.rstrip())))
    except Exception as e:
        raise BackendError(f"pulumi destroy failed: {e}") from None
