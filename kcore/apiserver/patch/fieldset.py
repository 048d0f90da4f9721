"""Field sets: which fields of an object a manager owns, in Kubernetes' ``FieldsV1``.

A field path is a tuple of path elements spelled as in ``fieldsV1`` keys:

- ``f:<name>``: a field of a struct or a key of a map;
- ``k:<json>``: the item of a keyed list whose merge key has that value
  (``k:{"name":"nginx"}``);
- ``v:<json>``: a value of a primitive set list (``v:"example.com/finalizer"``).

A set holds leaf paths (scalars, atomic lists, empty maps), the paths of keyed list
items (``.`` in ``fieldsV1``) and set values. :func:`field_values` maps each of them to
the value found there, so two versions of an object can be compared field by field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from kcore.apiserver.patch.jsonutil import json_equal
from kcore.apiserver.patch.schema import PatchSchema

FieldPath = tuple[str, ...]



class _Present:
    """Value of a keyed list item or set value in :func:`field_values`: it exists."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PRESENT"


PRESENT: Any = _Present()


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def item_key(item: dict[str, Any], merge_key: str) -> str:
    """The ``k:`` path element of a keyed list item."""
    return "k:" + _dumps({merge_key: item[merge_key]})


def field_values(obj: dict[str, Any], schema: PatchSchema) -> dict[FieldPath, Any]:
    """Every ownable field of ``obj``: path → value (``PRESENT`` for items and set values)."""
    out: dict[FieldPath, Any] = {}
    if isinstance(obj, dict):
        for key, value in obj.items():
            if value is not None:
                _walk(value, schema.field(key), (f"f:{key}",), out)
    return out


def field_set(obj: dict[str, Any], schema: PatchSchema) -> set[FieldPath]:
    """The paths of :func:`field_values`."""
    return set(field_values(obj, schema))


def _walk(value: Any, schema: PatchSchema, prefix: FieldPath, out: dict[FieldPath, Any]) -> None:
    if isinstance(value, dict) and schema.kind in ("struct", "map", "any"):
        children = [(k, v) for k, v in value.items() if v is not None]
        if not children:
            out[prefix] = value
        for key, child in children:
            _walk(child, schema.field(key), (*prefix, f"f:{key}"), out)
        return
    if isinstance(value, list) and value and schema.kind == "list":
        key = schema.merge_key
        if schema.list_type == "map" and key and all(isinstance(i, dict) and key in i for i in value):
            for item in value:
                path = (*prefix, item_key(item, key))
                out[path] = PRESENT
                for k, v in item.items():
                    if v is not None:
                        _walk(v, schema.elem.field(k), (*path, f"f:{k}"), out)
            return
        if schema.list_type == "set" and not any(isinstance(i, (dict, list)) for i in value):
            for item in value:
                out[(*prefix, "v:" + _dumps(item))] = PRESENT
            return
    out[prefix] = value


def to_fields_v1(paths: Iterable[FieldPath]) -> dict[str, Any]:
    """Render a set of paths as a ``fieldsV1`` object."""
    tree: dict[str, Any] = {}
    members: list[FieldPath] = []
    for path in paths:
        node = tree
        for element in path:
            node = node.setdefault(element, {})
        members.append(path)
    for path in members:
        node = tree
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(tree)


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(node[k]) for k in sorted(node)}


def from_fields_v1(fields: dict[str, Any] | None) -> set[FieldPath]:
    """Parse a ``fieldsV1`` object back into a set of paths."""
    out: set[FieldPath] = set()

    def walk(node: dict[str, Any], prefix: FieldPath) -> None:
        for key, child in node.items():
            if key == ".":
                if prefix:
                    out.add(prefix)
                continue
            path = (*prefix, key)
            if isinstance(child, dict) and child:
                walk(child, path)
            else:
                out.add(path)

    if isinstance(fields, dict):
        walk(fields, ())
    return out


def path_string(path: FieldPath) -> str:
    """Kubernetes' readable form: ``.spec.containers[name="nginx"].image``."""
    parts: list[str] = []
    for element in path:
        kind, _, rest = element.partition(":")
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            keys = orjson.loads(rest)
            parts.append("[" + ",".join(f"{k}={_dumps(v)}" for k, v in keys.items()) + "]")
        elif kind == "v":
            parts.append(f"[={rest}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)


def get_path(obj: Any, path: FieldPath) -> Any:
    """The value at ``path`` (``PRESENT`` for items/set values), or ``None`` if absent."""
    node = obj
    for n, element in enumerate(path):
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(node, dict) or rest not in node:
                return None
            node = node[rest]
        elif kind in ("k", "v"):
            index = _find(node, kind, rest)
            if index is None:
                return None
            if n == len(path) - 1:
                return PRESENT
            node = node[index]
        else:
            return None
    return node


def _find(node: Any, kind: str, rest: str) -> int | None:
    if not isinstance(node, list):
        return None
    wanted = orjson.loads(rest)
    for i, item in enumerate(node):
        if kind == "v" and json_equal(item, wanted):
            return i
        if kind == "k" and isinstance(item, dict) and all(k in item and json_equal(item[k], v) for k, v in wanted.items()):
            return i
    return None


def remove_path(obj: dict[str, Any], path: FieldPath) -> None:
    """Delete the field, list item or set value at ``path`` from ``obj`` in place."""
    node: Any = obj
    for element in path[:-1]:
        kind, _, rest = element.partition(":")
        if kind == "f":
            if not isinstance(node, dict) or rest not in node:
                return
            node = node[rest]
        else:
            index = _find(node, kind, rest)
            if index is None:
                return
            node = node[index]
    kind, _, rest = path[-1].partition(":")
    if kind == "f":
        if isinstance(node, dict):
            node.pop(rest, None)
    else:
        index = _find(node, kind, rest)
        while index is not None:
            del node[index]
            index = _find(node, kind, rest)
