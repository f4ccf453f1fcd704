"""The built-in stage kinds, named once (pydantic-free, so backend descriptors can read them)."""

BUILTIN_STAGES = (
    "ingest",
    "validate",
    "split",
    "features",
    "train",
    "tune",
    "evaluate",
    "register",
)
