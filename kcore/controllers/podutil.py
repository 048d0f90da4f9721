"""Pod helpers shared by the workload controllers: readiness, availability, ranking
pods for deletion, the pod-template hash, owner references and pods from templates.

Everything here is a pure function of wire dicts (no I/O), so the decisions the
controllers make can be unit-tested without a server. None of them mutates its
arguments: objects usually come from an informer cache, which must stay untouched.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

Obj = dict[str, Any]

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}
# Kubernetes' rand.SafeEncodeString alphabet: no vowels (no words), no look-alikes.
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# ---------------------------------------------------------------- time


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_time(moment: dt.datetime) -> str:
    """``metav1.Time`` on the wire: RFC 3339, UTC, whole seconds."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# ---------------------------------------------------------------- pod state


def is_terminating(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_pod_active(pod: Mapping[str, Any]) -> bool:
    """Counts toward a controller's replicas: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_terminating(pod)


def pod_ready_condition(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = pod_ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Mapping[str, Any], min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least ``min_ready_seconds`` (a Ready pod without a transition time is
    taken as just-ready, so it is available at once only when the minimum is 0)."""
    cond = pod_ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(cond.get("lastTransitionTime"))
    return since is not None and since + dt.timedelta(seconds=min_ready_seconds) <= now


def seconds_until_available(pod: Mapping[str, Any], min_ready_seconds: int, now: dt.datetime) -> float | None:
    """How long until a ready-but-not-yet-available pod becomes available (None if n/a)."""
    cond = pod_ready_condition(pod)
    if min_ready_seconds <= 0 or cond is None or cond.get("status") != "True":
        return None
    since = parse_time(cond.get("lastTransitionTime")) or now
    left = (since + dt.timedelta(seconds=min_ready_seconds) - now).total_seconds()
    return left if left > 0 else None


def restart_count(pod: Mapping[str, Any]) -> int:
    return sum(int(cs.get("restartCount") or 0)
               for cs in (pod.get("status") or {}).get("containerStatuses") or [])


def _deletion_cost(pod: Mapping[str, Any]) -> int:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(POD_DELETION_COST_ANNOTATION)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def deletion_rank(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key: pods that sort first are deleted first, as Kubernetes' ActivePods order.

    Unscheduled before scheduled, Pending before Unknown before Running, not-ready
    before ready, lower pod-deletion-cost first, ready for less time first, more
    restarts first, newer before older.
    """
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    ready = is_pod_ready(pod)
    ready_since = ""
    if ready:
        ready_since = (pod_ready_condition(pod) or {}).get("lastTransitionTime") or ""
    created = meta.get("creationTimestamp") or ""
    return (
        1 if (pod.get("spec") or {}).get("nodeName") else 0,
        _PHASE_RANK.get(status.get("phase") or "Pending", 0),
        1 if ready else 0,
        _deletion_cost(pod),
        # Recently ready first: a later timestamp sorts first (negate by inverting the string order).
        _Desc(ready_since),
        -restart_count(pod),
        _Desc(created),
        _Desc(meta.get("name") or ""),
    )


class _Desc:
    """Wraps a string so that sorting ascending orders it descending."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def pods_to_delete(pods: Iterable[Obj], count: int) -> list[Obj]:
    """The ``count`` pods a controller with too many should delete, cheapest loss first."""
    if count <= 0:
        return []
    return sorted(pods, key=deletion_rank)[:count]


# ---------------------------------------------------------------- ownership


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: Mapping[str, Any], api_version: str, kind: str) -> Obj:
    """A controller ownerReference to ``owner`` (blocks foreground deletion of the owner)."""
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def adopt_patch(obj: Mapping[str, Any], ref: Obj) -> Obj:
    """A merge patch adding controller ``ref`` to ``obj``; conditional on its resourceVersion,
    so that two controllers racing to adopt cannot both win."""
    meta = obj.get("metadata") or {}
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != ref["uid"]]
    return {"metadata": {"ownerReferences": [*refs, ref], "resourceVersion": meta.get("resourceVersion")}}


def release_patch(obj: Mapping[str, Any], owner_uid: str) -> Obj:
    """A merge patch removing the ownerReference to ``owner_uid`` (conditional, as adoption)."""
    meta = obj.get("metadata") or {}
    refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != owner_uid]
    return {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta.get("resourceVersion")}}


def pod_from_template(template: Mapping[str, Any], owner: Mapping[str, Any], ref: Obj) -> Obj:
    """A new pod for ``owner``: the template's labels, annotations and spec, generateName
    ``<owner>-`` and the controller ownerReference ``ref``."""
    tmeta = template.get("metadata") or {}
    owner_meta = owner["metadata"]
    meta: Obj = {"generateName": f"{owner_meta['name']}-", "namespace": owner_meta.get("namespace"),
                 "ownerReferences": [ref]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


# ---------------------------------------------------------------- template hash


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for byte in data:
        h ^= byte
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(value: str) -> str:
    """Map each character onto an alphabet without vowels, as Kubernetes' SafeEncodeString."""
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in value)


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """The ``pod-template-hash`` of a pod template: FNV-32a over its canonical JSON
    (sorted keys, so equal templates hash equally in any process) plus the collision
    count, which a Deployment bumps to escape a name clash."""
    data = orjson.dumps(template_without_hash(template), option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(_fnv32a(data)))


def template_without_hash(template: Mapping[str, Any]) -> Obj:
    """A copy of ``template`` without the pod-template-hash label and without empty maps,
    the form in which two templates are compared."""
    out = copy.deepcopy(dict(template))
    meta = dict(out.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != POD_TEMPLATE_HASH_LABEL}
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    if not meta.get("annotations"):
        meta.pop("annotations", None)
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def templates_equal_ignoring_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return template_without_hash(a) == template_without_hash(b)
