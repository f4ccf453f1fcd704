"""Serving on the `local` backend: KServe model servers per version behind a traffic router.

``api`` is what the backend calls (deploy, metrics, status, stop); ``model_server`` and ``router``
are the long-running processes; ``loadgen`` is a small bounded load generator for tests and
benchmarks. Nothing here imports kserve, sklearn or pandas at module level.
"""
