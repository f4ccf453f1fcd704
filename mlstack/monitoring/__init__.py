"""Monitoring: what an endpoint is asked and answers, against what its model learnt from.

- ``stats``: drift statistics (PSI, two-sample KS with a p-value) in numpy, vectorised;
- ``checks``: per-feature input drift, prediction drift and data quality of a ``Capture``;
- ``feedback``: ground-truth labels by request id (``mlstack feedback``) and the live metric;
- ``run``: one environment's monitoring pass (``mlstack monitor``), the one place it is done;
- ``report``: one self-contained HTML file (``mlstack report``).

Above the engine (it reads a workspace's state and backend), below the CLI, which only parses
and renders. numpy is the one dependency beyond the core's (``mlstack-core[monitor]``, and every
backend extra brings it).
"""

from mlstack.errors import MlstackError

try:
    import numpy  # noqa: F401
except ImportError:  # a core-only install: say what to install, not a traceback
    raise MlstackError(
        "monitoring needs numpy, which is not installed",
        hint="pip install 'mlstack-core[monitor]'",
    ) from None
