"""The SageMaker backend: Pipelines for runs, Model Package Groups as the registry, endpoints with
production/shadow variants and blue/green DeploymentConfig for rollouts.

boto3 and the SageMaker SDK are imported inside the methods that use them. Every AWS call goes
through ``_client`` so ``endpoint_url`` (or ``AWS_ENDPOINT_URL``) points the whole backend at
another implementation of the APIs, such as the moto server the tests start.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mlstack.engine.backend import (
    Backend,
    Backing,
    CompiledPipeline,
    Context,
    EndpointState,
    Event,
    ModelVersion,
    Observed,
    RolloutPlan,
    RunRequest,
    RunResult,
    VersionMetrics,
)
from mlstack.errors import BackendError
from mlstack_sagemaker import pipeline_definition as pdef
from mlstack_sagemaker.aws_names import sagemaker_name
from mlstack_sagemaker.plugin import SageMakerConfig

TERMINAL_RUN = {"Succeeded", "Failed", "Stopped"}
META_DIGEST = "mlstack:digest"
META_RUN = "mlstack:run"
META_METRIC = "mlstack:metric:"
META_ALIAS = "mlstack:alias:"
ALARM_MARK = "mlstack gate"  # starts the description of every alarm this backend makes
PRIMARY_VARIANT = "primary"  # the variant native rollouts shift; the stack's alarms watch it


class SageMakerBackend(Backend):
    config: SageMakerConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clients: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}
        self._layout = pdef.Layout(self.project.project, self.project.environment)

    # --- AWS access -------------------------------------------------------------------------
    def _client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            url = self.config.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
            # "-probe" clients ask once: a missing operation should not be retried with backoff.
            real, _, probe = service.partition("-")
            self._clients[service] = boto3.client(
                real,
                region_name=self.config.region,
                endpoint_url=url,
                config=Config(retries={"max_attempts": 1 if probe else 5, "mode": "standard"}),
            )
        return self._clients[service]

    def _call(self, service: str, op: str, **kwargs: Any) -> Any:
        """One AWS call; AWS's own complaint becomes a BackendError the CLI can print."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client(service), op)(**kwargs)
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

    def _exists(self, service: str, op: str, **kwargs: Any) -> Any | None:
        """Describe something; None when it does not exist."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client(service), op)(**kwargs)
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

    # --- infrastructure ---------------------------------------------------------------------
    def infrastructure(self) -> Mapping[str, Any]:
        if not self.config.infrastructure_given:
            from mlstack_sagemaker.infra import require_pulumi_cli

            require_pulumi_cli()  # plan stops here, before anything is half-done
        d = self.project.deployment
        return {
            "provider": "environment" if self.config.infrastructure_given else "pulumi",
            "stack": sagemaker_name("mlstack", self.project.project, self.project.environment),
            "region": self.config.region,
            "bucket": self.config.bucket,
            "role": self.config.role,
            "model_package_group": pdef.model_package_group(self.project, self.config),
            "endpoint": self.endpoint_name(d.endpoint) if d else None,
            "gates": dict(d.gates) if d else {},
        }

    def provision(self, inputs: Mapping[str, Any], ctx: Context) -> Mapping[str, Any]:
        if self.config.infrastructure_given:
            group = str(
                inputs.get("model_package_group")
                or pdef.model_package_group(self.project, self.config)
            )
            self._ensure_group(group)
            outputs: dict[str, Any] = {
                "bucket": self.config.bucket,
                "role_arn": self.config.role,
                "model_package_group": group,
                "alarms": [],
                "provisioned_by": "environment",
            }
        else:
            from mlstack_sagemaker.infra import pulumi_up

            outputs = dict(pulumi_up(self, inputs, ctx))
            outputs["provisioned_by"] = "pulumi"
        self._outputs = outputs
        return outputs

    def _infra(self, ctx: Context | None = None) -> dict[str, Any]:
        """The infrastructure's outputs: from the environment block, the apply, or state."""
        if ctx is not None:
            recorded = ctx.outputs.get(f"infra.{self.project.environment}")
            if recorded:
                self._outputs = dict(recorded)
        if self._outputs:
            return self._outputs
        if self.config.infrastructure_given:
            return {
                "bucket": self.config.bucket,
                "role_arn": self.config.role,
                "model_package_group": pdef.model_package_group(self.project, self.config),
                "alarms": [],
                "provisioned_by": "environment",
            }
        raise BackendError(
            "the SageMaker infrastructure of this environment has not been provisioned",
            hint="run `mlstack apply` (needs the pulumi CLI), or give `bucket:` and an existing "
            "`role:` ARN in the environment block",
        )

    def _ensure_group(self, group: str) -> None:
        if (
            self._exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group)
            is None
        ):
            self._call(
                "sagemaker",
                "create_model_package_group",
                ModelPackageGroupName=group,
                ModelPackageGroupDescription=f"mlstack {self.project.project} "
                f"({self.project.environment})",
            )

    # --- pipeline ---------------------------------------------------------------------------
    def compile(self) -> CompiledPipeline:
        from mlstack_sagemaker.compile_cache import cached_definition

        try:
            definition, _ = cached_definition(
                self.workdir,
                self.project,
                self.config,
                lambda: pdef.build(self.project, self.config),
            )
        except (ValueError, TypeError) as e:
            raise BackendError(
                f"cannot compile the pipeline for SageMaker: {e}",
                location=None,
                hint="check the pipeline stages",
            ) from None
        steps = tuple(_step_names(definition["Steps"]))
        return CompiledPipeline(
            definition=definition,
            digest=pdef.digest(definition),
            steps=steps,
            format="sagemaker-pipeline",
        )

    def upsert_pipeline(self, compiled: CompiledPipeline, ctx: Context) -> Mapping[str, Any]:
        infra = self._infra(ctx)
        code_digest = compiled.definition["Metadata"]["mlstack"]["code_digest"]
        self._upload_code(infra["bucket"], code_digest)
        name = pdef.pipeline_name(self.project)
        body = json.dumps(compiled.definition, sort_keys=True)
        common = {
            "PipelineName": name,
            "PipelineDefinition": body,
            "RoleArn": infra["role_arn"],
            "PipelineDescription": f"mlstack {self.project.project} ({self.project.environment})",
        }
        if self._exists("sagemaker", "describe_pipeline", PipelineName=name) is None:
            arn = self._call(
                "sagemaker",
                "create_pipeline",
                PipelineDisplayName=name,
                ClientRequestToken=compiled.digest[7:39],
                **common,
            )["PipelineArn"]
            action = "created"
        else:
            arn = self._call("sagemaker", "update_pipeline", **common)["PipelineArn"]
            action = "updated"
        ctx.emit(Event("pipeline." + action, name, f"SageMaker pipeline {name} {action}"))
        return {"pipeline_name": name, "pipeline_arn": arn, "digest": compiled.digest}

    def _upload_code(self, bucket: str, code_digest: str) -> None:
        runtime = Path(pdef.__file__).with_name("runtime") / pdef.RUNTIME_SCRIPT
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(runtime, arcname=pdef.RUNTIME_SCRIPT)
            for stage in self.project.pipeline.stages:
                for rel in stage.code:
                    path = Path(self.project.root) / rel
                    if path.exists():
                        tar.add(path, arcname=rel)
        key = self._layout.code_key(code_digest)
        self._call("s3", "put_object", Bucket=bucket, Key=key, Body=buf.getvalue())
        self._call(
            "s3",
            "put_object",
            Bucket=bucket,
            Key=key.replace("sourcedir.tar.gz", pdef.RUNTIME_SCRIPT),
            Body=runtime.read_bytes(),
        )

    def run_pipeline(
        self, compiled: CompiledPipeline, request: RunRequest, ctx: Context
    ) -> RunResult:
        infra = self._infra(ctx)
        bucket = infra["bucket"]
        name = pdef.pipeline_name(self.project)
        run_key = _run_key(compiled.digest, request)
        params = {
            "ArtifactBucket": bucket,
            "ExecutionRole": infra["role_arn"],
            "RunKey": run_key,
            "ModelPackageGroup": infra["model_package_group"],
            "InputData": self._stage_data(bucket, request),
        }
        params.update(self._champion_bounds(infra["model_package_group"]))
        start = self._call(
            "sagemaker",
            "start_pipeline_execution",
            PipelineName=name,
            PipelineExecutionDisplayName=sagemaker_name("run", run_key)[:82],
            PipelineParameters=[{"Name": k, "Value": str(v)} for k, v in params.items()],
            PipelineExecutionDescription=json.dumps({"reasons": dict(request.reasons)})[:3072],
        )
        arn = start["PipelineExecutionArn"]
        ctx.emit(
            Event(
                "run.started",
                name,
                f"execution {arn.rsplit('/', 1)[-1]} started",
                {
                    "execution_arn": arn,
                    "run_key": run_key,
                    "bucket": bucket,
                    "prefix": f"{self._layout.prefix}/runs/{run_key}",
                },
            )
        )
        status, reason, step_status = self._follow(arn, compiled, ctx)
        stages = {
            s.name: ("ran" if s.name in request.stages else "cached")
            for s in self.project.pipeline.stages
        }
        stages.update({k: v for k, v in step_status.items() if k in stages})
        metrics = self._read_metrics(bucket, run_key)
        model_uri, model_digest = self._find_model(bucket, run_key)
        result_status = {"Succeeded": "succeeded", "Stopped": "cancelled"}.get(status, "failed")
        return RunResult(
            run_id=arn,
            status=result_status,  # type: ignore[arg-type]
            metrics=metrics,
            model_uri=model_uri,
            model_digest=model_digest,
            stages=stages,
            detail=reason,
        )

    def _stage_data(self, bucket: str, request: RunRequest) -> str:
        data = self.project.data
        if data is None:
            return ""
        if data.source.startswith("s3://"):
            return data.source
        path = Path(self.project.root) / data.source
        if not path.is_file():
            raise BackendError(
                f"data source {data.source!r} does not exist",
                hint="create it, or point data.source at an s3:// URI",
            )
        raw = path.read_bytes()
        digest = request.data_digest or "sha256:" + hashlib.sha256(raw).hexdigest()
        key = self._layout.data_key(digest, path.name)
        self._call("s3", "put_object", Bucket=bucket, Key=key, Body=raw)
        return f"s3://{bucket}/{key}"

    def _champion_bounds(self, group: str) -> dict[str, float]:
        gates = pdef.champion_gates(self.project)
        if not gates:
            return {}
        champion = next((v for v in self._versions(group) if "champion" in v.aliases), None)
        out = {}
        for param, (gate, default) in gates.items():
            bound = gate.threshold(dict(champion.metrics) if champion else None)
            out[param] = default if bound is None else bound
        return out

    def _follow(
        self, arn: str, compiled: CompiledPipeline, ctx: Context
    ) -> tuple[str, str, dict[str, str]]:
        deadline = time.monotonic() + self.config.timeout
        seen: dict[str, str] = {}
        steps_api = True
        while True:
            desc = self._call("sagemaker", "describe_pipeline_execution", PipelineExecutionArn=arn)
            status = desc["PipelineExecutionStatus"]
            if steps_api:
                steps_api = self._step_events(arn, seen, ctx)
            if status in TERMINAL_RUN:
                if not steps_api:
                    # No step listing (moto has none): report the definition's steps.
                    for step in compiled.steps:
                        if step not in seen:
                            seen[step] = "ran" if status == "Succeeded" else "unknown"
                            ctx.emit(Event("stage.done", step, status.lower()))
                reason = str(desc.get("FailureReason") or "")
                ctx.emit(Event("run.done", arn.rsplit("/", 1)[-1], status, {"status": status}))
                return status, reason, seen
            if ctx.cancel.is_set():
                self._call("sagemaker", "stop_pipeline_execution", PipelineExecutionArn=arn)
            if time.monotonic() > deadline:
                raise BackendError(
                    f"pipeline execution {arn} still {status} after {self.config.timeout:.0f}s",
                    hint="raise `timeout:` in the environment block",
                )
            ctx.cancel.wait(self.config.poll_interval)

    def _step_events(self, arn: str, seen: dict[str, str], ctx: Context) -> bool:
        from botocore.exceptions import ClientError

        try:
            steps = self._client("sagemaker-probe").list_pipeline_execution_steps(
                PipelineExecutionArn=arn
            )["PipelineExecutionSteps"]
        except ClientError:
            return False  # an implementation without step listing (moto): statuses only
        for step in steps:
            name, status = step["StepName"], step["StepStatus"]
            if seen.get(name) != status:
                seen[name] = status
                kind = {
                    "Executing": "stage.start",
                    "Succeeded": "stage.done",
                    "Failed": "stage.failed",
                }.get(status, "stage.status")
                cached = step.get("CacheHitResult")
                ctx.emit(
                    Event(
                        "stage.cached" if cached else kind,
                        name,
                        status,
                        {"reason": step.get("FailureReason", "")},
                    )
                )
        return True

    def _read_metrics(self, bucket: str, run_key: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for stage in self.project.pipeline.stages:
            if stage.kind != "evaluate":
                continue
            key = f"{self._layout.stage_key(run_key, stage.name)}/evaluation.json"
            obj = self._exists("s3", "get_object", Bucket=bucket, Key=key)
            if obj is None:
                continue
            report = json.loads(obj["Body"].read())
            out.update({k: float(v) for k, v in (report.get("metrics") or {}).items()})
        return out

    def _find_model(self, bucket: str, run_key: str) -> tuple[str | None, str | None]:
        # the model is train's output; a tune stage's "model" is only its best parameters
        kinds = [s for s in self.project.pipeline.stages if s.kind in pdef.TRAIN_STAGES]
        train = next((s.name for s in sorted(kinds, key=lambda s: s.kind != "train")), None)
        if train is None:
            return None, None
        prefix = self._layout.stage_key(run_key, train) + "/"
        listing = self._call("s3", "list_objects_v2", Bucket=bucket, Prefix=prefix)
        models = sorted(
            (o for o in listing.get("Contents", []) if o["Key"].endswith("output/model.tar.gz")),
            key=lambda o: o["LastModified"],
        )
        if not models:
            return None, None
        key = models[-1]["Key"]
        body = self._call("s3", "get_object", Bucket=bucket, Key=key)["Body"].read()
        return f"s3://{bucket}/{key}", artifact_digest(body)

    # --- registry ---------------------------------------------------------------------------
    def register(self, run: RunResult, ctx: Context) -> ModelVersion:
        infra = self._infra(ctx)
        group = infra["model_package_group"]
        if infra.get("provisioned_by") == "environment":
            # promote may reach an environment that was never applied: the group is ours to make
            self._ensure_group(group)
        if run.model_uri is None:
            raise BackendError(
                f"run {run.run_id} produced no model artifact to register",
                hint="check the train stage's output in the run's S3 prefix",
            )
        meta = {
            META_DIGEST: run.model_digest or "",
            META_RUN: run.run_id,
            **{META_METRIC + k: repr(float(v)) for k, v in run.metrics.items()},
        }
        existing = next(
            (v for v in self._versions(group) if v.lineage.get("model_data_url") == run.model_uri),
            None,
        )
        if existing is not None:
            # The pipeline's RegisterModel step made it; add what mlstack tracks.
            self._update_package(existing.uri, meta)
            return self._version(existing.uri)
        image = self._image()
        arn = self._call(
            "sagemaker",
            "create_model_package",
            ModelPackageGroupName=group,
            ModelPackageDescription=f"{self.project.project}: run {run.run_id.rsplit('/', 1)[-1]}",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": image,
                        "ModelDataUrl": run.model_uri,
                        "Environment": {
                            "SAGEMAKER_PROGRAM": pdef.RUNTIME_SCRIPT,
                            # the train stage puts the inference script inside model.tar.gz
                            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                            "MLSTACK_STAGE_KIND": "serve",
                        },
                    }
                ],
                "SupportedContentTypes": ["application/json", "text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
                "SupportedRealtimeInferenceInstanceTypes": [self.config.hosting_instance_type],
            },
            ModelApprovalStatus="PendingManualApproval",
            CustomerMetadataProperties=meta,
        )["ModelPackageArn"]
        version = self._version(arn)
        ctx.emit(
            Event(
                "model.registered",
                version.name,
                f"version {version.version} registered (PendingManualApproval)",
                {"arn": arn},
            )
        )
        return version

    def import_version(self, source: ModelVersion, ctx: Context) -> ModelVersion:
        run = RunResult(
            run_id=str(source.lineage.get("run", source.uri)),
            status="succeeded",
            metrics=source.metrics,
            model_uri=str(source.lineage.get("model_data_url") or source.uri),
            model_digest=source.digest,
            stages={},
        )
        return self.register(run, ctx)

    def set_alias(self, model: str, alias: str, version: str, ctx: Context) -> None:
        group = self._infra(ctx)["model_package_group"]
        versions = self._versions(group)
        target = next((v for v in versions if v.version == str(version)), None)
        if target is None:
            raise BackendError(
                f"model {model!r} has no version {version} in {group}",
                hint=f"versions: {', '.join(v.version for v in versions)}",
            )
        for v in versions:
            if alias in v.aliases and v.version != target.version:
                self._update_package(v.uri, {}, remove=[META_ALIAS + alias])
        # Approval is SageMaker's promotion gate: the champion is the approved version.
        status = "Approved" if alias == "champion" else None
        self._update_package(target.uri, {META_ALIAS + alias: "true"}, status=status)
        ctx.emit(
            Event(
                "model.alias",
                model,
                f"{alias} -> version {version}" + (" (Approved)" if status else ""),
            )
        )

    def _update_package(
        self,
        arn: str,
        add: Mapping[str, str],
        status: str | None = None,
        remove: list[str] | None = None,
    ) -> None:
        desc = self._call("sagemaker", "describe_model_package", ModelPackageName=arn)
        meta = dict(desc.get("CustomerMetadataProperties") or {})
        meta.update(add)
        for key in remove or []:
            meta.pop(key, None)
        kwargs: dict[str, Any] = {"ModelPackageArn": arn, "CustomerMetadataProperties": meta}
        if remove:
            kwargs["CustomerMetadataPropertiesToRemove"] = remove
        if status:
            kwargs["ModelApprovalStatus"] = status
            kwargs["ApprovalDescription"] = "approved by mlstack (champion)"
        self._call("sagemaker", "update_model_package", **kwargs)

    def versions(self, model: str) -> list[ModelVersion]:
        return self._versions(self._infra()["model_package_group"])

    def _versions(self, group: str) -> list[ModelVersion]:
        if (
            self._exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group)
            is None
        ):
            return []
        arns: list[str] = []
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 100,
        }
        while True:
            page = self._call("sagemaker", "list_model_packages", **kwargs)
            arns += [p["ModelPackageArn"] for p in page.get("ModelPackageSummaryList", [])]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        versions = [self._version(a) for a in arns]
        return sorted(versions, key=lambda v: int(v.version), reverse=True)

    def _version(self, arn: str) -> ModelVersion:
        d = self._call("sagemaker", "describe_model_package", ModelPackageName=arn)
        meta = d.get("CustomerMetadataProperties") or {}
        containers = (d.get("InferenceSpecification") or {}).get("Containers") or [{}]
        model = self.project.model.name if self.project.model else self.project.project
        return ModelVersion(
            name=model,
            version=str(d.get("ModelPackageVersion", arn.rsplit("/", 1)[-1])),
            digest=meta.get(META_DIGEST, ""),
            uri=arn,
            metrics={
                k[len(META_METRIC) :]: float(v)
                for k, v in meta.items()
                if k.startswith(META_METRIC)
            },
            aliases=tuple(sorted(k[len(META_ALIAS) :] for k in meta if k.startswith(META_ALIAS))),
            lineage={
                "run": meta.get(META_RUN, ""),
                "model_data_url": containers[0].get("ModelDataUrl", ""),
                "image": containers[0].get("Image", ""),
                "group": d.get("ModelPackageGroupName", ""),
            },
            approved=d.get("ModelApprovalStatus") == "Approved",
        )

    def _image(self) -> str:
        from mlstack_sagemaker.compile_cache import cached_image

        lookup = ("sklearn", self.config.region, self.config.sklearn_version)
        return cached_image(
            self.workdir, (*lookup, self.config.hosting_instance_type), self._retrieve_image
        )

    def _retrieve_image(self) -> str:
        import logging
        import warnings

        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)  # the SDK logs config-file lookups on import
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from sagemaker.core import image_uris

                return str(
                    image_uris.retrieve(
                        "sklearn",
                        region=self.config.region,
                        version=self.config.sklearn_version,
                        instance_type=self.config.hosting_instance_type,
                    )
                )
        finally:
            logging.disable(previous)

    # --- serving ----------------------------------------------------------------------------
    def endpoint_name(self, endpoint: str) -> str:
        return sagemaker_name(endpoint, self.project.environment)

    def _model_for(self, endpoint: str, backing: Backing, role: str) -> str:
        # Named under the environment's endpoint: destroy finds it, environments never share it.
        name = sagemaker_name(
            self.endpoint_name(endpoint), f"v{backing.version}", backing.digest[7:15]
        )
        if self._exists("sagemaker", "describe_model", ModelName=name) is None:
            pkg = self._call("sagemaker", "describe_model_package", ModelPackageName=backing.uri)
            c = pkg["InferenceSpecification"]["Containers"][0]
            container = {
                "Image": c["Image"],
                "ModelDataUrl": c["ModelDataUrl"],
                "Environment": dict(c.get("Environment") or {}),
            }
            kwargs: dict[str, Any] = {
                "ModelName": name,
                "ExecutionRoleArn": role,
                "PrimaryContainer": container,
                "Tags": [
                    {"Key": "mlstack:version", "Value": backing.version},
                    {"Key": "mlstack:package", "Value": backing.uri},
                ],
            }
            if self.config.subnets:
                kwargs["VpcConfig"] = {
                    "Subnets": self.config.subnets,
                    "SecurityGroupIds": self.config.security_groups,
                }
            self._call("sagemaker", "create_model", **kwargs)
        return name

    def _config_body(
        self, desired: EndpointState, role: str, primary: bool = False
    ) -> dict[str, Any]:
        """Production and shadow variants; ``primary`` names a sole version's variant stably."""
        live = [b for b in desired.backings if b.weight > 0]
        shadows = [b for b in desired.backings if b.shadow > 0 and b.weight == 0]
        if not live:
            raise BackendError(
                f"endpoint {desired.name!r} would serve no traffic: every version has weight 0"
            )
        instance = desired.instance_type or self.config.hosting_instance_type
        use_primary = primary and len(live) == 1

        def variant(b: Backing, weight: float) -> dict[str, Any]:
            return {
                "VariantName": PRIMARY_VARIANT if use_primary and b in live else f"v{b.version}",
                "ModelName": self._model_for(desired.name, b, role),
                "InstanceType": instance,
                "InitialInstanceCount": desired.replicas,
                "InitialVariantWeight": round(weight, 4),
            }

        body: dict[str, Any] = {"ProductionVariants": [variant(b, b.weight / 100.0) for b in live]}
        if shadows:
            # The shadow's weight relative to production sets the share of requests mirrored.
            body["ShadowProductionVariants"] = [variant(b, b.shadow / 100.0) for b in shadows]
        return body

    def _ensure_config(self, endpoint: str, body: Mapping[str, Any]) -> str:
        h = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
        name = sagemaker_name(endpoint, h)
        if self._exists("sagemaker", "describe_endpoint_config", EndpointConfigName=name) is None:
            self._call(
                "sagemaker",
                "create_endpoint_config",
                EndpointConfigName=name,
                Tags=[{"Key": "mlstack:endpoint", "Value": endpoint}],
                **body,
            )
        return name

    def deploy(self, desired: EndpointState, ctx: Context) -> Mapping[str, Any]:
        return self._deploy(desired, ctx, primary=False, deployment_config=None)

    def _deploy(
        self,
        desired: EndpointState,
        ctx: Context,
        primary: bool,
        deployment_config: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        infra = self._infra(ctx)
        name = self.endpoint_name(desired.name)
        body = self._config_body(desired, infra["role_arn"], primary=primary)
        current = self._exists("sagemaker", "describe_endpoint", EndpointName=name)
        if current is not None and current["EndpointStatus"] not in ("InService", "Failed"):
            current = self._wait_endpoint(name, ctx)
        if current is None:
            config = self._ensure_config(name, body)
            self._call(
                "sagemaker",
                "create_endpoint",
                EndpointName=name,
                EndpointConfigName=config,
                Tags=[
                    {"Key": "mlstack:project", "Value": self.project.project},
                    {"Key": "mlstack:environment", "Value": self.project.environment},
                ],
            )
            action = "created"
        elif _same_variants(current, body) and deployment_config is None:
            wanted = {
                v["VariantName"]: v["InitialVariantWeight"] for v in body["ProductionVariants"]
            }
            have = {
                v["VariantName"]: v.get("CurrentWeight", 0.0)
                for v in current.get("ProductionVariants", [])
            }
            if all(abs(float(have.get(k, -1)) - w) < 1e-6 for k, w in wanted.items()):
                action = "unchanged"
            else:
                self._call(
                    "sagemaker",
                    "update_endpoint_weights_and_capacities",
                    EndpointName=name,
                    DesiredWeightsAndCapacities=[
                        {"VariantName": k, "DesiredWeight": w} for k, w in wanted.items()
                    ],
                )
                action = "weights"
        else:
            config = self._ensure_config(name, body)
            if config == current.get("EndpointConfigName") and deployment_config is None:
                action = "unchanged"
            else:
                kwargs: dict[str, Any] = {"EndpointName": name, "EndpointConfigName": config}
                if deployment_config:
                    kwargs["DeploymentConfig"] = dict(deployment_config)
                self._call("sagemaker", "update_endpoint", **kwargs)
                action = "updated"
        state = self._wait_endpoint(name, ctx)
        weights = self._weights(state)
        ctx.emit(
            Event("endpoint." + action, name, _describe_weights(weights), {"weights": weights})
        )
        return {
            "endpoint_name": name,
            "endpoint_arn": state.get("EndpointArn", ""),
            "endpoint_config": state.get("EndpointConfigName", ""),
            "weights": weights,
            "status": state.get("EndpointStatus", ""),
            "url": f"https://runtime.sagemaker.{self.config.region}.amazonaws.com"
            f"/endpoints/{name}/invocations",
        }

    def _wait_endpoint(self, name: str, ctx: Context) -> dict[str, Any]:
        deadline = time.monotonic() + self.config.timeout
        while True:
            d = self._call("sagemaker", "describe_endpoint", EndpointName=name)
            status = d["EndpointStatus"]
            if status in ("InService", "Failed", "OutOfService"):
                if status == "Failed":
                    raise BackendError(
                        f"endpoint {name} failed: {d.get('FailureReason', '?')}",
                        hint="see the endpoint's CloudWatch logs",
                    )
                return dict(d)
            ctx.emit(Event("endpoint.status", name, status, {"weights": self._weights(d)}))
            if time.monotonic() > deadline:
                raise BackendError(
                    f"endpoint {name} still {status} after {self.config.timeout:.0f}s"
                )
            ctx.cancel.wait(self.config.poll_interval)

    def _weights(self, described: Mapping[str, Any]) -> dict[str, float]:
        """version -> percent of live traffic, from a DescribeEndpoint answer."""
        variants = described.get("ProductionVariants") or []
        total = sum(float(v.get("CurrentWeight", 0.0)) for v in variants) or 1.0
        out = {}
        for v in variants:
            version = self._variant_version(described, v["VariantName"])
            out[version] = round(100.0 * float(v.get("CurrentWeight", 0.0)) / total, 4)
        return out

    def _variant_version(self, described: Mapping[str, Any], variant: str) -> str:
        if variant != PRIMARY_VARIANT:
            return variant.removeprefix("v")
        cfg = self._call(
            "sagemaker",
            "describe_endpoint_config",
            EndpointConfigName=described["EndpointConfigName"],
        )
        for v in cfg.get("ProductionVariants", []):
            if v["VariantName"] == PRIMARY_VARIANT:
                tags = self._call(
                    "sagemaker", "list_tags", ResourceArn=self._model_arn(v["ModelName"])
                )
                for t in tags.get("Tags", []):
                    if t["Key"] == "mlstack:version":
                        return str(t["Value"])
        return PRIMARY_VARIANT

    def _model_arn(self, model: str) -> str:
        return str(self._call("sagemaker", "describe_model", ModelName=model)["ModelArn"])

    def rollout(self, plan: RolloutPlan, ctx: Context) -> Mapping[str, Any]:
        if plan.strategy in ("shadow", "ab"):
            return self.deploy(plan.target, ctx)
        name = self.endpoint_name(plan.target.name)
        exists = self._exists("sagemaker", "describe_endpoint", EndpointName=name) is not None
        stepped = self.config.traffic_shifting == "variants" and exists and plan.previous
        if stepped:
            # Each version is its own variant: the alarms watch the new version's variant, so a
            # bad canary is caught even while the old version's traffic dilutes its errors.
            canary = [f"v{b.version}" for b in plan.target.backings if b.weight > 0]
            alarms = self._ensure_alarms(plan, ctx, variants=canary)
            out = self._stepped(plan, alarms, ctx)
            if out["outcome"] == "promoted":
                self._prune_variant_alarms(name, {f"v{v}" for v in out["weights"]})
            return out
        alarms = self._ensure_alarms(plan, ctx)
        if not exists or plan.previous is None:
            return self._deploy(plan.target, ctx, primary=True, deployment_config=None)
        before = self._call("sagemaker", "describe_endpoint", EndpointName=name)
        out = self._deploy(
            plan.target,
            ctx,
            primary=True,
            deployment_config=deployment_config(plan, alarms, self.config.timeout),
        )
        if out["endpoint_config"] == before.get("EndpointConfigName"):
            after = self._call("sagemaker", "describe_endpoint", EndpointName=name)
            # The controller records a rolled-back outcome (history, state, the user's message).
            return {
                **out,
                "outcome": "rolled_back",
                "reason": f"SageMaker rolled {name} back to the previous version: "
                f"{after.get('FailureReason') or 'an alarm fired'} (alarms: "
                f"{', '.join(alarms) or 'none'})",
            }
        return {**out, "outcome": "promoted"}

    def _stepped(self, plan: RolloutPlan, alarms: list[str], ctx: Context) -> dict[str, Any]:
        """Both versions as variants; mlstack steps the weights and watches the alarms."""
        assert plan.previous is not None
        new = [b for b in plan.target.backings if b.weight > 0]
        old = [
            b
            for b in plan.previous.backings
            if b.weight > 0 and b.version not in {n.version for n in new}
        ]
        out: dict[str, Any] = {}
        for step in plan.steps:
            backings = tuple(
                [*(_scaled(b, 100.0 - step) for b in old), *(_scaled(b, step) for b in new)]
            )
            state = EndpointState(
                plan.target.name,
                plan.target.model,
                tuple(b for b in backings if b.weight > 0),
                replicas=plan.target.replicas,
                instance_type=plan.target.instance_type,
            )
            out = self._deploy(state, ctx, primary=False, deployment_config=None)
            ctx.emit(
                Event(
                    "rollout.step",
                    out["endpoint_name"],
                    f"{step:g}% to the new version",
                    {"step": step, "weights": out["weights"]},
                )
            )
            if step < 100:
                ctx.cancel.wait(plan.interval)
            firing = self._firing(alarms)
            if firing:
                restored = self._deploy(plan.previous, ctx, primary=False, deployment_config=None)
                return {
                    **restored,
                    "outcome": "rolled_back",
                    "reason": f"rollout of {plan.target.name} stopped at {step:g}%: alarm "
                    f"{', '.join(firing)} fired; traffic restored",
                }
        return {**out, "outcome": "promoted"}

    def _firing(self, alarms: list[str]) -> list[str]:
        if not alarms:
            return []
        resp = self._call("cloudwatch", "describe_alarms", AlarmNames=alarms)
        return [
            a["AlarmName"] for a in resp.get("MetricAlarms", []) if a.get("StateValue") == "ALARM"
        ]

    def _ensure_alarms(
        self, plan: RolloutPlan, ctx: Context, variants: Sequence[str] = ()
    ) -> list[str]:
        """The CloudWatch alarms a rollout rolls back on: the stack's or made here for the
        ``primary`` variant, and one set per named variant (the stepped mode's new version)."""
        infra = self._infra(ctx)
        names = list(infra.get("alarms") or []) + list(self.config.alarms)
        name = self.endpoint_name(plan.target.name)
        specs = []
        if not (infra.get("provisioned_by") == "pulumi" and infra.get("alarms")):
            specs += alarm_specs(name, plan.gates, PRIMARY_VARIANT)
        fresh = set()
        for variant in variants:
            for spec in alarm_specs(name, plan.gates, variant):
                # The variant does not serve yet: whatever state its alarm has is stale.
                fresh.add(spec["AlarmName"])
                specs.append(spec)
        existing = (
            {
                a["AlarmName"]: a
                for a in self._call(
                    "cloudwatch", "describe_alarms", AlarmNames=[s["AlarmName"] for s in specs]
                ).get("MetricAlarms", [])
            }
            if specs
            else {}
        )
        for spec in specs:
            # PutMetricAlarm resets the state to INSUFFICIENT_DATA: a firing alarm would be
            # silenced by re-putting it, so only create what is missing or changed.
            have = existing.get(spec["AlarmName"])
            if spec["AlarmName"] in fresh or have is None or not _alarm_matches(have, spec):
                self._call("cloudwatch", "put_metric_alarm", **spec)
            names.append(spec["AlarmName"])
        return names

    def _mlstack_alarms(self, endpoint_name: str) -> list[dict[str, Any]]:
        """Alarms this backend made for an endpoint (the stack's are Pulumi's to delete)."""
        resp = self._call("cloudwatch", "describe_alarms", AlarmNamePrefix=endpoint_name + "-")
        return [
            a
            for a in resp.get("MetricAlarms", [])
            if str(a.get("AlarmDescription", "")).startswith(ALARM_MARK)
        ]

    def _prune_variant_alarms(self, endpoint_name: str, serving: set[str]) -> None:
        stale = [
            a["AlarmName"]
            for a in self._mlstack_alarms(endpoint_name)
            if _alarm_variant(a) not in serving and _alarm_variant(a) != PRIMARY_VARIANT
        ]
        if stale:
            self._call("cloudwatch", "delete_alarms", AlarmNames=stale)

    def metrics(self, endpoint: str, since: float) -> Mapping[str, VersionMetrics]:
        name = self.endpoint_name(endpoint)
        described = self._exists("sagemaker", "describe_endpoint", EndpointName=name)
        if described is None:
            return {}
        import datetime as dt

        start = dt.datetime.fromtimestamp(since, tz=dt.timezone.utc)
        end = dt.datetime.now(tz=dt.timezone.utc)
        period = max(60, int((end - start).total_seconds() // 60 + 1) * 60)
        out: dict[str, VersionMetrics] = {}
        for v in described.get("ProductionVariants", []):
            dims = [
                {"Name": "EndpointName", "Value": name},
                {"Name": "VariantName", "Value": v["VariantName"]},
            ]

            def stat(metric: str, dims: list[dict[str, str]] = dims, **kw: Any) -> list[Any]:
                resp = self._call(
                    "cloudwatch",
                    "get_metric_statistics",
                    Namespace="AWS/SageMaker",
                    MetricName=metric,
                    Dimensions=dims,
                    StartTime=start,
                    EndTime=end,
                    Period=period,
                    **kw,
                )
                return list(resp.get("Datapoints") or [])

            requests = sum(p.get("Sum", 0.0) for p in stat("Invocations", Statistics=["Sum"]))
            errors = sum(p.get("Sum", 0.0) for p in stat("Invocation5XXErrors", Statistics=["Sum"]))
            latency = stat("ModelLatency", ExtendedStatistics=["p50", "p90", "p95", "p99"])
            pct: dict[str, float | None] = {}
            for p in ("p50", "p90", "p95", "p99"):
                values = [
                    d["ExtendedStatistics"][p]
                    for d in latency
                    if p in d.get("ExtendedStatistics", {})
                ]
                pct[p] = max(values) / 1e6 if values else None  # ModelLatency is microseconds
            out[self._variant_version(described, v["VariantName"])] = VersionMetrics(
                requests=int(requests),
                errors=int(errors),
                latency_p50=pct["p50"],
                latency_p90=pct["p90"],
                latency_p95=pct["p95"],
                latency_p99=pct["p99"],
            )
        return out

    def endpoint_status(self, endpoint: str) -> Mapping[str, Any]:
        name = self.endpoint_name(endpoint)
        d = self._exists("sagemaker", "describe_endpoint", EndpointName=name)
        if d is None:
            return {}
        return {
            "name": name,
            "status": d["EndpointStatus"],
            "weights": self._weights(d),
            "config": d.get("EndpointConfigName"),
            "url": f"https://runtime.sagemaker.{self.config.region}.amazonaws.com"
            f"/endpoints/{name}/invocations",
        }

    # --- refresh / teardown -----------------------------------------------------------------
    def observe(self) -> Observed:
        """What exists, in the shape state records (only keys the apply's outputs also have)."""
        resources: dict[str, dict[str, Any]] = {}
        try:
            infra = self._infra()
        except BackendError:
            infra = None  # Pulumi's outputs are not known here: those kinds stay unobserved
        group = infra["model_package_group"] if infra else None
        if infra is not None and group is not None:
            bucket_ok = self._exists("s3-probe", "head_bucket", Bucket=infra["bucket"]) is not None
            group_ok = (
                self._exists(
                    "sagemaker", "describe_model_package_group", ModelPackageGroupName=group
                )
                is not None
            )
            if bucket_ok and group_ok:
                resources[f"infra.{self.project.environment}"] = {
                    "bucket": infra["bucket"],
                    "model_package_group": group,
                }
        pipe = self._exists(
            "sagemaker", "describe_pipeline", PipelineName=pdef.pipeline_name(self.project)
        )
        if pipe is not None:
            definition = json.loads(pipe["PipelineDefinition"])
            resources[f"pipeline.{self.project.project}"] = {
                "pipeline_arn": pipe["PipelineArn"],
                "digest": pdef.digest(definition),
            }
        if group and self.project.model:
            latest = self._latest_version(group)
            if latest is not None:
                # the record is the version the last apply/promote registered: the newest one
                resources[f"model.{self.project.model.name}"] = {
                    "version": latest.version,
                    "uri": latest.uri,
                    "digest": latest.digest,
                }
        if self.project.deployment:
            status = self.endpoint_status(self.project.deployment.endpoint)
            if status:
                seen: dict[str, Any] = {"url": status["url"]}
                serving = [v for v, w in status["weights"].items() if w >= 100.0]
                if serving:  # a split (ab) has no single champion to compare
                    seen["champion"] = serving[0]
                resources[f"endpoint.{self.project.deployment.endpoint}"] = seen
        return Observed(resources=resources, complete=group is not None)

    def _latest_version(self, group: str) -> ModelVersion | None:
        page = self._exists(
            "sagemaker",
            "list_model_packages",
            ModelPackageGroupName=group,
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=1,
        )
        summaries = (page or {}).get("ModelPackageSummaryList") or []
        return self._version(summaries[0]["ModelPackageArn"]) if summaries else None

    def destroy(self, address: str, kind: str, outputs: Mapping[str, Any], ctx: Context) -> None:
        if kind == "endpoint":
            self._destroy_endpoint(
                str(outputs.get("endpoint_name") or self.endpoint_name(address.split(".", 1)[-1]))
            )
        elif kind == "pipeline":
            name = str(outputs.get("pipeline_name") or pdef.pipeline_name(self.project))
            if self._exists("sagemaker", "describe_pipeline", PipelineName=name) is not None:
                self._call(
                    "sagemaker",
                    "delete_pipeline",
                    PipelineName=name,
                    ClientRequestToken=hashlib.sha256(name.encode()).hexdigest()[:32],
                )
        elif kind == "model":
            group = self._infra(ctx)["model_package_group"]
            for v in self._versions(group):
                self._call("sagemaker", "delete_model_package", ModelPackageName=v.uri)
            if (
                self.config.model_package_group is None
                and self._exists(
                    "sagemaker", "describe_model_package_group", ModelPackageGroupName=group
                )
                is not None
            ):
                self._call("sagemaker", "delete_model_package_group", ModelPackageGroupName=group)
        elif kind == "infra":
            if outputs.get("provisioned_by") == "pulumi":
                from mlstack_sagemaker.infra import pulumi_destroy

                pulumi_destroy(self, ctx)
        ctx.emit(Event("destroyed", address, kind))

    def _destroy_endpoint(self, name: str) -> None:
        if self._exists("sagemaker", "describe_endpoint", EndpointName=name) is not None:
            self._call("sagemaker", "delete_endpoint", EndpointName=name)
        try:
            stack_made = set(self._infra().get("alarms") or [])
        except BackendError:
            stack_made = set()
        ours = [
            a["AlarmName"] for a in self._mlstack_alarms(name) if a["AlarmName"] not in stack_made
        ]
        if ours:
            self._call("cloudwatch", "delete_alarms", AlarmNames=ours)
        configs = self._call(
            "sagemaker", "list_endpoint_configs", NameContains=name, MaxResults=100
        ).get("EndpointConfigs", [])
        for c in configs:
            if c["EndpointConfigName"].startswith(name + "-"):
                self._call(
                    "sagemaker",
                    "delete_endpoint_config",
                    EndpointConfigName=c["EndpointConfigName"],
                )
        models = self._call("sagemaker", "list_models", NameContains=name, MaxResults=100).get(
            "Models", []
        )
        for m in models:
            if m["ModelName"].startswith(name + "-"):
                self._call("sagemaker", "delete_model", ModelName=m["ModelName"])


# --- pure helpers --------------------------------------------------------------------------------


def deployment_config(plan: RolloutPlan, alarms: list[str], timeout: float) -> dict[str, Any]:
    """The strategy as SageMaker's BlueGreenUpdatePolicy with alarm-driven auto-rollback."""
    interval = max(0, min(3600, int(plan.interval)))
    if plan.strategy == "canary":
        first = plan.steps[0] if plan.steps else 10.0
        routing: dict[str, Any] = {
            "Type": "CANARY",
            "WaitIntervalInSeconds": interval,
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": int(max(1, min(99, first)))},
        }
    elif plan.strategy == "linear":
        step = plan.steps[0] if plan.steps else 20.0
        routing = {
            "Type": "LINEAR",
            "WaitIntervalInSeconds": interval,
            "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": int(max(1, min(99, step)))},
        }
    else:  # all_at_once, blue_green
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": interval}
    policy: dict[str, Any] = {
        "TrafficRoutingConfiguration": routing,
        "TerminationWaitInSeconds": interval if plan.strategy == "blue_green" else 0,
        "MaximumExecutionTimeoutInSeconds": int(max(600, min(28800, timeout))),
    }
    out: dict[str, Any] = {"BlueGreenUpdatePolicy": policy}
    if alarms:
        out["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in alarms[:10]]}
    return out


def alarm_specs(endpoint: str, gates: Mapping[str, str], variant: str) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for deployment gates (error_rate, latency_pNN) on one variant."""
    from mlstack.spec.units import parse_threshold

    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}]
    alarm_name_parts = (endpoint,) if variant == PRIMARY_VARIANT else (endpoint, variant)
    out = []
    for gate, rule in sorted(gates.items()):
        op, bound = parse_threshold(rule)
        # A gate says what is healthy; the alarm fires on the opposite.
        comparison = {
            "<": "GreaterThanOrEqualToThreshold",
            "<=": "GreaterThanThreshold",
            ">": "LessThanOrEqualToThreshold",
            ">=": "LessThanThreshold",
        }[op]
        base = {
            "AlarmName": sagemaker_name(*alarm_name_parts, gate.replace("_", "-")),
            "AlarmDescription": f"{ALARM_MARK} {gate} {rule} on {endpoint} variant {variant}",
            "ComparisonOperator": comparison,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "TreatMissingData": "notBreaching",
        }
        if gate == "error_rate":
            base.update(
                Threshold=bound,
                Metrics=[
                    {
                        "Id": "errors",
                        "ReturnData": False,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SageMaker",
                                "MetricName": "Invocation5XXErrors",
                                "Dimensions": dims,
                            },
                            "Period": 60,
                            "Stat": "Sum",
                        },
                    },
                    {
                        "Id": "requests",
                        "ReturnData": False,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": "AWS/SageMaker",
                                "MetricName": "Invocations",
                                "Dimensions": dims,
                            },
                            "Period": 60,
                            "Stat": "Sum",
                        },
                    },
                    {
                        "Id": "rate",
                        "ReturnData": True,
                        "Label": "error rate",
                        "Expression": "IF(requests > 0, errors / requests, 0)",
                    },
                ],
            )
        elif gate.startswith("latency_p"):
            base.update(
                Namespace="AWS/SageMaker",
                MetricName="ModelLatency",
                Dimensions=dims,
                ExtendedStatistic=gate.removeprefix("latency_"),
                Period=60,
                Threshold=bound * 1e6,
                Unit="Microseconds",
            )
        else:
            continue  # custom metrics are checked by mlstack's controller, not CloudWatch
        out.append(base)
    return out


def _alarm_variant(alarm: Mapping[str, Any]) -> str | None:
    dims = list(alarm.get("Dimensions") or [])
    for query in alarm.get("Metrics") or []:
        dims += (query.get("MetricStat") or {}).get("Metric", {}).get("Dimensions") or []
    return next((d["Value"] for d in dims if d["Name"] == "VariantName"), None)


def _alarm_matches(have: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    keys = ("ComparisonOperator", "Threshold", "MetricName", "ExtendedStatistic")
    return all(have.get(k) == spec.get(k) for k in keys if k in spec)


def artifact_digest(model_tar_gz: bytes) -> str:
    """The artifact contract's digest over the files inside SageMaker's model.tar.gz."""
    h = hashlib.sha256()
    with tarfile.open(fileobj=io.BytesIO(model_tar_gz), mode="r:gz") as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.isfile()), key=lambda m: m.name.removeprefix("./")
        )
        for m in members:
            f = tar.extractfile(m)
            h.update(m.name.removeprefix("./").encode())
            h.update(f.read() if f else b"")
    return "sha256:" + h.hexdigest()


def _run_key(pipeline_digest: str, request: RunRequest) -> str:
    raw = json.dumps(
        {
            "pipeline": pipeline_digest,
            "keys": dict(sorted(request.cache_keys.items())),
            "data": request.data_digest,
        },
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _step_names(steps: list[Mapping[str, Any]]) -> list[str]:
    out = []
    for s in steps:
        out.append(str(s["Name"]))
        if s.get("Type") == "Condition":
            args = s.get("Arguments", {})
            out += _step_names(args.get("IfSteps", [])) + _step_names(args.get("ElseSteps", []))
    return out


def _same_variants(current: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
    have = {v["VariantName"] for v in current.get("ProductionVariants", [])}
    want = {v["VariantName"] for v in body["ProductionVariants"]}
    shadow_have = {v["VariantName"] for v in current.get("ShadowProductionVariants", [])}
    shadow_want = {v["VariantName"] for v in body.get("ShadowProductionVariants", [])}
    return have == want and shadow_have == shadow_want and PRIMARY_VARIANT not in want


def _scaled(b: Backing, weight: float) -> Backing:
    return Backing(version=b.version, uri=b.uri, digest=b.digest, weight=weight, shadow=0.0)


def _describe_weights(weights: Mapping[str, float]) -> str:
    return ", ".join(f"v{k}: {w:g}%" for k, w in sorted(weights.items())) or "no variants"


def _hint_for(code: str) -> str | None:
    return {
        "AccessDeniedException": "the credentials lack a permission; see the policy in "
        "mlstack_stacks.aws",
        "ResourceLimitExceeded": "ask AWS for a higher quota for this instance type",
        "ThrottlingException": "AWS is throttling; retry in a minute",
    }.get(code)
