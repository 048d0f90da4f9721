"""NodePorts: two pods cannot claim the same host port and protocol on one node.

A claim on ``0.0.0.0`` conflicts with every address; otherwise only the same
address conflicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from kcore import hookimpl
from kcore.scheduler.node_info import NodeInfo, PodInfo
from kcore.scheduler.resources import HostPort
from kcore.scheduler.status import Status

REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_ADDRESS = "0.0.0.0"


def conflicts(wanted: Iterable[HostPort], used: Mapping[tuple[str, int], Counter[str]]) -> bool:
    """Whether any wanted (ip, protocol, port) collides with a used one."""
    for ip, protocol, port in wanted:
        ips = used.get((protocol, port))
        if ips and (ip == ANY_ADDRESS or ANY_ADDRESS in ips or ip in ips):
            return True
    return False


class NodePorts:
    name = "NodePorts"

    @hookimpl
    def kcore_scheduler_pre_filter(self, state: Any, pod: Any, nodes: list[NodeInfo]) -> Status | None:
        info = state.pod_info if state.pod_info is not None else PodInfo(pod)
        return None if info.host_ports else Status.skip()

    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: NodeInfo) -> Status | None:
        info = state.pod_info if state.pod_info is not None else PodInfo(pod)
        if info.host_ports and conflicts(info.host_ports, node_info.used_ports):
            return Status.unschedulable(REASON)
        return None
