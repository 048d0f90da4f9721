"""What the patch algorithms need to know about a kind's shape.

A :class:`PatchSchema` is one node of the kind's type tree: a struct (named fields,
each with its own node), a map (string keys, one node for every value), a list (one
node for the items, plus how the list merges) or a scalar. ``ANY`` stands for fields
the model does not know (or declares as ``Any``): they merge like JSON merge patch.
Nodes are built lazily from the pydantic model and cached, so the server can call
:func:`schema_for_model` on every request.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel

from kcore.apiserver.patch.merge_keys import patch_tag

Kind = Literal["struct", "map", "list", "scalar", "any"]
ListType = Literal["atomic", "map", "set"]


class PatchSchema:
    """One node of a kind's type tree, with Kubernetes' patch strategy for lists."""

    __slots__ = ("kind", "model", "_elem", "_elem_type", "list_type", "merge_key", "retain_keys", "_fields")

    def __init__(
        self,
        kind: Kind,
        *,
        model: type[BaseModel] | None = None,
        elem_type: Any = None,
        list_type: ListType = "atomic",
        merge_key: str | None = None,
        retain_keys: bool = False,
    ) -> None:
        self.kind = kind
        self.model = model
        self._elem_type = elem_type
        self._elem: PatchSchema | None = None
        self.list_type: ListType = list_type
        self.merge_key = merge_key
        # For a struct: ``$retainKeys`` applies to it (DeploymentSpec.strategy). For a
        # list: applies to each item (PodSpec.volumes).
        self.retain_keys = retain_keys
        self._fields: dict[str, PatchSchema] | None = None

    def __repr__(self) -> str:
        name = self.model.__name__ if self.model else ""
        extra = f" {self.list_type} key={self.merge_key}" if self.kind == "list" else ""
        return f"<PatchSchema {self.kind} {name}{extra}>"

    @property
    def elem(self) -> PatchSchema:
        """The node for map values or list items."""
        if self._elem is None:
            self._elem = _node_for(self._elem_type) if self._elem_type is not None else ANY
        return self._elem

    def field(self, name: str) -> PatchSchema:
        """The node for a struct field, map value, or ``ANY`` when unknown."""
        if self.kind == "map":
            return self.elem
        if self.kind != "struct" or self.model is None:
            return ANY
        if self._fields is None:
            self._fields = _struct_fields(self.model)
        return self._fields.get(name, ANY)


ANY = PatchSchema("any")
SCALAR = PatchSchema("scalar")


@functools.cache
def schema_for_model(model_cls: type[BaseModel]) -> PatchSchema:
    """The (cached) patch schema of a pydantic model class, e.g. a kind's model."""
    return PatchSchema("struct", model=model_cls)


def _struct_fields(model: type[BaseModel]) -> dict[str, PatchSchema]:
    mro = [c.__name__ for c in model.__mro__ if isinstance(c, type) and issubclass(c, BaseModel)]
    out: dict[str, PatchSchema] = {}
    for attr, info in model.model_fields.items():
        wire = info.alias or attr
        node = _node_for(info.annotation)
        tag = patch_tag(mro, wire)
        if tag is not None:
            node = _with_tag(node, tag, f"{model.__name__}.{wire}")
        out[wire] = node
    return out


def _with_tag(node: PatchSchema, tag: tuple[str, str | None], where: str) -> PatchSchema:
    strategies = set(tag[0].split(","))
    retain = "retainKeys" in strategies
    if node.kind == "list" and "merge" in strategies:
        return PatchSchema(
            "list",
            elem_type=node._elem_type,
            list_type="map" if tag[1] else "set",
            merge_key=tag[1],
            retain_keys=retain,
        )
    if node.kind == "struct" and retain:
        return PatchSchema("struct", model=node.model, retain_keys=True)
    raise TypeError(f"patch tag {tag} does not fit the type of {where}")


def _strip_optional(tp: Any) -> Any:
    """``X | None`` → ``X``; ``Annotated[X, ...]`` → ``X``; real unions stay."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin is typing.Union or origin is types.UnionType:
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


@functools.cache
def _node_for(tp: Any) -> PatchSchema:
    tp = _strip_optional(tp)
    if tp is Any or tp is object:
        return ANY
    origin = typing.get_origin(tp)
    if origin in (list, tuple, set, frozenset, typing.Sequence):
        args = typing.get_args(tp)
        return PatchSchema("list", elem_type=args[0] if args else Any)
    if origin in (dict, typing.Mapping):
        args = typing.get_args(tp)
        return PatchSchema("map", elem_type=args[1] if len(args) == 2 else Any)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return schema_for_model(tp)
    if origin is typing.Union or origin is types.UnionType:
        # int | str and the like: scalars; anything richer is left schemaless.
        args = [_strip_optional(a) for a in typing.get_args(tp)]
        if all(isinstance(a, type) and a in (int, str, float, bool, type(None)) for a in args):
            return SCALAR
        return ANY
    if tp is dict:
        return PatchSchema("map")
    if tp is list:
        return PatchSchema("list")
    return SCALAR
