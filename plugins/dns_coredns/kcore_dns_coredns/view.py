"""The cluster view: every DNS name the cluster answers, kept current by informer events.

Modelled on the CoreDNS ``kubernetes`` plugin's schema
(https://github.com/kubernetes/dns/blob/master/docs/specification.md):

* ``<svc>.<ns>.svc.<domain>``: A/AAAA of the ClusterIPs; for a headless service
  (``clusterIP: None``) the addresses of its ready endpoints; CNAME for an
  ``ExternalName`` service.
* ``<host>.<svc>.<ns>.svc.<domain>``: A/AAAA of one ready endpoint of a service,
  ``<host>`` being the endpoint's ``hostname`` (StatefulSet pods) or its address
  with dashes (``10-1-2-3``), as CoreDNS does (``publishNotReadyAddresses``
  counts every endpoint as ready).
* ``_<port>._<proto>.<svc>.<ns>.svc.<domain>``: SRV per named port (the service as
  target for a ClusterIP service, each endpoint name for a headless one).
* ``<reversed ip>.in-addr.arpa`` / ``ip6.arpa``: PTR of ClusterIPs (to the service)
  and of endpoint addresses, that is pod IPs behind a service (to the endpoint's name).

Records are built per service when the service or one of its EndpointSlices
changes (work in the size of that service only), as ready-made ``RRset`` objects
in one dict keyed by name, so a query is a dict lookup. Empty non-terminals
(``<ns>.svc.<domain>``, ``_tcp.<svc>...``) are counted, so "no such name" (NXDOMAIN)
and "name exists, not this type" (NODATA) are told apart as a real zone would.

Everything runs on the event loop thread (informer handlers and queries alike),
so there is no locking.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_TTL = 5

Obj = dict[str, Any]
# (namespace, name) of a service
ServiceKey = tuple[str, str]
# name -> rdtype -> RRset, for one service
Records = dict[dns.name.Name, dict[int, dns.rrset.RRset]]


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


class ClusterView:
    """Services and EndpointSlices turned into DNS records, indexed by owner name.

    Feed it with :meth:`on_service` / :meth:`on_service_deleted` /
    :meth:`on_slice` / :meth:`on_slice_deleted` (the informer handlers do), and read
    it with :meth:`lookup` and :meth:`exists`. ``generation`` grows on every change,
    so answers cached for an older generation are known to be stale.
    """

    def __init__(self, cluster_domain: str = "cluster.local", ttl: int = DEFAULT_TTL) -> None:
        self.domain = dns.name.from_text(cluster_domain.strip(".") + ".")
        self.ttl = ttl
        self.generation = 0
        self._services: dict[ServiceKey, Obj] = {}
        # service key -> slice key ("ns/name") -> slice object
        self._slices: dict[ServiceKey, dict[str, Obj]] = {}
        self._slice_owner: dict[str, ServiceKey] = {}
        # what each service contributed, to take it back on the next rebuild
        self._owned: dict[ServiceKey, Records] = {}
        # the zone: name -> owner -> rdtype -> RRset
        self._names: dict[dns.name.Name, dict[ServiceKey, dict[int, dns.rrset.RRset]]] = {}
        # empty non-terminals: name -> how many owned names lie below it
        self._ents: dict[dns.name.Name, int] = {}

    # ---- reads -------------------------------------------------------------------

    @property
    def services(self) -> dict[ServiceKey, Obj]:
        """The cached Service objects by ``(namespace, name)``; do not mutate."""
        return self._services

    def endpoint_slices(self, namespace: str, service: str) -> list[Obj]:
        """The cached EndpointSlices of one service; do not mutate."""
        return list(self._slices.get((namespace, service), {}).values())

    def lookup(self, name: dns.name.Name) -> dict[int, dns.rrset.RRset] | None:
        """The record sets owned by ``name`` (lower case) by type, or None if it owns none."""
        owners = self._names.get(name)
        if not owners:
            return None
        if len(owners) == 1:
            return next(iter(owners.values()))
        merged: dict[int, dns.rrset.RRset] = {}
        for by_type in owners.values():
            for rdtype, rrset in by_type.items():
                if rdtype in merged:
                    merged[rdtype] = merged[rdtype].union(rrset)
                else:
                    merged[rdtype] = rrset
        return merged

    def exists(self, name: dns.name.Name) -> bool:
        """Whether ``name`` owns records or has names below it (an empty non-terminal)."""
        return name in self._names or name in self._ents

    def __len__(self) -> int:
        return len(self._names)

    # ---- writes (informer handlers) --------------------------------------------------

    def on_service(self, service: Obj) -> None:
        meta = _meta(service)
        key = (meta.get("namespace") or "default", meta["name"])
        self._services[key] = service
        self._rebuild(key)

    def on_service_deleted(self, service: Obj) -> None:
        meta = _meta(service)
        key = (meta.get("namespace") or "default", meta["name"])
        if self._services.pop(key, None) is not None:
            self._rebuild(key)

    def on_slice(self, endpoint_slice: Obj) -> None:
        meta = _meta(endpoint_slice)
        namespace = meta.get("namespace") or "default"
        slice_key = f"{namespace}/{meta['name']}"
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        old_owner = self._slice_owner.get(slice_key)
        new_owner = (namespace, service) if service else None
        if old_owner is not None and old_owner != new_owner:
            self._forget_slice(slice_key, old_owner)
            self._rebuild(old_owner)
        if new_owner is None:
            return
        self._slice_owner[slice_key] = new_owner
        self._slices.setdefault(new_owner, {})[slice_key] = endpoint_slice
        self._rebuild(new_owner)

    def on_slice_deleted(self, endpoint_slice: Obj) -> None:
        meta = _meta(endpoint_slice)
        slice_key = f"{meta.get('namespace') or 'default'}/{meta['name']}"
        owner = self._slice_owner.get(slice_key)
        if owner is not None:
            self._forget_slice(slice_key, owner)
            self._rebuild(owner)

    def _forget_slice(self, slice_key: str, owner: ServiceKey) -> None:
        self._slice_owner.pop(slice_key, None)
        slices = self._slices.get(owner)
        if slices is not None:
            slices.pop(slice_key, None)
            if not slices:
                del self._slices[owner]

    # ---- building ------------------------------------------------------------------

    def _rebuild(self, key: ServiceKey) -> None:
        self.generation += 1
        for name in self._owned.pop(key, {}):
            owners = self._names.get(name)
            if owners is not None:
                owners.pop(key, None)
                if not owners:
                    del self._names[name]
            self._count_ents(name, -1)
        service = self._services.get(key)
        if service is None:
            return
        records = build_service_records(service, self.endpoint_slices(*key), self.domain, self.ttl)
        if not records:
            return
        self._owned[key] = records
        for name, by_type in records.items():
            self._names.setdefault(name, {})[key] = by_type
            self._count_ents(name, +1)

    def _count_ents(self, name: dns.name.Name, delta: int) -> None:
        """Count ``name``'s ancestors strictly below its zone (cluster domain or reverse zone)."""
        zone = self.domain if name.is_subdomain(self.domain) else _reverse_zone(name)
        if zone is None:
            return
        parent = name.parent()
        while parent != zone and parent.is_subdomain(zone):
            count = self._ents.get(parent, 0) + delta
            if count > 0:
                self._ents[parent] = count
            else:
                self._ents.pop(parent, None)
            parent = parent.parent()


_IN_ADDR = dns.name.from_text("in-addr.arpa.")
_IP6 = dns.name.from_text("ip6.arpa.")


def _reverse_zone(name: dns.name.Name) -> dns.name.Name | None:
    for zone in (_IN_ADDR, _IP6):
        if name.is_subdomain(zone):
            return zone
    return None


def dashed(address: str) -> str:
    """``10.1.2.3`` -> ``10-1-2-3`` (``:`` -> ``-`` for IPv6), the CoreDNS endpoint label."""
    return address.replace(".", "-").replace(":", "-")


def _family_type(address: str) -> int | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return dns.rdatatype.A if ip.version == 4 else dns.rdatatype.AAAA


class _Builder:
    """Accumulates records of one service: name -> rdtype -> RRset."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.records: Records = {}

    def add(self, name: dns.name.Name, rdtype: int, text: str) -> None:
        by_type = self.records.setdefault(name, {})
        rrset = by_type.get(rdtype)
        if rrset is None:
            rrset = by_type[rdtype] = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
        rrset.add(dns.rdata.from_text(dns.rdataclass.IN, rdtype, text), self.ttl)

    def address(self, name: dns.name.Name, address: str) -> bool:
        rdtype = _family_type(address)
        if rdtype is None:
            return False
        self.add(name, rdtype, address)
        return True

    def ptr(self, address: str, target: dns.name.Name) -> None:
        try:
            reverse = dns.reversename.from_address(address)
        except (ValueError, dns.exception.SyntaxError):
            return
        self.add(reverse, dns.rdatatype.PTR, target.to_text())


def _port_label(port: Obj) -> tuple[str, str] | None:
    name = port.get("name")
    if not name:
        return None
    return f"_{name}".lower(), f"_{(port.get('protocol') or 'TCP')}".lower()


def _ready(endpoint: Obj) -> bool:
    # Kubernetes: an unset ready condition is to be read as ready.
    return (endpoint.get("conditions") or {}).get("ready") is not False


def build_service_records(service: Obj, slices: Iterable[Obj], domain: dns.name.Name,
                          ttl: int = DEFAULT_TTL) -> Records:
    """Every record one service owns, from the Service and its EndpointSlices."""
    meta = _meta(service)
    spec = service.get("spec") or {}
    namespace = (meta.get("namespace") or "default").lower()
    svc_name = dns.name.Name((meta["name"].lower(), namespace, "svc")).concatenate(domain)
    out = _Builder(ttl)

    if spec.get("type") == "ExternalName":
        target = (spec.get("externalName") or "").strip(".")
        if target:
            out.add(svc_name, dns.rdatatype.CNAME, target + ".")
        return out.records

    cluster_ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip]
    headless = not cluster_ips or cluster_ips == ["None"]
    if not headless:
        for ip in cluster_ips:
            if out.address(svc_name, ip):
                out.ptr(ip, svc_name)
        named = [p for p in spec.get("ports") or [] if _port_label(p)]
        for port in named:
            port_name, proto = _port_label(port)  # type: ignore[misc]
            srv = dns.name.Name((port_name, proto)).concatenate(svc_name)
            out.add(srv, dns.rdatatype.SRV, f"0 100 {int(port['port'])} {svc_name}")

    # The ready endpoints, each under its own name with a PTR back to it (as
    # CoreDNS answers them for every service); a headless service's name is theirs.
    include_unready = bool(spec.get("publishNotReadyAddresses"))
    seen: set[str] = set()
    targets: list[tuple[dns.name.Name, Obj]] = []  # (endpoint name, slice ports)
    for endpoint_slice in slices:
        if endpoint_slice.get("addressType") not in ("IPv4", "IPv6", None):
            continue
        for endpoint in endpoint_slice.get("endpoints") or []:
            if not (include_unready or _ready(endpoint)):
                continue
            hostname = (endpoint.get("hostname") or "").lower()
            for address in endpoint.get("addresses") or []:
                host = dns.name.Name((hostname or dashed(address),)).concatenate(svc_name)
                if address in seen or not out.address(host, address):
                    continue
                seen.add(address)
                out.ptr(address, host)
                if headless:
                    out.address(svc_name, address)
                    targets.append((host, endpoint_slice))
    by_port: dict[tuple[str, str], list[tuple[int, dns.name.Name]]] = {}
    for host, endpoint_slice in targets:
        for port in endpoint_slice.get("ports") or []:
            labels = _port_label(port)
            if labels and port.get("port") is not None:
                by_port.setdefault(labels, []).append((int(port["port"]), host))
    for (port_name, proto), entries in by_port.items():
        srv = dns.name.Name((port_name, proto)).concatenate(svc_name)
        weight = max(1, 100 // len(entries))
        for number, host in entries:
            out.add(srv, dns.rdatatype.SRV, f"0 {weight} {number} {host}")
    return out.records
