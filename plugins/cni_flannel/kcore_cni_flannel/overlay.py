"""The overlay between nodes, as flannel's ``vxlan`` and ``host-gw`` backends build it.

vxlan: every node has one VXLAN device ``flannel.<VNI>`` (no learning) holding its
subnet's network address as a /32 (``10.244.1.0/32``). For every *other* node
(a peer) it installs three entries, all derived from that peer's Node object:

* route  ``<peer subnet> via <peer subnet network addr> dev flannel.1 onlink``
* neigh  ``<peer subnet network addr> lladdr <peer VtepMAC> dev flannel.1 nud permanent``
* fdb    ``<peer VtepMAC> dev flannel.1 dst <peer public ip>``

so the kernel routes a packet for a remote pod to the peer's VTEP, resolves its MAC
without ARP, and knows which underlay address to send the encapsulated frame to.
host-gw: just ``<peer subnet> via <peer public ip>`` (the nodes share an L2 network).

Why a planner: the entries are *level*-reconciled. What the kernel holds is read
back (``ip -j``) and diffed against what the Nodes say (:func:`plan`, pure), so a
node that restarts, misses a watch event or finds stale entries of a Node deleted
while it was down ends up right without remembering anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kcore.client import ApiClient, Informer
from kcore.log import get_logger

from kcore_cni_flannel.datapath import run_cmd
from kcore_cni_flannel.subnets import ANNOTATION_PREFIX

log = get_logger("cni.flannel.overlay")

VXLAN_OVERHEAD = 50
PUBLIC_IP = ANNOTATION_PREFIX + "public-ip"
BACKEND_DATA = ANNOTATION_PREFIX + "backend-data"

Command = tuple[str, ...]
"""One command line: ``("ip", ...)`` or ``("bridge", ...)``, run in the node's namespace."""


@dataclass(frozen=True)
class Peer:
    """What this node needs to know about another node to reach its pods."""

    subnet: str
    public_ip: str
    vtep_mac: str | None = None


@dataclass
class Installed:
    """The overlay entries the kernel holds now (read back from it, see :meth:`Overlay.installed`)."""

    routes: dict[str, str] = field(default_factory=dict)
    """Destination subnet -> gateway."""
    neighbours: dict[str, str] = field(default_factory=dict)
    """Address -> link-layer address (permanent entries only)."""
    fdb: dict[str, set[str]] = field(default_factory=dict)
    """VTEP MAC -> underlay destinations."""


def device_name(vni: int) -> str:
    return f"flannel.{vni}"


def vtep_address(subnet: str) -> str:
    """The address a node's VTEP holds: its subnet's network address (flannel's convention)."""
    return str(ipaddress.ip_network(subnet, strict=False).network_address)


def get_path(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...`` through dicts or attributes (Node objects or models); None if absent."""
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
    return obj


def _normal_mac(mac: Any) -> str | None:
    if not isinstance(mac, str):
        return None
    parts = mac.strip().lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts):
        return None
    return ":".join(parts)


def peer_of(node: Any, backend: str = "vxlan") -> Peer | None:
    """The peer a Node describes, or None when it has no lease (or, for vxlan, no VtepMAC)."""
    subnet = get_path(node, "spec", "podCIDR")
    annotations = get_path(node, "metadata", "annotations") or {}
    public_ip = annotations.get(PUBLIC_IP)
    if not subnet or not public_ip:
        return None
    try:
        subnet = str(ipaddress.ip_network(subnet, strict=True))
        public_ip = str(ipaddress.ip_address(public_ip))
    except ValueError:
        return None
    if backend != "vxlan":
        return Peer(subnet, public_ip)
    try:
        data = json.loads(annotations.get(BACKEND_DATA) or "null")
    except ValueError:
        return None
    mac = _normal_mac(data.get("VtepMAC")) if isinstance(data, dict) else None
    return Peer(subnet, public_ip, mac) if mac else None


def peers_from_nodes(nodes: Iterable[Any], self_name: str, backend: str = "vxlan") -> dict[str, Peer]:
    """Every other node's :class:`Peer`, by node name; nodes not ready for it are skipped."""
    peers: dict[str, Peer] = {}
    for node in nodes:
        name = get_path(node, "metadata", "name")
        if not name or name == self_name:
            continue
        peer = peer_of(node, backend)
        if peer is not None:
            peers[name] = peer
    return peers


def plan(desired: Mapping[str, Peer], installed: Installed, *, device: str,
         backend: str = "vxlan") -> list[Command]:
    """The commands that turn ``installed`` into what ``desired`` asks for (pure).

    Order: stale routes go first (no packet is routed to a VTEP being removed), then
    new FDB, neighbour and route entries (each usable once the one before exists),
    then stale neighbours and FDB entries. Empty when nothing differs.
    """
    if backend != "vxlan":
        return _plan_host_gw(desired, installed)
    want_routes = {p.subnet: vtep_address(p.subnet) for p in desired.values()}
    want_neigh = {vtep_address(p.subnet): p.vtep_mac for p in desired.values() if p.vtep_mac}
    want_fdb = {p.vtep_mac: p.public_ip for p in desired.values() if p.vtep_mac}
    commands: list[Command] = []
    for dst in sorted(set(installed.routes) - set(want_routes)):
        commands.append(("ip", "route", "del", dst, "dev", device))
    for mac, dst in sorted(want_fdb.items()):
        have = installed.fdb.get(mac, set())
        if have != {dst}:
            commands.append(("bridge", "fdb", "replace", mac, "dev", device, "dst", dst))
            commands.extend(("bridge", "fdb", "del", mac, "dev", device, "dst", old)
                            for old in sorted(have - {dst}))
    for address, mac in sorted(want_neigh.items()):
        if installed.neighbours.get(address) != mac:
            commands.append(("ip", "neigh", "replace", address, "lladdr", mac, "dev", device,
                             "nud", "permanent"))
    for dst, gateway in sorted(want_routes.items()):
        if installed.routes.get(dst) != gateway:
            commands.append(("ip", "route", "replace", dst, "via", gateway, "dev", device, "onlink"))
    for address in sorted(set(installed.neighbours) - set(want_neigh)):
        commands.append(("ip", "neigh", "del", address, "dev", device))
    for mac in sorted(set(installed.fdb) - set(want_fdb)):
        commands.extend(("bridge", "fdb", "del", mac, "dev", device, "dst", old)
                        for old in sorted(installed.fdb[mac]))
    return commands


def _plan_host_gw(desired: Mapping[str, Peer], installed: Installed) -> list[Command]:
    want = {p.subnet: p.public_ip for p in desired.values()}
    commands: list[Command] = [("ip", "route", "del", dst) for dst in sorted(set(installed.routes) - set(want))]
    commands.extend(("ip", "route", "replace", dst, "via", gateway)
                    for dst, gateway in sorted(want.items()) if installed.routes.get(dst) != gateway)
    return commands


def without_own_subnet(peers: Mapping[str, Peer], own_subnet: str | None) -> dict[str, Peer]:
    """Drop peers whose subnet overlaps ours: a stale Node must never hijack local pods."""
    if not own_subnet:
        return dict(peers)
    own = ipaddress.ip_network(own_subnet)
    return {n: p for n, p in peers.items() if not ipaddress.ip_network(p.subnet).overlaps(own)}


async def _json(*argv: str, netns: str | None) -> list[dict[str, Any]]:
    _, out, _ = await run_cmd(*argv, netns=netns)
    return json.loads(out or "[]")


@dataclass
class Overlay:
    """One node's overlay: its VXLAN device (vxlan) and its entries for every peer."""

    cluster_cidr: str
    node_ip: str | None
    backend: str = "vxlan"
    vni: int = 1
    port: int = 8472
    mtu: int | None = None
    node_netns: str | None = None
    subnet: str | None = None
    underlay: str | None = None
    underlay_mtu: int | None = None
    enabled: bool = False

    @property
    def device(self) -> str:
        return device_name(self.vni)

    async def _run(self, *argv: str, check: bool = True) -> tuple[int, str, str]:
        return await run_cmd(*argv, netns=self.node_netns, check=check)

    async def prepare(self) -> str | None:
        """Find the underlay and, for vxlan, create (or keep) the VTEP; returns its MAC.

        Skipped (returns None, ``enabled`` stays False) when the node address is
        missing, a loopback address (a single-host cluster has no peers) or held by
        no interface: pods on this node still reach each other through the bridge.
        """
        if not self.node_ip:
            log.info("no node IP: overlay skipped, pods reach only this node", netns=self.node_netns)
            return None
        try:
            loopback = ipaddress.ip_address(self.node_ip).is_loopback
        except ValueError:
            log.warning("node IP is not an IP address: overlay skipped", node_ip=self.node_ip)
            return None
        if loopback:
            log.info("node IP is loopback: single-host network, no VXLAN device needed",
                     node_ip=self.node_ip, netns=self.node_netns)
            return None
        found = await self._find_underlay()
        if found is None:
            log.warning("node IP is on no interface here: overlay skipped, pods reach only this node",
                        node_ip=self.node_ip, netns=self.node_netns)
            return None
        self.underlay, self.underlay_mtu = found
        self.enabled = True
        if self.backend != "vxlan":
            return None
        return await self._ensure_vtep()

    @property
    def pod_mtu(self) -> int | None:
        """The MTU pods should use: the configured one, else the underlay's minus VXLAN's overhead."""
        if self.mtu is not None:
            return self.mtu
        if self.underlay_mtu is None:
            return None
        return self.underlay_mtu - (VXLAN_OVERHEAD if self.backend == "vxlan" else 0)

    async def _find_underlay(self) -> tuple[str, int] | None:
        for link in await _json("ip", "-j", "-4", "addr", "show", netns=self.node_netns):
            if any(a.get("local") == self.node_ip for a in link.get("addr_info") or []):
                return str(link["ifname"]), int(link.get("mtu") or 1500)
        return None

    async def _ensure_vtep(self) -> str:
        """Keep a matching ``flannel.<vni>`` (its MAC, hence peers' entries, survive restarts);
        re-create one whose VNI, local address, port or underlay differ."""
        code, out, _ = await self._run("ip", "-j", "-d", "link", "show", "dev", self.device, check=False)
        if code == 0:
            link = json.loads(out)[0]
            data = get_path(link, "linkinfo", "info_data") or {}
            if (data.get("id") == self.vni and data.get("local") == self.node_ip
                    and data.get("port") == self.port and data.get("link") == self.underlay
                    and link.get("mtu") == self.pod_mtu):
                await self._run("ip", "link", "set", self.device, "up")
                return str(link["address"])
            log.info("VXLAN device settings changed: re-creating it", device=self.device)
            await self._run("ip", "link", "del", self.device)
        await self._run("ip", "link", "add", self.device, "mtu", str(self.pod_mtu), "type", "vxlan",
                        "id", str(self.vni), "local", str(self.node_ip), "dev", str(self.underlay),
                        "dstport", str(self.port), "nolearning")
        link = (await _json("ip", "-j", "link", "show", "dev", self.device, netns=self.node_netns))[0]
        log.info("VXLAN device created", device=self.device, vni=self.vni, local=self.node_ip,
                 underlay=self.underlay, mtu=self.pod_mtu, vtep_mac=link["address"])
        return str(link["address"])

    async def assign(self, subnet: str) -> None:
        """Give the VTEP its ``<subnet network addr>/32`` (the only address) and bring it up."""
        self.subnet = subnet
        if not self.enabled or self.backend != "vxlan":
            return
        want = vtep_address(subnet)
        for link in await _json("ip", "-j", "-4", "addr", "show", "dev", self.device, netns=self.node_netns):
            for info in link.get("addr_info") or []:
                if (info.get("local"), info.get("prefixlen")) != (want, 32):
                    await self._run("ip", "addr", "del", f"{info['local']}/{info['prefixlen']}",
                                    "dev", self.device, check=False)
        await self._run("ip", "addr", "replace", f"{want}/32", "dev", self.device)
        await self._run("ip", "link", "set", self.device, "up")

    async def installed(self) -> Installed:
        """The overlay entries the kernel holds now."""
        state = Installed()
        if self.backend != "vxlan":
            for route in await _json("ip", "-j", "-4", "route", "show", "root", self.cluster_cidr,
                                     netns=self.node_netns):
                if route.get("gateway") and route.get("dst") not in (None, "default"):
                    state.routes[str(ipaddress.ip_network(route["dst"]))] = route["gateway"]
            return state
        for route in await _json("ip", "-j", "-4", "route", "show", "dev", self.device, netns=self.node_netns):
            if route.get("gateway") and route.get("dst") not in (None, "default"):
                state.routes[str(ipaddress.ip_network(route["dst"]))] = route["gateway"]
        for neigh in await _json("ip", "-j", "-4", "neigh", "show", "dev", self.device, netns=self.node_netns):
            if neigh.get("lladdr") and "PERMANENT" in (neigh.get("state") or []):
                state.neighbours[neigh["dst"]] = neigh["lladdr"].lower()
        for entry in await _json("bridge", "-j", "fdb", "show", "dev", self.device, netns=self.node_netns):
            mac = _normal_mac(entry.get("mac"))
            if mac and entry.get("dst") and mac != "00:00:00:00:00:00":
                state.fdb.setdefault(mac, set()).add(entry["dst"])
        return state

    async def sync(self, peers: Mapping[str, Peer]) -> list[Command]:
        """Make the kernel's entries match ``peers``; returns the commands that ran.

        A failing command is logged and the rest still run: the next sync retries it.
        """
        if not self.enabled:
            return []
        desired = without_own_subnet(peers, self.subnet)
        commands = plan(desired, await self.installed(), device=self.device, backend=self.backend)
        for command in commands:
            code, _, err = await self._run(*command, check=False)
            if code != 0:
                log.warning("overlay command failed", command=" ".join(command), error=err.strip())
        if commands:
            log.info("overlay synced", peers=sorted(desired), commands=len(commands), netns=self.node_netns)
        return commands

    async def teardown(self) -> None:
        """Remove the VTEP (its routes, neighbours and FDB entries go with it), or the
        host-gw routes; idempotent."""
        if self.backend == "vxlan":
            await self._run("ip", "link", "del", self.device, check=False)
        elif self.enabled:
            await self.sync({})
        self.enabled = False


def _peer_fields(node: dict[str, Any]) -> tuple[Any, ...]:
    annotations = get_path(node, "metadata", "annotations") or {}
    return get_path(node, "spec", "podCIDR"), annotations.get(PUBLIC_IP), annotations.get(BACKEND_DATA)


class PeerWatch:
    """Keeps an :class:`Overlay` in step with the cluster's Nodes.

    Node events only poke a flag; one loop waits ``debounce`` seconds (so a burst of
    joins is one sync), then reconciles from the informer's cache. Every ``resync``
    seconds it reconciles anyway, repairing entries someone removed by hand. Status
    heartbeats, which change no peer field, do not wake it.
    """

    def __init__(self, overlay: Overlay, client: ApiClient, node_name: str, *,
                 debounce: float = 0.1, resync: float = 30.0) -> None:
        self.overlay = overlay
        self.node_name = node_name
        self.debounce = debounce
        self.resync = resync
        self.informer = Informer(client, "v1", "Node")
        self.informer.add_handler(on_add=self._poke, on_delete=self._poke, on_update=self._changed)
        self.syncs = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _poke(self, _node: dict[str, Any]) -> None:
        self._wake.set()

    def _changed(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if _peer_fields(old) != _peer_fields(new):
            self._wake.set()

    def peers(self) -> dict[str, Peer]:
        return peers_from_nodes(self.informer.indexer.list(), self.node_name, self.overlay.backend)

    async def start(self, sync_timeout: float = 10.0) -> None:
        """Start watching; returns after the first sync (or ``sync_timeout``, logged)."""
        self._tasks = [asyncio.create_task(self.informer.run(), name="flannel node informer"),
                       asyncio.create_task(self._loop(), name="flannel overlay sync")]
        try:
            await self.informer.wait_synced(sync_timeout)
            await self.sync_once()
        except TimeoutError:
            log.warning("Node list not synced yet; the overlay follows once it is", timeout=sync_timeout)

    async def sync_once(self) -> None:
        self._wake.clear()
        await self.overlay.sync(self.peers())
        self.syncs += 1

    async def _loop(self) -> None:
        await self.informer.wait_synced()
        backoff = 0.5
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.resync)
            await asyncio.sleep(self.debounce)
            try:
                await self.sync_once()
                backoff = 0.5
            except Exception as exc:  # noqa: BLE001 - keep the overlay alive; retry soon
                log.warning("overlay sync failed; retrying", error=str(exc), retry_in=backoff)
                self._wake.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def stop(self) -> None:
        """Stop watching; the installed entries stay."""
        await self.informer.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []


async def ip_forward(node_netns: str | None, value: str | None = None) -> str:
    """Read (and with ``value``, set) ``net.ipv4.ip_forward`` in the node's namespace;
    returns the value it had. The node routes pod packets between the bridge, the
    VTEP and the underlay only with it on."""
    if node_netns:
        _, old, _ = await run_cmd("sysctl", "-n", "net.ipv4.ip_forward", netns=node_netns)
        if value is not None and old.strip() != value:
            await run_cmd("sysctl", "-q", "-w", f"net.ipv4.ip_forward={value}", netns=node_netns)
        return old.strip()
    path = "/proc/sys/net/ipv4/ip_forward"
    with open(path) as f:  # noqa: PTH123 - a sysctl, not a file
        old = f.read().strip()
    if value is not None and old != value:
        with open(path, "w") as f:  # noqa: PTH123
            f.write(value)
    return old
