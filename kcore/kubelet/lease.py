"""The node's heartbeat: a Lease in ``kube-node-lease`` renewed every few seconds.

A Lease write is far cheaper than a Node status write, which is why Kubernetes
moved heartbeats here: the node lifecycle controller reads ``renewTime`` to
decide whether the node is alive.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from kcore.client import ApiClient, ApiConnectionError, ApiStatusError
from kcore.log import get_logger

log = get_logger("kubelet.lease")

NODE_LEASE_NAMESPACE = "kube-node-lease"


def micro_time(now: dt.datetime) -> str:
    """A metav1.MicroTime: ``2006-01-02T15:04:05.000000Z``."""
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_object(node: str, node_uid: str | None, duration_seconds: int, now: dt.datetime) -> dict[str, Any]:
    """A new node Lease, owned by its Node so it goes when the Node does."""
    meta: dict[str, Any] = {"name": node, "namespace": NODE_LEASE_NAMESPACE}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta,
        "spec": {"holderIdentity": node, "leaseDurationSeconds": duration_seconds, "renewTime": micro_time(now)},
    }


class LeaseRenewer:
    """Creates the node's Lease on first renewal and moves ``renewTime`` forward after."""

    def __init__(self, client: ApiClient, node: str, *, duration_seconds: int, interval_seconds: float,
                 clock: Callable[[], dt.datetime], node_uid: Callable[[], str | None] = lambda: None) -> None:
        self.client = client
        self.node = node
        self.duration_seconds = duration_seconds
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.node_uid = node_uid
        self.renewals = 0
        self._leases = client.resource("coordination.k8s.io/v1", "Lease")

    async def renew(self) -> None:
        """One renewal; creates the Lease when it does not exist (yet or any more)."""
        now = self.clock()
        patch = {"spec": {"holderIdentity": self.node, "leaseDurationSeconds": self.duration_seconds,
                          "renewTime": micro_time(now)}}
        try:
            await self._leases.patch(self.node, patch, namespace=NODE_LEASE_NAMESPACE)
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
            body = lease_object(self.node, self.node_uid(), self.duration_seconds, now)
            body["spec"]["acquireTime"] = micro_time(now)
            await self._leases.create(body, namespace=NODE_LEASE_NAMESPACE)
        self.renewals += 1

    async def run(self) -> None:
        """Renew until cancelled; a failed renewal is retried sooner (a seventh of the interval)."""
        while True:
            delay = self.interval_seconds
            try:
                await self.renew()
            except (ApiStatusError, ApiConnectionError) as exc:
                log.warning("lease renewal failed", node=self.node, error=str(exc))
                delay = max(self.interval_seconds / 7, 0.05)
            await asyncio.sleep(delay)
