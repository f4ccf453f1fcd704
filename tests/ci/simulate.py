"""Run a CI workflow file's jobs on this machine, in order, the way the CI system would.

Each job gets a fresh checkout (a copy of the project folder), its `run:`/`script:` steps run
with bash -e and the CI system's environment variables, and the steps that only set the runner
up are skipped by name, so a workflow that grows a step this file does not know fails the test.
The mlstack commands the steps run are this checkout's (`.venv/bin` first on PATH); building
the package from a release is what tests/packaging covers.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SETUP_ACTIONS = ("actions/setup-python", "aws-actions/configure-aws-credentials")
SETUP_STEPS = ("install mlstack",)


@dataclass
class JobResult:
    name: str
    ok: bool
    steps: list[tuple[str, int]] = field(default_factory=list)  # (step name, exit code)
    summary: str = ""
    output: str = ""
    workdir: Path | None = None

    def step(self, name: str) -> int:
        return dict(self.steps)[name]


class Runner:
    """What both CI systems share: checkouts, PATH with the fake CLIs, bash steps."""

    def __init__(self, project: Path, tmp: Path, base_env: dict[str, str]) -> None:
        self.project = project
        self.tmp = tmp
        self.base_env = base_env
        self.bin = tmp / "bin"
        self.bin.mkdir(exist_ok=True)
        self.state = tmp / "ci-state"  # what the fake CLIs remember between jobs
        self.state.mkdir(exist_ok=True)
        self.artifacts: dict[str, Path] = {}
        self._n = 0

    def fake(self, command: str, script: str) -> None:
        """Put ``command`` on the steps' PATH, answered by the stand-in ``script``."""
        exe = self.bin / command
        exe.write_text(f'#!/bin/sh\nexec {sys.executable} {HERE / script} "$@"\n')
        exe.chmod(0o755)

    def checkout(self, job: str) -> Path:
        self._n += 1
        dst = self.tmp / f"job{self._n}-{job}"
        shutil.copytree(self.project, dst, ignore=shutil.ignore_patterns(".mlstack"))
        return dst

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        venv_bin = Path(sys.executable).parent
        env = dict(self.base_env)
        env["PATH"] = os.pathsep.join([str(self.bin), str(venv_bin), env.get("PATH", "")])
        env["FAKE_GH_DIR"] = str(self.state)
        env.update(extra)
        return env

    def bash(self, script: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
        r = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
        )
        return r.returncode, r.stdout + r.stderr


# --- GitHub Actions ---------------------------------------------------------------------------


class GitHub(Runner):
    def __init__(self, workflow: Path, project: Path, tmp: Path, base_env: dict[str, str]):
        super().__init__(project, tmp, base_env)
        self.wf = yaml.safe_load(workflow.read_text())
        self.fake("gh", "fake_gh.py")
        self.vars = {
            "MLSTACK_REPOSITORY": "example/mlstack",
            "MLSTACK_REF": "main",
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/ci",
            "AWS_REGION": "us-east-1",
        }

    def jobs_for(self, event: str) -> list[str]:
        """The jobs an event runs, in dependency order (a job whose needs were skipped is too)."""
        ran: list[str] = []
        for name, job in self.wf["jobs"].items():
            cond = job.get("if")
            if cond is not None:
                m = re.fullmatch(r"github\.event_name == '(\w+)'", cond.strip())
                assert m, f"job {name}: the test cannot evaluate if: {cond}"
                if m.group(1) != event:
                    continue
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if all(n in ran for n in needs):
                ran.append(name)
        return ran

    def run_event(self, event: str, context: dict[str, str]) -> list[JobResult]:
        results = []
        for name in self.jobs_for(event):
            res = self.run_job(name, event, context)
            results.append(res)
            if not res.ok:
                break
        return results

    def run_job(self, name: str, event: str, context: dict[str, str]) -> JobResult:
        job = self.wf["jobs"][name]
        res = JobResult(name, ok=True)
        summary = self.tmp / f"summary-{name}-{self._n}.md"
        summary.write_text("")
        outputs: dict[str, dict[str, str]] = {}
        workdir: Path | None = None
        base = {
            **{k: str(v) for k, v in (self.wf.get("env") or {}).items()},
            "GITHUB_EVENT_NAME": event,
            "GITHUB_STEP_SUMMARY": str(summary),
            "GITHUB_REPOSITORY": "example/project",
            "GITHUB_SHA": context["sha"],
            "GITHUB_RUN_ID": context["run_id"],
            "CI": "true",
        }
        for i, step in enumerate(job["steps"]):
            label = step.get("name") or step.get("uses") or f"step {i}"
            expr = {
                **context,
                **{f"steps.{s}.outputs.{k}": v for s, o in outputs.items() for k, v in o.items()},
            }
            uses = step.get("uses", "")
            with_ = {k: self.expand(str(v), expr) for k, v in (step.get("with") or {}).items()}
            if uses.startswith("actions/checkout"):
                if "repository" not in with_:
                    workdir = self.checkout(name)
                continue  # the mlstack source: this test runs the checkout's own mlstack
            if uses.startswith(SETUP_ACTIONS) or label in SETUP_STEPS:
                continue
            assert workdir is not None, f"{name}: a step before actions/checkout"
            if uses.startswith("actions/upload-artifact"):
                src = workdir / with_["path"]
                self.artifacts[with_["name"]] = self.tmp / f"artifact-{with_['name']}"
                shutil.rmtree(self.artifacts[with_["name"]], ignore_errors=True)
                shutil.copytree(src, self.artifacts[with_["name"]])
                continue
            if uses.startswith("actions/download-artifact"):
                assert with_.get("run-id") == context.get("reviewed_run_id"), with_
                shutil.copytree(
                    self.artifacts[with_["name"]], workdir / with_["path"], dirs_exist_ok=True
                )
                continue
            assert "run" in step, f"{name}: the test does not know step {label!r} ({uses})"
            assert "${{" not in step["run"], f"{label}: expressions belong in env:, not run:"
            out_file = self.tmp / f"out-{name}-{i}"
            out_file.write_text("")
            env = {**base, **{k: str(v) for k, v in (job.get("env") or {}).items()}}
            env.update({k: self.expand(str(v), expr) for k, v in (step.get("env") or {}).items()})
            env["GITHUB_OUTPUT"] = str(out_file)
            code, text = self.bash(step["run"], workdir, self.env(env))
            res.steps.append((label, code))
            res.output += f"--- {label} (exit {code})\n{text}"
            if "id" in step:
                outputs[step["id"]] = dict(
                    line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line
                )
            if code != 0:
                res.ok = False
                break
        res.summary = summary.read_text()
        res.workdir = workdir
        return res

    def expand(self, text: str, values: dict[str, str]) -> str:
        def one(m: re.Match[str]) -> str:
            key = m.group(1).strip()
            if key.startswith("vars."):
                return self.vars[key[5:]]
            if key == "github.token":
                return "ghs_test_token"
            assert key in values, f"the test cannot evaluate ${{{{ {key} }}}}"
            return values[key]

        return re.sub(r"\$\{\{(.*?)\}\}", one, text)


# --- GitLab CI --------------------------------------------------------------------------------


class GitLab(Runner):
    def __init__(self, pipeline: Path, project: Path, tmp: Path, base_env: dict[str, str]):
        super().__init__(project, tmp, base_env)
        self.ci = yaml.safe_load(pipeline.read_text())
        self.fake("curl", "fake_gitlab_api.py")

    def jobs(self) -> list[str]:
        order = {s: i for i, s in enumerate(self.ci["stages"])}
        names = [k for k, v in self.ci.items() if isinstance(v, dict) and "script" in v]
        return sorted(names, key=lambda n: order[self.ci[n].get("stage", "test")])

    def rule(self, job: dict[str, Any], variables: dict[str, str]) -> dict[str, Any] | None:
        """The first matching rule (its `when`), or None when the job does not run."""
        variables = {**self.base_env, **variables}
        for r in job.get("rules", [{"when": "on_success"}]):
            cond = r.get("if")
            if cond is None or all(self._cmp(c, variables) for c in cond.split("&&")):
                return None if r.get("when") == "never" else r
        return None

    def _cmp(self, cond: str, variables: dict[str, str]) -> bool:
        m = re.fullmatch(r'\s*\$(\w+)\s*(==|!=)\s*(?:"([^"]*)"|\$(\w+))\s*', cond)
        assert m, f"the test cannot evaluate rule {cond!r}"
        left = variables.get(m.group(1), "")
        right = m.group(3) if m.group(3) is not None else variables.get(m.group(4) or "", "")
        return (left == right) == (m.group(2) == "==")

    def run_pipeline(self, variables: dict[str, str]) -> list[JobResult]:
        """Jobs in stage order until one fails or a blocking manual job waits for a person."""
        results: list[JobResult] = []
        for name in self.jobs():
            rule = self.rule(self.ci[name], variables)
            if rule is None:
                continue
            if rule.get("when") == "manual":
                break  # the pipeline waits here until someone runs the job: run_job
            res = self.run_job(name, variables, variables.get("GITLAB_USER_LOGIN", "ci-bot"))
            results.append(res)
            if not res.ok:
                break
        return results

    def run_job(self, name: str, variables: dict[str, str], who: str) -> JobResult:
        job = self.ci[name]
        assert self.rule(job, variables) is not None, f"{name} does not run for {variables}"
        workdir = self.checkout(name)
        for dep in job.get("needs", []) or job.get("dependencies", []):
            dep = dep["job"] if isinstance(dep, dict) else dep
            if dep in self.artifacts:
                shutil.copytree(self.artifacts[dep], workdir, dirs_exist_ok=True)
        env = {
            **{k: str(v) for k, v in (self.ci.get("variables") or {}).items()},
            **{k: str(v) for k, v in (job.get("variables") or {}).items()},
            **variables,
            "GITLAB_USER_LOGIN": who,
            "CI": "true",
            "CI_JOB_NAME": name,
        }
        default = self.ci.get("default", {})
        setup = list(job.get("before_script", default.get("before_script", [])))
        # installing mlstack from its source is what tests/packaging covers
        setup = [ln for ln in setup if ".mlstack-src" not in ln and ".mlstack-wheels" not in ln]
        assert not setup, f"{name}: the test does not know before_script {setup}"
        code, text = self.bash("\n".join(job["script"]), workdir, self.env(env))
        res = JobResult(name, ok=code == 0, steps=[(name, code)], output=text, workdir=workdir)
        paths = (job.get("artifacts") or {}).get("paths", [])
        if paths and code == 0:
            keep = self.tmp / f"artifacts-{name}"
            shutil.rmtree(keep, ignore_errors=True)
            for p in paths:
                shutil.copytree(workdir / p, keep / p)
            self.artifacts[name] = keep
            zbuf = io.BytesIO()
            with zipfile.ZipFile(zbuf, "w") as z:
                for f in keep.rglob("*"):
                    if f.is_file():
                        z.write(f, f.relative_to(keep))
            (self.state / f"artifacts-{name}.zip").write_bytes(zbuf.getvalue())
        return res


def check_schema(builtin: str, path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with one of the schemas it bundles (no network)."""
    exe = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(exe), "--builtin-schema", builtin, str(path)], capture_output=True, text=True
    )


def mr_record(state: Path, iid: int, sha: str) -> None:
    """What the fake GitLab API answers for the merge commit: the merge request it came from."""
    (state / "merge_requests.json").write_text(json.dumps([{"iid": iid, "sha": sha}]))
