"""mlstack's built-in stages and serving hooks, written once for every platform.

Importable on the oldest platform image it supports (Python 3.9, pandas 1.1, scikit-learn 1.2:
see ``docs/runtime.md``) and free of mlstack's core, pydantic and click. A backend decides where a
stage's inputs come from and where its outputs and records go; this package decides what the
stage computes.

- ``python -m mlstack_runtime STAGE --spec FILE --inputs DIR --outputs DIR``: one stage as a job
- ``mlstack_runtime.stages.run(kind, job)``: the same in-process (the local runner's zygote)
- ``mlstack_runtime.serving``: load a model, decode V1 / V2 / CSV requests, predict, encode
"""

__version__ = "0.1.0"
SETTINGS_FORMAT = "mlstack-stage/1"
