"""Server-side apply and field ownership (``metadata.managedFields``).

Every write records who set which fields. ``kubectl apply --server-side`` sends the
fields its manager wants to own (an *applied configuration*); the server merges them
into the live object, removes the fields the manager applied before but dropped
since (unless someone else owns them too), and refuses to change a field another
manager owns to a different value unless ``force`` is set — then ownership moves.
Ordinary writes (create, update, patch) go through :func:`record_update`: the writer
takes the fields it changed, away from everybody else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from kcore.apiserver.patch.errors import ApplyConflictError, PatchError
from kcore.apiserver.patch.fieldset import (
    FieldPath,
    field_values,
    from_fields_v1,
    get_path,
    path_string,
    remove_path,
    to_fields_v1,
)
from kcore.apiserver.patch.jsonutil import clone, json_equal
from kcore.apiserver.patch.schema import PatchSchema
from kcore.apiserver.patch.strategic import apply_strategic_merge_patch

IGNORED_FIELDS: tuple[FieldPath, ...] = (
    ("f:apiVersion",),
    ("f:kind",),
    ("f:metadata", "f:name"),
    ("f:metadata", "f:namespace"),
    ("f:metadata", "f:uid"),
    ("f:metadata", "f:resourceVersion"),
    ("f:metadata", "f:generation"),
    ("f:metadata", "f:creationTimestamp"),
    ("f:metadata", "f:deletionTimestamp"),
    ("f:metadata", "f:deletionGracePeriodSeconds"),
    ("f:metadata", "f:selfLink"),
    ("f:metadata", "f:managedFields"),
)
"""Fields nobody owns (identity and server-maintained metadata), as in Kubernetes."""


@dataclass
class ManagedEntry:
    """One ``managedFields`` entry with its field set parsed."""

    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: set[FieldPath] = field(default_factory=set)
    subresource: str | None = None

    @property
    def identity(self) -> tuple[str, str, str | None]:
        return (self.manager, self.operation, self.subresource)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time is not None:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = to_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def parse_managed_fields(entries: Any) -> list[ManagedEntry]:
    """``metadata.managedFields`` as :class:`ManagedEntry` objects (bad entries dropped)."""
    out: list[ManagedEntry] = []
    if not isinstance(entries, list):
        return out
    for raw in entries:
        if not isinstance(raw, dict) or not isinstance(raw.get("manager", ""), str):
            continue
        out.append(
            ManagedEntry(
                manager=raw.get("manager") or "",
                operation=raw.get("operation") or "Update",
                api_version=raw.get("apiVersion") or "",
                time=raw.get("time"),
                fields=from_fields_v1(raw.get("fieldsV1")),
                subresource=raw.get("subresource") or None,
            )
        )
    return out


def _is_ignored(path: FieldPath, ignored: Iterable[FieldPath]) -> bool:
    return any(path[: len(p)] == p for p in ignored)


def _owned_values(obj: dict[str, Any] | None, schema: PatchSchema, ignored: tuple[FieldPath, ...]) -> dict[FieldPath, Any]:
    if not isinstance(obj, dict):
        return {}
    return {p: v for p, v in field_values(obj, schema).items() if not _is_ignored(p, ignored)}


def _covers(paths: Iterable[FieldPath], prefix: FieldPath) -> bool:
    """Whether some path in ``paths`` is ``prefix`` or lies below it."""
    n = len(prefix)
    return any(p[:n] == prefix for p in paths)


def _is_item_key(path: FieldPath) -> bool:
    """Whether ``path`` is a merge-key field of a keyed list item: it lives as long as
    the item does, whoever owns the rest of the item."""
    if len(path) < 2 or not path[-1].startswith("f:") or not path[-2].startswith("k:"):
        return False
    return path[-1][2:] in orjson.loads(path[-2][2:])


def _set_managed(obj: dict[str, Any], entries: list[ManagedEntry]) -> None:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    meta["managedFields"] = [e.to_wire() for e in entries]


def _without_managed(obj: dict[str, Any]) -> dict[str, Any]:
    out = clone(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
    return out


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    *,
    force: bool,
    schema: PatchSchema,
    now: str,
    ignored: tuple[FieldPath, ...] = IGNORED_FIELDS,
) -> dict[str, Any]:
    """Merge the applied configuration into ``live`` and update ``managedFields``.

    ``live`` is ``None`` when the object does not exist yet (create on apply).
    ``ignored`` lists field prefixes nobody owns; the server may add ``("f:status",)``
    for the main resource of kinds with a status subresource. Raises
    :class:`ApplyConflictError` when another manager owns a field the configuration
    changes and ``force`` is false.
    """
    if not isinstance(applied, dict):
        raise PatchError(f"an applied configuration must be a JSON object, got {type(applied).__name__}")
    if not manager:
        raise PatchError("fieldManager is required for apply requests")
    config = _without_managed(applied)
    api_version = str(config.get("apiVersion") or (live or {}).get("apiVersion") or "")
    applied_values = _owned_values(config, schema, ignored)
    applied_set = set(applied_values)

    if live is None:
        result = apply_strategic_merge_patch({}, config, schema)
        _set_managed(result, [ManagedEntry(manager, "Apply", api_version, now, applied_set)])
        return result

    entries = parse_managed_fields((live.get("metadata") or {}).get("managedFields"))
    mine = next((e for e in entries if e.identity == (manager, "Apply", None)), None)
    others = [e for e in entries if e is not mine]
    base = _without_managed(live)
    candidate = apply_strategic_merge_patch(base, config, schema)

    conflicts: list[tuple[FieldPath, ManagedEntry]] = []
    for path in applied_values:
        for entry in others:
            if entry.manager == manager or path not in entry.fields:
                continue
            if not json_equal(get_path(base, path), get_path(candidate, path)):
                conflicts.append((path, entry))
    conflicts.sort(key=lambda c: (c[1].manager, c[0]))
    if conflicts and not force:
        raise ApplyConflictError(
            [(path_string(p), e.manager) for p, e in conflicts],
            {e.manager: e.api_version for _, e in conflicts},
        )
    for path, entry in conflicts:
        entry.fields.discard(path)

    # Fields this manager applied before and no longer applies go away, unless another
    # manager still owns them (or something below them).
    previous = mine.fields if mine else set()
    others_owned = set().union(*(e.fields for e in others)) if others else set()
    for path in sorted(previous - applied_set, key=len):
        if _covers(others_owned, path) or _covers(applied_set, path) or _is_item_key(path):
            continue
        remove_path(base, path)
    result = apply_strategic_merge_patch(base, config, schema)

    if mine is None:
        mine = ManagedEntry(manager, "Apply", api_version, now)
        entries.append(mine)
    mine.fields = applied_set
    mine.time = now
    mine.api_version = api_version
    _set_managed(result, [e for e in entries if e.fields or e is mine])
    return result


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    *,
    operation: str = "Update",
    subresource: str | None = None,
    schema: PatchSchema,
    now: str,
    ignored: tuple[FieldPath, ...] = IGNORED_FIELDS,
) -> dict[str, Any]:
    """``new`` with ``managedFields`` updated for an ordinary write by ``manager``.

    The manager gains the fields it added or changed; everybody else loses them, and
    fields the write removed leave every set. A client that sends its own
    ``managedFields`` (different from the stored ones) replaces the stored entries,
    as in Kubernetes (``[]`` resets ownership).
    """
    result = clone(new)
    old_meta = (old or {}).get("metadata") or {}
    new_meta = result.get("metadata") or {}
    stored = old_meta.get("managedFields")
    if "managedFields" in new_meta and not json_equal(new_meta.get("managedFields"), stored):
        entries = parse_managed_fields(new_meta.get("managedFields"))
    else:
        entries = parse_managed_fields(stored)

    old_values = _owned_values(_without_managed(old) if old else None, schema, ignored)
    new_values = _owned_values(_without_managed(result), schema, ignored)
    changed = {p for p, v in new_values.items() if p not in old_values or not json_equal(old_values[p], v)}
    removed = set(old_values) - set(new_values)

    identity = (manager, operation, subresource)
    mine = next((e for e in entries if e.identity == identity), None)
    for entry in entries:
        if entry is not mine:
            entry.fields -= changed
        entry.fields -= removed
    if changed:
        if mine is None:
            mine = ManagedEntry(manager, operation, str(result.get("apiVersion") or ""), now, subresource=subresource)
            entries.append(mine)
        mine.fields |= changed
        mine.time = now
        mine.api_version = str(result.get("apiVersion") or mine.api_version)
    kept = [e for e in entries if e.fields]
    if kept:
        _set_managed(result, kept)
    elif isinstance(result.get("metadata"), dict):
        result["metadata"].pop("managedFields", None)
    return result
