"""mlstack: plan and apply ML pipelines and model deployments, on any backend."""

__version__ = "0.1.0"
