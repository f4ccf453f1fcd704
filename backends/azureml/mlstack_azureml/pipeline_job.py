"""The Azure ML pipeline job for a project, built as the REST body Azure ML accepts, with no SDK.

Each stage is a ``command`` step of a component that runs the shared stage runtime
(``python -m mlstack_runtime STAGE --spec FILE --inputs DIR --outputs DIR``) in the curated
scikit-learn environment; data flows as ``uri_folder`` inputs/outputs in the workspace's
default datastore. Building the body here (not with ``azure.ai.ml.dsl``) keeps ``plan`` free of
the SDK's ~10 s import; the body is the shape of ``JobBase`` in azure-ai-ml's generated ARM
models, and the tests check it against them.

Step reuse: Azure ML reuses a step whose component version and inputs are unchanged. Each
stage's component version is the stage's mlstack cache key (shortened), so a stage mlstack
would take from its cache is one Azure ML reuses, and a changed stage gets a new version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlstack.engine.digest import digest

if TYPE_CHECKING:
    from mlstack.manifest.models import ResolvedProject, Stage
    from mlstack_azureml.plugin import AzureMLConfig

DATASTORE = "workspaceblobstore"
RUNTIME = "mlstack_runtime"


def component_name(project: ResolvedProject, stage: str) -> str:
    return f"mlstack_{project.project}_{stage}".replace("-", "_").lower()[:255]


def data_root(project: ResolvedProject) -> str:
    """Where the environment's data and stage outputs live in the default datastore."""
    return f"azureml://datastores/{DATASTORE}/paths/mlstack/{project.project}/{project.environment}"


def _command(stage: Stage) -> str:
    upstream = " ".join(f"--inputs ${{{{inputs.{n}}}}}" for n in stage.needs)
    return (
        f"python -m {RUNTIME} {stage.name} --spec ${{{{inputs.spec}}}} "
        f"{upstream} --outputs ${{{{outputs.out}}}}".replace("  ", " ")
    )


def component(project: ResolvedProject, config: AzureMLConfig, stage: Stage) -> dict[str, Any]:
    """The command component of one stage (the YAML/REST ``componentSpec`` Azure ML takes)."""
    inputs: dict[str, Any] = {"spec": {"type": "uri_file"}}
    inputs.update({n: {"type": "uri_folder"} for n in stage.needs})
    spec: dict[str, Any] = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json",
        "name": component_name(project, stage.name),
        "type": "command",
        "display_name": stage.name,
        "is_deterministic": True,
        "command": _command(stage),
        "environment": config.environment,
        "inputs": inputs,
        "outputs": {"out": {"type": "uri_folder"}},
    }
    if stage.env:
        spec["environment_variables"] = dict(sorted(stage.env.items()))
    return spec


def build(project: ResolvedProject, config: AzureMLConfig) -> dict[str, Any]:
    """``{"job": <JobBase REST body>, "components": {stage: componentSpec}}``."""
    root = data_root(project)
    compute = (
        f"/subscriptions/{config.subscription_id}/resourceGroups/{config.resource_group}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{config.workspace}"
        f"/computes/{config.compute}"
    )
    components = {s.name: component(project, config, s) for s in project.pipeline.stages}
    jobs: dict[str, Any] = {}
    for stage in project.pipeline.stages:
        spec = components[stage.name]
        step: dict[str, Any] = {
            "type": "command",
            "name": stage.name,
            "componentId": f"azureml:{spec['name']}:{{version:{stage.name}}}",
            "computeId": compute,
            "inputs": {
                "spec": {"job_input_type": "uri_file", "uri": f"{root}/spec/mlstack.json"},
                **{
                    n: {
                        "job_input_type": "literal",
                        "value": f"${{{{parent.jobs.{n}.outputs.out}}}}",
                    }
                    for n in stage.needs
                },
            },
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
    return {"job": job, "components": components}


def definition_digest(definition: dict[str, Any]) -> str:
    return digest(definition)
