"""The `local` backend's descriptor: light to import (no sklearn, mlflow or kserve here)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlstack.engine.backend import BackendPlugin, Capabilities


class LocalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="address the endpoint listens on")
    port: int | None = Field(
        default=None, ge=1, le=65535, description="endpoint port; free one if unset"
    )
    parallelism: int = Field(default=2, ge=1, le=32, description="stages run at once")
    workers: int = Field(default=1, ge=1, le=8, description="model server workers per version")
    artifacts: str | None = Field(
        default=None,
        description="object-store URL (s3://, gs://, az://) that stage outputs and models are "
        "written to and read from, so another machine (a CI runner) reuses them; "
        ".mlstack/artifacts stays the local cache",
    )

    @field_validator("artifacts")
    @classmethod
    def _artifacts_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from mlstack.local.artifacts_url import parse_url

        return str(parse_url(v))  # ValueError: shown at the setting's line by `validate`


plugin = BackendPlugin(
    name="local",
    config_model=LocalConfig,
    capabilities=Capabilities(
        native_progressive=False,
        weighted_traffic=True,
        mirroring=True,
        sticky_sessions=True,
        batching=True,
    ),
    implementation="mlstack.local.backend:LocalBackend",
    description="runs pipelines, MLflow and KServe model servers on this machine",
)
