"""The Azure ML pipeline job for a project, built as the REST body Azure ML accepts, with no SDK.

Each stage is a ``command`` step of a component that runs the shared stage runtime
(``python -m mlstack_runtime STAGE --spec FILE --input UP=DIR ... [--data DIR] --outputs DIR``)
from mlstack's code asset (``code_asset``) in the curated scikit-learn environment; the stage's
settings file, the data and every stage's output are ``uri_file``/``uri_folder`` paths in the
workspace's default datastore. Building the body here (not with ``azure.ai.ml.dsl``) keeps ``plan`` free of
the SDK's ~10 s import; the body is the shape of ``JobBase`` in azure-ai-ml's generated ARM
models, and the tests check it against them.

Step reuse: Azure ML reuses a step whose component version and inputs are unchanged. Each
stage's component version is the stage's mlstack cache key (shortened), so a stage mlstack
would take from its cache is one Azure ML reuses, and a changed stage gets a new version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlstack.engine.digest import digest
from mlstack_azureml import code_asset
from mlstack_azureml.azure_names import DATASTORE

if TYPE_CHECKING:
    from mlstack.manifest.models import ResolvedProject, Stage
    from mlstack_azureml.plugin import AzureMLConfig

RUNTIME = "mlstack_runtime"
DATA_INPUT = "data"
DATA_PLACEHOLDER = "{data}"


def component_name(project: ResolvedProject, stage: str) -> str:
    return f"mlstack_{project.project}_{stage}".replace("-", "_").lower()[:255]


def data_root(project: ResolvedProject) -> str:
    """Where the environment's data and stage outputs live in the default datastore."""
    return f"azureml://datastores/{DATASTORE}/paths/mlstack/{project.project}/{project.environment}"


def kind_of(stage: Stage) -> str:
    if stage.uses:
        return str(stage.uses).split("/", 1)[-1]
    return "command" if stage.run else "function"


def ancestors(project: ResolvedProject, name: str) -> list[str]:
    """Every stage ``name`` depends on, nearest first, in the runtime's own order."""
    from mlstack_runtime.job import ancestors as runtime_ancestors

    return runtime_ancestors(
        [{"name": s.name, "needs": s.needs} for s in project.pipeline.stages], name
    )


def stage_settings(project: ResolvedProject, stage: Stage) -> dict[str, Any]:
    """The settings file the runtime reads (``--spec``) for one stage."""
    from mlstack_runtime import SETTINGS_FORMAT

    pipeline = project.pipeline.model_dump(mode="json", by_alias=True)
    return {
        "format": SETTINGS_FORMAT,
        "stage": stage.model_dump(mode="json", by_alias=True),
        "data": project.data.model_dump(mode="json", by_alias=True) if project.data else None,
        # only a tune stage reads the whole pipeline (to find the train stage it feeds)
        "pipeline": pipeline if kind_of(stage) == "tune" else {"stages": []},
        "model": project.model.model_dump(mode="json", by_alias=True) if project.model else None,
        "inputs": ancestors(project, stage.name),
    }


def settings_uri(project: ResolvedProject, stage: str, settings: dict[str, Any]) -> str:
    return f"{data_root(project)}/settings/{stage}/{digest(settings).split(':')[-1][:16]}.json"


def _command(stage: Stage, ups: list[str]) -> str:
    parts = [f"python -m {RUNTIME} {stage.name} --spec ${{{{inputs.spec}}}}"]
    parts += [f"--input {u}=${{{{inputs.{u}}}}}" for u in ups]
    if not stage.needs:
        parts.append(f"--data ${{{{inputs.{DATA_INPUT}}}}}")
    parts.append("--outputs ${{outputs.out}}")
    return " ".join(parts)


def component(
    project: ResolvedProject, config: AzureMLConfig, stage: Stage, code: str
) -> dict[str, Any]:
    """The command component of one stage (the YAML/REST ``componentSpec`` Azure ML takes)."""
    ups = ancestors(project, stage.name)
    inputs: dict[str, Any] = {"spec": {"type": "uri_file"}}
    inputs.update({n: {"type": "uri_folder"} for n in ups})
    if not stage.needs:
        inputs[DATA_INPUT] = {"type": "uri_folder"}
    spec: dict[str, Any] = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
        "name": component_name(project, stage.name),
        "type": "command",
        "display_name": stage.name,
        "is_deterministic": True,
        "code": code,
        "command": _command(stage, ups),
        "environment": config.environment,
        "inputs": inputs,
        "outputs": {"out": {"type": "uri_folder"}},
    }
    if stage.env:
        spec["environment_variables"] = dict(sorted(stage.env.items()))
    return spec


def build(project: ResolvedProject, config: AzureMLConfig) -> dict[str, Any]:
    """``{"job": <JobBase REST body>, "components": {stage: componentSpec}, "settings":
    {stage: (datastore URI, settings)}}``. The data folder is the ``{data}`` placeholder, filled
    in at submission once the data is uploaded."""
    root = data_root(project)
    workspace = (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{config.workspace}"
    )
    compute = f"{workspace}/computes/{config.compute}"
    code = code_asset.arm_id(workspace)
    components = {s.name: component(project, config, s, code) for s in project.pipeline.stages}
    settings = {s.name: stage_settings(project, s) for s in project.pipeline.stages}
    jobs: dict[str, Any] = {}
    for stage in project.pipeline.stages:
        spec = components[stage.name]
        step_inputs: dict[str, Any] = {
            "spec": {
                "job_input_type": "uri_file",
                "uri": settings_uri(project, stage.name, settings[stage.name]),
            },
            **{
                n: {"job_input_type": "literal", "value": f"${{{{parent.jobs.{n}.outputs.out}}}}"}
                for n in ancestors(project, stage.name)
            },
        }
        if not stage.needs:
            step_inputs[DATA_INPUT] = {"job_input_type": "uri_folder", "uri": DATA_PLACEHOLDER}
        step: dict[str, Any] = {
            "type": "command",
            "name": stage.name,
            "componentId": f"azureml:{spec['name']}:{{version:{stage.name}}}",
            "computeId": compute,
            "inputs": step_inputs,
            "outputs": {
                "out": {
                    "job_output_type": "uri_folder",
                    "uri": f"{root}/stages/{stage.name}/{{cache_key:{stage.name}}}/",
                    "mode": "ReadWriteMount",
                }
            },
        }
        if stage.timeout:
            step["limits"] = {"job_limits_type": "Command", "timeout": f"PT{int(stage.timeout)}S"}
        if stage.retries:
            step["retry_settings"] = {"max_retries": stage.retries}
        jobs[stage.name] = step
    job = {
        "properties": {
            "jobType": "Pipeline",
            "displayName": f"{project.project}-{project.environment}",
            "experimentName": f"mlstack-{project.project}",
            "computeId": compute,
            "isArchived": False,
            "settings": {
                "default_compute": compute,
                "continue_on_step_failure": False,
                "force_rerun": False,
            },
            "jobs": jobs,
            "tags": {
                "mlstack-project": project.project,
                "mlstack-environment": project.environment,
            },
        }
    }
    return {
        "job": job,
        "components": components,
        "settings": {
            name: {"uri": settings_uri(project, name, value), "settings": value}
            for name, value in settings.items()
        },
    }


def definition_digest(definition: dict[str, Any]) -> str:
    return digest(definition)
