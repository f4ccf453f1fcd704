"""A hostile corpus for the spec loader: what an attacker or a careless generator could feed
`mlstack validate`, including resource-exhaustion inputs.

Each case writes its input under a folder and says what `validate` must answer: an error whose
text holds a substring (and, for line-bearing cases, ``file:line``), or "valid". Bounds (CPU
seconds, peak RSS) are asserted by ``test_hostile_specs.py`` for every case alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HEAD = "project: p\n"
CSV = "x,y,label\n1,2,0\n3,4,1\n"


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Path], str]  # writes the input, returns the path to validate
    expect: str  # substring of the output
    valid: bool = False
    line: int | None = None  # the error's line, when it has one


def _text(body: str, extra: dict[str, str] | None = None) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        for rel, content in (extra or {}).items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_text(content)
        (d / "mlstack.yaml").write_text(body)
        return str(d / "mlstack.yaml")

    return make


def _bytes(data: bytes) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        (d / "mlstack.yaml").write_bytes(data)
        return str(d / "mlstack.yaml")

    return make


def _stages(n: int, fmt: Callable[[int], str]) -> str:
    return HEAD + "pipeline:\n  stages:\n" + "".join(fmt(i) for i in range(n))


def _alias_bomb(width: int, levels: int, kind: str = "list") -> str:
    lines = [HEAD.rstrip(), "vars:"]
    prev = None
    for lvl in range(levels):
        if prev is None:
            items = ", ".join(['"lol"'] * width)
        else:
            items = ", ".join([f"*{prev}"] * width)
        name = f"l{lvl}"
        if kind == "list":
            lines.append(f"  {name}: &{name} [{items}]")
        else:
            pairs = ", ".join(f"k{i}: {v}" for i, v in enumerate(items.split(", ")))
            lines.append(f"  {name}: &{name} {{{pairs}}}")
        prev = name
    return "\n".join(lines) + "\n"


def _fifo(d: Path) -> str:
    os.mkfifo(d / "mlstack.yaml")
    return str(d / "mlstack.yaml")


def _symlink_loop(d: Path) -> str:
    os.symlink(d / "b.yaml", d / "a.yaml")
    os.symlink(d / "a.yaml", d / "b.yaml")
    return str(d / "a.yaml")


def _data_link_loop(d: Path) -> str:
    os.symlink(d / "l2.csv", d / "l1.csv")
    os.symlink(d / "l1.csv", d / "l2.csv")
    body = HEAD + "data: {source: l1.csv, target: label}\n"
    body += "pipeline:\n  stages:\n    - {name: ingest, uses: builtin/ingest}\n"
    (d / "mlstack.yaml").write_text(body)
    return str(d / "mlstack.yaml")


def _folder(d: Path) -> str:
    (d / "spec.yaml").mkdir()
    return str(d / "spec.yaml")


def _missing(d: Path) -> str:
    return str(d / "nope.yaml")


def _device(dev: str) -> Callable[[Path], str]:
    return lambda d: dev


TRAIN = (
    "    - {name: ingest, uses: builtin/ingest}\n"
    "    - {name: split, uses: builtin/split, needs: [ingest]}\n"
    "    - name: train\n      uses: builtin/train\n      needs: [split]\n"
    "      with: {estimator: sklearn.ensemble.RandomForestClassifier}\n"
)
DATA = "data: {source: d.csv, target: label}\n"


def _ml(stages: str, data: str = DATA, deploy: str = "") -> Callable[[Path], str]:
    return _text(HEAD + data + "pipeline:\n  stages:\n" + stages + deploy, {"d.csv": CSV})


def _ab(weights: str) -> Callable[[Path], str]:
    return _text(
        HEAD + f"deployment:\n  endpoint: e\n  strategy: ab\n  ab: {{weights: {weights}}}\n"
    )


CASES: list[Case] = [
    # --- resource exhaustion ------------------------------------------------------------------
    Case("alias_bomb_lists", _text(_alias_bomb(9, 9)), "aliases", line=7),
    Case("alias_bomb_maps", _text(_alias_bomb(9, 9, "map")), "aliases", line=7),
    Case("alias_bomb_wide", _text(_alias_bomb(200, 4)), "aliases", line=4),
    Case(
        "alias_bomb_in_stage_env",
        _text(
            HEAD
            + "vars:\n  a: &a {"
            + ", ".join(f"k{i}: v" for i in range(2000))
            + "}\npipeline:\n  stages:\n"
            + "".join(f"    - {{name: s{i}, run: x, with: *a}}\n" for i in range(50))
        ),
        "aliases",
    ),
    Case("alias_undefined", _text(HEAD + "vars: {a: *nope}\n"), "refers to no anchor", line=2),
    Case("alias_self_reference", _text(HEAD + "vars: &a {a: *a}\n"), "refers to no anchor", line=2),
    Case(
        "alias_as_key", _text(HEAD + "vars:\n  x: &k y\n  *k : 1\n"), "keys must be plain", line=4
    ),
    Case(
        "deep_flow_lists",
        _text(HEAD + "vars: {a: " + "[" * 50_000 + "]" * 50_000 + "}\n"),
        "nesting depth",
        line=2,
    ),
    Case(
        "deep_flow_maps",
        _text(HEAD + "vars: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"),
        "nested more than",
        line=2,
    ),
    Case(
        "deep_block_maps",
        _text(HEAD + "vars:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(100)) + "\n"),
        "nested more than",
    ),
    Case("huge_int_5000_digits", _text(HEAD + "vars: {x: " + "9" * 5000 + "}\n"), "digits", line=2),
    Case(
        "huge_int_in_retries",
        _text(_stages(1, lambda i: "    - {name: a, run: x, retries: " + "1" * 300 + "}\n")),
        "digits",
        line=4,
    ),
    Case("huge_negative_int", _text(HEAD + "vars: {x: -" + "7" * 4400 + "}\n"), "digits", line=2),
    Case("huge_hex_int", _text(HEAD + "vars: {x: 0x" + "f" * 5000 + "}\n"), "digits", line=2),
    Case(
        "huge_float_exponent",
        _text(_stages(1, lambda i: "    - {name: a, run: x, resources: {cpu: 1e99999}}\n")),
        "finite",
        line=4,
    ),
    Case(
        "long_float_digits",
        _text(HEAD + "vars: {x: 0." + "1" * 60_000 + "}\n"),
        "valid: project",
        valid=True,
    ),
    Case(
        "long_scalar_1mb",
        _text(HEAD + "vars: {x: " + "a" * 1_000_000 + "}\n"),
        "characters",
        line=2,
    ),
    Case("long_key", _text(HEAD + "vars: {" + "k" * 5000 + ": 1}\n"), "key longer", line=2),
    Case(
        "many_keys_valid",
        _text(HEAD + "vars:\n" + "".join(f"  k{i}: {i}\n" for i in range(100_000))),
        "valid: project",
        valid=True,
    ),
    Case(
        "too_many_values",
        _text(HEAD + "vars: {x: [" + ",".join(["0"] * 700_000) + "]}\n"),
        "more than 400,000 values",
        line=2,
    ),
    Case(
        "file_over_2mib", _text("# " + "x" * 3_000_000 + "\n" + HEAD), "mlstack reads project files"
    ),
    Case(
        "interpolation_bomb",
        _text(
            HEAD
            + "vars:\n  a: "
            + "x" * 60_000
            + '\n  b: "'
            + "${var.a}" * 5000
            + '"\npipeline:\n  stages:\n'
            '    - {name: s, run: "${var.b}${var.b}"}\n'
            + '    - {name: t, run: "'
            + "${var.a}" * 8000
            + '"}\n'
        ),
        "once its references are filled in",
    ),
    Case(
        "many_environments",
        _text(HEAD + "environments:\n" + "".join(f"  e{i}: {{}}\n" for i in range(20_000))),
        "at most 100",
        line=2,
    ),
    Case(
        "stages_50k_one_bad_need",
        _text(
            _stages(
                50_000,
                lambda i: f"  - {{name: s{i},run: x" + (f",needs: [s{i - 1}]" if i else "") + "}\n",
            ).replace("needs: [s49998]", "needs: [s4999x]")
        ),
        "needs 's4999x', which is not a stage",
        line=50_003,
    ),
    Case(
        "stages_5k_all_bad",
        _text(_stages(5000, lambda i: f"  - {{name: s{i},run: x,needs: [n{i}]}}\n")),
        "more problems like these",
    ),
    Case(
        "cycle_10k",
        _text(
            _stages(10_000, lambda i: f"  - {{name: s{i},run: x,needs: [s{(i + 1) % 10_000}]}}\n")
        ),
        "more) -> s0",
    ),
    Case(
        "needs_100k_names",
        _text(
            _stages(
                1, lambda i: "  - {name: a, run: x, needs: [" + ",".join(["zz"] * 100_000) + "]}\n"
            )
        ),
        "more problems like these",
    ),
    Case(
        "stage_name_10k",
        _text(_stages(1, lambda i: "  - {name: " + "a" * 10_000 + ", run: x}\n")),
        "not a valid name",
        line=4,
    ),
    Case(
        "cron_10k_fields",
        _text(HEAD + 'monitoring: {schedule: "' + "* " * 10_000 + '"}\n'),
        "not a cron expression",
        line=2,
    ),
    Case(
        "one_line_1_9mb",
        _text(HEAD + "vars: {" + ", ".join(f"k{i}: {i}" for i in range(120_000)) + "}\n"),
        "valid: project",
        valid=True,
    ),
    # --- not a file ---------------------------------------------------------------------------
    Case("dev_zero", _device("/dev/zero"), "is a device, not a regular file"),
    Case("dev_null", _device("/dev/null"), "is a device, not a regular file"),
    Case("dev_urandom", _device("/dev/urandom"), "is a device, not a regular file"),
    Case("fifo", _fifo, "FIFO"),
    Case("folder", _folder, "is a folder"),
    Case("symlink_loop_spec", _symlink_loop, "cannot read"),
    Case("missing_file", _missing, "not found"),
    # --- not YAML, or YAML we refuse ----------------------------------------------------------
    Case("random_binary", _bytes(bytes(range(256)) * 64), "not UTF-8"),
    Case("utf16_bom", _bytes("project: p\n".encode("utf-16")), "not UTF-8"),
    Case("nul_in_middle", _bytes(b"project: p\nvars: {a: \x00}\n"), "NUL bytes", line=2),
    Case("two_documents", _text(HEAD + "---\nproject: q\n"), "more than one YAML document", line=2),
    Case(
        "python_tag",
        _text(HEAD + 'vars: {x: !!python/object/apply:os.system ["echo hi"]}\n'),
        "unsupported YAML tag",
        line=2,
    ),
    Case(
        "python_name_tag",
        _text(HEAD + "vars: {x: !!python/name:os.system ''}\n"),
        "unsupported YAML tag",
        line=2,
    ),
    Case("custom_tag", _text(HEAD + "vars: {x: !foo bar}\n"), "unsupported YAML tag", line=2),
    Case(
        "binary_tag", _text(HEAD + "vars: {x: !!binary aGVsbG8=}\n"), "valid: project", valid=True
    ),
    Case("merge_key", _text(HEAD + "vars:\n  a: &a {x: 1}\n  b: {<<: *a}\n"), "merge keys", line=4),
    Case("duplicate_key", _text(HEAD + "project: q\n"), "duplicate key", line=2),
    Case("tab_indent", _text(HEAD + "vars:\n\tx: 1\n"), "tab", line=3),
    Case("unclosed_quote", _text(HEAD + 'vars: {x: "abc}\n'), "invalid YAML"),
    Case("top_level_list", _text("- project: p\n"), "must be a mapping", line=1),
    Case("top_level_scalar", _text("hello\n"), "must be a mapping", line=1),
    Case("only_separator", _text("---\n"), "must be a mapping"),
    Case("empty_file", _text(""), "is empty"),
    Case("bidi_in_name", _text('project: "p\u202ex"\n'), "not a valid name", line=1),
    Case("control_chars", _bytes(b"project: p\x07\n"), "invalid YAML"),
    # --- what fails later, said now -----------------------------------------------------------
    Case(
        "data_source_parent_escape",
        _ml(TRAIN, "data: {source: ../../../etc/passwd, target: label}\n"),
        "outside the project folder",
        line=2,
    ),
    Case(
        "data_source_absolute",
        _ml(TRAIN, "data: {source: /etc/passwd, target: label}\n"),
        "outside the project folder",
        line=2,
    ),
    Case("data_source_symlink_loop", _data_link_loop, "symlink loop", line=2),
    Case(
        "data_source_missing",
        _ml(TRAIN, "data: {source: nope.csv, target: label}\n"),
        "data file 'nope.csv' not found",
        line=2,
    ),
    Case(
        "data_glob_matches_nothing",
        _ml(TRAIN, 'data: {source: "parts/*.csv", target: label}\n'),
        "matches no file",
        line=2,
    ),
    Case(
        "target_typo",
        _ml(TRAIN, "data: {source: d.csv, target: lable}\n"),
        "column 'lable' is not in the data; did you mean 'label'?",
        line=2,
    ),
    Case(
        "split_by_typo",
        _ml(
            TRAIN, "data: {source: d.csv, target: label, split: {strategy: stratified, by: lab}}\n"
        ),
        "column 'lab' is not in the data",
        line=2,
    ),
    Case(
        "feature_column_typo",
        _ml(
            "    - {name: ingest, uses: builtin/ingest}\n"
            "    - {name: f, uses: builtin/features, needs: [ingest], "
            "with: {numeric: [x, yy]}}\n"
        ),
        "column 'yy' is not in the data; did you mean 'y'?",
        line=6,
    ),
    Case(
        "run_script_missing",
        _text(_stages(1, lambda i: "    - {name: a, run: python steps/go.py --fast}\n")),
        "script 'steps/go.py' not found",
        line=4,
    ),
    Case(
        "function_module_missing",
        _text(_stages(1, lambda i: "    - {name: a, function: mysteps.report:make}\n")),
        "module 'mysteps.report' not found",
        line=4,
    ),
    Case(
        "gate_metric_unknown",
        _ml(
            TRAIN + "    - {name: ev, uses: builtin/evaluate, needs: [train], "
            "gates: [roc_acu >= 0.9]}\n"
        ),
        "does not measure 'roc_acu'; did you mean 'roc_auc'?",
        line=11,
    ),
    Case(
        "gate_metric_wrong_task",
        _ml(
            TRAIN + "    - {name: ev, uses: builtin/evaluate, needs: [train], gates: [rmse < 1]}\n"
        ),
        "does not measure 'rmse'",
        line=11,
    ),
    Case(
        "tune_without_space",
        _ml(
            TRAIN.replace("needs: [split]", "needs: [tune]")
            + "    - {name: tune, uses: builtin/tune, needs: [split]}\n"
        ),
        "has no search space",
    ),
    Case(
        "tune_after_train",
        _ml(
            TRAIN + "    - {name: tune, uses: builtin/tune, needs: [train], "
            "with: {space: {max_depth: [2, 8]}}}\n"
        ),
        "runs after 'train'",
    ),
    Case("ab_weight_nan", _ab("{champion: .nan, challenger: 50}"), "finite number", line=5),
    Case("ab_weight_inf", _ab("{champion: .inf, challenger: 50}"), "finite number", line=5),
    Case(
        "ab_weight_negative",
        _ab("{champion: -10, challenger: 50}"),
        "must give traffic",
        line=5,
    ),
    Case(
        "ab_weight_unknown_arm",
        _ab("{champion: 50, challengr: 50}"),
        "not challengr",
        line=5,
    ),
    Case("ab_weights_all_zero", _ab("{champion: 0, challenger: 0}"), "must give traffic", line=5),
    Case(
        "canary_step_nan",
        _text(HEAD + "deployment: {endpoint: e, strategy: canary, canary: {steps: [.nan, 100]}}\n"),
        "finite",
        line=2,
    ),
    Case(
        "env_var_unset",
        _text(HEAD + 'vars: {x: "${env:MLSTACK_HOSTILE_SURELY_UNSET}"}\n'),
        "is not set",
        line=2,
    ),
]
