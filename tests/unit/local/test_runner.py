"""The runner with real processes: function and command stages, cache, retries, timeouts."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlstack.engine.backend import Event
from mlstack.local.runner import Runner, read_logs
from mlstack.local.store import ArtifactStore

FNS = """
import json, os, time
from pathlib import Path

def start():
    return 1

def add_one(upstream):
    return sum(upstream.values()) + 1

def flaky(params):
    counter = Path(params["counter"])
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    if n < params["fail_times"]:
        raise RuntimeError(f"flaky failure number {n + 1}")
    return n + 1

def stamp(params, output):
    t0 = time.time()
    time.sleep(params["sleep"])
    Path(params["dir"], params["name"]).write_text(json.dumps([t0, time.time()]))
    (output / "done.txt").write_text("ok")

def sleepy(params, output):
    Path(params["pidfile"]).write_text(str(os.getpid()))
    (output / "partial.bin").write_bytes(b"half")
    time.sleep(params["sleep"])
    (output / "partial.bin").write_bytes(b"whole")

def write_same(params, output):
    (output / "same.txt").write_text(params["text"])

def find_same(ctx):
    return ctx.find("same.txt").read_text()

def wrong_setting(params):
    from mlstack_runtime.errors import StageConfigError
    raise StageConfigError("with.depth", f"must be positive, got {params['depth']}", hint="set 3")

def stops(params):
    from mlstack_runtime.errors import StageStopped
    raise StageStopped("the data failed 2 checks", ["column a: null", "column b: < 0"])

def with_ctx(ctx, inputs, metrics):
    metrics["score"] = 0.5
    return {"inputs": sorted(inputs), "find": str(ctx.find("done.txt"))}
"""


def fn(name: str, function: str, needs: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "function",
        "function": f"rfns:{function}",
        "needs": needs or [],
        "with": extra.pop("with_", {}),
        **extra,
    }


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "rfns.py").write_text(FNS)
    return tmp_path


def runner(root: Path, stages: list[dict[str, Any]], **kw: Any) -> Runner:
    kw.setdefault("backoff", 0.01)
    return Runner(root / ".mlstack", "dev", root, {"stages": stages}, **kw)


def test_chain_passes_values_and_second_run_is_cached(root: Path) -> None:
    events: list[Event] = []
    stages = [fn("a", "start"), fn("b", "add_one", ["a"]), fn("c", "add_one", ["b"])]
    out = runner(root, stages, emit=events.append).run()
    assert out.status == "succeeded"
    assert out.stages["c"].entry["value"] == 3
    assert [e.subject for e in events if e.kind == "stage.done"] == ["a", "b", "c"]
    again = runner(root, stages).run()
    assert {n: s.status for n, s in again.stages.items()} == {
        "a": "cached",
        "b": "cached",
        "c": "cached",
    }
    assert again.stages["c"].entry["output"] == out.stages["c"].entry["output"]
    # a new key for b reruns b and c, not a
    keys = {"a": "ka", "b": "kb2", "c": "kc2"}
    third = runner(root, stages).run(cache_keys={"a": "ka", "b": "kb", "c": "kc"})
    assert all(s.status == "ran" for s in third.stages.values())
    fourth = runner(root, stages).run(cache_keys=keys)
    assert [fourth.stages[n].status for n in "abc"] == ["cached", "ran", "ran"]


@pytest.mark.parametrize("parallelism", [1, 2])
def test_independent_stages_overlap_only_when_allowed(root: Path, parallelism: int) -> None:
    marks = root / "marks"
    marks.mkdir()
    stages = [
        fn(n, "stamp", with_={"sleep": 0.4, "dir": str(marks), "name": n})
        for n in ("left", "right")
    ]
    stages.append(fn("join", "with_ctx", ["left", "right"]))
    out = runner(root, stages, parallelism=parallelism).run()
    assert out.status == "succeeded"
    (a0, a1), (b0, b1) = (json.loads((marks / n).read_text()) for n in ("left", "right"))
    overlap = min(a1, b1) > max(a0, b0)
    assert overlap is (parallelism == 2)
    value = out.stages["join"].entry["value"]
    assert value["inputs"] == ["left", "right"] and value["find"].endswith("done.txt")
    assert out.stages["join"].entry["metrics"] == {"score": 0.5}


def test_stage_failing_twice_passes_with_two_retries(root: Path) -> None:
    events: list[Event] = []
    stage = fn("flaky", "flaky", retries=2, with_={"counter": str(root / "count"), "fail_times": 2})
    out = runner(root, [stage], emit=events.append).run()
    assert out.status == "succeeded"
    assert out.stages["flaky"].attempts == 3
    assert out.stages["flaky"].entry["value"] == 3
    assert [e.kind for e in events].count("stage.retry") == 2
    log = read_logs(root / ".mlstack", "dev", "flaky")
    assert "flaky failure number 1" in log and "flaky failure number 2" in log
    assert "attempt 3" in log


def test_stage_failing_more_than_its_retries_fails_and_skips_the_rest(root: Path) -> None:
    stages = [
        fn("flaky", "flaky", retries=1, with_={"counter": str(root / "count"), "fail_times": 5}),
        fn("after", "add_one", ["flaky"]),
    ]
    out = runner(root, stages).run()
    assert out.status == "failed"
    assert out.stages["flaky"].status == "failed" and out.stages["flaky"].attempts == 2
    assert "flaky failure number 2" in out.stages["flaky"].error["message"]
    assert out.stages["after"].status == "skipped"
    store = ArtifactStore(root / ".mlstack")
    assert list(store.tmp.iterdir()) == []  # failed attempts leave no staging behind


def test_timeout_kills_the_stage_and_reports_it(root: Path) -> None:
    pidfile = root / "pid"
    stage = fn("slow", "sleepy", timeout=0.5, with_={"pidfile": str(pidfile), "sleep": 60})
    t = time.monotonic()
    out = runner(root, [stage]).run()
    assert time.monotonic() - t < 30
    st = out.stages["slow"]
    assert out.status == "failed" and st.status == "failed"
    assert "timed out after 0.5s" in st.error["message"]
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    store = ArtifactStore(root / ".mlstack")
    assert list(store.objects.iterdir()) == [] and list(store.cache.iterdir()) == []


def test_cancel_stops_running_stages(root: Path) -> None:
    pidfile = root / "pid"
    cancel = threading.Event()
    stages = [
        fn("slow", "sleepy", with_={"pidfile": str(pidfile), "sleep": 60}),
        fn("after", "add_one", ["slow"]),
    ]

    def trip() -> None:
        deadline = time.monotonic() + 20
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        cancel.set()

    threading.Thread(target=trip, daemon=True).start()
    out = runner(root, stages, cancelled=cancel.is_set).run()
    assert out.status == "cancelled"
    assert out.stages["slow"].status == "cancelled"
    assert out.stages["after"].status == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)


def test_command_stage_gets_paths_params_and_env(root: Path) -> None:
    cmd = (
        'printf "%s|%s|%s" "$MLSTACK_STAGE" "$MLSTACK_PARAM_DEPTH" "$GREETING" '
        '> "$MLSTACK_OUTPUT/out.txt" && cat "$MLSTACK_INPUT_FIRST/return.json" '
        '>> "$MLSTACK_OUTPUT/out.txt" && echo \'{"lines": 2}\' > "$MLSTACK_METRICS_FILE"'
    )
    stages = [
        fn("first", "start"),
        {
            "name": "shell",
            "kind": "command",
            "run": cmd,
            "needs": ["first"],
            "with": {"depth": 8},
            "env": {"GREETING": "hi"},
        },
    ]
    out = runner(root, stages).run()
    assert out.status == "succeeded", out.first_failure()
    store = ArtifactStore(root / ".mlstack")
    text = (store.object_path(out.stages["shell"].entry["output"]) / "out.txt").read_text()
    assert text == "shell|8|hi1"
    assert out.stages["shell"].entry["metrics"] == {"lines": 2}


def test_failing_command_is_reported_with_its_status(root: Path) -> None:
    stages = [
        {
            "name": "bad",
            "kind": "command",
            "run": "echo oops >&2; exit 4",
            "needs": [],
            "retries": 1,
        }
    ]
    out = runner(root, stages).run()
    assert out.status == "failed"
    bad = out.stages["bad"]
    assert "status 4" in bad.error["message"]
    # a failing command is the user's, said as an error of ours: retried, but no traceback
    assert bad.attempts == 2
    assert bad.error["type"] == "BackendError" and "traceback" not in bad.error
    log = read_logs(root / ".mlstack", "dev", "bad")
    assert "oops" in log and "Traceback" not in log
    assert "error: command exited with status 4" in log


def test_find_looks_upstream_in_the_order_every_platform_uses(root: Path) -> None:
    # a diamond whose arms both write same.txt: `join` finds the arm it lists first under
    # `needs` (mlstack_runtime.job.ancestors), as a SageMaker, Vertex or Azure ML job does
    stages = [
        fn("base", "write_same", with_={"text": "base"}),
        fn("left", "write_same", ["base"], with_={"text": "left"}),
        fn("right", "write_same", ["base"], with_={"text": "right"}),
        fn("join", "find_same", ["left", "right"]),
        fn("join_flipped", "find_same", ["right", "left"]),
    ]
    out = runner(root, stages).run()
    assert out.status == "succeeded", out.first_failure()
    assert out.stages["join"].entry["value"] == "left"
    assert out.stages["join_flipped"].entry["value"] == "right"


def test_function_stage_raising_the_runtimes_errors_is_not_retried(root: Path) -> None:
    events: list[Event] = []
    stages = [
        fn("config", "wrong_setting", retries=2, with_={"depth": -1}),
        fn("stopped", "stops", retries=2),
    ]
    out = runner(root, stages, emit=events.append).run()
    assert out.status == "failed"
    assert [e.kind for e in events].count("stage.retry") == 0
    config, stopped = out.stages["config"], out.stages["stopped"]
    assert config.attempts == 1 and config.error["config"] and not config.error["stopped"]
    assert config.error["setting"] == "with.depth"
    assert config.error["message"] == "with.depth: must be positive, got -1"
    assert config.error["problems"][0]["hint"] == "set 3"
    assert stopped.attempts == 1 and stopped.error["stopped"] and not stopped.error["config"]
    assert [p["message"] for p in stopped.error["problems"]] == [
        "the data failed 2 checks",
        "column a: null",
        "column b: < 0",
    ]
    for name in ("config", "stopped"):
        assert "traceback" not in out.stages[name].error
        assert "Traceback" not in read_logs(root / ".mlstack", "dev", name)


def test_unset_secret_fails_the_stage_at_once_as_a_wrong_setting(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLSTACK_TEST_UNSET_SECRET", raising=False)
    stage = {
        "name": "shell",
        "kind": "command",
        "run": "echo should-not-run",
        "needs": [],
        "retries": 3,
        "env": {"TOKEN": "${secret:MLSTACK_TEST_UNSET_SECRET}"},
    }
    events: list[Event] = []
    out = runner(root, [stage], emit=events.append).run()
    st = out.stages["shell"]
    assert out.status == "failed" and st.status == "failed"
    # the same environment fails the same way every time: no retry, no backoff
    assert st.attempts == 1 and [e.kind for e in events].count("stage.retry") == 0
    assert st.error["config"] and st.error["setting"] == "env.TOKEN"
    assert st.error["message"] == "env.TOKEN: secret 'MLSTACK_TEST_UNSET_SECRET' is not set"
    assert "export MLSTACK_TEST_UNSET_SECRET=" in st.error["problems"][0]["hint"]
    log = read_logs(root / ".mlstack", "dev", "shell")
    assert "Traceback" not in log and "should-not-run" not in log


def test_read_logs_of_all_stages_and_unknown_stage(root: Path) -> None:
    from mlstack.errors import BackendError

    with pytest.raises(BackendError, match="no pipeline run"):
        read_logs(root / ".mlstack", "dev")
    runner(root, [fn("a", "start"), fn("b", "add_one", ["a"])]).run()
    text = read_logs(root / ".mlstack", "dev")
    assert text.index("==> a <==") < text.index("==> b <==")
    with pytest.raises(BackendError, match="did you mean 'b'") as e:
        read_logs(root / ".mlstack", "dev", "bb")
    assert "a, b" in e.value.render()
