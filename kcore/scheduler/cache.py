"""The scheduler's view of the cluster, updated incrementally from watch events.

Kubernetes' scheduler cache in miniature: a ``NodeInfo`` per node, pods added
to their node as the watch reports them, and *assumed* pods — placed by this
scheduler but not yet confirmed by the watch — counted immediately so the next
cycle sees the space as taken. An assumed pod is confirmed when the watch shows
it bound, forgotten when binding fails, and expires if the confirmation never
comes within ``assumed_ttl`` seconds after binding finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from kcore.log import get_logger
from kcore.scheduler.node_info import NodeInfo, PodInfo, pod_key

log = get_logger("scheduler.cache")

_TERMINAL = ("Succeeded", "Failed")


def _counts(pod: Any) -> bool:
    """Whether an assigned pod still holds resources (terminal pods do not)."""
    status = pod.status
    return status is None or status.phase not in _TERMINAL


class SchedulerCache:
    """Nodes, the pods on them, and this scheduler's assumptions."""

    def __init__(self, *, assumed_ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        # Names of nodes whose object is known, in a stable order for sampling.
        self._node_list: list[str] = []
        self._node_index: dict[str, int] = {}
        self._pod_node: dict[str, str] = {}  # pod key -> node it is counted on
        self._assumed: dict[str, float | None] = {}  # pod key -> expiry (None while binding)
        self._assumed_ttl = assumed_ttl
        self._infos: list[NodeInfo] | None = None  # node_infos(), rebuilt after node adds/removes
        self._clock = clock

    # -- reading -------------------------------------------------------------

    def node(self, name: str) -> NodeInfo | None:
        info = self._nodes.get(name)
        return info if info is not None and info.node is not None else None

    def node_infos(self) -> list[NodeInfo]:
        """Every node whose object is known, in the cache's stable order.

        The list is shared until a node is added or removed (the NodeInfos in it
        are updated in place): callers must not modify it.
        """
        if self._infos is None:
            nodes = self._nodes
            self._infos = [nodes[name] for name in self._node_list]
        return self._infos

    def __len__(self) -> int:
        return len(self._node_list)

    def __iter__(self) -> Iterator[NodeInfo]:
        return iter(self.node_infos())

    def node_of(self, key: str) -> str | None:
        """The node a pod (by ``namespace/name``) is counted on, if any."""
        return self._pod_node.get(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    # -- nodes ---------------------------------------------------------------

    def add_node(self, node: Any) -> NodeInfo:
        name = node.metadata.name
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        info.set_node(node)
        if name not in self._node_index:
            self._node_index[name] = len(self._node_list)
            self._node_list.append(name)
            self._infos = None
        return info

    update_node = add_node

    def remove_node(self, name: str) -> None:
        """Forget the node object; its pods stay counted until their own deletes arrive."""
        info = self._nodes.get(name)
        if info is None:
            return
        index = self._node_index.pop(name, None)
        self._infos = None
        if index is not None:
            last = self._node_list.pop()
            if last != name:
                self._node_list[index] = last
                self._node_index[last] = index
        if info.pods:
            info.clear_node()
        else:
            del self._nodes[name]

    # -- pods ----------------------------------------------------------------

    def _place(self, info: PodInfo, node_name: str) -> None:
        node = self._nodes.get(node_name)
        if node is None:
            node = self._nodes[node_name] = NodeInfo(node_name)
        node.add_pod(info)
        self._pod_node[info.key] = node_name

    def _unplace(self, key: str) -> None:
        node_name = self._pod_node.pop(key, None)
        if node_name is None:
            return
        node = self._nodes.get(node_name)
        if node is None:
            return
        node.remove_pod(key)
        if node.node is None and not node.pods:
            del self._nodes[node_name]

    def add_pod(self, pod: Any) -> None:
        """A pod the watch shows assigned to a node: count it (confirming an assumption)."""
        node_name = pod.spec.nodeName
        if not node_name:
            return
        key = pod_key(pod)
        self._assumed.pop(key, None)
        self._unplace(key)  # an assumed copy, or a stale one
        if _counts(pod):
            self._place(PodInfo(pod), node_name)

    def update_pod(self, pod: Any) -> None:
        """Replace what is counted for the pod with its new state."""
        if pod.spec.nodeName:
            self.add_pod(pod)
        else:
            self.remove_pod(pod_key(pod))

    def remove_pod(self, key: str) -> None:
        self._assumed.pop(key, None)
        self._unplace(key)

    # -- assumptions ---------------------------------------------------------

    def assume_pod(self, info: PodInfo, node_name: str) -> None:
        """Count a pod on the node this scheduler just chose, before the API says so."""
        self._unplace(info.key)
        self._place(info, node_name)
        self._assumed[info.key] = None

    def finish_binding(self, key: str) -> None:
        """Binding was sent: start the clock on the watch's confirmation."""
        if key in self._assumed:
            self._assumed[key] = self._clock() + self._assumed_ttl

    def forget_pod(self, key: str) -> None:
        """Binding failed: give the space back (only if the pod is still just assumed)."""
        if key in self._assumed:
            del self._assumed[key]
            self._unplace(key)

    def cleanup_expired(self) -> list[str]:
        """Drop assumptions the watch never confirmed; returns their keys."""
        if not self._assumed:
            return []
        now = self._clock()
        expired = [k for k, deadline in self._assumed.items() if deadline is not None and deadline <= now]
        for key in expired:
            log.warning("assumed pod expired without confirmation", pod=key)
            self.forget_pod(key)
        return expired
