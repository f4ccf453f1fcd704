"""Field types the schema modules share: the strict base model and durations as people write them."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from mlstack.manifest.units import parse_duration

_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
    ],
    "description": "seconds, or a duration such as 30s, 5m, 1h",
}
# Seconds, written as a number or as 30s / 5m / 1h in the file.
Duration = Annotated[float, BeforeValidator(parse_duration), WithJsonSchema(_DURATION_SCHEMA)]


class Strict(BaseModel):
    # NaN or infinite numbers pass every range check; no setting means them
    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=False, allow_inf_nan=False
    )
