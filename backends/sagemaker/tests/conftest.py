"""A moto server on 127.0.0.1 with the SageMaker behaviours moto 5.2 lacks, added faithfully.

0. The endpoint lifecycle (moto's endpoints are ``InService`` at once), following the SageMaker
   API reference (CreateEndpoint, DescribeEndpoint's ``EndpointStatus``,
   UpdateEndpointWeightsAndCapacities): ``CreateEndpoint`` leaves the endpoint ``Creating`` for
   ``CREATING_DESCRIBES`` DescribeEndpoint calls, then ``InService``, or ``Failed`` with a
   ``FailureReason`` when a test put the endpoint in ``FAIL_CREATES`` (as a model that does not
   pass its health check does). ``UpdateEndpointWeightsAndCapacities`` is refused unless the
   endpoint is ``InService`` and every named variant exists once; the endpoint is then
   ``Updating`` (``DesiredWeight`` set, ``CurrentWeight`` unchanged) for ``UPDATING_DESCRIBES``
   describes, then ``InService`` with the new weights.
1. ``UpdateEndpoint`` (not implemented by moto 5.2), following the SageMaker API reference
   (UpdateEndpoint, DescribeEndpoint, DeploymentConfig, BlueGreenUpdatePolicy,
   TrafficRoutingConfig) and the developer guide's "Deployment guardrails" pages (blue/green,
   canary, linear, auto-rollback, exclusions) and "Shadow variants". The endpoint must exist
   and be ``InService``; the new config must exist. A guarded update (``BlueGreenUpdatePolicy``)
   is refused unless the new config keeps the production variant names, a canary is at most
   50 % and a linear step 10-50 % of the fleet, and the execution timeout exceeds the waits.
   ``DescribeEndpoint`` then answers ``Updating`` ``UPDATING_DESCRIBES`` times (the next one
   settles); on each of them
   (the baking and waiting periods) the ``AutoRollbackConfiguration`` alarms are read from
   moto's CloudWatch: one in ``ALARM`` rolls back (``RollingBack``, then ``InService`` on the
   old config with a ``FailureReason``). A test makes an update fail (as a container failing
   its health check would) through ``FAIL_UPDATES``: the endpoint returns to ``InService`` with
   the old config and the reason. Otherwise it serves the new config's variants.
2. ``DeleteModelPackage`` / ``DeleteModelPackageGroup`` (not implemented by moto 5.2): a
   package is found by ARN or name and removed; a group that still holds packages is refused,
   as SageMaker does.
3. ``ShadowProductionVariants`` on ``CreateEndpointConfig`` (moto drops them): stored and
   returned by ``DescribeEndpointConfig``/``DescribeEndpoint``; as "Shadow variants" documents,
   a config with shadow variants holds one production and one shadow variant.

4. ``ListPipelineExecutionSteps`` and ``StopPipelineExecution`` (not implemented by moto 5.2;
   moto's executions are ``Succeeded`` at once), following the SageMaker API reference
   (DescribePipelineExecution, ListPipelineExecutionSteps, StopPipelineExecution,
   PipelineExecutionStep): an execution answers ``Executing`` to ``EXECUTING_DESCRIBES``
   DescribePipelineExecution calls (its first step ``Executing``), then ends ``Succeeded`` with
   every step (a Condition step's ``IfSteps`` too) ``Succeeded``. A test makes an execution
   fail through ``FAIL_EXECUTIONS`` (pipeline name -> step and FailureReason): the steps before
   it succeed, it fails with the reason, later ones never start, and the execution is ``Failed``
   with the reason. StopPipelineExecution turns an executing run ``Stopping`` (its step too)
   for ``EXECUTING_DESCRIBES`` more describes, then ``Stopped``; ``STOP_CALLS`` counts the
   calls per execution. Steps are listed newest first unless ``SortOrder`` is ``Ascending``.

Every test here runs under ``strict_aws`` (see ``strict_aws.py``): each call any boto3 or
SageMaker SDK client makes is checked against botocore's service model, including the lengths,
patterns, enums and ranges that moto does not enforce, and a violation fails the test.

moto records a pipeline execution but runs no job. Tests that drive the backend from another
process (the CLI) register a callable in ``EXECUTION_HOOKS``; ``StartPipelineExecution`` calls it
with the execution's pipeline name and parameters and an ``S3Writer``, before answering, so the
jobs' outputs exist by the time the execution reports ``Succeeded``.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def _load_sibling(name: str) -> Any:
    """A module beside this conftest (tests run with --import-mode=importlib, no sys.path)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, f"{__file__.rsplit('/', 1)[0]}/{name}.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


strict = _load_sibling("strict_aws")
_PATCHED = False
EXECUTION_HOOKS: list[Callable[[str, dict[str, str], S3Writer], None]] = []


class S3Writer:
    """Writes objects straight into the moto server's S3 (inside a request handler)."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id

    def put(self, bucket: str, key: str, body: bytes) -> None:
        from moto.s3.models import s3_backends

        s3_backends[self.account_id]["global"].put_object(bucket, key, body)


CREATING_DESCRIBES = 2  # DescribeEndpoint answers ``Creating`` this many times, then settles
UPDATING_DESCRIBES = 3  # DescribeEndpoint answers ``Updating`` this many times, then settles
FAIL_CREATES: dict[str, str] = {}  # endpoint name -> FailureReason of its next creation
FAIL_UPDATES: dict[str, str] = {}  # endpoint name -> FailureReason of its next update
_UPDATES: dict[tuple[str, str, str], dict[str, Any]] = {}
# (account, region, endpoint) -> a Creating / weights-Updating phase: describes left, and what
# happens when it ends
_SETTLING: dict[tuple[str, str, str], dict[str, Any]] = {}


EXECUTING_DESCRIBES = 2  # DescribePipelineExecution answers ``Executing`` this many times
FAIL_EXECUTIONS: dict[str, tuple[str, str]] = {}  # pipeline -> (step, FailureReason), next run
STOP_CALLS: dict[str, int] = {}  # execution ARN -> StopPipelineExecution calls
_EXECUTIONS: dict[str, dict[str, Any]] = {}  # execution ARN -> its progress


def _definition_steps(steps: list[dict[str, Any]]) -> list[str]:
    """Step names in order, a Condition step's IfSteps after it (the condition holds)."""
    out: list[str] = []
    for step in steps:
        out.append(step["Name"])
        if step.get("Type") == "Condition":
            out += _definition_steps(step.get("Arguments", {}).get("IfSteps", []))
    return out


def _execution_steps(progress: dict[str, Any]) -> list[dict[str, Any]]:
    """PipelineExecutionStep entries for an execution's progress, oldest first."""
    status, names = progress["status"], progress["steps"]
    if status in ("Executing", "Stopping", "Stopped"):
        return [{"StepName": names[0], "StepStatus": status}]
    failing = progress["fail"]
    out = []
    for name in names:
        if failing is not None and name == failing[0]:
            out.append({"StepName": name, "StepStatus": "Failed", "FailureReason": failing[1]})
            break
        out.append({"StepName": name, "StepStatus": "Succeeded"})
    return out


def guardrail_problem(endpoint: Any, config: Any, deployment: dict[str, Any]) -> str | None:
    """Why SageMaker would refuse this guarded update (deployment guardrails rules), or None."""
    policy = deployment.get("BlueGreenUpdatePolicy")
    if not policy:
        return None
    old = sorted(v["VariantName"] for v in endpoint.production_variants)
    new = sorted(v["VariantName"] for v in config.production_variants)
    if old != new:
        return (
            "Deployment guardrails require the same production variant names in the new "
            f"endpoint config: endpoint has {old}, config has {new}."
        )
    routing = policy["TrafficRoutingConfiguration"]
    kind = routing["Type"]
    if kind == "CANARY":
        size = routing.get("CanarySize") or {}
        if size.get("Type") == "CAPACITY_PERCENT" and not 0 < size["Value"] <= 50:
            return f"CanarySize {size['Value']}% must be at most 50% of the fleet."
    if kind == "LINEAR":
        size = routing.get("LinearStepSize") or {}
        if size.get("Type") == "CAPACITY_PERCENT" and not 10 <= size["Value"] <= 50:
            return f"LinearStepSize {size['Value']}% must be between 10% and 50% of the fleet."
    wait = int(routing.get("WaitIntervalInSeconds", 0))
    steps = 1
    if kind == "LINEAR":
        steps = -(-100 // int((routing.get("LinearStepSize") or {}).get("Value", 100)))
    elif kind == "CANARY":
        steps = 2
    needed = wait * steps + int(policy.get("TerminationWaitInSeconds", 0))
    timeout = policy.get("MaximumExecutionTimeoutInSeconds")
    if timeout is not None and int(timeout) <= needed:
        return (
            f"MaximumExecutionTimeoutInSeconds {timeout} must exceed the deployment's waits "
            f"({needed}s)."
        )
    return None


def _patch_moto() -> None:
    global _PATCHED
    if _PATCHED:
        return
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sagemaker import models as sm_models
    from moto.sagemaker import utils as sm_utils
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(self: Any) -> Any:
        backend = self.sagemaker_backend
        name = self._get_param("EndpointName")
        config_name = self._get_param("EndpointConfigName")
        deployment = self._get_param("DeploymentConfig") or {}
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            arn = sm_models.FakeEndpoint.arn_formatter(
                name, backend.account_id, backend.region_name
            )
            raise ValidationError(message=f'Could not find endpoint "{arn}".')
        if endpoint.endpoint_status != "InService":
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        config = backend.endpoint_configs.get(config_name)
        if config is None:
            arn = sm_models.FakeEndpointConfig.arn_formatter(
                config_name, backend.account_id, backend.region_name
            )
            raise ValidationError(message=f'Could not find endpoint configuration "{arn}".')
        problem = guardrail_problem(endpoint, config, deployment)
        if problem:
            raise ValidationError(message=problem)
        if deployment:
            endpoint.last_deployment_config = deployment
        endpoint.endpoint_status = "Updating"
        endpoint.last_modified_time = sm_models.utcnow()
        _UPDATES[(backend.account_id, backend.region_name, name)] = {
            "config": config,
            "alarms": [
                a["AlarmName"]
                for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
            ],
            "describes_left": UPDATING_DESCRIBES,
        }
        return ActionResult({"EndpointArn": endpoint.arn})

    def describe_endpoint(self: Any) -> Any:
        backend = self.sagemaker_backend
        name = self._get_param("EndpointName")
        key = (backend.account_id, backend.region_name, name)
        update = _UPDATES.get(key)
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            _SETTLING.pop(key, None)
            _UPDATES.pop(key, None)
        elif update is not None:
            _advance(endpoint, update, key)
        elif key in _SETTLING:
            phase = _SETTLING[key]
            if phase["describes_left"] > 0:
                phase["describes_left"] -= 1
            else:
                del _SETTLING[key]
                phase["settle"](endpoint)
        return original_describe(self)

    def _advance(endpoint: Any, update: dict[str, Any], key: tuple[str, str, str]) -> None:
        """One describe's worth of progress: alarms are watched on every one (baking/waiting)."""
        if endpoint.endpoint_status == "RollingBack":
            del _UPDATES[key]
            endpoint.endpoint_status = "InService"
            return
        cw = cloudwatch_backends[key[0]][key[1]]
        firing = [
            a for a in update["alarms"] if a in cw.alarms and cw.alarms[a].state_value == "ALARM"
        ]
        if firing:
            # Automatic rollback: the old configuration keeps serving.
            endpoint.failure_reason = (
                f"Deployment rolled back: alarm(s) {', '.join(firing)} in ALARM state"
            )
            endpoint.endpoint_status = "RollingBack"
            return
        if update["describes_left"] > 0:
            update["describes_left"] -= 1
            return
        del _UPDATES[key]
        endpoint.endpoint_status = "InService"
        reason = FAIL_UPDATES.pop(key[2], None)
        if reason is not None:
            # A failed update: back to InService on the old configuration, with the reason.
            endpoint.failure_reason = reason
            return
        config = update["config"]
        endpoint.endpoint_config_name = config.endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(
            config.production_variants
        )
        shadows = getattr(config, "shadow_production_variants", None)
        if shadows:
            endpoint.shadow_production_variants = endpoint._process_production_variants(shadows)
        elif hasattr(endpoint, "shadow_production_variants"):
            del endpoint.shadow_production_variants
        endpoint.failure_reason = None

    original_describe = SageMakerResponse.describe_endpoint
    original_create_config = SageMakerResponse.create_endpoint_config
    original_create_endpoint = sm_models.SageMakerModelBackend.create_endpoint
    original_update_weights = sm_models.SageMakerModelBackend.update_endpoint_weights_and_capacities

    def create_endpoint_config(self: Any) -> Any:
        result = original_create_config(self)
        shadows = self._get_param("ShadowProductionVariants")
        if shadows:
            if len(shadows) > 1 or len(self._get_param("ProductionVariants") or []) > 1:
                raise ValidationError(
                    message="An endpoint config with shadow variants may have only one "
                    "production variant and one shadow variant."
                )
            cfg = self.sagemaker_backend.endpoint_configs[self._get_param("EndpointConfigName")]
            cfg.validate_production_variants(shadows)
            cfg.shadow_production_variants = shadows
        return result

    def create_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str, tags: Any) -> Any:
        if endpoint_name in self.endpoints:
            arn = self.endpoints[endpoint_name].arn
            raise ValidationError(message=f'Cannot create already existing endpoint "{arn}".')
        endpoint = original_create_endpoint(self, endpoint_name, endpoint_config_name, tags)
        shadows = getattr(
            self.endpoint_configs[endpoint_config_name], "shadow_production_variants", None
        )
        if shadows:
            endpoint.shadow_production_variants = endpoint._process_production_variants(shadows)
        endpoint.endpoint_status = "Creating"
        failure = FAIL_CREATES.pop(endpoint_name, None)

        def created(ep: Any) -> None:
            ep.endpoint_status = "InService" if failure is None else "Failed"
            ep.failure_reason = failure
            ep.last_modified_time = sm_models.utcnow()

        _SETTLING[(self.account_id, self.region_name, endpoint_name)] = {
            "describes_left": CREATING_DESCRIBES,
            "settle": created,
        }
        return endpoint

    def update_weights(
        self: Any, endpoint_name: str, desired_weights_and_capacities: list[dict[str, Any]]
    ) -> str:
        desired = desired_weights_and_capacities
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is not None and endpoint.endpoint_status != "InService":
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        # moto checks the endpoint and the variant names (each once, each present) ...
        snapshot = [dict(v) for v in endpoint.production_variants] if endpoint else []
        arn = str(original_update_weights(self, endpoint_name, desired))
        # ... and applies the weights at once: AWS is Updating first, serving the old weights.
        endpoint = self.endpoints[endpoint_name]
        wanted = {d["VariantName"]: d for d in desired}
        for before, variant in zip(snapshot, endpoint.production_variants, strict=True):
            d = wanted.get(variant["VariantName"])
            for field in ("CurrentWeight", "CurrentInstanceCount", "DesiredInstanceCount"):
                if field in before:
                    variant[field] = before[field]
                else:
                    variant.pop(field, None)
            if d is not None and d.get("DesiredInstanceCount") is not None:
                variant["DesiredInstanceCount"] = d["DesiredInstanceCount"]

        def settled(ep: Any) -> None:
            for variant in ep.production_variants:
                d = wanted.get(variant["VariantName"])
                if d is None:
                    continue
                if d.get("DesiredWeight") is not None:
                    variant["CurrentWeight"] = d["DesiredWeight"]
                if d.get("DesiredInstanceCount") is not None:
                    variant["CurrentInstanceCount"] = d["DesiredInstanceCount"]
            ep.endpoint_status = "InService"
            ep.last_modified_time = sm_models.utcnow()

        endpoint.endpoint_status = "Updating"
        _SETTLING[(self.account_id, self.region_name, endpoint_name)] = {
            "describes_left": UPDATING_DESCRIBES,
            "settle": settled,
        }
        return arn

    def delete_model_package(self: Any) -> Any:
        backend = self.sagemaker_backend
        ref = self._get_param("ModelPackageName")
        arn = backend.model_package_name_mapping.get(ref, ref)
        package = backend.model_packages.pop(arn, None)
        if package is None:
            raise ValidationError(message=f"Model package {ref} does not exist.")
        for key in [k for k, v in backend.model_package_name_mapping.items() if v == arn]:
            del backend.model_package_name_mapping[key]
        return EmptyResult()

    def delete_model_package_group(self: Any) -> Any:
        backend = self.sagemaker_backend
        name = self._get_param("ModelPackageGroupName")
        if name not in backend.model_package_groups:
            raise ValidationError(message=f"Model package group {name} does not exist.")
        if any(p.model_package_group_name == name for p in backend.model_packages.values()):
            raise ValidationError(
                message=f"Model package group {name} still contains model "
                "packages; delete them first."
            )
        del backend.model_package_groups[name]
        return EmptyResult()

    original_start = SageMakerResponse.start_pipeline_execution

    def start_pipeline_execution(self: Any) -> Any:
        params = {p["Name"]: p["Value"] for p in self._get_param("PipelineParameters") or []}
        for hook in list(EXECUTION_HOOKS):
            hook(
                self._get_param("PipelineName"), params, S3Writer(self.sagemaker_backend.account_id)
            )
        return original_start(self)

    original_backend_start = sm_models.SageMakerModelBackend.start_pipeline_execution
    original_backend_describe = sm_models.SageMakerModelBackend.describe_pipeline_execution

    def backend_start_execution(self: Any, pipeline_name: str, *args: Any) -> Any:
        import json

        result = original_backend_start(self, pipeline_name, *args)
        arn = result["PipelineExecutionArn"]
        execution = sm_utils.get_pipeline_execution_from_arn(self.pipelines, arn)
        definition = json.loads(self.pipelines[pipeline_name].pipeline_definition)
        execution.pipeline_execution_status = "Executing"
        _EXECUTIONS[arn] = {
            "status": "Executing",
            "steps": _definition_steps(definition["Steps"]),
            "fail": FAIL_EXECUTIONS.pop(pipeline_name, None),
            "describes_left": EXECUTING_DESCRIBES,
        }
        return result

    def backend_describe_execution(self: Any, arn: str) -> Any:
        result = original_backend_describe(self, arn)
        progress = _EXECUTIONS.get(arn)
        if progress is None:
            return result
        if progress["status"] in ("Executing", "Stopping"):
            progress["describes_left"] -= 1
            if progress["describes_left"] <= 0:
                if progress["status"] == "Stopping":
                    progress["status"] = "Stopped"
                elif progress["fail"] is not None:
                    progress["status"] = "Failed"
                else:
                    progress["status"] = "Succeeded"
        execution = sm_utils.get_pipeline_execution_from_arn(self.pipelines, arn)
        execution.pipeline_execution_status = progress["status"]
        result["PipelineExecutionStatus"] = progress["status"]
        if progress["status"] == "Failed":
            step, reason = progress["fail"]
            result["FailureReason"] = f"Step {step} failed: {reason}"
        return result

    def list_pipeline_execution_steps(self: Any) -> Any:
        arn = self._get_param("PipelineExecutionArn")
        sm_utils.get_pipeline_execution_from_arn(self.sagemaker_backend.pipelines, arn)
        steps = _execution_steps(_EXECUTIONS[arn]) if arn in _EXECUTIONS else []
        if self._get_param("SortOrder") != "Ascending":
            steps.reverse()
        return ActionResult({"PipelineExecutionSteps": steps})

    def stop_pipeline_execution(self: Any) -> Any:
        arn = self._get_param("PipelineExecutionArn")
        sm_utils.get_pipeline_execution_from_arn(self.sagemaker_backend.pipelines, arn)
        STOP_CALLS[arn] = STOP_CALLS.get(arn, 0) + 1
        progress = _EXECUTIONS.get(arn)
        if progress is not None and progress["status"] == "Executing":
            progress["status"] = "Stopping"
            progress["describes_left"] = EXECUTING_DESCRIBES
        return ActionResult({"PipelineExecutionArn": arn})

    sm_models.SageMakerModelBackend.start_pipeline_execution = backend_start_execution
    sm_models.SageMakerModelBackend.describe_pipeline_execution = backend_describe_execution
    SageMakerResponse.list_pipeline_execution_steps = list_pipeline_execution_steps
    SageMakerResponse.stop_pipeline_execution = stop_pipeline_execution
    SageMakerResponse.start_pipeline_execution = start_pipeline_execution
    SageMakerResponse.delete_model_package = delete_model_package
    SageMakerResponse.delete_model_package_group = delete_model_package_group
    SageMakerResponse.update_endpoint = update_endpoint
    SageMakerResponse.describe_endpoint = describe_endpoint
    SageMakerResponse.create_endpoint_config = create_endpoint_config
    sm_models.SageMakerModelBackend.create_endpoint = create_endpoint
    sm_models.SageMakerModelBackend.update_endpoint_weights_and_capacities = update_weights
    _PATCHED = True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """A real HTTP moto server on 127.0.0.1 (in a thread of this process); yields its URL."""
    from moto.server import ThreadedMotoServer

    _patch_moto()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


# --- pytest fixtures ---------------------------------------------------------------------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(autouse=True)
def strict_aws() -> Iterator[Any]:
    """Every AWS call the test makes, checked against botocore's service model (strict_aws.py)."""
    checker = strict.StrictAws()
    with checker.installed():
        yield checker
    documented = strict.documented_operations()
    undocumented = sorted({c for c in checker.backend_calls if c not in documented})
    if undocumented:
        pytest.fail(
            f"the backend called AWS operations {undocumented} that {strict.DOCUMENTED} does not "
            "list (with the IAM actions they need)",
            pytrace=False,
        )
    if checker.found:
        pytest.fail(
            "AWS would reject these requests (botocore service model):\n  "
            + "\n  ".join(checker.found),
            pytrace=False,
        )


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> str:
    """Dummy credentials and no ambient AWS configuration, so nothing can reach real AWS."""
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return moto_url


@pytest.fixture
def lifecycle() -> dict[str, int]:
    """How many describes each transitional endpoint status lasts in the fakes above."""
    return {"Creating": CREATING_DESCRIBES, "Updating": UPDATING_DESCRIBES}


@pytest.fixture
def fail_creates(aws_env: str) -> Iterator[dict[str, str]]:
    """endpoint name -> FailureReason of its next CreateEndpoint (see FAIL_CREATES); emptied."""
    try:
        yield FAIL_CREATES
    finally:
        FAIL_CREATES.clear()


@pytest.fixture
def fail_updates(aws_env: str) -> Iterator[dict[str, str]]:
    """endpoint name -> FailureReason of its next UpdateEndpoint (see FAIL_UPDATES); emptied."""
    try:
        yield FAIL_UPDATES
    finally:
        FAIL_UPDATES.clear()


@pytest.fixture
def execution_hooks(
    aws_env: str,
) -> Iterator[list[Callable[[str, dict[str, str], S3Writer], None]]]:
    """Callables run on every StartPipelineExecution (standing in for the jobs); emptied after."""
    try:
        yield EXECUTION_HOOKS
    finally:
        EXECUTION_HOOKS.clear()


@pytest.fixture
def fail_executions(aws_env: str) -> Iterator[dict[str, tuple[str, str]]]:
    """pipeline name -> (step, FailureReason) of its next execution (FAIL_EXECUTIONS); emptied."""
    try:
        yield FAIL_EXECUTIONS
    finally:
        FAIL_EXECUTIONS.clear()


@pytest.fixture
def stop_calls(aws_env: str) -> Iterator[dict[str, int]]:
    """execution ARN -> StopPipelineExecution calls it received (STOP_CALLS); emptied."""
    try:
        yield STOP_CALLS
    finally:
        STOP_CALLS.clear()
