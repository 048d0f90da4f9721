"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take no new pods.

Unless the pod tolerates the ``node.kubernetes.io/unschedulable:NoSchedule``
taint, as DaemonSet pods do.
"""

from __future__ import annotations

from typing import Any

from kcore import hookimpl
from kcore.scheduler.node_info import NodeInfo
from kcore.scheduler.plugins.taint_toleration import tolerates
from kcore.scheduler.status import Status

REASON = "node(s) were unschedulable"
TAINT_KEY = "node.kubernetes.io/unschedulable"


class NodeUnschedulable:
    name = "NodeUnschedulable"

    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: NodeInfo) -> Status | None:
        if not node_info.unschedulable:
            return None
        for toleration in pod.spec.tolerations or ():
            if tolerates(toleration, TAINT_KEY, None, "NoSchedule"):
                return None
        return Status.unresolvable(REASON)
