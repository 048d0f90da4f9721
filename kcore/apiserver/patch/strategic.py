"""Strategic merge patch: what ``kubectl apply`` (client-side), ``kubectl patch`` and
the Python client send (``application/strategic-merge-patch+json``).

It is JSON merge patch plus knowledge of the kind's lists (from :class:`PatchSchema`):
lists tagged ``patchStrategy: merge`` merge item by item on their merge key (or as a
set, for primitives) instead of being replaced, and the patch may carry directives:

- ``$patch: replace | merge | delete`` in a map (replace it whole, merge it, drop it);
  ``{"$patch": "replace"}`` as a list item replaces the whole list, and
  ``{"$patch": "delete", <key>: <value>}`` deletes the items with that merge key;
- ``$retainKeys: [...]``: the map keeps only those keys (union types such as a
  Deployment's strategy, a volume's source);
- ``$setElementOrder/<list>: [...]``: the order of the merged list;
- ``$deleteFromPrimitiveList/<list>: [...]``: values to drop from a primitive set;
- ``null`` deletes a field.
"""

from __future__ import annotations

from typing import Any

import orjson

from kcore.apiserver.patch.errors import PatchError
from kcore.apiserver.patch.jsonutil import clone, json_equal
from kcore.apiserver.patch.schema import PatchSchema

PATCH_DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER_PREFIX = "$setElementOrder/"
DELETE_FROM_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"

_DELETE = object()
"""Returned by a merge step whose patch said ``$patch: delete``."""

_NO_KEY = object()
"""Identity of a list item that lacks the merge key (never matches an order entry)."""


def apply_strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any], schema: PatchSchema) -> dict[str, Any]:
    """Apply a strategic merge ``patch`` to ``original``; neither is mutated."""
    if not isinstance(patch, dict):
        raise PatchError(f"a strategic merge patch must be a JSON object, got {type(patch).__name__}")
    base = clone(original) if isinstance(original, dict) else {}
    result = _merge_map(base, clone(patch), schema, "")
    return {} if result is _DELETE else result


def _where(path: str) -> str:
    return path or "the object root"


def _merge_map(original: dict[str, Any], patch: dict[str, Any], schema: PatchSchema, path: str) -> Any:
    """Merge ``patch`` into ``original`` (which this function may reuse, not mutate)."""
    directive = patch.get(PATCH_DIRECTIVE)
    if directive is not None:
        rest = {k: v for k, v in patch.items() if k != PATCH_DIRECTIVE}
        if directive == "delete":
            return _DELETE
        if directive == "replace":
            return _merge_map({}, rest, schema, path)
        if directive != "merge":
            raise PatchError(
                f'unknown $patch directive "{directive}" at {_where(path)} (expected replace, merge or delete)'
            )
        patch = rest

    result = dict(original)
    if RETAIN_KEYS in patch:
        keep = patch[RETAIN_KEYS]
        if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
            raise PatchError(f"$retainKeys at {_where(path)} must be a list of field names, got {keep!r}")
        result = {k: v for k, v in result.items() if k in keep}

    # Deletions from primitive sets apply to the original values, before additions.
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_PREFIX):
            field = key[len(DELETE_FROM_PRIMITIVE_PREFIX) :]
            if not isinstance(value, list):
                raise PatchError(f"{key} at {_where(path)} must be a list, got {value!r}")
            current = result.get(field)
            if isinstance(current, list):
                result[field] = [x for x in current if not any(json_equal(x, v) for v in value)]

    orders: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key.startswith("$"):
            if key.startswith(SET_ORDER_PREFIX):
                orders.append((key[len(SET_ORDER_PREFIX) :], value))
            elif key != RETAIN_KEYS and not key.startswith(DELETE_FROM_PRIMITIVE_PREFIX):
                raise PatchError(f'unknown strategic merge patch directive "{key}" at {_where(path)}')
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = _merge_value(result.get(key), value, schema.field(key), f"{path}.{key}")
        if merged is _DELETE:
            result.pop(key, None)
        else:
            result[key] = merged

    for field, order in orders:
        _apply_order(result, field, order, schema.field(field), f"{path}.{field}")
    return result


def _merge_value(original: Any, patch: Any, schema: PatchSchema, path: str) -> Any:
    if isinstance(patch, dict):
        return _merge_map(original if isinstance(original, dict) else {}, patch, schema, path)
    if isinstance(patch, list) and schema.kind == "list" and schema.list_type != "atomic":
        return _merge_list(original if isinstance(original, list) else [], patch, schema, path)
    return patch


def _is_replace_marker(item: Any) -> bool:
    return isinstance(item, dict) and item.get(PATCH_DIRECTIVE) == "replace"


def _merge_list(original: list[Any], patch: list[Any], schema: PatchSchema, path: str) -> list[Any]:
    if any(_is_replace_marker(item) for item in patch):
        kept = [item for item in patch if not _is_replace_marker(item)]
        if schema.list_type == "map":
            return [_merge_map({}, item, schema.elem, path) if isinstance(item, dict) else item for item in kept]
        return kept
    if schema.list_type == "set":
        return _merge_set(original, patch, path)
    return _merge_keyed(original, patch, schema, path)


def _merge_set(original: list[Any], patch: list[Any], path: str) -> list[Any]:
    """Union of two primitive lists, original order first, without duplicates."""
    result: list[Any] = []
    for value in [*original, *patch]:
        if isinstance(value, dict):
            raise PatchError(f"{path} is a list of primitive values; unexpected item {value!r}")
        if not any(json_equal(value, seen) for seen in result):
            result.append(value)
    return result


def _merge_keyed(original: list[Any], patch: list[Any], schema: PatchSchema, path: str) -> list[Any]:
    key = schema.merge_key
    assert key is not None
    result = list(original)
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{path} merges on key \"{key}\"; items must be objects, got {item!r}")
        if key not in item:
            raise PatchError(f'{path}: item {_short(item)} does not contain the merge key "{key}"')
        value = item[key]
        where = f"{path}[{key}={_short(value)}]"
        directive = item.get(PATCH_DIRECTIVE)
        if directive == "delete":
            result = [x for x in result if not (isinstance(x, dict) and json_equal(x.get(key), value))]
            continue
        if directive not in (None, "merge"):
            raise PatchError(f'unknown $patch directive "{directive}" at {where} (expected merge or delete)')
        for i, existing in enumerate(result):
            if isinstance(existing, dict) and key in existing and json_equal(existing[key], value):
                result[i] = _merge_map(existing, item, schema.elem, where)
                break
        else:
            result.append(_merge_map({}, item, schema.elem, where))
    return result


def _apply_order(result: dict[str, Any], field: str, order: Any, schema: PatchSchema, path: str) -> None:
    """Reorder ``result[field]`` as ``$setElementOrder/<field>`` says.

    Items named in the order fill, in that order, the positions that such items hold
    in the merged list; items only the server knows keep their positions.
    """
    if not isinstance(order, list):
        raise PatchError(f"$setElementOrder for {path} must be a list, got {order!r}")
    items = result.get(field)
    if not isinstance(items, list):
        return
    wanted: list[Any]
    ids: list[Any]
    if schema.kind == "list" and schema.list_type == "map":
        key = schema.merge_key
        wanted = []
        for entry in order:
            if not isinstance(entry, dict) or key not in entry:
                raise PatchError(f'$setElementOrder for {path}: entry {_short(entry)} lacks the merge key "{key}"')
            wanted.append(entry[key])
        ids = [x.get(key, _NO_KEY) if isinstance(x, dict) else _NO_KEY for x in items]
    else:
        wanted = list(order)
        ids = list(items)

    rank: dict[bytes, int] = {}
    for i, value in enumerate(wanted):
        rank.setdefault(_hash_key(value), i)
    ranked = [(rank.get(_hash_key(i)), x) for i, x in zip(ids, items)]
    in_order = iter(sorted((r, i, x) for i, (r, x) in enumerate(ranked) if r is not None))
    result[field] = [x if r is None else next(in_order)[2] for r, x in ranked]



def _hash_key(value: Any) -> bytes:
    if value is _NO_KEY:
        return b"\x00no-key"
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return repr(value).encode()


def _short(value: Any) -> str:
    try:
        text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


