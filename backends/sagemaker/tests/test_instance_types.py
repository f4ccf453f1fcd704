"""The instance types `validate` accepts are the ones AWS's API model (botocore) accepts, per
job kind, said at the spec line when not."""

from __future__ import annotations

import botocore
import botocore.session
import pytest
from mlstack_sagemaker import instance_types
from mlstack_sagemaker.plugin import SageMakerConfig
from pydantic import ValidationError

GOOD = {
    "region": "eu-west-1",
    "role": "arn:aws:iam::123456789012:role/mlstack-sm",
    "bucket": "mlstack-shop-artifacts",
}


@pytest.mark.parametrize(
    ("ours", "shape"),
    [
        (instance_types.PROCESSING, "ProcessingInstanceType"),
        (instance_types.TRAINING, "TrainingInstanceType"),
        (instance_types.HOSTING, "ProductionVariantInstanceType"),
    ],
)
def test_the_lists_are_botocores(ours: frozenset[str], shape: str) -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    aws = set(model.shape_for(shape).enum)
    assert ours <= aws, f"AWS no longer accepts {sorted(ours - aws)} ({shape})"
    if botocore.__version__ == instance_types.BOTOCORE_VERSION:
        assert ours == aws, f"botocore {botocore.__version__} adds {sorted(aws - ours)}"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        # a hosting-only type cannot run the pipeline's jobs
        (
            {"instance_type": "ml.c5.large", "serving_instance_type": "ml.m5.large"},
            "SageMaker does not run processing and training jobs on 'ml.c5.large'",
        ),
        # a job type that endpoints do not offer, as the serving type or by default
        (
            {"serving_instance_type": "ml.c7i-flex.xlarge"},
            "SageMaker does not run endpoints on 'ml.c7i-flex.xlarge'",
        ),
        (
            {"instance_type": "ml.c7i-flex.xlarge"},
            "endpoints serve on instance_type 'ml.c7i-flex.xlarge', which SageMaker does not "
            "offer for endpoints; set serving_instance_type",
        ),
    ],
)
def test_a_type_the_job_kind_does_not_offer_is_refused(
    settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError) as e:
        SageMakerConfig.model_validate({**GOOD, **settings})
    assert message in str(e.value)
    assert "botocore" in str(e.value) or "serving_instance_type" in str(e.value)


def test_types_every_kind_offers_are_accepted() -> None:
    cfg = SageMakerConfig.model_validate({**GOOD, "instance_type": "ml.m5.xlarge"})
    assert cfg.hosting_instance_type == "ml.m5.xlarge"
    cfg = SageMakerConfig.model_validate(
        {**GOOD, "instance_type": "ml.c7i-flex.xlarge", "serving_instance_type": "ml.c5.large"}
    )
    assert cfg.hosting_instance_type == "ml.c5.large"
