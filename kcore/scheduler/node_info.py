"""Per-pod and per-node aggregates the scheduler works from.

``PodInfo`` is computed once per pod object (requests, non-zero requests, host
ports) and ``NodeInfo`` keeps running totals, so a filter compares a few ints
instead of walking every pod on the node. Both are updated only through
``SchedulerCache``; plugins read them and must not modify them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kcore.scheduler import resources as r


def pod_key(pod: Any) -> str:
    """``namespace/name``: how the queue and cache identify a pod."""
    meta = pod.metadata
    return f"{meta.namespace or 'default'}/{meta.name}"


class PodInfo:
    """A pod plus what scheduling needs from it, precomputed."""

    __slots__ = ("pod", "key", "uid", "namespace", "labels", "requests", "non_zero_cpu",
                 "non_zero_memory", "host_ports", "node_name")

    def __init__(self, pod: Any) -> None:
        self.pod = pod
        self.key = pod_key(pod)
        self.uid: str = pod.metadata.uid or self.key
        self.namespace: str = pod.metadata.namespace or "default"
        self.labels: dict[str, str] = pod.metadata.labels or {}
        self.requests: r.Resources = r.pod_requests(pod)
        self.non_zero_cpu, self.non_zero_memory = r.pod_non_zero_requests(pod)
        self.host_ports: list[r.HostPort] = r.pod_host_ports(pod)
        self.node_name: str | None = pod.spec.nodeName

    def __repr__(self) -> str:
        return f"PodInfo({self.key} on {self.node_name})"


class NodeInfo:
    """One node and the pods assigned (or assumed) to it, with running totals.

    ``node`` is None while pods are known for a node whose object has not
    arrived (or was deleted before its pods); such a NodeInfo is not offered
    to filters. ``generation`` changes on every update, for caches of derived
    data.
    """

    __slots__ = ("name", "node", "labels", "taints", "unschedulable", "allocatable", "pods",
                 "requested", "non_zero_cpu", "non_zero_memory", "used_ports", "generation")

    def __init__(self, name: str, node: Any = None) -> None:
        self.name = name
        self.node: Any = None
        self.labels: dict[str, str] = {}
        self.taints: tuple[Any, ...] = ()
        self.unschedulable = False
        self.allocatable: r.Resources = {}
        self.pods: dict[str, PodInfo] = {}
        self.requested: r.Resources = {}
        self.non_zero_cpu = 0
        self.non_zero_memory = 0
        # (protocol, port) -> how many pods use it on each host IP
        self.used_ports: dict[tuple[str, int], Counter[str]] = {}
        self.generation = 0
        if node is not None:
            self.set_node(node)

    def set_node(self, node: Any) -> None:
        """Take the node object's labels, taints, cordon flag and allocatable."""
        self.node = node
        self.labels = node.metadata.labels or {}
        spec = node.spec
        self.taints = tuple(spec.taints or ()) if spec is not None else ()
        self.unschedulable = bool(spec is not None and spec.unschedulable)
        status = node.status
        self.allocatable = r.resource_list(status.allocatable if status is not None else None)
        self.generation += 1

    def clear_node(self) -> None:
        self.node = None
        self.generation += 1

    def add_pod(self, info: PodInfo) -> None:
        """Count the pod's requests and ports on this node."""
        self.pods[info.key] = info
        requested = self.requested
        for name, value in info.requests.items():
            requested[name] = requested.get(name, 0) + value
        self.non_zero_cpu += info.non_zero_cpu
        self.non_zero_memory += info.non_zero_memory
        for ip, protocol, port in info.host_ports:
            self.used_ports.setdefault((protocol, port), Counter())[ip] += 1
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        """Uncount a pod; returns it, or None if it was not here."""
        info = self.pods.pop(key, None)
        if info is None:
            return None
        requested = self.requested
        for name, value in info.requests.items():
            left = requested.get(name, 0) - value
            if left:
                requested[name] = left
            else:
                requested.pop(name, None)
        self.non_zero_cpu -= info.non_zero_cpu
        self.non_zero_memory -= info.non_zero_memory
        for ip, protocol, port in info.host_ports:
            ips = self.used_ports.get((protocol, port))
            if ips is not None:
                ips[ip] -= 1
                if ips[ip] <= 0:
                    del ips[ip]
                if not ips:
                    del self.used_ports[(protocol, port)]
        self.generation += 1
        return info

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)}, requested={self.requested})"
