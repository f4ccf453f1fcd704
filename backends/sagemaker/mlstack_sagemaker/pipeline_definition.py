"""``pipeline:`` compiled to a SageMaker Pipeline definition with the SageMaker Python SDK 3.x.

Built-in data stages and custom stages become ProcessingSteps on the scikit-learn container,
``train``/``tune`` a TrainingStep (``sagemaker.train.ModelTrainer``), each evaluate stage's gates a
ConditionStep reading ``evaluation.json`` through a PropertyFile (FailStep on the else branch),
and ``register`` a RegisterModel ModelStep (``sagemaker.serve.ModelBuilder.register``) into the
Model Package Group with ``PendingManualApproval``.

Compilation is pure: a PipelineSession with static dummy credentials, nothing is uploaded and no
AWS API is called. The bucket, execution role and run key are pipeline parameters, so the
definition (and its digest) does not change when the infrastructure's outputs do. The SDK takes
the role and S3 locations as plain strings in a few places (role validation, hyperparameters), so
the definition is built with sentinel values and those are rewritten afterwards into
``{"Get": "Parameters.X"}`` / ``Std:Join`` expressions of the documented definition schema.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlstack.manifest.dag import toposort
from mlstack.manifest.gates import Gate
from mlstack.manifest.models import ResolvedProject, Stage
from mlstack_sagemaker.aws_names import sagemaker_name
from mlstack_sagemaker.code_bundle import JOB_SCRIPT, ancestors
from mlstack_sagemaker.plugin import SageMakerConfig

SENTINEL_BUCKET = "mlstack-sentinel-artifact-bucket"
SENTINEL_ROLE = "arn:aws:iam::000000000000:role/mlstack-sentinel-execution-role"
SENTINEL_RUN_KEY = "mlstack-sentinel-run-key"
DATA_STAGES = ("ingest", "validate", "split", "features")
TRAIN_STAGES = ("train", "tune")
PROCESSING_ROOT = "/opt/ml/processing"
_ENV_LOCK = threading.Lock()
# What the serving hooks (mlstack_runtime.inference) decode and answer: declared in each model
# package's InferenceSpecification (SupportedContentTypes / SupportedResponseMIMETypes) and
# sent by InvokeEndpoint (invoke.py), the first of each.
CONTENT_TYPES = ("application/json", "text/csv")
RESPONSE_TYPES = ("application/json",)


@dataclass(frozen=True)
class Layout:
    """Where a project's objects live in the artifact bucket (keys, without the bucket)."""

    project: str
    environment: str

    @property
    def prefix(self) -> str:
        return f"mlstack/{self.project}/{self.environment}"

    def code_key(self, code_digest: str) -> str:
        return f"mlstack/{self.project}/code/{code_digest.removeprefix('sha256:')[:16]}/sourcedir.tar.gz"

    def data_key(self, data_digest: str, filename: str) -> str:
        return f"mlstack/{self.project}/data/{data_digest.removeprefix('sha256:')[:16]}/{filename}"

    def stage_key(self, run_key: str, stage: str) -> str:
        return f"{self.prefix}/runs/{run_key}/{stage}"


def pipeline_name(project: ResolvedProject) -> str:
    return sagemaker_name("mlstack", project.project, project.environment)


def model_package_group(project: ResolvedProject, config: SageMakerConfig) -> str:
    if config.model_package_group:
        return config.model_package_group
    model = project.model.name if project.model else project.project
    return sagemaker_name(model, project.environment)


def job_types(project: ResolvedProject) -> tuple[str, ...]:
    """The kinds of job the pipeline starts (processing, training), which its role must be
    allowed to create: train/tune stages are training jobs, register a model package, every
    other stage a processing job (see ``_StepBuilder.add``)."""
    kinds = {s.kind for s in project.pipeline.stages}
    out = []
    if kinds - {*TRAIN_STAGES, "register"}:
        out.append("processing")
    if kinds & set(TRAIN_STAGES):
        out.append("training")
    return tuple(out)


def gate_parameter(stage: str, index: int) -> str:
    return "Gate" + "".join(p.capitalize() for p in re.split(r"[-_]", stage)) + str(index)


def champion_gates(project: ResolvedProject) -> dict[str, tuple[Gate, float]]:
    """Pipeline parameter name -> (champion-relative gate, default that lets it pass)."""
    out: dict[str, tuple[Gate, float]] = {}
    for stage in project.pipeline.stages:
        for i, gate in enumerate(stage.parsed_gates()):
            if gate.champion_metric:
                default = 1e30 if gate.op in ("<", "<=") else -1e30
                out[gate_parameter(stage.name, i)] = (gate, default)
    return out


def code_digest(project: ResolvedProject) -> str:
    """sha256 over the code bundle every job runs (see ``code_bundle``)."""
    from mlstack_sagemaker import code_bundle

    return code_bundle.digest(project)


def build(project: ResolvedProject, config: SageMakerConfig) -> dict[str, Any]:
    """The pipeline definition as a JSON-ready dict."""
    with _ENV_LOCK, warnings.catch_warnings():
        # "Running within a PipelineSession, there will be No Wait..." is the point here.
        warnings.simplefilter("ignore")
        saved = {k: os.environ.get(k) for k in ("SAGEMAKER_VALIDATE_ROLE", "AWS_DEFAULT_REGION")}
        os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"  # no IAM SimulatePolicy at compile time
        # sagemaker.mlops builds a boto3 client at import time and needs a region for it.
        os.environ.setdefault("AWS_DEFAULT_REGION", config.region)
        # The SDK logs at import and while building (config file lookups, "Popping out ...
        # JobName"); library code must not print, so logging is muted for the duration.
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            raw = json.loads(_build_with_sdk(project, config))
        finally:
            logging.disable(previous)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    definition: dict[str, Any] = _parameterise(raw)
    definition["Metadata"] = {
        "mlstack": {
            "project": project.project,
            "environment": project.environment,
            "code_digest": code_digest(project),
        }
    }
    return definition


def _build_with_sdk(project: ResolvedProject, config: SageMakerConfig) -> str:
    import boto3
    from sagemaker.core import image_uris
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline

    boto_session = boto3.Session(
        region_name=config.region, aws_access_key_id="offline", aws_secret_access_key="offline"
    )
    session = PipelineSession(
        boto_session=boto_session, default_bucket=SENTINEL_BUCKET, sagemaker_config={}
    )
    session._default_bucket = SENTINEL_BUCKET  # the SDK would otherwise HEAD the bucket
    image = image_uris.retrieve(
        "sklearn",
        region=config.region,
        version=config.sklearn_version,
        instance_type=config.instance_type,
    )
    layout = Layout(project.project, project.environment)
    code_uri = f"s3://{SENTINEL_BUCKET}/{layout.code_key(code_digest(project))}"

    # A parameter whose value is known only when a run starts (a bucket or role the stack makes,
    # data uploaded by the run) has no default: SageMaker then requires it at start, and a
    # manual start cannot run jobs on an empty bucket, role or S3Uri.
    parameters: list[Any] = [
        ParameterString(name="ArtifactBucket", default_value=config.bucket or None),
        ParameterString(
            name="ExecutionRole", default_value=None if config.role == "create" else config.role
        ),
        ParameterString(name="RunKey", default_value="manual"),
        *(
            [ParameterString(name="InputData", default_value=_default_data(project) or None)]
            if project.data is not None
            else []
        ),
        ParameterString(
            name="ModelPackageGroup", default_value=model_package_group(project, config)
        ),
        *[
            ParameterFloat(name=name, default_value=default)
            for name, (_, default) in champion_gates(project).items()
        ],
    ]
    params = {p.name: p for p in parameters}
    builder = _StepBuilder(project, config, session, image, code_uri, layout, params)
    stages = {s.name: s for s in project.pipeline.stages}
    order = toposort({s.name: s.needs for s in project.pipeline.stages})
    for name in order:
        builder.add(stages[name])
    pipeline = Pipeline(
        name=pipeline_name(project),
        parameters=parameters,
        steps=builder.top_level(),
        sagemaker_session=session,
    )
    return str(pipeline.definition())


def _default_data(project: ResolvedProject) -> str:
    source = project.data.source if project.data else ""
    return source if source.startswith("s3://") else ""


class _StepBuilder:
    """Turns stages into SDK step objects, remembering what each produces for its consumers."""

    def __init__(
        self,
        project: ResolvedProject,
        config: SageMakerConfig,
        session: Any,
        image: str,
        code_uri: str,
        layout: Layout,
        params: Mapping[str, Any],
    ) -> None:
        self.project = project
        self.config = config
        self.session = session
        self.image = image
        self.code_uri = code_uri
        self.layout = layout
        self.params = params
        self.steps: dict[str, Any] = {}  # stage -> the step whose output consumers read
        self.nested: dict[str, Any] = {}  # stage -> the ConditionStep that guards it
        self.roots: list[Any] = []
        self.kinds: dict[str, str] = {}
        self.property_files: dict[str, Any] = {}

    def stage_uri(self, stage: str) -> str:
        return f"s3://{SENTINEL_BUCKET}/{self.layout.stage_key(SENTINEL_RUN_KEY, stage)}"

    def network(self) -> Any:
        if not self.config.subnets:
            return None
        from sagemaker.core.network import NetworkConfig

        return NetworkConfig(
            subnets=self.config.subnets, security_group_ids=self.config.security_groups
        )

    def add(self, stage: Stage) -> None:
        kind = stage.kind
        self.kinds[stage.name] = kind
        if kind in TRAIN_STAGES:
            step = self._training(stage)
        elif kind == "register":
            step = self._register(stage)
        else:
            step = self._processing(stage, evaluate=(kind == "evaluate"))
        self.steps[stage.name] = step
        guard = self._guard_for(stage)
        container = guard.if_steps if guard is not None else self.roots
        container.append(step)
        if kind == "evaluate" and stage.gates:
            condition = self._gates(stage, step)
            self.nested[stage.name] = condition
            container.append(condition)

    def _guard_for(self, stage: Stage) -> Any:
        # A stage after an evaluate with gates runs only when the gates hold.
        for need in stage.needs:
            if need in self.nested:
                return self.nested[need]
        return None

    def top_level(self) -> list[Any]:
        return self.roots

    # --- step kinds -----------------------------------------------------------------------
    def _inputs(self, stage: Stage) -> list[Any]:
        from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

        out = []
        # Every upstream output, not only the direct needs: evaluate reads split's test set.
        sources: list[tuple[str, Any]] = [
            (n, self._output_of(n)) for n in self._ancestors(stage) if self.kinds[n] != "register"
        ]
        if not stage.needs and stage.kind in ("ingest", "command", "function"):
            if "InputData" in self.params:  # a project without `data:` has no data to read
                sources.append(("data", self.params["InputData"]))
        # mlstack_runtime, the job wrapper's settings and the project's `code:` files
        sources.append(("runtime", self.code_uri))
        for name, uri in sources:
            out.append(
                ProcessingInput(
                    input_name=name,
                    s3_input=ProcessingS3Input(
                        s3_uri=uri,
                        local_path=f"{PROCESSING_ROOT}/input/{name}",
                        s3_data_type="S3Prefix",
                        s3_input_mode="File",
                    ),
                )
            )
        return out

    def _output_of(self, stage: str) -> Any:
        step = self.steps[stage]
        if self.kinds[stage] in TRAIN_STAGES:
            return step.properties.ModelArtifacts.S3ModelArtifacts
        if self.kinds[stage] == "register":
            return step.properties.ModelPackageArn
        return step.properties.ProcessingOutputConfig.Outputs["output"].S3Output.S3Uri

    def _env(self, stage: Stage) -> dict[str, str]:
        # The stage's own env: mapping; its settings travel in the code bundle, not here. The
        # run key, which the step's outputs live under, is part of Environment because step
        # caching keys on Environment but not on the output location ("Caching pipeline steps",
        # SageMaker Developer Guide): a step is reused only by a run that looks for its outputs
        # where they are.
        return {**stage.env, "MLSTACK_RUN_KEY": SENTINEL_RUN_KEY}

    def _processing(self, stage: Stage, evaluate: bool) -> Any:
        from sagemaker.core.processing import ScriptProcessor
        from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
        from sagemaker.core.workflow.properties import PropertyFile
        from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep

        processor = ScriptProcessor(
            role=SENTINEL_ROLE,
            image_uri=self.image,
            command=["python3"],
            instance_count=1,
            instance_type=stage.resources.instance_type or self.config.instance_type,
            max_runtime_in_seconds=int(stage.timeout) if stage.timeout else None,
            base_job_name=sagemaker_name(self.project.project, stage.name)[:32],
            sagemaker_session=self.session,
            env=self._env(stage),
            network_config=self.network(),
        )
        outputs = [
            ProcessingOutput(
                output_name="output",
                s3_output=ProcessingS3Output(
                    s3_uri=self.stage_uri(stage.name),
                    local_path=f"{PROCESSING_ROOT}/output",
                    s3_upload_mode="EndOfJob",
                ),
            )
        ]
        args = processor.run(
            code=self.code_uri.replace("sourcedir.tar.gz", JOB_SCRIPT),
            inputs=self._inputs(stage),
            outputs=outputs,
            arguments=[stage.name],
        )
        property_files = []
        if evaluate:
            pf = PropertyFile(
                name=f"{stage.name}-evaluation", output_name="output", path="evaluation.json"
            )
            self.property_files[stage.name] = pf
            property_files.append(pf)
        return ProcessingStep(
            name=stage.name,
            step_args=args,
            property_files=property_files,
            cache_config=CacheConfig(enable_caching=True, expire_after="P30D"),
            retry_policies=_retries(stage),
        )

    def _training(self, stage: Stage) -> Any:
        from sagemaker.mlops.workflow.steps import CacheConfig, TrainingStep
        from sagemaker.train.configs import (
            Compute,
            InputData,
            Networking,
            OutputDataConfig,
            StoppingCondition,
        )
        from sagemaker.train.model_trainer import ModelTrainer

        hyper = {
            # Script mode of the scikit-learn container (sagemaker-training-toolkit).
            "sagemaker_program": JOB_SCRIPT,
            "sagemaker_submit_directory": self.code_uri,
            "mlstack_stage": stage.name,
        }
        networking = (
            Networking(subnets=self.config.subnets, security_group_ids=self.config.security_groups)
            if self.config.subnets
            else None
        )
        trainer = ModelTrainer(
            training_image=self.image,
            role=SENTINEL_ROLE,
            sagemaker_session=self.session,
            compute=Compute(
                instance_type=stage.resources.instance_type or self.config.instance_type,
                instance_count=1,
            ),
            base_job_name=sagemaker_name(self.project.project, stage.name)[:32],
            hyperparameters=hyper,
            environment=self._env(stage),
            networking=networking,
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=int(stage.timeout or 24 * 3600)
            ),
            output_data_config=OutputDataConfig(s3_output_path=self.stage_uri(stage.name)),
        )
        channels = [
            InputData(channel_name=n, data_source=self._output_of(n))
            for n in self._ancestors(stage)
            if self.kinds[n] != "register"
        ]
        args = trainer.train(input_data_config=channels or None, wait=False, logs=False)
        return TrainingStep(
            name=stage.name,
            step_args=args,
            cache_config=CacheConfig(enable_caching=True, expire_after="P30D"),
            retry_policies=_retries(stage),
        )

    def _gates(self, stage: Stage, step: Any) -> Any:
        from sagemaker.core.workflow.conditions import (
            ConditionEquals,
            ConditionGreaterThan,
            ConditionGreaterThanOrEqualTo,
            ConditionLessThan,
            ConditionLessThanOrEqualTo,
            ConditionNot,
        )
        from sagemaker.core.workflow.functions import JsonGet
        from sagemaker.mlops.workflow.condition_step import ConditionStep
        from sagemaker.mlops.workflow.fail_step import FailStep

        cls = {
            ">=": ConditionGreaterThanOrEqualTo,
            ">": ConditionGreaterThan,
            "<=": ConditionLessThanOrEqualTo,
            "<": ConditionLessThan,
            "==": ConditionEquals,
        }
        conditions = []
        for i, gate in enumerate(stage.parsed_gates()):
            left = JsonGet(
                step_name=step.name,
                property_file=self.property_files[stage.name],
                json_path=f"metrics.{gate.metric}",
            )
            # A champion gate's bound (champion metric +/- slack) is a parameter filled at start.
            right: Any = (
                self.params[gate_parameter(stage.name, i)]
                if gate.champion_metric
                else float(gate.number or 0.0)
            )
            if gate.op == "!=":
                conditions.append(ConditionNot(expression=ConditionEquals(left=left, right=right)))
            else:
                conditions.append(cls[gate.op](left=left, right=right))
        fail = FailStep(
            name=f"{stage.name}-gates-failed",
            error_message=f"gates of {stage.name} failed: " + "; ".join(stage.gates),
        )
        return ConditionStep(
            name=f"{stage.name}-gates", conditions=conditions, if_steps=[], else_steps=[fail]
        )

    def _register(self, stage: Stage) -> Any:
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.mlops.workflow.model_step import ModelStep
        from sagemaker.serve.model_builder import ModelBuilder

        train = next((n for n in self._ancestors(stage) if self.kinds[n] in TRAIN_STAGES), None)
        if train is None:
            raise ValueError(
                f"stage {stage.name!r} registers a model but no train stage comes before it"
            )
        evaluate = next((n for n in self._ancestors(stage) if self.kinds[n] == "evaluate"), None)
        builder = ModelBuilder(
            image_uri=self.image,
            s3_model_data_url=self._output_of(train),
            role_arn=SENTINEL_ROLE,
            sagemaker_session=self.session,
            env_vars={
                "SAGEMAKER_PROGRAM": JOB_SCRIPT,
                "SAGEMAKER_SUBMIT_DIRECTORY": self.code_uri,
            },
        )
        metrics = None
        if evaluate is not None:
            metrics = ModelMetrics(
                model_statistics=MetricsSource(
                    content_type="application/json",
                    s3_uri=f"{self.stage_uri(evaluate)}/evaluation.json",
                )
            )
        args = builder.register(
            model_package_group_name=_MODEL_GROUP_SENTINEL,
            content_types=list(CONTENT_TYPES),
            response_types=list(RESPONSE_TYPES),
            inference_instances=[self.config.hosting_instance_type],
            approval_status="PendingManualApproval",
            model_metrics=metrics,
            description=f"{self.project.project} model trained by mlstack",
        )
        return ModelStep(name=stage.name, step_args=args)

    def _ancestors(self, stage: Stage) -> list[str]:
        return ancestors(self.project, stage)


_MODEL_GROUP_SENTINEL = "mlstack-sentinel-model-group"


def _retries(stage: Stage) -> list[Any] | None:
    if not stage.retries:
        return None
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
    )

    return [
        SageMakerJobStepRetryPolicy(
            exception_types=[
                SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
            ],
            max_attempts=stage.retries,
            backoff_rate=2.0,
            interval_seconds=30,
        )
    ]


# --- sentinel values → pipeline parameter expressions --------------------------------------------


def _parameterise(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _parameterise(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_parameterise(v) for v in node]
    if isinstance(node, str):
        return _expr(node)
    return node


def _expr(text: str) -> Any:
    if text == SENTINEL_ROLE:
        return {"Get": "Parameters.ExecutionRole"}
    if text == _MODEL_GROUP_SENTINEL:
        return {"Get": "Parameters.ModelPackageGroup"}
    if SENTINEL_BUCKET not in text and SENTINEL_RUN_KEY not in text:
        return text
    values: list[Any] = []
    rest = text
    while rest:
        i_b, i_r = rest.find(SENTINEL_BUCKET), rest.find(SENTINEL_RUN_KEY)
        hits = [
            (i, s, p)
            for i, s, p in (
                (i_b, SENTINEL_BUCKET, "ArtifactBucket"),
                (i_r, SENTINEL_RUN_KEY, "RunKey"),
            )
            if i >= 0
        ]
        if not hits:
            values.append(rest)
            break
        i, sentinel, param = min(hits)
        if i:
            values.append(rest[:i])
        values.append({"Get": f"Parameters.{param}"})
        rest = rest[i + len(sentinel) :]
    return {"Std:Join": {"On": "", "Values": values}}


def digest(definition: Mapping[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
