"""docs/sagemaker-aws.md lists exactly the AWS operations the backend's code calls."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import botocore
import botocore.session

strict = sys.modules["strict_aws"]  # loaded by conftest.py
PACKAGE = Path(__file__).parents[1] / "mlstack_sagemaker"


def code_operations() -> dict[tuple[str, str], set[str]]:
    """(service, Operation) -> modules, from every ``aws.call``/``aws.exists`` in the package."""
    session = botocore.session.get_session()
    out: dict[tuple[str, str], set[str]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("call", "exists")
                and len(node.args) >= 2
            ):
                continue
            service_arg, op_arg = node.args[:2]
            assert isinstance(service_arg, ast.Constant) and isinstance(op_arg, ast.Constant), (
                f"{path.name}:{node.lineno}: name the service and operation literally"
            )
            service = str(service_arg.value).removesuffix("-probe")
            model = session.get_service_model(service)
            (name,) = [n for n in model.operation_names if botocore.xform_name(n) == op_arg.value]
            out.setdefault((service, name), set()).add(path.stem)
    return out


def test_the_documented_operations_are_the_ones_the_code_calls() -> None:
    documented = strict.documented_operations()
    code = code_operations()
    assert set(documented) == set(code), (
        f"missing from docs: {sorted(set(code) - set(documented))}; "
        f"no longer called: {sorted(set(documented) - set(code))}"
    )
    for key, (modules, actions) in documented.items():
        assert modules == code[key], key
        assert actions and all(re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", a) for a in actions)


def test_calls_that_pass_a_role_need_pass_role() -> None:
    """AWS requires iam:PassRole from whoever hands a role to SageMaker (CreateModel's
    ExecutionRoleArn, CreatePipeline/UpdatePipeline's RoleArn)."""
    documented = strict.documented_operations()
    for op in ("CreateModel", "CreatePipeline", "UpdatePipeline"):
        assert "iam:PassRole" in documented[("sagemaker", op)][1]
