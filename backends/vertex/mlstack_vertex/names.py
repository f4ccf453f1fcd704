"""The names mlstack gives things on Google Cloud, in one place, pure (no SDK).

Vertex resource IDs that mlstack chooses must follow the proto comments of the API: a model ID
up to 63 characters of ``[a-z0-9_-]`` not starting with a digit or hyphen
(``UploadModelRequest.model_id``); an endpoint ID starting with a letter, up to 63 characters
of ``[a-z0-9-]``, ending with a letter or digit (``CreateEndpointRequest.endpoint_id``); a
pipeline job ID ``[a-z][-a-z0-9]{0,127}`` (``CreatePipelineJobRequest.pipeline_job_id``).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlstack.manifest.models import ResolvedProject
    from mlstack_vertex.plugin import VertexConfig


def resource_id(*parts: str, limit: int = 63) -> str:
    """``parts`` joined by hyphens, lowercased, other characters as hyphens; a letter first; too
    long: cut, with a short hash so distinct inputs stay distinct."""
    raw = "-".join(p for p in parts if p)
    text = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-") or "x"
    if not text[0].isalpha():
        text = "m-" + text
    if len(text) > limit:
        h = hashlib.sha256(raw.encode()).hexdigest()[:8]
        text = text[: limit - 9].rstrip("-") + "-" + h
    return text


def bucket_name(project: ResolvedProject, config: VertexConfig) -> str:
    """The bucket given, or the one the GCP stack creates for ``bucket: create``."""
    if config.bucket != "create":
        return config.bucket
    return resource_id(config.project, "mlstack", project.project)


def prefix(project: ResolvedProject) -> str:
    """Where this environment's objects live inside the bucket."""
    return f"mlstack/{project.project}/{project.environment}"


def model_id(project: ResolvedProject) -> str:
    assert project.model is not None
    return resource_id(project.model.name, project.environment)


def endpoint_id(endpoint: str, project: ResolvedProject) -> str:
    return resource_id(endpoint, project.environment)


def pipeline_name(project: ResolvedProject) -> str:
    return resource_id(project.project, project.environment, limit=100)


def label_value(text: str) -> str:
    """A Vertex label value: lowercase letters, digits, ``_`` and ``-``, at most 63."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower())[:63]
