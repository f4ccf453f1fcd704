"""The strict AWS request check (strict_aws.py) itself: each constraint kind, and the hook."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest

strict = sys.modules["strict_aws"]  # loaded by conftest.py


def _op(service: str, name: str) -> Any:
    return botocore.session.get_session().get_service_model(service).operation_model(name)


def _processing_job(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ProcessingJobName": "mlstack-prepare-1",
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "VolumeSizeInGB": 30,
            }
        },
        "AppSpecification": {"ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1"},
        "RoleArn": "arn:aws:iam::123456789012:role/mlstack",
    }
    request.update(overrides)
    return request


def test_a_valid_request_has_no_violations() -> None:
    assert strict.check_request(_op("sagemaker", "CreateProcessingJob"), _processing_job()) == []


def test_environment_value_over_the_maximum_length_is_reported_with_its_path() -> None:
    found = strict.check_request(
        _op("sagemaker", "CreateProcessingJob"),
        _processing_job(Environment={"MLSTACK_SPEC": "x" * 257}),
    )
    assert found == [
        "CreateProcessingJob.Environment['MLSTACK_SPEC']: 257 characters, at most 256 allowed"
    ]


def test_pattern_enum_range_and_list_length_are_checked() -> None:
    found = strict.check_request(
        _op("sagemaker", "CreateProcessingJob"),
        _processing_job(
            ProcessingJobName="has_underscore",
            ProcessingResources={
                "ClusterConfig": {
                    "InstanceCount": 0,
                    "InstanceType": "m5.large",
                    "VolumeSizeInGB": 30,
                }
            },
            ProcessingInputs=[],
        ),
    )
    text = "\n".join(found)
    assert "ProcessingJobName: 'has_underscore' does not match the pattern" in text
    assert "InstanceCount: 0 is below the minimum 1" in text
    assert "InstanceType: 'm5.large' is not one of" in text
    assert len(found) == 3  # an empty ProcessingInputs list is allowed (min 0)


def test_java_unicode_classes_in_patterns_are_understood() -> None:
    op = _op("sagemaker", "AddTags")
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/e"
    ok = {"ResourceArn": arn, "Tags": [{"Key": "mlstack:stack", "Value": "Ünïcode 1"}]}
    bad = {"ResourceArn": arn, "Tags": [{"Key": "a#b", "Value": "v"}]}
    assert strict.check_request(op, ok) == []
    assert any("Tags[0].Key: 'a#b' does not match" in p for p in strict.check_request(op, bad))


def test_required_and_unknown_members_and_types() -> None:
    found = strict.check_request(
        _op("sagemaker", "CreateEndpoint"), {"EndpointName": "e", "Bogus": 1}
    )
    assert "CreateEndpoint.EndpointConfigName: required member missing" in found
    assert "CreateEndpoint.Bogus: not a member of CreateEndpointInput" in found


def test_the_hook_rejects_a_violating_call_like_aws_and_records_it(
    aws_env: str, strict_aws: Any
) -> None:
    """The autouse checker sees clients made through botocore; a violation never reaches moto."""
    from botocore.exceptions import ClientError

    client = botocore.session.get_session().create_client(
        "sagemaker", region_name="eu-west-1", endpoint_url=aws_env
    )
    with pytest.raises(ClientError, match="ValidationException.*not_valid_name"):
        client.describe_endpoint(EndpointName="not_valid_name")
    with pytest.raises(ClientError, match="Could not find endpoint"):
        client.describe_endpoint(EndpointName="valid-name")  # checked, then answered by moto
    assert strict_aws.calls == ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpoint"]
    assert strict_aws.found == [
        "sagemaker DescribeEndpoint.EndpointName: 'not_valid_name' does not match the pattern "
        "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    ]
    strict_aws.found.clear()  # expected here; anywhere else it fails the test


def test_boto3_clients_are_checked_too(aws_env: str, strict_aws: Any) -> None:
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client("s3", region_name="eu-west-1", endpoint_url=aws_env)
    with pytest.raises(ClientError, match="ValidationException"):
        s3.put_object(Bucket="b", Key="", Body=b"x")  # Key has a minimum length of 1
    assert strict_aws.found and "PutObject.Key" in strict_aws.found[0]
    strict_aws.found.clear()


def _definition(*steps: dict[str, Any]) -> dict[str, Any]:
    parameters = [{"Name": n, "Type": "String"} for n in ("ArtifactBucket", "Role")]
    return {"Version": "2020-12-01", "Parameters": parameters, "Steps": list(steps)}


def test_pipeline_steps_are_checked_as_the_jobs_they_start() -> None:
    bucket = {"Get": "Parameters.ArtifactBucket"}
    processing = {
        "Name": "prep",
        "Type": "Processing",
        "Arguments": {
            **{k: v for k, v in _processing_job().items() if k != "ProcessingJobName"},
            "RoleArn": {"Get": "Parameters.Role"},  # an expression stands for a valid value
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "out",
                        "S3Output": {
                            "S3Uri": {"Std:Join": {"On": "/", "Values": ["s3:/", bucket]}},
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
        },
    }
    assert strict.check_pipeline_definition(_definition(processing)) == []
    register = {
        "Name": "register",
        "Type": "RegisterModel",
        "Arguments": {"ModelPackageGroupName": "bad group", "ModelApprovalStatus": "Maybe"},
    }
    condition = {
        "Name": "gates",
        "Type": "Condition",
        "Arguments": {"Conditions": [], "IfSteps": [register], "ElseSteps": []},
    }
    processing["Arguments"]["Environment"] = {"MLSTACK_SPEC": "x" * 300}
    found = strict.check_pipeline_definition(_definition(processing, condition))
    assert found[0] == (
        "step 'prep' (CreateProcessingJob): CreateProcessingJob.Environment['MLSTACK_SPEC']: "
        "300 characters, at most 256 allowed"
    )
    nested = "\n".join(found[1:])
    assert "step 'register' (CreateModelPackage)" in nested
    assert "ModelPackageGroupName: 'bad group' does not match" in nested
    assert "ModelApprovalStatus: 'Maybe' is not one of" in nested


SAGEMAKER_SPEC = """\
project: shop
environments:
  dev:
    backend: sagemaker
    region: eu-west-1
    role: arn:aws:iam::123456789012:role/mlstack-sm
    bucket: shop-artifacts
data:
  source: data/rows.csv
  target: label
pipeline:
  stages:
    - {name: ingest, uses: builtin/ingest}
    - {name: split, uses: builtin/split, needs: [ingest]}
    - name: train
      uses: builtin/train
      needs: [split]
      with: {estimator: sklearn.linear_model.LogisticRegression}
    - {name: evaluate, uses: builtin/evaluate, needs: [train]}
model:
  name: shop-model
"""


def _compiled(tmp_path: Path, spec: str) -> dict[str, Any]:
    from mlstack_sagemaker import pipeline_definition as pdef
    from mlstack_sagemaker.platform import SageMakerConfig

    from mlstack.manifest.load import load, resolve

    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "rows.csv").write_text("x,label\n1,0\n2,1\n")
    (tmp_path / "mlstack.yaml").write_text(spec)
    project = resolve(load(str(tmp_path / "mlstack.yaml")), "dev")
    definition: dict[str, Any] = pdef.build(
        project, SageMakerConfig.model_validate(project.settings)
    )
    return definition


@pytest.mark.parametrize(
    "spec",
    [
        SAGEMAKER_SPEC,
        # the role made by the stack and the bucket are known only when the run starts
        SAGEMAKER_SPEC.replace("role: arn:aws:iam::123456789012:role/mlstack-sm", "role: create"),
        # no data: the first stage reads no input
        SAGEMAKER_SPEC.split("data:")[0]
        + "pipeline:\n  stages:\n    - {name: fetch, run: python fetch.py}\n",
    ],
    ids=["given-role", "role-create", "no-data"],
)
def test_the_compiled_definition_passes_the_strict_check(tmp_path: Path, spec: str) -> None:
    """Parameters are resolved to their defaults: a default the job would reject (an empty
    S3Uri for data that is not in S3, an empty role ARN) fails here."""
    assert strict.check_pipeline_definition(_compiled(tmp_path, spec)) == []


def test_definition_rules_names_dependencies_parameter_types_and_references() -> None:
    ok_step = {
        "Name": "prep",
        "Type": "Processing",
        "Arguments": {
            **{k: v for k, v in _processing_job().items() if k != "ProcessingJobName"},
            "RoleArn": {"Get": "Parameters.Role"},
        },
    }
    definition = {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "Role", "Type": "String", "DefaultValue": "arn:aws:iam::1:role/x"},
            {"Name": "Count", "Type": "Number", "DefaultValue": 1},
        ],
        "Steps": [
            ok_step,
            {**ok_step, "DependsOn": ["prepare"]},
            {
                "Name": "bad name!",
                "Type": "Processing",
                "Arguments": {
                    **ok_step["Arguments"],
                    "RoleArn": {"Get": "Parameters.Missing"},
                    "AppSpecification": {"ImageUri": {"Get": "Steps.nowhere.Properties.X"}},
                },
            },
            {"Name": "x" * 65, "Type": "Fail", "Arguments": {}},
        ],
    }
    found = strict.check_pipeline_definition(definition)
    assert (
        found[0] == "parameter 'Count': Type 'Number' is not one of String, Integer, Float, Boolean"
    )
    text = "\n".join(found)
    assert "step 'bad name!': a step name is 1-64 characters" in text
    assert f"step {'x' * 65!r}: a step name is 1-64 characters" in text
    assert "step 'prep': 2 steps have this name" in text
    assert "step 'prep': DependsOn 'prepare', no such step" in text
    assert "step 'bad name!': Parameters.Missing is not a declared parameter" in text
    assert "step 'bad name!': Steps.nowhere.Properties.X refers to no step" in text
    # the RoleArn default is resolved and checked: the account is not 12 digits (both 'prep')
    role = "step 'prep' (CreateProcessingJob): CreateProcessingJob.RoleArn: 'arn:aws:iam::1:role/x'"
    assert text.count(role) == 2
    assert len(found) == 9, found


def test_a_parameter_default_is_checked_where_it_is_used() -> None:
    step = {
        "Name": "prep",
        "Type": "Processing",
        "Arguments": {
            **{k: v for k, v in _processing_job().items() if k != "ProcessingJobName"},
            "ProcessingInputs": [
                {
                    "InputName": "data",
                    "S3Input": {
                        "S3Uri": {"Get": "Parameters.InputData"},
                        "LocalPath": "/opt/ml/processing/input/data",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
        },
    }

    def definition(default: str | None) -> dict[str, Any]:
        parameter: dict[str, Any] = {"Name": "InputData", "Type": "String"}
        if default is not None:
            parameter["DefaultValue"] = default
        return {"Version": "2020-12-01", "Parameters": [parameter], "Steps": [step]}

    assert strict.check_pipeline_definition(definition("s3://b/rows.csv")) == []
    assert strict.check_pipeline_definition(definition(None)) == []  # given at start
    (problem,) = strict.check_pipeline_definition(definition(""))
    assert problem.startswith(
        "step 'prep' (CreateProcessingJob): CreateProcessingJob.ProcessingInputs[0].S3Input.S3Uri:"
    )


# What a step's cache key is made of, and where its outputs go, per "Caching pipeline steps"
# (SageMaker Developer Guide): the output location is not part of the key.
CACHE_KEY = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        "AlgorithmSpecification",
        "CheckpointConfig",
        "DebugHookConfig",
        "DebugRuleConfigurations",
        "Environment",
        "HyperParameters",
        "InputDataConfig",
    ),
}
OUTPUTS = {"Processing": "ProcessingOutputConfig", "Training": "OutputDataConfig"}


def _parameters(node: Any) -> set[str]:
    """The pipeline parameters an argument refers to."""
    if isinstance(node, dict):
        get = node.get("Get")
        if isinstance(get, str) and get.startswith("Parameters."):
            return {get.removeprefix("Parameters.")}
        return set().union(*(_parameters(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_parameters(v) for v in node)) if node else set()
    return set()


def test_a_cached_step_is_reused_only_where_its_outputs_are_looked_for(tmp_path: Path) -> None:
    """A parameter that moves a step's outputs (the run key) is part of its cache key, so a run
    never reuses a step whose outputs lie under another run's key (register would find no
    model)."""
    definition = _compiled(tmp_path, SAGEMAKER_SPEC)
    pending, checked = list(definition["Steps"]), []
    while pending:
        step = pending.pop(0)
        args = step.get("Arguments", {})
        pending += args.get("IfSteps", []) + args.get("ElseSteps", [])
        if step["Type"] not in CACHE_KEY:
            continue
        moving = _parameters(args.get(OUTPUTS[step["Type"]]))
        keyed = _parameters([args.get(k) for k in CACHE_KEY[step["Type"]]])
        assert "RunKey" in moving, step["Name"]
        assert moving <= keyed, (step["Name"], moving - keyed)
        checked.append(step["Name"])
    assert checked == ["ingest", "split", "train", "evaluate"]
