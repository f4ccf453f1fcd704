"""Built-in stages on the local backend: ``mlstack_runtime``'s stages, run in the zygote's fork.

What a stage computes is ``mlstack_runtime``'s (the same code every cloud job runs); this package
only adapts it to the runner: a ``StageContext`` becomes a runtime ``Job``, the runtime's errors
become mlstack's, and an evaluate stage's gates are checked against the local registry's champion.

``PRELOAD`` lists what each kind imports, so the zygote imports it once for the whole run.
"""

from __future__ import annotations

from mlstack_runtime.stages import PRELOAD

__all__ = ["PRELOAD"]
