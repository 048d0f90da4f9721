"""NodeName: a pod that names its node (``spec.nodeName``) fits only there."""

from __future__ import annotations

from typing import Any

from kcore import hookimpl
from kcore.scheduler.node_info import NodeInfo
from kcore.scheduler.status import Status

REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = "NodeName"

    @hookimpl
    def kcore_scheduler_pre_filter(self, state: Any, pod: Any, nodes: list[NodeInfo]) -> Status | None:
        return None if pod.spec.nodeName else Status.skip()

    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: NodeInfo) -> Status | None:
        wanted = pod.spec.nodeName
        if not wanted or wanted == node_info.name:
            return None
        return Status.unresolvable(REASON)
