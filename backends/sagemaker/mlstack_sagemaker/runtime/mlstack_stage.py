"""Entry point inside SageMaker's scikit-learn containers for every mlstack stage.

The processing job runs ``python3 mlstack_stage.py --stage NAME``; the training job runs it in
script mode (``sagemaker_program``); the endpoint loads it as the inference script. The stage's
definition arrives in ``MLSTACK_SPEC``. mlstack's own stage implementations do the work, so a
stage behaves the same here as on the ``local`` backend.
"""

import os
import subprocess
import sys


def main() -> int:
    # The container has scikit-learn and pandas; mlstack's runner is installed on first use.
    try:
        import mlstack  # noqa: F401
    except ImportError:
        subprocess.check_call(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                os.environ.get("MLSTACK_PIP_SPEC", "mlstack[local]"),
            ]
        )
    from mlstack.local.container import run_stage_in_container  # provided by the local runner

    return int(run_stage_in_container(os.environ, sys.argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
