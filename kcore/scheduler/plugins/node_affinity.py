"""NodeAffinity: ``nodeSelector`` and required node affinity filter, preferred affinity scores.

Filter: the node's labels must match every ``nodeSelector`` entry and at least
one required ``nodeSelectorTerm`` (expressions In/NotIn/Exists/DoesNotExist/
Gt/Lt, fields ``metadata.name``). Score: the sum of the weights of the
preferred terms the node matches, scaled so the best node gets 100.
"""

from __future__ import annotations

from typing import Any

from kcore import hookimpl
from kcore.scheduler import labels
from kcore.scheduler.node_info import NodeInfo
from kcore.scheduler.scoring import default_normalize
from kcore.scheduler.status import Status

REASON = "node(s) didn't match Pod's node affinity/selector"
_FILTER_KEY = "NodeAffinity.required"
_SCORE_KEY = "NodeAffinity.preferred"


def preferred_terms(pod: Any) -> list[tuple[int, labels.NodePredicate]]:
    """The pod's preferred scheduling terms as (weight, predicate)."""
    affinity = pod.spec.affinity.nodeAffinity if pod.spec.affinity is not None else None
    terms = affinity.preferredDuringSchedulingIgnoredDuringExecution if affinity is not None else None
    return [(t.weight, labels.node_selector_term(t.preference)) for t in terms or () if t.weight]


def preferred_score(terms: list[tuple[int, labels.NodePredicate]], node_name: str, node_labels: labels.Labels) -> int:
    return sum(weight for weight, matches in terms if matches(node_name, node_labels))


class NodeAffinity:
    name = "NodeAffinity"

    @hookimpl
    def kcore_scheduler_pre_filter(self, state: Any, pod: Any, nodes: list[NodeInfo]) -> Status | None:
        matcher = labels.pod_node_matcher(pod)
        if matcher is None:
            return Status.skip()
        state.write(_FILTER_KEY, matcher)
        return None

    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: NodeInfo) -> Status | None:
        matcher = state.read(_FILTER_KEY)
        if matcher is None:
            matcher = labels.pod_node_matcher(pod)
            if matcher is None:
                return None
        if matcher(node_info.name, node_info.labels):
            return None
        return Status.unresolvable(REASON)

    @hookimpl
    def kcore_scheduler_pre_score(self, state: Any, pod: Any, nodes: list[NodeInfo]) -> Status | None:
        terms = preferred_terms(pod)
        if not terms:
            return Status.skip()
        state.write(_SCORE_KEY, terms)
        return None

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: NodeInfo) -> int | None:
        terms = state.read(_SCORE_KEY)
        if terms is None:
            terms = preferred_terms(pod)
        return preferred_score(terms, node_info.name, node_info.labels)

    @hookimpl
    def kcore_scheduler_normalize_score(self, state: Any, pod: Any, scores: dict[str, int]) -> dict[str, int]:
        return default_normalize(scores)
