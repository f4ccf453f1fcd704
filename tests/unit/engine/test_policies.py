"""Policies in the spec: validate and plan refuse an environment that breaks one, naming the
rule, the setting (file:line) and where the rule is declared; a compliant spec passes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlstack.engine.project import Project
from mlstack.errors import SpecError

SPEC = """\
project: pol
environments:
  dev: {backend: toy}
  staging: {backend: toy, promote_from: dev, approvals: 1}
  prod:
    backend: toy
    promote_from: PROD_FROM
    approvals: PROD_APPROVALS
    policies:
      min_approvals: 1
      forbid_strategies: [all_at_once]
      require_gates: [error_rate]
      promote_from: staging
    deployment: {strategy: PROD_STRATEGY}
pipeline:
  stages:
    - {name: prep, run: echo prep}
model: {name: m}
deployment:
  endpoint: ep
  strategy: canary
  gates: GATES
"""


def write(tmp: Path, **subs: str) -> Path:
    text = SPEC
    defaults = {
        "PROD_FROM": "staging",
        "PROD_APPROVALS": "1",
        "PROD_STRATEGY": "canary",
        "GATES": '{error_rate: "< 1%"}',
    }
    for k, v in {**defaults, **subs}.items():
        text = text.replace(k, v)
    path = tmp / "mlstack.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path, env: str = "prod") -> list[str]:
    with pytest.raises(SpecError) as e:
        Project(str(path)).check_env(env)
    return [p.render() for p in e.value.problems]


def test_a_compliant_spec_passes_validate_and_plan(tmp_path: Path, toy_on_path) -> None:
    project = Project(str(write(tmp_path)))
    assert project.validate_all() == ["dev", "staging", "prod"]
    plan, _ = project.workspace("prod").plan()
    assert plan.environment == "prod"


def test_each_rule_is_named_with_the_offending_line(tmp_path: Path, toy_on_path) -> None:
    path = write(
        tmp_path,
        PROD_FROM="dev",
        PROD_APPROVALS="0",
        PROD_STRATEGY="all_at_once",
        GATES='{latency_p99: "< 1s"}',
    )
    got = problems(path)
    assert len(got) == 4
    by_rule = {p.split("policy ")[1].split(" ")[0]: p for p in got}
    assert by_rule["min_approvals"].startswith(f"{path}:8:")
    assert "rule declared at" in by_rule["min_approvals"] and ":10:" in by_rule["min_approvals"]
    assert by_rule["promote_from"].startswith(f"{path}:7:")
    assert (
        "may only receive versions promoted from 'staging', but promote_from is 'dev'"
        in (by_rule["promote_from"])
    )
    assert by_rule["forbid_strategies"].startswith(f"{path}:14:")
    assert "strategy 'all_at_once' is not allowed" in by_rule["forbid_strategies"]
    assert "the deployment has no error_rate gate" in by_rule["require_gates"]
    # the other environments carry no policy and stay valid
    Project(str(path)).check_env("dev")


def test_plan_fails_on_a_violation_too(tmp_path: Path, toy_on_path) -> None:
    path = write(tmp_path, PROD_STRATEGY="all_at_once")
    with pytest.raises(SpecError, match="policy forbid_strategies"):
        Project(str(path)).workspace("prod").plan()


def test_an_unknown_rule_is_a_spec_error(tmp_path: Path, toy_on_path) -> None:
    path = write(tmp_path)
    path.write_text(path.read_text().replace("min_approvals: 1", "min_approval: 1"))
    (msg,) = problems(path)
    assert "unknown key 'min_approval'; did you mean 'min_approvals'?" in msg
