"""Resource addresses: ``KIND.NAME`` (``endpoint.cancer``, ``model.cancer-classifier``).

The one place addresses are built and taken apart; state, plans, ``--target`` and the backends'
``observe`` all key resources by ``str(Address(...))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from mlstack.errors import SpecError

ResourceKind = Literal["infra", "dataset", "pipeline", "run", "model", "endpoint"]
KINDS: tuple[str, ...] = get_args(ResourceKind)


@dataclass(frozen=True)
class Address:
    kind: ResourceKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.name}"

    @classmethod
    def parse(cls, text: str) -> Address:
        kind, dot, name = text.partition(".")
        if not dot or not name or kind not in KINDS:
            raise SpecError(
                f"{text!r} is not a resource address",
                hint=f"addresses are KIND.NAME with KIND one of {', '.join(KINDS)}",
            )
        return cls(kind, name)  # type: ignore[arg-type]  # checked against KINDS above


def infra(environment: str) -> str:
    return str(Address("infra", environment))


def dataset(project: str) -> str:
    return str(Address("dataset", project))


def pipeline(project: str) -> str:
    return str(Address("pipeline", project))


def run(project: str) -> str:
    return str(Address("run", project))


def model(name: str) -> str:
    return str(Address("model", name))


def endpoint(name: str) -> str:
    return str(Address("endpoint", name))
