"""JSON merge patch (RFC 7386): what ``kubectl label/annotate/scale`` send.

Objects merge key by key, ``null`` removes a key, anything else (lists included)
replaces the target wholesale.
"""

from __future__ import annotations

from typing import Any

from kcore.apiserver.patch.jsonutil import clone, json_equal


def apply_merge_patch(original: Any, patch: Any) -> Any:
    """Apply ``patch`` to ``original`` per RFC 7386; neither argument is mutated."""
    if not isinstance(patch, dict):
        return clone(patch)
    result: dict[str, Any] = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    # Keys not touched by the patch are shared with ``original``; copy them so the
    # result is independent of the input.
    for key, value in result.items():
        if key not in patch:
            result[key] = clone(value)
    return result


def create_merge_patch(original: Any, modified: Any) -> Any:
    """The smallest merge patch turning ``original`` into ``modified``.

    ``null`` values inside ``modified`` objects cannot be expressed by RFC 7386 (they
    mean "delete"), so they are treated as absent.
    """
    if not isinstance(original, dict) or not isinstance(modified, dict):
        return clone(modified)
    patch: dict[str, Any] = {}
    for key, old in original.items():
        if key not in modified or modified[key] is None:
            patch[key] = None
    for key, new in modified.items():
        if new is None:
            continue
        if key not in original:
            patch[key] = _strip_nulls(new)
            continue
        old = original[key]
        if json_equal(old, new):
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            patch[key] = create_merge_patch(old, new)
        else:
            patch[key] = _strip_nulls(new)
    return patch


def _strip_nulls(value: Any) -> Any:
    """A copy without ``null`` object members (they would read as deletions)."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    return clone(value)
