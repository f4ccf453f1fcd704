"""The strict AWS request check (strict_aws.py) itself: each constraint kind, and the hook."""

from __future__ import annotations

import sys
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
