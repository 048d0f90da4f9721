"""Pure helpers for taints and tolerations, shared by controllers (and the scheduler).

No I/O and no clocks of their own: every function takes what it needs and returns a
new value, so the decisions of the node lifecycle controller can be tested on plain
dicts and never mutate an informer's cached objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]

NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"


def tolerates(toleration: Obj, taint: Obj) -> bool:
    """Whether one toleration tolerates one taint (Kubernetes' ToleratesTaint).

    An empty effect matches every effect; an empty key with ``Exists`` matches every
    key; ``Equal`` (the default operator) also compares values.
    """
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def matching_toleration(tolerations: Iterable[Obj], taint: Obj) -> Obj | None:
    """The first toleration that tolerates ``taint`` (the one Kubernetes uses), or None."""
    for toleration in tolerations:
        if tolerates(toleration, taint):
            return toleration
    return None


def untolerated(tolerations: Iterable[Obj], taints: Iterable[Obj]) -> list[Obj]:
    """The taints not tolerated by any of ``tolerations``."""
    tolerations = list(tolerations)
    return [t for t in taints if matching_toleration(tolerations, t) is None]


def taints_with_effect(node: Obj, effect: str) -> list[Obj]:
    """A node's taints of one effect."""
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == effect]


def same_taint(a: Obj, b: Obj) -> bool:
    """Taints are identified by key and effect (value and timeAdded may differ)."""
    return a.get("key") == b.get("key") and a.get("effect") == b.get("effect")


def has_taint(taints: Iterable[Obj], key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints)


def with_taint(taints: Iterable[Obj], taint: Obj) -> list[Obj]:
    """A new list holding ``taint``, replacing any taint with its key and effect."""
    return [dict(t) for t in taints if not same_taint(t, taint)] + [dict(taint)]


def without_taints(taints: Iterable[Obj], remove: Iterable[tuple[str, str]]) -> list[Obj]:
    """A new list without the taints whose (key, effect) is in ``remove``."""
    gone = set(remove)
    return [dict(t) for t in taints if (t.get("key"), t.get("effect")) not in gone]


def parse_time(value: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp (``Time`` or ``MicroTime``) as an aware datetime; None if unset/bad."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_micro_time(moment: dt.datetime) -> str:
    """RFC 3339 with microseconds, in UTC (``MicroTime``; also a valid ``Time``)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def eviction_deadline(
    tolerations: Iterable[Obj],
    taints: Iterable[Obj],
    started: Callable[[Obj], dt.datetime],
) -> dt.datetime | None:
    """When a pod must leave a node with these NoExecute ``taints``; None means never.

    A taint the pod does not tolerate evicts it at once (``dt.datetime.min`` in UTC);
    a tolerated one with ``tolerationSeconds`` evicts it that long after the taint
    started (``started(taint)``, usually its timeAdded); a toleration without seconds
    tolerates forever. The earliest deadline over all taints wins.
    """
    tolerations = list(tolerations)
    deadline: dt.datetime | None = None
    for taint in taints:
        toleration = matching_toleration(tolerations, taint)
        if toleration is None:
            return dt.datetime.min.replace(tzinfo=dt.UTC)
        seconds = toleration.get("tolerationSeconds")
        if seconds is None:
            continue
        due = started(taint) + dt.timedelta(seconds=max(0, int(seconds)))
        if deadline is None or due < deadline:
            deadline = due
    return deadline
