"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory fill evenly.

With the pod added, each resource's used fraction (capped at 1) is computed; the
score is ``(1 - standard deviation of the fractions) * 100``, so a node at 50%
cpu and 50% memory beats one at 90% cpu and 10% memory.
"""

from __future__ import annotations

import math
from typing import Any

from kcore import hookimpl
from kcore.scheduler.node_info import NodeInfo, PodInfo
from kcore.scheduler.resources import CPU, MEMORY
from kcore.scheduler.scoring import MAX_NODE_SCORE


def balanced_score(fractions: list[float]) -> int:
    """100 for equal fractions, lower the more they spread."""
    if len(fractions) < 2:
        return MAX_NODE_SCORE
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    else:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)


def fractions(requested: dict[str, int], allocatable: dict[str, int]) -> list[float]:
    """Used fraction of cpu and memory; resources the node does not have are left out."""
    out = []
    for name in (CPU, MEMORY):
        capacity = allocatable.get(name, 0)
        if capacity > 0:
            out.append(min(requested.get(name, 0) / capacity, 1.0))
    return out


class NodeResourcesBalancedAllocation:
    name = "NodeResourcesBalancedAllocation"

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: NodeInfo) -> int | None:
        info = state.pod_info if state.pod_info is not None else PodInfo(pod)
        req = node_info.requested
        alloc = node_info.allocatable
        alloc_cpu = alloc.get(CPU, 0)
        alloc_memory = alloc.get(MEMORY, 0)
        if alloc_cpu <= 0 or alloc_memory <= 0:  # the general (slower) path
            total = {
                CPU: req.get(CPU, 0) + info.requests.get(CPU, 0),
                MEMORY: req.get(MEMORY, 0) + info.requests.get(MEMORY, 0),
            }
            return balanced_score(fractions(total, alloc))
        cpu = min((req.get(CPU, 0) + info.requests.get(CPU, 0)) / alloc_cpu, 1.0)
        memory = min((req.get(MEMORY, 0) + info.requests.get(MEMORY, 0)) / alloc_memory, 1.0)
        return int((1 - abs(cpu - memory) / 2) * MAX_NODE_SCORE)
