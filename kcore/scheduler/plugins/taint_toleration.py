"""TaintToleration: NoSchedule/NoExecute taints filter, PreferNoSchedule taints score.

Filter: a node with a NoSchedule or NoExecute taint the pod does not tolerate
is rejected. Score: the fewer untolerated PreferNoSchedule taints, the better
(raw score = their count, normalized in reverse).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from kcore import hookimpl
from kcore.scheduler.node_info import NodeInfo
from kcore.scheduler.scoring import default_normalize
from kcore.scheduler.status import Status

_FILTER_EFFECTS = ("NoSchedule", "NoExecute")
_STATE_KEY = "TaintToleration.preferTolerations"


def tolerates(toleration: Any, key: str, value: str | None, effect: str) -> bool:
    """Whether one toleration tolerates the taint ``key=value:effect``.

    An empty toleration effect matches every effect; ``Exists`` with an empty
    key matches every taint; ``Equal`` (the default) needs key and value equal.
    """
    if toleration.effect and toleration.effect != effect:
        return False
    operator = toleration.operator or "Equal"
    if operator == "Exists":
        return not toleration.key or toleration.key == key
    if operator == "Equal":
        return toleration.key == key and (toleration.value or "") == (value or "")
    return False


def first_untolerated(taints: Iterable[Any], tolerations: Sequence[Any], effects: Sequence[str]) -> Any:
    """The first taint with one of ``effects`` that no toleration covers, else None."""
    for taint in taints:
        if taint.effect not in effects:
            continue
        if not any(tolerates(t, taint.key, taint.value, taint.effect) for t in tolerations):
            return taint
    return None


def count_untolerated_prefer(taints: Iterable[Any], tolerations: Sequence[Any]) -> int:
    """How many PreferNoSchedule taints the tolerations leave uncovered."""
    return sum(
        1 for taint in taints
        if taint.effect == "PreferNoSchedule"
        and not any(tolerates(t, taint.key, taint.value, taint.effect) for t in tolerations)
    )


def untolerated_reason(taint: Any) -> str:
    """Kubernetes' wording: ``node(s) had untolerated taint {key: value}``."""
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value or ''}}}"


class TaintToleration:
    name = "TaintToleration"

    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: NodeInfo) -> Status | None:
        if not node_info.taints:
            return None
        taint = first_untolerated(node_info.taints, pod.spec.tolerations or (), _FILTER_EFFECTS)
        return None if taint is None else Status.unresolvable(untolerated_reason(taint))

    @hookimpl
    def kcore_scheduler_pre_score(self, state: Any, pod: Any, nodes: list[NodeInfo]) -> Status | None:
        if not any(t.effect == "PreferNoSchedule" for n in nodes for t in n.taints):
            return Status.skip()  # every node scores the same
        tolerations = [t for t in pod.spec.tolerations or () if t.effect in (None, "", "PreferNoSchedule")]
        state.write(_STATE_KEY, tolerations)
        return None

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: NodeInfo) -> int | None:
        return count_untolerated_prefer(node_info.taints, state.read(_STATE_KEY, ()))

    @hookimpl
    def kcore_scheduler_normalize_score(self, state: Any, pod: Any, scores: dict[str, int]) -> dict[str, int]:
        return default_normalize(scores, reverse=True)
