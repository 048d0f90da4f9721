"""The ``flannel`` network plugin: subnet lease at node set-up, host-local IPAM per pod,
and the bridge data path.

Settings (the ``[network]`` table or the plugin's own table; a dict or ``NetworkConfig``):
``cluster_cidr``, ``subnet_length``, ``backend``, ``vni``, ``mtu`` as in ``NetworkConfig``,
plus ``bridge`` (default ``cni0``) and ``datapath`` (``bridge``, the default, or ``none``
for addresses without interfaces, e.g. when not running as root).

The node context must provide ``client`` (an ``ApiClient``) and ``data_dir``; it may
provide ``node_name`` (default: the Node's name) and ``node_netns`` (run the node side
inside that network namespace instead of the host's; tests use it).

Not done yet: the VXLAN overlay between nodes (one node works end to end).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kcore import hookimpl
from kcore.log import get_logger

from kcore_cni_flannel.datapath import BridgeDatapath
from kcore_cni_flannel.ipam import HostLocalStore
from kcore_cni_flannel.subnets import lease_subnet

log = get_logger("cni.flannel")

VXLAN_OVERHEAD = 50


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    return obj


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = _get(settings, name)
    return default if value is None else value


def pod_owner(pod: Any) -> str:
    """The IPAM owner id of a pod: its uid, else ``namespace/name``."""
    uid = _get(pod, "metadata", "uid")
    if uid:
        return str(uid)
    namespace = _get(pod, "metadata", "namespace") or "default"
    return f"{namespace}/{_get(pod, 'metadata', 'name')}"


def _internal_ip(node: Any) -> str | None:
    for address in _get(node, "status", "addresses") or []:
        if _get(address, "type") == "InternalIP":
            return str(_get(address, "address"))
    return None


class Flannel:
    """One node's pod network; kcore registers one instance per node agent."""

    def __init__(self) -> None:
        self.subnet: str | None = None
        self.ipam: HostLocalStore | None = None
        self.datapath: BridgeDatapath | None = None

    def _ready(self) -> HostLocalStore:
        if self.ipam is None:
            raise RuntimeError("the flannel network is not set up on this node (kcore_cni_setup_node not run)")
        return self.ipam

    @hookimpl
    async def kcore_cni_setup_node(self, settings: Any, node: Any, context: Any) -> None:
        """Lease the node's subnet, open its IPAM store and build the bridge."""
        node_name = _get(context, "node_name") or _get(node, "metadata", "name")
        self.subnet = await lease_subnet(context.client, node_name, settings, public_ip=_internal_ip(node))
        self.ipam = HostLocalStore(context.data_dir, self.subnet)
        if _setting(settings, "datapath", "bridge") == "bridge":
            backend = _setting(settings, "backend", "vxlan")
            mtu = int(_setting(settings, "mtu", 1500 - (VXLAN_OVERHEAD if backend == "vxlan" else 0)))
            self.datapath = BridgeDatapath(self.subnet, node_netns=_get(context, "node_netns"),
                                           bridge=_setting(settings, "bridge", "cni0"), mtu=mtu)
            await self.datapath.setup()
        log.info("pod network ready", node=node_name, subnet=self.subnet,
                 datapath="bridge" if self.datapath else "none")

    @hookimpl
    async def kcore_cni_add(self, pod: Any, netns: str, context: Any) -> dict[str, Any]:
        """Allocate the pod's address (the same one on a retry) and wire its namespace."""
        ipam = self._ready()
        owner = pod_owner(pod)
        address = await asyncio.to_thread(ipam.allocate, owner)
        if self.datapath is None:
            prefix = (self.subnet or "/").split("/")[1]
            return {"cniVersion": "1.0.0", "interfaces": [],
                    "ips": [{"address": f"{address}/{prefix}", "gateway": ipam.gateway}],
                    "routes": [{"dst": "0.0.0.0/0", "gw": ipam.gateway}], "dns": {}}
        try:
            return await self.datapath.add(owner, netns, address)
        except Exception:
            await self.datapath.delete(owner)
            await asyncio.to_thread(ipam.release, owner)
            raise

    @hookimpl
    async def kcore_cni_del(self, pod: Any, netns: str, context: Any) -> None:
        """Remove the pod's interfaces and free its address; safe to repeat."""
        if self.ipam is None:
            return
        owner = pod_owner(pod)
        if self.datapath is not None:
            await self.datapath.delete(owner)
        await asyncio.to_thread(self.ipam.release, owner)

    @hookimpl
    async def kcore_cni_check(self, pod: Any, netns: str, context: Any) -> bool | None:
        """True if the pod holds its address (and, with the bridge, its interfaces)."""
        if self.ipam is None:
            return None
        owner = pod_owner(pod)
        address = await asyncio.to_thread(self.ipam.lookup, owner)
        if address is None:
            return False
        if self.datapath is None:
            return True
        return await self.datapath.check(owner, netns, address)

    @hookimpl
    async def kcore_cni_teardown_node(self, context: Any) -> None:
        """Remove the bridge; the subnet lease stays with the Node."""
        if self.datapath is not None:
            await self.datapath.teardown()
