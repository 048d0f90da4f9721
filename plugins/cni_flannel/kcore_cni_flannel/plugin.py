"""The ``flannel`` network plugin: subnet lease, overlay between nodes, host-local IPAM
per pod and the bridge data path.

Settings (the ``[network]`` table or the plugin's own table; a dict or ``NetworkConfig``):
``cluster_cidr``, ``subnet_length``, ``backend`` (``vxlan`` or ``host-gw``), ``vni``,
``port``, ``mtu`` as in ``NetworkConfig``, plus ``bridge`` (default ``cni0``) and
``datapath`` (``bridge``, the default, or ``none`` for addresses without interfaces,
e.g. when not running as root).

The node context must provide ``client`` (an ``ApiClient``) and ``data_dir``; it may
provide ``node_name`` (default: the Node's name), ``node_ip`` (the underlay address;
default: the Node's InternalIP) and ``node_netns`` (run the node side inside that
network namespace instead of the host's; tests use it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kcore import hookimpl
from kcore.log import get_logger

from kcore_cni_flannel.datapath import BridgeDatapath
from kcore_cni_flannel.ipam import HostLocalStore
from kcore_cni_flannel.masquerade import Masquerade
from kcore_cni_flannel.overlay import VXLAN_OVERHEAD, Overlay, PeerWatch, get_path, ip_forward
from kcore_cni_flannel.subnets import lease_subnet

log = get_logger("cni.flannel")

DEFAULT_UNDERLAY_MTU = 1500


def _setting(settings: Any, name: str, default: Any) -> Any:
    value = get_path(settings, name)
    return default if value is None else value


def pod_owner(pod: Any) -> str:
    """The IPAM owner id of a pod: its uid, else ``namespace/name``."""
    uid = get_path(pod, "metadata", "uid")
    if uid:
        return str(uid)
    namespace = get_path(pod, "metadata", "namespace") or "default"
    return f"{namespace}/{get_path(pod, 'metadata', 'name')}"


def _internal_ip(node: Any) -> str | None:
    for address in get_path(node, "status", "addresses") or []:
        if get_path(address, "type") == "InternalIP":
            return str(get_path(address, "address"))
    return None


class Flannel:
    """One node's pod network; kcore registers one instance per node agent."""

    def __init__(self) -> None:
        self.subnet: str | None = None
        self.ipam: HostLocalStore | None = None
        self.datapath: BridgeDatapath | None = None
        self.overlay: Overlay | None = None
        self.masquerade: Masquerade | None = None
        self.watch: PeerWatch | None = None
        self.forward_was: str | None = None
        """``ip_forward`` before set-up turned it on: teardown puts it back."""

    def _ready(self) -> HostLocalStore:
        if self.ipam is None:
            raise RuntimeError("the flannel network is not set up on this node (kcore_cni_setup_node not run)")
        return self.ipam

    @hookimpl
    async def kcore_cni_setup_node(self, settings: Any, node: Any, context: Any) -> None:
        """Create the VTEP (its MAC goes into the lease), lease the subnet, build the
        bridge, install masquerade and start following the other Nodes."""
        await self._stop_watch()
        node_name = get_path(context, "node_name") or get_path(node, "metadata", "name")
        node_ip = get_path(context, "node_ip") or _internal_ip(node)
        node_netns = get_path(context, "node_netns")
        cluster_cidr = str(_setting(settings, "cluster_cidr", "10.244.0.0/16"))
        backend = str(_setting(settings, "backend", "vxlan"))
        with_datapath = _setting(settings, "datapath", "bridge") == "bridge"
        vtep_mac = None
        if with_datapath:
            configured_mtu = get_path(settings, "mtu")
            self.overlay = Overlay(
                cluster_cidr=cluster_cidr, node_ip=node_ip, backend=backend,
                vni=int(_setting(settings, "vni", 1)), port=int(_setting(settings, "port", 8472)),
                mtu=int(configured_mtu) if configured_mtu is not None else None, node_netns=node_netns)
            vtep_mac = await self.overlay.prepare()
        self.subnet = await lease_subnet(context.client, node_name, settings, vtep_mac=vtep_mac,
                                         public_ip=node_ip)
        self.ipam = HostLocalStore(context.data_dir, self.subnet)
        if self.overlay is not None:
            await self.overlay.assign(self.subnet)
            mtu = self.overlay.pod_mtu or DEFAULT_UNDERLAY_MTU - (VXLAN_OVERHEAD if backend == "vxlan" else 0)
            self.datapath = BridgeDatapath(self.subnet, node_netns=node_netns,
                                           bridge=_setting(settings, "bridge", "cni0"), mtu=mtu)
            await self.datapath.setup()
            if self.forward_was is None:
                self.forward_was = await ip_forward(node_netns, "1")
            self.masquerade = Masquerade(cluster_cidr, node_netns)
            await self.masquerade.install()
            if self.overlay.enabled:
                self.watch = PeerWatch(self.overlay, context.client, node_name)
                await self.watch.start()
        log.info("pod network ready", node=node_name, subnet=self.subnet, backend=backend,
                 overlay=bool(self.overlay and self.overlay.enabled), vtep_mac=vtep_mac,
                 datapath="bridge" if self.datapath else "none")

    async def _stop_watch(self) -> None:
        if self.watch is not None:
            await self.watch.stop()
            self.watch = None

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
    async def kcore_cni_stop_node(self, context: Any) -> None:
        """Stop following the Nodes; the VTEP, its entries, the bridge and the rules stay,
        so running pods keep their network until the next set-up takes over."""
        await self._stop_watch()

    @hookimpl
    async def kcore_cni_teardown_node(self, context: Any) -> None:
        """Stop following the Nodes and remove the VTEP (with its routes, neighbours and
        FDB entries), the bridge and the iptables chains; the subnet lease stays with the Node."""
        await self._stop_watch()
        if self.overlay is not None:
            await self.overlay.teardown()
        if self.datapath is not None:
            await self.datapath.teardown()
        if self.masquerade is not None:
            await self.masquerade.remove()
        if self.forward_was is not None and self.datapath is not None:
            await ip_forward(self.datapath.node_netns, self.forward_was)
            self.forward_was = None
