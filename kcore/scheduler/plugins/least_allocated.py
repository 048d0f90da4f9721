"""NodeResourcesLeastAllocated: prefer the node with the most cpu and memory left.

Per resource: ``(allocatable - requested) * 100 / allocatable`` after adding
the pod, where pods without requests count as 100m cpu and 200Mi memory; the
node's score is the average over cpu and memory.
"""

from __future__ import annotations

from typing import Any

from kcore import hookimpl
from kcore.scheduler.node_info import NodeInfo, PodInfo
from kcore.scheduler.resources import CPU, MEMORY
from kcore.scheduler.scoring import MAX_NODE_SCORE


def least_requested(requested: int, allocatable: int) -> int:
    """One resource's score: 100 when idle, 0 when full (or over)."""
    if allocatable <= 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_NODE_SCORE // allocatable


def least_allocated_score(cpu: int, memory: int, alloc_cpu: int, alloc_memory: int) -> int:
    """The node's score from the requested cpu/memory (pod included) and allocatable."""
    return (least_requested(cpu, alloc_cpu) + least_requested(memory, alloc_memory)) // 2


class NodeResourcesLeastAllocated:
    name = "NodeResourcesLeastAllocated"

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: NodeInfo) -> int | None:
        info = state.pod_info if state.pod_info is not None else PodInfo(pod)
        allocatable = node_info.allocatable
        return least_allocated_score(
            node_info.non_zero_cpu + info.non_zero_cpu,
            node_info.non_zero_memory + info.non_zero_memory,
            allocatable.get(CPU, 0),
            allocatable.get(MEMORY, 0),
        )
