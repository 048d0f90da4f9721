"""JSON patch (RFC 6902): what ``kubectl patch --type=json`` and the Python client
send for list bodies.

Operations run in order on a copy of the document; the first failing one aborts the
whole patch with a :class:`PatchError` naming the operation, its index and its path.
"""

from __future__ import annotations

from typing import Any

from kcore.apiserver.patch.errors import PatchError
from kcore.apiserver.patch.jsonutil import clone, json_equal

_OPS = ("add", "remove", "replace", "move", "copy", "test")


def parse_pointer(pointer: str) -> list[str]:
    """Split a JSON pointer (RFC 6901) into unescaped reference tokens."""
    if not isinstance(pointer, str):
        raise PatchError(f"JSON pointer must be a string, got {type(pointer).__name__}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'JSON pointer "{pointer}" must be empty or start with "/"')
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(token: str, length: int, *, allow_end: bool) -> int:
    """The list index a token names; ``-`` means one past the end (add only)."""
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or not token.isascii():
        raise PatchError(f'"{token}" is not a valid array index')
    idx = int(token)
    limit = length if allow_end else length - 1
    if idx > limit:
        raise PatchError(f"array index {idx} is out of bounds (array has {length} elements)")
    return idx


def _resolve(doc: Any, tokens: list[str]) -> Any:
    """The value the tokens point at; raises PatchError when it does not exist."""
    node = doc
    for depth, token in enumerate(tokens):
        where = "/" + "/".join(tokens[:depth]) if depth else "the document root"
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f'key "{token}" does not exist under {where}')
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), allow_end=False)]
        else:
            raise PatchError(f'cannot look up "{token}": {where} is not an object or array')
    return node


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), allow_end=True), value)
    else:
        raise PatchError("parent of the target location is not an object or array")
    return doc


def _remove(doc: Any, tokens: list[str]) -> tuple[Any, Any]:
    """Remove the target; returns the new document and the removed value."""
    if not tokens:
        return None, doc
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'key "{last}" does not exist')
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), allow_end=False))
    raise PatchError("parent of the target location is not an object or array")


def _replace(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'key "{last}" does not exist')
        parent[last] = value
    elif isinstance(parent, list):
        parent[_index(last, len(parent), allow_end=False)] = value
    else:
        raise PatchError("parent of the target location is not an object or array")
    return doc


def _field(op: dict[str, Any], name: str) -> Any:
    if name not in op:
        raise PatchError(f'missing "{name}" member')
    return op[name]


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind = op["op"]
    path = _field(op, "path")
    tokens = parse_pointer(path)
    if kind == "add":
        return _add(doc, tokens, clone(_field(op, "value")))
    if kind == "remove":
        return _remove(doc, tokens)[0]
    if kind == "replace":
        return _replace(doc, tokens, clone(_field(op, "value")))
    if kind == "test":
        expected = _field(op, "value")
        actual = _resolve(doc, tokens)
        if not json_equal(actual, expected):
            raise PatchError(f"test failed: value is {actual!r}, expected {expected!r}")
        return doc
    source = parse_pointer(_field(op, "from"))
    if kind == "copy":
        return _add(doc, tokens, clone(_resolve(doc, source)))
    # move
    if tokens[: len(source)] == source and len(tokens) > len(source):
        raise PatchError(f'cannot move "{op["from"]}" into its own child "{path}"')
    if tokens == source:
        _resolve(doc, source)
        return doc
    doc, value = _remove(doc, source)
    return _add(doc, tokens, value)


def apply_json_patch(original: Any, operations: list[Any]) -> Any:
    """Apply RFC 6902 ``operations`` to a copy of ``original`` and return it."""
    if not isinstance(operations, list):
        raise PatchError(f"a JSON patch must be a list of operations, got {type(operations).__name__}")
    doc = clone(original)
    for i, op in enumerate(operations):
        if not isinstance(op, dict):
            raise PatchError(f"JSON patch operation {i} is not an object: {op!r}")
        kind = op.get("op")
        if kind not in _OPS:
            raise PatchError(
                f"JSON patch operation {i} has unknown op {kind!r} (expected one of {', '.join(_OPS)})"
            )
        try:
            doc = _apply_one(doc, op)
        except PatchError as exc:
            raise PatchError(f'JSON patch operation {i} ({kind} "{op.get("path", "")}") failed: {exc}') from None
    return doc
