"""NodeResourcesFit: the pod's requests must fit in what the node has left.

Left = allocatable minus the requests of every pod assigned (or assumed) to the
node. Checked: the pod count against ``pods``, then every resource the pod
requests — cpu, memory, ephemeral-storage and extended resources (a node that
does not advertise an extended resource has none of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kcore import hookimpl
from kcore.scheduler.node_info import NodeInfo, PodInfo
from kcore.scheduler.resources import PODS
from kcore.scheduler.status import Status

TOO_MANY_PODS = "Too many pods"


def insufficient(requests: Mapping[str, int], node_info: NodeInfo) -> list[str]:
    """The reasons the requests do not fit the node; empty when they do."""
    allocatable = node_info.allocatable
    requested = node_info.requested
    reasons: list[str] = []
    if len(node_info.pods) + 1 > allocatable.get(PODS, 0):
        reasons.append(TOO_MANY_PODS)
    for name, want in requests.items():
        if want > 0 and want > allocatable.get(name, 0) - requested.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


class NodeResourcesFit:
    name = "NodeResourcesFit"

    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: NodeInfo) -> Status | None:
        info = state.pod_info if state.pod_info is not None else PodInfo(pod)
        reasons = insufficient(info.requests, node_info)
        return Status.unschedulable(*reasons) if reasons else None
