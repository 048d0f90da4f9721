"""PodTopologySpread: keep matching pods evenly spread over topology domains.

For each constraint, pods in the pod's namespace that match ``labelSelector``
are counted per domain (the value of ``topologyKey`` on their node), over the
nodes that carry the key and match the pod's node selector/affinity.
``DoNotSchedule`` constraints filter: placing the pod must keep
``count(domain) + 1 - min(count)`` at or below ``maxSkew``.
``ScheduleAnyway`` constraints score: fewer matching pods in the node's domain
is better.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kcore import hookimpl
from kcore.scheduler import labels
from kcore.scheduler.node_info import NodeInfo, PodInfo
from kcore.scheduler.scoring import MAX_NODE_SCORE
from kcore.scheduler.status import Status

REASON = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
_FILTER_KEY = "PodTopologySpread.filter"
_SCORE_KEY = "PodTopologySpread.score"


@dataclass
class Constraint:
    """One constraint, compiled, with the matching-pod count per domain."""

    max_skew: int
    topology_key: str
    selector: labels.LabelPredicate
    self_match: int
    min_domains: int = 1
    counts: dict[str, int] = field(default_factory=dict)

    def min_count(self) -> int:
        """The smallest domain count; 0 while fewer domains than ``minDomains`` exist."""
        if not self.counts or len(self.counts) < self.min_domains:
            return 0
        return min(self.counts.values())


def compile_constraints(pod: Any, when: str) -> list[Constraint]:
    """The pod's constraints with ``whenUnsatisfiable == when``, compiled."""
    out = []
    pod_labels = pod.metadata.labels or {}
    for c in pod.spec.topologySpreadConstraints or ():
        if c.whenUnsatisfiable != when:
            continue
        selector = labels.label_selector(c.labelSelector)
        out.append(Constraint(c.maxSkew, c.topologyKey, selector, int(selector(pod_labels)), c.minDomains or 1))
    return out


def count_domains(constraints: list[Constraint], namespace: str, nodes: Iterable[NodeInfo],
                  node_ok: labels.NodePredicate | None) -> None:
    """Fill each constraint's per-domain counts from the nodes' pods."""
    keys = [c.topology_key for c in constraints]
    for node in nodes:
        node_labels = node.labels
        if any(k not in node_labels for k in keys):
            continue
        if node_ok is not None and not node_ok(node.name, node_labels):
            continue
        for c in constraints:
            domain = node_labels[c.topology_key]
            matched = sum(
                1 for p in node.pods.values()
                if p.namespace == namespace and p.pod.metadata.deletionTimestamp is None and c.selector(p.labels)
            )
            c.counts[domain] = c.counts.get(domain, 0) + matched


def skew_violation(constraints: list[Constraint], node_labels: labels.Labels) -> str | None:
    """Why the node breaks a constraint (a reason string), or None if it keeps them all."""
    for c in constraints:
        domain = node_labels.get(c.topology_key)
        if domain is None:
            return MISSING_LABEL
        if c.counts.get(domain, 0) + c.self_match - c.min_count() > c.max_skew:
            return REASON
    return None


class PodTopologySpread:
    name = "PodTopologySpread"

    @hookimpl
    def kcore_scheduler_pre_filter(self, state: Any, pod: Any, nodes: list[NodeInfo]) -> Status | None:
        constraints = compile_constraints(pod, "DoNotSchedule")
        if not constraints:
            return Status.skip()
        info = state.pod_info if state.pod_info is not None else PodInfo(pod)
        count_domains(constraints, info.namespace, nodes, labels.pod_node_matcher(pod))
        state.write(_FILTER_KEY, constraints)
        return None

    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: NodeInfo) -> Status | None:
        constraints = state.read(_FILTER_KEY)
        if not constraints:
            return None
        reason = skew_violation(constraints, node_info.labels)
        if reason is None:
            return None
        return Status.unresolvable(reason) if reason == MISSING_LABEL else Status.unschedulable(reason)

    @hookimpl
    def kcore_scheduler_pre_score(self, state: Any, pod: Any, nodes: list[NodeInfo]) -> Status | None:
        constraints = compile_constraints(pod, "ScheduleAnyway")
        if not constraints:
            return Status.skip()
        handle = state.handle
        everywhere = handle.cache.node_infos() if handle is not None and handle.cache is not None else nodes
        info = state.pod_info if state.pod_info is not None else PodInfo(pod)
        count_domains(constraints, info.namespace, everywhere, labels.pod_node_matcher(pod))
        # More domains make each one matter more (Kubernetes: log(domains + 2)).
        weights = [math.log(len(c.counts) + 2) for c in constraints]
        state.write(_SCORE_KEY, (constraints, weights, set()))
        return None

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: NodeInfo) -> int | None:
        constraints, weights, ignored = state.read(_SCORE_KEY)
        total = 0.0
        for c, weight in zip(constraints, weights):
            domain = node_info.labels.get(c.topology_key)
            if domain is None:
                ignored.add(node_info.name)
                return 0
            total += c.counts.get(domain, 0) * weight + (c.max_skew - 1)
        return round(total)

    @hookimpl
    def kcore_scheduler_normalize_score(self, state: Any, pod: Any, scores: dict[str, int]) -> dict[str, int]:
        _, _, ignored = state.read(_SCORE_KEY)
        return normalize_spread(scores, ignored)


def normalize_spread(scores: dict[str, int], ignored: set[str]) -> dict[str, int]:
    """Fewest matching pods -> 100; nodes without the topology keys -> 0."""
    counted = [s for n, s in scores.items() if n not in ignored]
    if not counted:
        return dict.fromkeys(scores, 0)
    low, high = min(counted), max(counted)
    out = {}
    for name, score in scores.items():
        if name in ignored:
            out[name] = 0
        elif high == 0:
            out[name] = MAX_NODE_SCORE
        else:
            out[name] = MAX_NODE_SCORE * (high + low - score) // high
    return out
