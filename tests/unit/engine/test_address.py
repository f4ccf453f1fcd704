"""Resource addresses are built and parsed in one place."""

from __future__ import annotations

import subprocess

import pytest

from mlstack.engine import address
from mlstack.engine.address import Address
from mlstack.errors import SpecError
from tests.conftest import REPO


def test_format_and_parse_round_trip() -> None:
    assert address.endpoint("cancer") == "endpoint.cancer"
    assert address.model("cancer-classifier") == "model.cancer-classifier"
    parsed = Address.parse("model.cancer-classifier")
    assert parsed == Address("model", "cancer-classifier")
    assert str(parsed) == "model.cancer-classifier"
    assert Address.parse("dataset.a.b").name == "a.b"  # only the first dot separates


@pytest.mark.parametrize("text", ["cancer", "widget.cancer", "endpoint.", ".cancer"])
def test_bad_addresses_are_refused_with_the_kinds(text: str) -> None:
    with pytest.raises(SpecError) as e:
        Address.parse(text)
    assert "KIND.NAME" in str(e.value.problems[0].hint)


def test_no_address_is_built_by_f_string_outside_the_address_module() -> None:
    found = subprocess.run(
        [
            "grep",
            "-rnE",
            r'f"(endpoint|model|infra|run|pipeline|dataset)\.\{',
            "mlstack",
            "backends",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert [line for line in found if "/tests/" not in line and "/build/" not in line] == []
