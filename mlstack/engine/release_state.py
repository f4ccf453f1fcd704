"""What an environment is asked to serve when it does not simply serve what it trains.

``promote SRC DST`` and ``rollback`` do not write endpoints and models by hand: they record a
``Release`` as the desired state of the environment (in its state file), and the desired graph
(``desired.build``) turns it into a ``model.*`` resource (the artifact imported into the
environment's registry, by digest) and the ``release`` input of its ``endpoint.*``. Plan, apply,
saved plans and ``No changes.`` then work for releases exactly as for everything else.

A release in an environment that trains (``rollback -e dev``) is a *pin*: the endpoint serves
the pinned version while the pipeline's inputs are what they were when it was pinned
(``pinned_source``); the next change that trains a new model ends the pin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlstack.engine.seam import ModelVersion


@dataclass(frozen=True)
class Release:
    model: str
    source_env: str  # where the artifact passed (the environment itself for a pin)
    source_version: str  # its version there
    digest: str  # the artifact's identity, carried unchanged between environments
    uri: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    lineage: Mapping[str, Any] = field(default_factory=dict)
    pinned_source: str | None = None  # pins only: the model source key they hold for

    def inputs(self) -> dict[str, Any]:
        """What plan compares: which artifact, from where (not how it is stored)."""
        return {
            "source_env": self.source_env,
            "source_version": self.source_version,
            "digest": self.digest,
        }

    def source(self) -> ModelVersion:
        """The version as the source environment registered it (what import_version takes)."""
        return ModelVersion(
            name=self.model,
            version=self.source_version,
            digest=self.digest,
            uri=self.uri,
            metrics=dict(self.metrics),
            lineage=dict(self.lineage),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "source_env": self.source_env,
            "source_version": self.source_version,
            "digest": self.digest,
            "uri": self.uri,
            "metrics": dict(self.metrics),
            "lineage": dict(self.lineage),
            "pinned_source": self.pinned_source,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Release:
        return cls(
            model=str(d["model"]),
            source_env=str(d["source_env"]),
            source_version=str(d["source_version"]),
            digest=str(d["digest"]),
            uri=str(d["uri"]),
            metrics=dict(d.get("metrics") or {}),
            lineage=dict(d.get("lineage") or {}),
            pinned_source=d.get("pinned_source"),
        )

    @classmethod
    def from_model_outputs(cls, outputs: Mapping[str, Any]) -> Release | None:
        """A promoted model record (or history snapshot of one) as the release it realised."""
        lineage = dict(outputs.get("lineage") or {})
        if "source_env" not in lineage or not outputs.get("digest"):
            return None
        return cls(
            model=str(outputs["name"]),
            source_env=str(lineage["source_env"]),
            source_version=str(lineage.get("source_version")),
            digest=str(outputs["digest"]),
            uri=str(outputs.get("uri", "")),
            metrics=dict(outputs.get("metrics") or {}),
            lineage={
                k: v
                for k, v in lineage.items()
                if k not in ("source_env", "source_version", "source_digest")
            },
        )
