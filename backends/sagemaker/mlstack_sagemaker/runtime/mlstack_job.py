"""SageMaker's side of an mlstack job: find the shipped runtime, then call its one entry point.

Runs in SageMaker's scikit-learn container (Python 3.9 in the 1.2-1 image: no 3.10+ syntax),
where mlstack is not installed. The code bundle (``sourcedir.tar.gz``) holds this file,
``mlstack_runtime/`` and ``mlstack_settings/<stage>.json``, the stage's settings.

- processing job: ``python3 mlstack_job.py STAGE``. The bundle is mounted as the ``runtime``
  input (``/opt/ml/processing/input/runtime/sourcedir.tar.gz``) and unpacked here; each upstream
  stage's output is mounted at ``/opt/ml/processing/input/<stage>``, the data at ``.../data``;
  ``/opt/ml/processing/output`` is uploaded to the stage's S3 prefix.
- training job (script mode): the toolkit unpacks the bundle into ``/opt/ml/code`` and runs
  ``python mlstack_job.py --mlstack_stage STAGE``; upstream outputs are the channels under
  ``/opt/ml/input/data``, the model goes to ``SM_MODEL_DIR`` and is uploaded as ``model.tar.gz``.
- endpoint: the inference toolkit imports this module (``SAGEMAKER_PROGRAM``) from the bundle
  (``SAGEMAKER_SUBMIT_DIRECTORY``) and calls the hooks re-exported at the bottom.

``MLSTACK_OPT_ML`` moves ``/opt/ml`` elsewhere, so the wrapper can be exercised outside a
container. A failed stage's reason goes to ``/opt/ml/output/failure`` (the job's failure reason).
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETTINGS_DIR = "mlstack_settings"


def opt_ml() -> Path:
    return Path(os.environ.get("MLSTACK_OPT_ML", "/opt/ml"))


def bundle_root() -> Path:
    """The folder holding ``mlstack_runtime/`` and the settings (unpacked if need be)."""
    if (HERE / "mlstack_runtime").is_dir():
        return HERE
    archive = opt_ml() / "processing" / "input" / "runtime" / "sourcedir.tar.gz"
    target = Path(tempfile.mkdtemp(prefix="mlstack-bundle-"))
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")
        else:  # the container's Python may predate extraction filters; the bundle is ours
            tar.extractall(target)
    return target


def arguments(argv: list[str]) -> list[str]:
    """This job's arguments for ``python -m mlstack_runtime``."""
    root = opt_ml()
    training = "--mlstack_stage" in argv
    stage = argv[argv.index("--mlstack_stage") + 1] if training else argv[0]
    bundle = bundle_root()
    if str(bundle) not in sys.path:
        sys.path.insert(0, str(bundle))
    if training:
        inputs = Path(os.environ.get("SM_INPUT_DIR", str(root / "input"))) / "data"
        outputs = Path(os.environ.get("SM_MODEL_DIR", str(root / "model")))
    else:
        inputs = root / "processing" / "input"
        outputs = root / "processing" / "output"
    return [
        stage,
        "--spec",
        str(bundle / SETTINGS_DIR / f"{stage}.json"),
        "--inputs",
        str(inputs),
        "--outputs",
        str(outputs),
        "--project-root",
        str(bundle),
        "--failure-file",
        str(root / "output" / "failure"),
    ]


def main() -> int:
    args = arguments(sys.argv[1:])
    from mlstack_runtime.__main__ import main as run

    return run(args)


if (HERE / "mlstack_runtime").is_dir() and str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
try:  # the endpoint's hooks (the inference toolkit imports this module from the bundle)
    from mlstack_runtime.inference import input_fn, model_fn, output_fn, predict_fn  # noqa: F401
except ImportError:  # a processing job, before the bundle is unpacked
    pass

if __name__ == "__main__":
    sys.exit(main())
