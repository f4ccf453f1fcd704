"""Loading: positions, interpolation, per-environment deep merge, semantics, cycles."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mlstack.errors import SpecError
from mlstack.manifest.dag import CycleError, downstream, find_cycle, toposort
from mlstack.manifest.load import deep_merge, load, resolve
from mlstack.manifest.source import parse

SPEC = """\
project: demo
vars:
  depth: 6
  region: eu-west-1
environments:
  dev:
    backend: local
  prod:
    backend: local
    promote_from: dev
    approvals: 1
    bake_time: 1h
    port: 9000
    deployment:
      strategy: canary
      canary: {interval: 30s}
      resources: {replicas: 3}
    pipeline:
      parallelism: 8
pipeline:
  stages:
    - name: prep
      run: echo ${var.region} ${env:MLSTACK_TEST_USER}
    - name: fit
      run: python fit.py
      needs: [prep]
      with:
        depth: ${var.depth}
        label: depth-${var.depth}
      env: {TOKEN: "${secret:API_TOKEN}"}
model:
  name: m
deployment:
  endpoint: ep
  strategy: all_at_once
  canary: {steps: [10, 50], interval: 5m}
  gates: {error_rate: "< 1%"}
"""


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "mlstack.yaml"
    p.write_text(textwrap.dedent(text))
    return str(p)


def problems(tmp_path: Path, text: str, **kw: object) -> str:
    with pytest.raises(SpecError) as e:
        load(write(tmp_path, text), **kw)  # type: ignore[arg-type]
    return e.value.render()


def test_positions_map_paths_to_lines() -> None:
    src = parse(SPEC, "f.yaml")
    assert src.locate(("project",)) == src.locate(("project",))
    assert (
        src.locate(("pipeline", "stages", 1, "needs")).line,
        src.locate(("pipeline", "stages", 1, "needs")).column,
    ) == (26, 7)
    assert src.locate(("pipeline", "stages", 1, "needs", 0)).line == 26
    assert src.locate(("environments", "prod", "deployment", "strategy")).line == 15
    # an unknown path falls back to its closest known parent
    assert src.locate(("pipeline", "stages", 1, "nope", 3)).line == 24
    assert src.locate(("nothing",)).line == 1
    assert str(src.locate(("model", "name"))) == "f.yaml:32:3"


def test_interpolation_keeps_types_and_leaves_secrets(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, SPEC), environ={"MLSTACK_TEST_USER": "ada"})
    prep, fit = loaded.project.pipeline.stages
    assert prep.run == "echo eu-west-1 ada"
    assert fit.with_ == {"depth": 6, "label": "depth-6"}  # whole-value var keeps its int type
    assert fit.env == {"TOKEN": "${secret:API_TOKEN}"}  # resolved only at the moment of use


def test_cli_vars_override_file_vars(tmp_path: Path) -> None:
    loaded = load(
        write(tmp_path, SPEC), {"region": "us-east-1"}, environ={"MLSTACK_TEST_USER": "x"}
    )
    assert loaded.project.pipeline.stages[0].run == "echo us-east-1 x"


def test_undefined_var_and_unset_env_are_both_reported(tmp_path: Path) -> None:
    text = problems(tmp_path, SPEC.replace("${var.region}", "${var.regon}"), environ={})
    assert "mlstack.yaml:23:7: unknown variable 'regon'; did you mean 'region'?" in text
    assert "environment variable MLSTACK_TEST_USER is not set" in text


def test_environment_overrides_deep_merge(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, SPEC), environ={"MLSTACK_TEST_USER": "x"})
    dev = resolve(loaded, "dev")
    prod = resolve(loaded, "prod")
    assert dev.deployment is not None and prod.deployment is not None
    assert dev.deployment.strategy == "all_at_once"
    assert prod.deployment.strategy == "canary"
    # nested mapping merged key by key: interval overridden, steps kept from the base
    assert prod.deployment.canary.interval == 30.0
    assert prod.deployment.canary.steps == [10.0, 50.0, 100.0]
    assert dev.deployment.canary.interval == 300.0
    assert prod.deployment.resources.replicas == 3 and dev.deployment.resources.replicas == 1
    assert prod.deployment.gates == {"error_rate": "< 1%"}
    assert prod.pipeline.parallelism == 8 and [s.name for s in prod.pipeline.stages] == [
        "prep",
        "fit",
    ]
    assert prod.settings == {"port": 9000} and dev.settings == {}
    assert (prod.promote_from, prod.approvals, prod.bake_time) == ("dev", 1, 3600.0)


def test_deep_merge_replaces_lists_and_scalars() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert deep_merge(base, {"a": None}) == {"a": None, "d": 1}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # inputs untouched


def test_override_error_points_into_the_environment(tmp_path: Path) -> None:
    loaded = load(
        write(tmp_path, SPEC.replace("replicas: 3", "replicas: 0")),
        environ={"MLSTACK_TEST_USER": "x"},
    )
    resolve(loaded, "dev")  # the base is fine
    with pytest.raises(SpecError) as e:
        resolve(loaded, "prod")
    assert "deployment.resources.replicas" in e.value.render()
    assert "mlstack.yaml:17:19:" in e.value.render()


def test_unknown_environment_suggests(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, SPEC), environ={"MLSTACK_TEST_USER": "x"})
    with pytest.raises(SpecError, match="no environment 'prd'.*did you mean 'prod'"):
        resolve(loaded, "prd")


def test_every_problem_is_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        """\
        project: demo
        pipeline:
          stages:
            - name: a
              run: echo a
              retries: 99
            - name: b
              uses: builtin/trian
            - name: c
              run: echo c
              timeot: 1m
        monitoring: {schedule: weekly}
        """,
    )
    lines = [ln for ln in text.splitlines() if not ln.startswith("    hint")]
    assert len(lines) == 4
    assert [int(ln.split(":")[1]) for ln in lines] == sorted(int(ln.split(":")[1]) for ln in lines)


def test_cycle_is_named_in_order() -> None:
    with pytest.raises(CycleError) as e:
        toposort({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})
    cyc = e.value.cycle
    assert cyc[0] == cyc[-1] and set(cyc) == {"a", "b", "c"} and len(cyc) == 4
    assert "dependency cycle: " in str(e.value)
    # each node in the cycle needs the next one
    deps = {"a": ["c"], "b": ["a"], "c": ["b"]}
    assert all(cyc[i + 1] in deps[cyc[i]] for i in range(3))


def test_cycle_behind_an_acyclic_prefix() -> None:
    deps = {"root": [], "x": ["root", "z"], "y": ["x"], "z": ["y"], "leaf": ["x"]}
    with pytest.raises(CycleError) as e:
        toposort(deps)
    assert set(e.value.cycle) == {"x", "y", "z"}
    assert find_cycle({"p": ["p"]}) == ["p", "p"]


def test_toposort_keeps_file_order_among_independent_nodes() -> None:
    assert toposort({"c": [], "a": [], "b": ["c"], "d": ["a", "b"]}) == ["c", "a", "b", "d"]
    assert downstream({"a": [], "b": ["a"], "c": ["b"], "d": []}, ["b"]) == {"b", "c"}


def test_toposort_is_linear_on_a_long_chain() -> None:
    n = 20_000  # a recursive or quadratic walk would blow the stack or take minutes
    deps = {f"s{i}": ([f"s{i - 1}"] if i else []) for i in range(n)}
    assert toposort(deps)[-1] == f"s{n - 1}"
    deps["s0"] = [f"s{n - 1}"]
    with pytest.raises(CycleError) as e:
        toposort(deps)
    assert len(e.value.cycle) == n + 1


def test_cycle_in_a_file_names_it(tmp_path: Path) -> None:
    text = problems(
        tmp_path,
        """\
        project: demo
        pipeline:
          stages:
            - {name: a, run: x, needs: [b]}
            - {name: b, run: x, needs: [a]}
        """,
    )
    assert "the stages form a cycle: a -> b -> a" in text


def test_secret_refs_are_never_resolved_by_the_loader(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, SPEC), environ={"MLSTACK_TEST_USER": "x", "API_TOKEN": "hunter2"})
    assert "hunter2" not in repr(loaded.raw)


def test_quickstart_example_loads_in_every_environment() -> None:
    root = Path(__file__).resolve().parents[3] / "examples" / "quickstart" / "mlstack.yaml"
    loaded = load(str(root))
    assert [s.name for s in loaded.project.pipeline.stages][:2] == ["ingest", "validate"]
    staging = resolve(loaded, "staging")
    assert staging.deployment is not None and staging.deployment.strategy == "canary"
    assert staging.promote_from == "dev" and staging.promotion_gates == ["roc_auc >= 0.9"]


def test_json_schema_names_the_sections() -> None:
    from mlstack.manifest.models import Project

    schema = Project.model_json_schema(by_alias=True)
    assert {"project", "environments", "pipeline", "deployment"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
