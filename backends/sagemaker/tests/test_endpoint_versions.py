"""Which version a ``primary`` variant serves is read once per endpoint config, not per poll."""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace
from typing import Any

from mlstack_sagemaker import endpoints


class RecordingAws:
    """Answers the four reads ``wait_endpoint``/``endpoint_view`` make, counting them. The
    endpoint is ``Updating`` for three describes, then ``InService`` on config ``c2``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.describes = 0

    def call(self, service: str, operation: str, **kw: Any) -> dict[str, Any]:
        self.counts[operation] += 1
        if operation == "describe_endpoint":
            self.describes += 1
            settled = self.describes > 3
            return {
                "EndpointName": kw["EndpointName"],
                "EndpointArn": "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/shop-dev",
                "EndpointConfigName": "shop-dev-c2" if settled else "shop-dev-c1",
                "EndpointStatus": "InService" if settled else "Updating",
                "ProductionVariants": [{"VariantName": "primary", "CurrentWeight": 1.0}],
            }
        if operation == "describe_endpoint_config":
            n = kw["EndpointConfigName"][-1]
            return {"ProductionVariants": [{"VariantName": "primary", "ModelName": f"m{n}"}]}
        if operation == "describe_model":
            return {"ModelArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model/{kw['ModelName']}"}
        if operation == "list_tags":
            n = kw["ResourceArn"][-1]
            return {"Tags": [{"Key": "mlstack:version", "Value": str(int(n) + 4)}]}
        raise AssertionError(f"unexpected call {operation}")


def test_primary_version_is_looked_up_once_per_endpoint_config() -> None:
    aws = RecordingAws()
    platform: Any = SimpleNamespace(
        aws=aws,
        config=SimpleNamespace(timeout=60.0, poll_interval=0.0, region="eu-west-1"),
        primary_versions={},
    )
    events: list[Any] = []
    ctx: Any = SimpleNamespace(emit=events.append, cancel=threading.Event())
    described = endpoints.wait_endpoint(platform, "shop-dev", ctx)
    view = endpoints.endpoint_view(platform, "shop-dev", described)
    again = endpoints.endpoint_view(platform, "shop-dev", described)

    # three Updating polls on c1 and the settled answer on c2: one lookup per config
    assert [e.data["weights"] for e in events] == [{"5": 100.0}] * 3
    assert [v.version for v in view.versions] == ["6"] == [v.version for v in again.versions]
    assert aws.counts == Counter(
        describe_endpoint=4, describe_endpoint_config=2, describe_model=2, list_tags=2
    )
    assert platform.primary_versions == {"shop-dev-c1": "5", "shop-dev-c2": "6"}
