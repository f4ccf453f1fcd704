"""Run a pipeline's built-in stages the way each platform runs a job, and digest what they wrote.

Each platform's job is ``python -m mlstack_runtime STAGE ...`` in a subprocess, with the runtime
shipped as source (``PYTHONPATH`` = ``runtime/``, nothing installed), its settings in a file
beside the code, and the folders laid out as that platform lays them out (under a temp dir):

- ``sagemaker``: processing jobs get ``/opt/ml/processing/input/<stage>`` (and ``.../data``) and
  write ``/opt/ml/processing/output``; train and tune are training jobs: channels under
  ``/opt/ml/input/data/<stage>``, output in ``SM_MODEL_DIR``, uploaded as ``model.tar.gz`` (which
  later stages receive, as on SageMaker). Paths: the SageMaker developer guide's "How Amazon
  SageMaker Processing Runs Your Processing Container Image" and the training toolkit's
  environment variables (``SM_MODEL_DIR``, ``SM_INPUT_DIR``).
- ``vertex``: a custom job with ``AIP_MODEL_DIR`` / ``AIP_CHECKPOINT_DIR`` /
  ``AIP_TENSORBOARD_LOG_DIR`` set to ``gs://`` URIs and every other location passed as a
  ``gs://`` argument, read through Cloud Storage FUSE at ``/gcs/<bucket>/...`` (Vertex AI docs,
  "Prepare training code": environment variables and Cloud Storage FUSE).
- ``azureml``: a command job whose inputs are mounted folders and whose output is a mounted
  folder, each passed as an argument (``${{inputs.x}}`` / ``${{outputs.y}}``), under the job's
  ``cap/data-capability/wd/`` working folders.

``in_process`` runs the same stages through ``mlstack_runtime.stages`` the way the local runner's
zygote does (import once, fork a child per stage), without mlstack's core, so it also runs on the
oldest Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from mlstack_runtime.job import ancestors

RUNTIME_SRC = Path(__file__).resolve().parents[1]
TRAINING = ("train", "tune")


def tree_digest(root: Path) -> str:
    """sha256 over every file's relative path and bytes."""
    h = hashlib.sha256()
    for f in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return "sha256:" + h.hexdigest()


def settings_for(pipeline: dict[str, Any], stage: dict[str, Any]) -> dict[str, Any]:
    """What a backend ships beside the code: ``data:`` as a cloud backend dumps it (by alias)."""
    data = dict(pipeline["data"])
    if "table" in data:
        data["_table"] = data.pop("table")
    return {
        "format": "mlstack-stage/1",
        "stage": stage,
        "data": data,
        "pipeline": {"stages": pipeline["stages"]},
        "model": {"name": pipeline["model"]},
        "inputs": ancestors(pipeline["stages"], stage["name"]),
    }


class Platform(ABC):
    """Runs a pipeline's stages as one platform's jobs; ``outputs`` maps stage -> its folder."""

    name = ""

    def __init__(self, work: Path, python: str, pipeline: dict[str, Any], data_file: Path) -> None:
        self.work = work / self.name
        self.python = python
        self.pipeline = pipeline
        self.data_file = data_file
        self.outputs: dict[str, Path] = {}
        self.logs: dict[str, str] = {}

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        keep = {
            k: v for k, v in os.environ.items() if not k.startswith(("MLSTACK_", "SM_", "AIP_"))
        }
        keep.pop("PYTHONHOME", None)
        return {**keep, "PYTHONPATH": str(RUNTIME_SRC), **extra}

    def call(self, stage: str, args: list[str], extra: dict[str, str], cwd: Path) -> None:
        r = subprocess.run(
            [self.python, "-m", "mlstack_runtime", stage, *args],
            env=self.env(extra),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.logs[stage] = r.stdout + r.stderr
        if r.returncode != 0:
            raise AssertionError(
                f"{self.name} job {stage} exited {r.returncode}:\n{r.stdout}{r.stderr}"
            )

    def write_settings(self, path: Path, stage: dict[str, Any]) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings_for(self.pipeline, stage), indent=1))
        return path

    def run(self) -> dict[str, Path]:
        for stage in self.pipeline["stages"]:  # listed in dependency order
            self.job(stage)
        return self.outputs

    @abstractmethod
    def job(self, stage: dict[str, Any]) -> None:
        """Run one stage laid out the way this platform lays out a job."""


class SageMaker(Platform):
    name = "sagemaker"

    def job(self, stage: dict[str, Any]) -> None:
        name = stage["name"]
        root = self.work / name / "opt" / "ml"
        code = root / "code"
        spec = self.write_settings(code / "mlstack_settings" / f"{name}.json", stage)
        ups = ancestors(self.pipeline["stages"], name)
        if stage["kind"] in TRAINING:
            channels = root / "input" / "data"
            for up in ups:
                shutil.copytree(self.s3(up), channels / up)
            extra = {"SM_MODEL_DIR": str(root / "model"), "SM_INPUT_DIR": str(root / "input")}
            self.call(name, ["--spec", str(spec), "--inputs", str(channels)], extra, code)
            self.outputs[name] = root / "model"
            return
        inputs = root / "processing" / "input"
        for up in ups:
            shutil.copytree(self.s3(up), inputs / up)
        if not stage.get("needs"):
            (inputs / "data").mkdir(parents=True)
            shutil.copy(self.data_file, inputs / "data" / self.data_file.name)
        out = root / "processing" / "output"
        args = ["--spec", str(spec), "--inputs", str(inputs), "--outputs", str(out)]
        self.call(name, args, {}, code)
        self.outputs[name] = out

    def s3(self, stage: str) -> Path:
        """What a later job gets of ``stage``: a training job's model as ``model.tar.gz``."""
        out = self.outputs[stage]
        if out.name != "model":
            return out
        uploaded = self.work / "s3" / stage / "output"
        if not uploaded.exists():
            uploaded.mkdir(parents=True)
            with tarfile.open(uploaded / "model.tar.gz", "w:gz") as tar:
                for f in sorted(out.rglob("*")):
                    tar.add(f, arcname=f.relative_to(out).as_posix(), recursive=False)
        return uploaded


class Vertex(Platform):
    name = "vertex"
    bucket = "mlstack-artifacts"

    def job(self, stage: dict[str, Any]) -> None:
        name = stage["name"]
        gcs = self.work / "gcs"
        base = f"gs://{self.bucket}/runs/run-1"
        spec_uri = f"gs://{self.bucket}/code/mlstack_settings/{name}.json"
        self.write_settings(gcs / spec_uri[len("gs://") :], stage)
        args = ["--spec", spec_uri]
        for up in ancestors(self.pipeline["stages"], name):
            args += ["--input", f"{up}={base}/{up}/model"]
        if not stage.get("needs"):
            data = gcs / self.bucket / "data"
            data.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.data_file, data / self.data_file.name)
            args += ["--data", f"gs://{self.bucket}/data"]
        extra = {
            "MLSTACK_GCS_MOUNT": str(gcs),
            "AIP_MODEL_DIR": f"{base}/{name}/model/",
            "AIP_CHECKPOINT_DIR": f"{base}/{name}/checkpoints/",
            "AIP_TENSORBOARD_LOG_DIR": f"{base}/{name}/logs/",
            "CLOUD_ML_JOB_ID": f"job-{name}",
        }
        self.call(name, args, extra, self.work)
        self.outputs[name] = gcs / self.bucket / "runs" / "run-1" / name / "model"


class AzureML(Platform):
    name = "azureml"

    def job(self, stage: dict[str, Any]) -> None:
        name = stage["name"]
        job = self.work / "mnt" / "azureml" / "cr" / "j" / f"job-{name}"
        wd = job / "cap" / "data-capability" / "wd"
        code = job / "exe" / "wd"
        spec = self.write_settings(code / "mlstack_settings.json", stage)
        args = ["--spec", str(spec)]
        for up in ancestors(self.pipeline["stages"], name):
            mount = wd / f"INPUT_{up}"
            shutil.copytree(self.outputs[up], mount)
            args += ["--input", f"{up}={mount}"]
        if not stage.get("needs"):
            (wd / "INPUT_data").mkdir(parents=True)
            shutil.copy(self.data_file, wd / "INPUT_data" / self.data_file.name)
            args += ["--data", str(wd / "INPUT_data")]
        out = wd / "OUTPUT_output"
        self.call(name, [*args, "--outputs", str(out)], {"AZUREML_RUN_ID": f"job-{name}"}, code)
        self.outputs[name] = out


PLATFORMS = (SageMaker, Vertex, AzureML)

IN_PROCESS = r"""
import json, os, sys
from importlib import import_module
from pathlib import Path
from mlstack_runtime.artifacts import finish
from mlstack_runtime.job import Job
from mlstack_runtime import stages

plan = json.loads(Path(sys.argv[1]).read_text())
for kind in stages.KINDS:  # what the zygote does: import once, then fork a child per stage
    for module in stages.PRELOAD[kind] + ("mlstack_runtime.stages." + kind,):
        try:
            import_module(module)
        except ImportError:
            pass
outputs = {}
for item in plan["stages"]:
    out = Path(item["output"])
    out.mkdir(parents=True)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            job = Job(item["settings"], out, [(n, outputs[n]) for n in item["settings"]["inputs"]],
                      project_root=Path(plan["root"]))
            finish(out, stages.run(job.kind, job), job.metrics)
            code = 0
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        sys.exit(f"stage {item['settings']['stage']['name']} failed")
    outputs[item["settings"]["stage"]["name"]] = out
"""


def in_process(work: Path, python: str, pipeline: dict[str, Any], root: Path) -> dict[str, Path]:
    """All stages in one process of ``python``, data read from the project folder ``root``."""
    work = work / "in-process"
    work.mkdir(parents=True)
    plan = {
        "root": str(root),
        "stages": [
            {"settings": settings_for(pipeline, s), "output": str(work / s["name"])}
            for s in pipeline["stages"]
        ],
    }
    (work / "plan.json").write_text(json.dumps(plan))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLSTACK_")}
    r = subprocess.run(
        [python, "-c", IN_PROCESS, str(work / "plan.json")],
        env={**env, "PYTHONPATH": str(RUNTIME_SRC)},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0:
        raise AssertionError(f"in-process run exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return {s["name"]: work / s["name"] for s in pipeline["stages"]}


def metrics_of(out: Path) -> dict[str, float]:
    f = out / "metrics.json"
    return json.loads(f.read_text()) if f.exists() else {}
