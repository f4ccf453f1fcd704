"""One stage as a job: ``python -m mlstack_runtime STAGE --spec FILE --inputs DIR --outputs DIR``.

Every platform's job wrapper calls this, naming the folders its platform mounted:

- ``--spec FILE``      the stage's settings (JSON, see ``mlstack_runtime.job``), shipped beside the
                       code; never in environment variables (SageMaker caps a value at 256
                       characters for processing jobs, 512 for training jobs)
- ``--inputs DIR``     a folder with one sub-folder per upstream stage (and ``data``), as SageMaker
                       mounts processing inputs (``/opt/ml/processing/input``) and training
                       channels (``/opt/ml/input/data``)
- ``--input NAME=DIR`` one upstream output (repeatable), as Azure ML command jobs pass mounted
                       folders (``${{inputs.split}}``) and Vertex jobs pass ``/gcs/...`` paths
- ``--data DIR``       the raw data folder an ingest stage reads (default: ``<inputs>/data``)
- ``--outputs DIR``    where the stage writes; defaults to ``SM_MODEL_DIR`` (SageMaker training)
                       or ``AIP_MODEL_DIR`` (Vertex) when set
- ``--failure-file F`` where to write the reason a stage failed (SageMaker shows
                       ``/opt/ml/output/failure`` as the job's failure reason)

``gs://bucket/path`` arguments and ``AIP_*`` values are read through Vertex's Cloud Storage FUSE
mount (``/gcs/bucket/path``; ``MLSTACK_GCS_MOUNT`` moves it, for tests). Exit status: 0 done,
1 the stage failed (the reason on stderr and in the failure file), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

from mlstack_runtime import SETTINGS_FORMAT
from mlstack_runtime.artifacts import finish
from mlstack_runtime.errors import StageError, StageStopped
from mlstack_runtime.job import Job


def local_path(value: str) -> Path:
    """A path as the job sees it: ``gs://b/p`` -> ``/gcs/b/p`` (Vertex's FUSE mount)."""
    if value.startswith("gs://"):
        return Path(os.environ.get("MLSTACK_GCS_MOUNT", "/gcs")) / value[len("gs://") :]
    return Path(value)


def _default_outputs() -> Optional[Path]:
    for var in ("SM_MODEL_DIR", "AIP_MODEL_DIR"):
        if os.environ.get(var):
            return local_path(os.environ[var])
    return None


def read_settings(path: Path) -> dict[str, Any]:
    try:
        settings = json.loads(path.read_text())
    except OSError as e:
        raise StageError(f"cannot read the stage settings {path}: {e.strerror}") from None
    except ValueError as e:
        raise StageError(f"{path}: not JSON: {e}") from None
    if not isinstance(settings, dict) or not isinstance(settings.get("stage"), dict):
        raise StageError(f'{path}: expected an object with a "stage" mapping')
    if settings.get("format", SETTINGS_FORMAT) != SETTINGS_FORMAT:
        raise StageError(
            f"{path}: settings format {settings.get('format')!r}, this runtime reads "
            f"{SETTINGS_FORMAT!r}",
            hint="ship the mlstack_runtime version the settings were written for",
        )
    return settings


def resolve_inputs(
    settings: dict[str, Any], inputs_dir: Optional[Path], named: list[str]
) -> list[tuple[str, Path]]:
    """Upstream outputs, nearest first: the settings' order, then any other mounted folder."""
    listed = [str(n) for n in settings.get("inputs") or []]
    found: dict[str, Path] = {}
    if inputs_dir is not None and inputs_dir.is_dir():
        for p in sorted(inputs_dir.iterdir()):
            # the platform's own mounts (data, code, the bundle) unless a stage has that name
            if p.is_dir() and (p.name in listed or p.name not in ("data", "code", "runtime")):
                found[p.name] = p
    for item in named:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise StageError(f"--input {item!r}: write it as NAME=DIR")
        found[name] = local_path(value)
    order = listed + [n for n in found if n not in listed]
    return [(n, found[n]) for n in order if n in found]


def run_stage(job: Job) -> Any:
    if job.kind == "command":
        from mlstack_runtime.command import environment, run_command

        root = job.project_root or Path.cwd()
        inputs = dict(job.inputs)
        if job.data_dir is not None:  # the mounted data, as MLSTACK_INPUT_DATA
            inputs.setdefault("data", job.data_dir)
        variables = environment(job.stage, job.output, inputs, root)
        run_command(str(job.stage["run"]), variables, root)
        return None
    if job.kind == "function":
        raise StageError(
            f"stage {job.name!r}: `function:` stages run only on the local backend so far",
            hint="use `run: python your_script.py` for stages that run on a cloud platform",
        )
    from mlstack_runtime.stages import run

    return run(job.kind, job)


def _fail(message: str, failure_file: Optional[str]) -> None:
    print(message, file=sys.stderr, flush=True)
    if failure_file:
        try:
            Path(failure_file).parent.mkdir(parents=True, exist_ok=True)
            Path(failure_file).write_text(message[:1024])
        except OSError:
            pass


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlstack_runtime", allow_abbrev=False)
    p.add_argument("stage", help="the stage's name (as in the settings file)")
    p.add_argument("--spec", required=True, help="the stage's settings file (JSON)")
    p.add_argument("--inputs", help="folder with one sub-folder per upstream stage")
    p.add_argument("--input", action="append", default=[], metavar="NAME=DIR")
    p.add_argument("--data", help="folder holding the raw data (ingest)")
    p.add_argument("--outputs", help="folder the stage writes into")
    p.add_argument("--project-root", help="folder `run:` commands start in")
    p.add_argument("--failure-file", help="write the reason of a failure here too")
    args = p.parse_args(argv)
    try:
        settings = read_settings(local_path(args.spec))
        name = str(settings["stage"].get("name") or "")
        if name != args.stage:
            raise StageError(
                f"{args.spec} holds the settings of stage {name!r}, not {args.stage!r}"
            )
        outputs = local_path(args.outputs) if args.outputs else _default_outputs()
        if outputs is None:
            raise StageError("no output folder: pass --outputs DIR")
        outputs.mkdir(parents=True, exist_ok=True)
        inputs_dir = local_path(args.inputs) if args.inputs else None
        data = local_path(args.data) if args.data else None
        if data is None and inputs_dir is not None and (inputs_dir / "data").is_dir():
            data = inputs_dir / "data"
        job = Job(
            settings,
            outputs,
            resolve_inputs(settings, inputs_dir, args.input),
            data_dir=data,
            project_root=Path(args.project_root) if args.project_root else None,
        )
        value = run_stage(job)
        finish(job.output, value, job.metrics)
    except StageError as e:
        lines = [f"mlstack stage {args.stage!r} failed: {e.message}"]
        if isinstance(e, StageStopped):
            lines += ["  - " + p for p in e.problems]
        if e.hint:
            lines.append(f"  hint: {e.hint}")
        _fail("\n".join(lines), args.failure_file)
        return 1
    except Exception as e:  # noqa: BLE001 - a bug: say so, then show where
        _fail(f"mlstack stage {args.stage!r} failed: {type(e).__name__}: {e}", args.failure_file)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
