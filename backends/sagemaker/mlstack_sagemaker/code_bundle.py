"""What a SageMaker job runs: the code bundle (``sourcedir.tar.gz``) and its digest.

The bundle holds the job wrapper (``runtime/mlstack_job.py``), the ``mlstack_runtime`` package's
source (the same stages the local backend runs), each stage's settings as
``mlstack_settings/<stage>.json`` (settings travel in a file: SageMaker caps an environment
value at 256 characters for processing jobs and 512 for training jobs) and the files stages
name in ``code:``. The digest covers every byte of it, so a change to any of them uploads a new
bundle under a new key and changes the compiled definition.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from mlstack.manifest.models import ResolvedProject, Stage

JOB_SCRIPT = "mlstack_job.py"
SETTINGS_DIR = "mlstack_settings"


def job_script() -> Path:
    return Path(__file__).with_name("runtime") / JOB_SCRIPT


def ancestors(project: ResolvedProject, stage: Stage) -> list[str]:
    """Upstream stages, nearest first (``mlstack_runtime.job.ancestors``: the same order on
    every platform)."""
    from mlstack_runtime.job import ancestors

    return ancestors(
        [{"name": s.name, "needs": s.needs} for s in project.pipeline.stages], stage.name
    )


def stage_settings(project: ResolvedProject, stage: Stage) -> dict[str, Any]:
    """The settings file ``python -m mlstack_runtime`` reads (see ``mlstack_runtime.job``)."""
    from mlstack_runtime import SETTINGS_FORMAT

    kinds = {s.name: s.kind for s in project.pipeline.stages}
    return {
        "format": SETTINGS_FORMAT,
        "stage": stage.model_dump(mode="json", by_alias=True),
        "inputs": [n for n in ancestors(project, stage) if kinds[n] != "register"],
        "data": project.data.model_dump(mode="json", by_alias=True) if project.data else None,
        "pipeline": {
            "stages": [s.model_dump(mode="json", by_alias=True) for s in project.pipeline.stages]
        },
        "model": {"name": project.model.name} if project.model else {},
    }


def runtime_files() -> list[tuple[str, Path]]:
    import mlstack_runtime

    pkg = Path(mlstack_runtime.__file__).parent
    return [
        (f"mlstack_runtime/{p.relative_to(pkg).as_posix()}", p)
        for p in sorted(pkg.rglob("*.py"))
        if "__pycache__" not in p.parts
    ]


def contents(project: ResolvedProject) -> list[tuple[str, bytes]]:
    """(name in the bundle, bytes), in a fixed order."""
    out = [(JOB_SCRIPT, job_script().read_bytes())]
    out += [(name, path.read_bytes()) for name, path in runtime_files()]
    for stage in project.pipeline.stages:
        settings = json.dumps(stage_settings(project, stage), sort_keys=True, indent=1)
        out.append((f"{SETTINGS_DIR}/{stage.name}.json", settings.encode()))
    root = Path(project.root)
    for stage in project.pipeline.stages:
        for rel in sorted(stage.code):
            path = root / rel
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for f in files:
                name = f.relative_to(root).as_posix()
                out.append((name, f.read_bytes() if f.exists() else b"<missing>"))
    return out


def digest(project: ResolvedProject) -> str:
    h = hashlib.sha256()
    for name, data in contents(project):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return "sha256:" + h.hexdigest()


def tarball(project: ResolvedProject) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in contents(project):
            if data == b"<missing>":
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload(aws: Any, bucket: str, key: str, project: ResolvedProject) -> None:
    """Put the bundle at ``key`` and, beside it, the job wrapper a processing job starts
    (``aws`` is the backend's client wrapper: ``call(service, operation, **params)``)."""
    aws.call("s3", "put_object", Bucket=bucket, Key=key, Body=tarball(project))
    aws.call(
        "s3",
        "put_object",
        Bucket=bucket,
        Key=key.replace("sourcedir.tar.gz", JOB_SCRIPT),
        Body=job_script().read_bytes(),
    )
