"""The field table behind the protobuf codec, and apiVersion/kind -> message lookup.

``schema.json`` is derived from the Kubernetes IDL by ``scripts/gen_proto_schema.py``;
field numbers there are the wire contract, field names are the JSON (wire) names.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "Field",
    "META",
    "TIME",
    "MICRO_TIME",
    "DURATION",
    "QUANTITY",
    "INT_OR_STRING",
    "RAW_EXTENSION",
    "FIELDS_V1",
    "UNKNOWN",
    "load_messages",
    "compiled",
    "list_wrappers",
    "proto_package",
    "message_for",
]

SCHEMA_PATH = Path(__file__).with_name("schema.json")

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
DURATION = f"{META}.Duration"
FIELDS_V1 = f"{META}.FieldsV1"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"

# Option kinds every group version carries (metav1.AddToGroupVersion), found in meta/v1.
_META_KINDS = frozenset({
    "DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "GetOptions",
    "ListOptions", "Status",
})


class Field(NamedTuple):
    """One schema row: wire number, JSON name, proto type (scalar or message), label."""

    number: int
    name: str
    type: str
    label: str  # optional | value | repeated | map | inline


@lru_cache(maxsize=1)
def load_messages() -> dict[str, tuple[Field, ...]]:
    """Message full name -> fields, read once from schema.json."""
    raw = json.loads(SCHEMA_PATH.read_text())["messages"]
    return {name: tuple(Field(*row) for row in rows) for name, rows in raw.items()}


@lru_cache(maxsize=1)
def compiled() -> dict[str, dict[int, Field]]:
    """Message -> {field number: Field}, the decoder's lookup shape."""
    return {name: {f.number: f for f in fields} for name, fields in load_messages().items()}


@lru_cache(maxsize=1)
def list_wrappers() -> frozenset[str]:
    """Messages that stand for a Go string slice (``Verbs``, ``ExtraValue``): JSON lists."""
    return frozenset(
        name for name, fields in load_messages().items()
        if len(fields) == 1 and fields[0].name == "items" and fields[0].label == "repeated"
        and "." not in fields[0].type
    )


def proto_package(api_version: str) -> str:
    """``apps/v1`` -> ``k8s.io.api.apps.v1``; ``v1`` -> core; ``rbac.authorization.k8s.io/v1`` -> rbac."""
    group, _, version = api_version.rpartition("/")
    if group == "meta.k8s.io":
        return META
    short = group.split(".", 1)[0] if group else "core"
    return f"k8s.io.api.{short}.{version}"


def message_for(api_version: str, kind: str) -> str | None:
    """The proto message of an apiVersion/kind, or None when kcore has no schema for it."""
    messages = load_messages()
    if not api_version or not kind:
        return None
    name = f"{proto_package(api_version)}.{kind}"
    if name in messages:
        return name
    if kind in _META_KINDS and f"{META}.{kind}" in messages:
        return f"{META}.{kind}"
    return None
