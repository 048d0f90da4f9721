"""The base class of every API object model.

Attribute names are the exact camelCase names of the Kubernetes wire format
(``restartPolicy``, ``podIP``), so a model reads like the API reference and JSON
round-trips without an alias table. Unknown fields are rejected (``extra=forbid``)
so the API server can tell a typo from a field (``fieldValidation=Strict``).
"""

from __future__ import annotations

from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict


class KubeModel(BaseModel):
    """A Kubernetes API structure: camelCase fields, ``None`` means omitted."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        validate_assignment=False,
        ser_json_inf_nan="null",
    )

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, omitted fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls.model_validate(data)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        return cls.model_validate(orjson.loads(raw))
