"""The IPVS virtual-service table: built from a ``ProxyState``, diffed, rendered.

Everything here is pure. ``build_table`` turns the desired state into the
table kube-proxy's IPVS mode would program (one virtual service per cluster
IP, external IP, load-balancer IP and node address with node port, each with
the service's ready endpoints as real servers), ``diff_tables`` says what a
data path has to change to go from one table to the next, and
``render_ipvsadm`` prints a table the way ``ipvsadm -Ln`` does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from kcore.proxy.state import ProxyState, ServicePort

Stats = Callable[["VirtualServiceKey", "RealServerSpec"], tuple[int, int]]


@dataclass(frozen=True, slots=True, order=True)
class VirtualServiceKey:
    """``PROTO VIP:port``: how IPVS names a virtual service."""

    protocol: str
    address: str
    port: int

    @property
    def endpoint(self) -> str:
        return join_host_port(self.address, self.port)

    def __str__(self) -> str:
        return f"{self.protocol} {self.endpoint}"


@dataclass(frozen=True, slots=True, order=True)
class RealServerSpec:
    """One real server of a virtual service, as configured (no live counts)."""

    ip: str
    port: int
    weight: int = 1

    @property
    def key(self) -> tuple[str, int]:
        return (self.ip, self.port)

    @property
    def endpoint(self) -> str:
        return join_host_port(self.ip, self.port)


@dataclass(frozen=True, slots=True)
class VirtualService:
    """One virtual service: its scheduler, persistence and real servers."""

    key: VirtualServiceKey
    scheduler: str
    persistence_seconds: int | None = None  # ClientIP affinity (-p)
    real_servers: tuple[RealServerSpec, ...] = ()
    service: str = ""  # the kube-proxy service port key, for logs

    @property
    def servers_by_key(self) -> dict[tuple[str, int], RealServerSpec]:
        return {rs.key: rs for rs in self.real_servers}

    def same_settings(self, other: VirtualService) -> bool:
        return (self.scheduler, self.persistence_seconds) == (other.scheduler, other.persistence_seconds)


Table = Mapping[VirtualServiceKey, VirtualService]


def join_host_port(host: str, port: int) -> str:
    """``1.2.3.4:80`` or ``[fd00::1]:80``, as ipvsadm prints addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _service_addresses(svc: ServicePort, node_ips: Iterable[str]) -> list[tuple[str, int]]:
    assert svc.cluster_ip is not None
    addresses = [(svc.cluster_ip, svc.port)]
    addresses += [(ip, svc.port) for ip in (*svc.external_ips, *svc.load_balancer_ips)]
    if svc.node_port:
        addresses += [(ip, svc.node_port) for ip in node_ips]
    return addresses


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def build_table(state: ProxyState, scheduler: str) -> dict[VirtualServiceKey, VirtualService]:
    """The virtual services for ``state``, every one using ``scheduler``.

    Headless services (no cluster IP) are skipped: there is nothing to proxy.
    Real servers are the ready endpoints (else the serving, terminating ones),
    weighted by ``Endpoint.weight``. When two service ports claim the same
    address, port and protocol, the first one keeps it.
    """
    table: dict[VirtualServiceKey, VirtualService] = {}
    for svc in state.services:
        if not svc.cluster_ip or svc.cluster_ip.lower() == "none":
            continue
        servers = tuple(
            sorted({RealServerSpec(ep.ip, ep.port, max(ep.weight, 0)) for ep in svc.ready_endpoints()})
        )
        persistence = svc.affinity_timeout_seconds if svc.session_affinity else None
        for address, port in _service_addresses(svc, state.node_ips):
            if not _is_ip(address):
                continue
            key = VirtualServiceKey(svc.protocol, address, port)
            table.setdefault(key, VirtualService(key, scheduler, persistence, servers, svc.key))
    return dict(sorted(table.items()))


# ---------------------------------------------------------------------------
# Diff
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerChange:
    """A real server added, removed or reweighted under one virtual service."""

    service: VirtualServiceKey
    server: RealServerSpec


@dataclass(frozen=True, slots=True)
class TableDiff:
    """What a data path must do to go from one table to another.

    Added services carry their real servers (``added_services[i].real_servers``);
    removed services take theirs with them. The server lists cover only services
    present in both tables.
    """

    added_services: tuple[VirtualService, ...] = ()
    removed_services: tuple[VirtualService, ...] = ()
    updated_services: tuple[VirtualService, ...] = ()  # new scheduler or persistence
    added_servers: tuple[ServerChange, ...] = ()
    removed_servers: tuple[ServerChange, ...] = ()
    updated_servers: tuple[ServerChange, ...] = ()  # new weight
    table: Table = field(default_factory=dict, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not (
            self.added_services or self.removed_services or self.updated_services
            or self.added_servers or self.removed_servers or self.updated_servers
        )

    def summary(self) -> dict[str, int]:
        return {
            "services_added": len(self.added_services),
            "services_removed": len(self.removed_services),
            "services_updated": len(self.updated_services),
            "servers_added": len(self.added_servers),
            "servers_removed": len(self.removed_servers),
            "servers_updated": len(self.updated_servers),
        }


def diff_tables(old: Table, new: Table) -> TableDiff:
    """The changes from ``old`` to ``new`` (pure; both tables are left alone)."""
    added = [new[k] for k in sorted(new.keys() - old.keys())]
    removed = [old[k] for k in sorted(old.keys() - new.keys())]
    updated: list[VirtualService] = []
    s_added: list[ServerChange] = []
    s_removed: list[ServerChange] = []
    s_updated: list[ServerChange] = []
    for key in sorted(old.keys() & new.keys()):
        before, after = old[key], new[key]
        if not after.same_settings(before):
            updated.append(after)
        was, now = before.servers_by_key, after.servers_by_key
        s_added += [ServerChange(key, now[k]) for k in sorted(now.keys() - was.keys())]
        s_removed += [ServerChange(key, was[k]) for k in sorted(was.keys() - now.keys())]
        s_updated += [
            ServerChange(key, now[k]) for k in sorted(was.keys() & now.keys()) if now[k].weight != was[k].weight
        ]
    return TableDiff(
        tuple(added), tuple(removed), tuple(updated),
        tuple(s_added), tuple(s_removed), tuple(s_updated), table=dict(new),
    )


# ---------------------------------------------------------------------------
# ipvsadm -Ln
# ---------------------------------------------------------------------------

IPVS_HEADER = (
    "IP Virtual Server version 1.2.1 (size=4096)\n"
    "Prot LocalAddress:Port Scheduler Flags\n"
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
)


def render_ipvsadm(table: Table, stats: Stats | None = None) -> str:
    """``table`` as ``ipvsadm -Ln`` prints it (forwarding is always Masq).

    ``stats(service_key, server)`` may supply (active, inactive) connection
    counts; without it they are 0.
    """
    lines = [IPVS_HEADER]
    for key in sorted(table):
        vs = table[key]
        flags = f" persistent {vs.persistence_seconds}" if vs.persistence_seconds else ""
        lines.append(f"{key.protocol}  {key.endpoint} {vs.scheduler}{flags}")
        for rs in vs.real_servers:
            active, inactive = stats(key, rs) if stats else (0, 0)
            line = f"  -> {rs.endpoint:<28} {'Masq':<7} {rs.weight:<6} {active:<10} {inactive:<10}"
            lines.append(line.rstrip())
    return "\n".join(lines) + "\n"
