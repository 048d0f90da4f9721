"""Service ClusterIP and NodePort allocation, persisted in the store itself.

Kubernetes keeps a bitmap of allocated service IPs and node ports in etcd and
repairs it in the background. kcore keeps one key per allocation instead:

    /registry/ranges/serviceips/<ip>            -> {"namespace", "name", "uid"}
    /registry/ranges/servicenodeports/<port>    -> {"namespace", "name", "uid"}

Each allocation is a create-if-absent write, so two concurrent creates (even in
two API servers over one store) can never get the same address, and a restarted
server knows every allocation: the map is the store. A key names the Service
(by uid) that owns it; only that Service's delete or update releases it.

Rules, as in Kubernetes:

- ClusterIP, NodePort and LoadBalancer services get a cluster IP from the
  service CIDR; a requested ``spec.clusterIP`` is honoured when it is inside the
  CIDR and free (422 otherwise). Automatic picks start at a random address and
  never hand out the network address, the broadcast address or the first
  address (``.1``), which belongs to the ``kubernetes`` Service.
- ``clusterIP: None`` is a headless service (nothing allocated); ExternalName
  services get no IP at all.
- NodePort and LoadBalancer services (unless ``allocateLoadBalancerNodePorts``
  is false) get a node port per service port from the node port range; a
  requested ``nodePort`` is honoured when in range and free.
- The cluster IP may not change on update (``field is immutable``); an update
  that omits ``clusterIP`` or a port's ``nodePort`` keeps the old value (what
  ``kubectl apply`` and a PUT of the original manifest rely on).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

import orjson

from kcore.apiserver import errors
from kcore.store.contract import ConflictError, KeyExistsError, KeyNotFoundError, Store

Obj = dict[str, Any]

IP_PREFIX = "/registry/ranges/serviceips/"
PORT_PREFIX = "/registry/ranges/servicenodeports/"
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")
DEFAULT_LOAD_BALANCER_IP = "127.0.0.1"


def parse_port_range(text: str) -> tuple[int, int]:
    low, high = (int(part) for part in text.split("-", 1))
    return low, high


def needs_cluster_ip(spec: Obj) -> bool:
    """A Service of this spec holds an allocated cluster IP (not ExternalName, not headless)."""
    return (spec.get("type") or "ClusterIP") != "ExternalName" and \
        spec.get("clusterIP") not in (None, "", "None")


def needs_node_ports(spec: Obj) -> bool:
    kind = spec.get("type") or "ClusterIP"
    if kind == "NodePort":
        return True
    return kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False


def _port_key(port: Obj) -> tuple[Any, str]:
    return port.get("port"), port.get("protocol") or "TCP"


def prepare_service_update(old: Obj, new: Obj) -> None:
    """Kubernetes' ``PrepareForUpdate`` for Services, before validation: keep the
    allocated values the update left out, drop the ones its new type cannot have."""
    old_spec = old.get("spec") or {}
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return
    old_type = old_spec.get("type") or "ClusterIP"
    new_type = spec.get("type") or "ClusterIP"
    if old_type != "ExternalName" and new_type != "ExternalName":
        # patchAllocatedValues: the cluster IP(s) and families stay when not given
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            if not spec.get("clusterIPs") or spec["clusterIPs"][0] == old_spec["clusterIP"]:
                spec["clusterIP"] = old_spec["clusterIP"]
        if spec.get("clusterIP") == old_spec.get("clusterIP") and not spec.get("clusterIPs") \
                and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
        if spec.get("clusterIP") == old_spec.get("clusterIP") and not spec.get("ipFamilies") \
                and old_spec.get("ipFamilies"):
            spec["ipFamilies"] = list(old_spec["ipFamilies"])
    if new_type == "ExternalName" and old_type != "ExternalName":
        # dropTypeDependentFields: the IP goes with the type
        if spec.get("clusterIP") in (old_spec.get("clusterIP"), ""):
            spec.pop("clusterIP", None)
        if spec.get("clusterIPs") in (old_spec.get("clusterIPs"), []):
            spec.pop("clusterIPs", None)
        for field in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if spec.get(field) == old_spec.get(field):
                spec.pop(field, None)
    old_ports = {_port_key(p): p.get("nodePort") for p in old_spec.get("ports") or []
                 if isinstance(p, dict) and p.get("nodePort")}
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    if needs_node_ports(old_spec) and needs_node_ports(spec):
        for port in ports:
            if not port.get("nodePort") and _port_key(port) in old_ports:
                port["nodePort"] = old_ports[_port_key(port)]
    elif not needs_node_ports(spec) and needs_node_ports(old_spec):
        for port in ports:
            if port.get("nodePort") and port.get("nodePort") == old_ports.get(_port_key(port)):
                port.pop("nodePort", None)
        if spec.get("healthCheckNodePort") == old_spec.get("healthCheckNodePort"):
            spec.pop("healthCheckNodePort", None)
    if new_type not in NODE_PORT_TYPES and old_type in NODE_PORT_TYPES:
        if spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
            spec.pop("externalTrafficPolicy", None)
        if spec.get("allocateLoadBalancerNodePorts") == old_spec.get("allocateLoadBalancerNodePorts"):
            spec.pop("allocateLoadBalancerNodePorts", None)


class ServiceAllocator:
    """Cluster IPs and node ports of Services, one create-if-absent key each."""

    def __init__(self, store: Store, *, service_cidr: str = "10.96.0.0/12",
                 node_port_range: str = "30000-32767",
                 load_balancer_ip: str = DEFAULT_LOAD_BALANCER_IP) -> None:
        self.store = store
        self.network = ipaddress.ip_network(service_cidr)
        self.cidr = str(self.network)
        self.family = "IPv4" if self.network.version == 4 else "IPv6"
        self.port_range_text = node_port_range
        self.port_low, self.port_high = parse_port_range(node_port_range)
        self.load_balancer_ip = load_balancer_ip
        self.random = random.Random()

    # ---- the ranges ------------------------------------------------------------

    @property
    def kubernetes_ip(self) -> str:
        """The first address of the CIDR: the ``kubernetes`` Service's."""
        return str(self.network.network_address + 1)

    def _ip_offsets(self) -> tuple[int, int]:
        """First and last offset inside the network that automatic picks may use."""
        size = self.network.num_addresses
        last = size - 2 if self.network.version == 4 else size - 1  # IPv4: no broadcast
        return 2, max(2, last)  # never the network address, never .1

    def ip_in_range(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if address.version != self.network.version or address not in self.network:
            return False
        offset = int(address) - int(self.network.network_address)
        size = self.network.num_addresses
        if offset == 0:
            return False
        return not (self.network.version == 4 and size > 2 and offset == size - 1)

    # ---- store bookkeeping -----------------------------------------------------

    @staticmethod
    def _owner(obj: Obj) -> bytes:
        meta = obj.get("metadata") or {}
        return orjson.dumps({"kind": "Service", "namespace": meta.get("namespace"),
                             "name": meta.get("name"), "uid": meta.get("uid")})

    async def _owned_by(self, key: str, obj: Obj) -> bool | None:
        """True: the key is this Service's; False: someone else's; None: free."""
        kv = await self.store.get(key)
        if kv is None:
            return None
        try:
            owner = orjson.loads(kv.value)
        except orjson.JSONDecodeError:
            return False
        return owner.get("uid") == (obj.get("metadata") or {}).get("uid")

    async def _claim(self, key: str, obj: Obj, dry_run: bool) -> bool:
        """Claim ``key`` for ``obj``: False if another Service holds it."""
        if dry_run:
            return await self._owned_by(key, obj) is not False
        try:
            await self.store.create(key, self._owner(obj))
            return True
        except KeyExistsError:
            return bool(await self._owned_by(key, obj))

    async def release_keys(self, keys: list[str], obj: Obj) -> None:
        """Give back allocations (only those that ``obj`` still owns)."""
        uid = (obj.get("metadata") or {}).get("uid")
        for key in keys:
            for _attempt in range(4):
                kv = await self.store.get(key)
                if kv is None:
                    break
                try:
                    if orjson.loads(kv.value).get("uid") != uid:
                        break
                except orjson.JSONDecodeError:
                    break
                try:
                    await self.store.delete(key, kv.mod_revision)
                    break
                except KeyNotFoundError:
                    break
                except ConflictError:
                    continue

    async def _taken(self, prefix: str) -> set[str]:
        taken: set[str] = set()
        token = None
        while True:
            page = await self.store.list(prefix, continue_token=token)
            taken.update(kv.key[len(prefix):] for kv in page.items)
            token = page.continue_token
            if not token:
                return taken

    async def _pick(self, prefix: str, low: int, high: int, render: Any, obj: Obj,
                    dry_run: bool) -> str | None:
        """A free value in [low, high] (as rendered), claimed for ``obj``; random start."""
        count = high - low + 1
        if count <= 0:
            return None
        taken = await self._taken(prefix)
        start = self.random.randrange(count)
        for step in range(count):
            value = render(low + (start + step) % count)
            if value in taken:
                continue
            if await self._claim(prefix + value, obj, dry_run):
                return value
            taken.add(value)
        return None

    # ---- cluster IPs -----------------------------------------------------------

    def _invalid(self, obj: Obj, field: str, value: Any, detail: str) -> errors.ApiError:
        shown = f'"{value}"' if isinstance(value, str) else str(value)
        return errors.invalid("Service", "", (obj.get("metadata") or {}).get("name"), [{
            "reason": "FieldValueInvalid", "field": field,
            "message": f"Invalid value: {shown}: {detail}"}])

    async def _allocate_ip(self, obj: Obj, spec: Obj, keys: list[str], dry_run: bool) -> None:
        requested = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if requested == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
        elif requested:
            if not self.ip_in_range(requested):
                raise self._invalid(obj, "spec.clusterIP", requested,
                                    f"the provided IP ({requested}) is not in the valid range. "
                                    f"The range of valid IPs is {self.cidr}")
            requested = str(ipaddress.ip_address(requested))
            if not await self._claim(IP_PREFIX + requested, obj, dry_run):
                raise self._invalid(obj, "spec.clusterIP", requested, "provided IP is already allocated")
            if not dry_run:
                keys.append(IP_PREFIX + requested)
            spec["clusterIP"] = requested
            spec["clusterIPs"] = [requested]
        else:
            low, high = self._ip_offsets()
            base = int(self.network.network_address)
            ip = await self._pick(IP_PREFIX, low, high,
                                  lambda n: str(ipaddress.ip_address(base + n)), obj, dry_run)
            if ip is None:
                raise errors.internal(f"failed to allocate a serviceIP: range is full "
                                      f"(the service CIDR {self.cidr} has no free address)")
            if not dry_run:
                keys.append(IP_PREFIX + ip)
            spec["clusterIP"] = ip
            spec["clusterIPs"] = [ip]
        spec["ipFamilies"] = [self.family]
        spec.setdefault("ipFamilyPolicy", "SingleStack")

    # ---- node ports ------------------------------------------------------------

    async def _allocate_ports(self, obj: Obj, spec: Obj, keep: set[int], keys: list[str],
                              dry_run: bool) -> None:
        """Node ports for every port of ``spec``; ``keep`` are ports this Service already holds."""
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        seen: set[int] = set()
        for i, port in enumerate(ports):  # explicit ones first, so auto picks avoid them
            wanted = port.get("nodePort")
            if not wanted:
                continue
            field = f"spec.ports[{i}].nodePort"
            if not self.port_low <= wanted <= self.port_high:
                raise self._invalid(obj, field, wanted,
                                    f"provided port is not in the valid range. The range of valid "
                                    f"ports is {self.port_range_text}")
            if wanted in keep or wanted in seen:
                seen.add(wanted)
                continue
            if not await self._claim(PORT_PREFIX + str(wanted), obj, dry_run):
                raise self._invalid(obj, field, wanted, "provided port is already allocated")
            seen.add(wanted)
            if not dry_run:
                keys.append(PORT_PREFIX + str(wanted))
        for port in ports:
            if port.get("nodePort"):
                continue
            picked = await self._pick(PORT_PREFIX, self.port_low, self.port_high, str, obj, dry_run)
            if picked is None:
                raise errors.internal(f"failed to allocate a nodePort: range is full "
                                      f"({self.port_range_text})")
            if not dry_run:
                keys.append(PORT_PREFIX + picked)
            port["nodePort"] = int(picked)

    # ---- what the registry calls -----------------------------------------------

    def _status(self, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        balancer = status.get("loadBalancer")
        if not isinstance(balancer, dict):
            balancer = status["loadBalancer"] = {}
        if (spec.get("type") or "ClusterIP") == "LoadBalancer":
            if not balancer.get("ingress"):
                balancer["ingress"] = [{"ip": self.load_balancer_ip, "ipMode": "VIP"}]
        else:
            balancer.pop("ingress", None)

    async def allocate_create(self, obj: Obj, *, dry_run: bool = False) -> list[str]:
        """Fill a new Service's cluster IP and node ports; returns the keys claimed
        (to release if the create fails)."""
        spec = obj.get("spec")
        keys: list[str] = []
        if not isinstance(spec, dict):
            return keys
        try:
            if (spec.get("type") or "ClusterIP") != "ExternalName":
                await self._allocate_ip(obj, spec, keys, dry_run)
            if needs_node_ports(spec):
                await self._allocate_ports(obj, spec, set(), keys, dry_run)
        except BaseException:
            await self.release_keys(keys, obj)
            raise
        self._status(obj)
        return keys

    async def allocate_update(self, old: Obj, new: Obj, *,
                              dry_run: bool = False) -> tuple[list[str], list[str]]:
        """Allocations for an update: returns (claimed now, to release once written)."""
        old_spec = old.get("spec") or {}
        spec = new.get("spec")
        if not isinstance(spec, dict):
            return [], []
        old_type = old_spec.get("type") or "ClusterIP"
        new_type = spec.get("type") or "ClusterIP"
        claimed: list[str] = []
        release: list[str] = []
        try:
            if new_type == "ExternalName":
                if needs_cluster_ip(old_spec):
                    release.append(IP_PREFIX + old_spec["clusterIP"])
            elif old_type == "ExternalName" or not old_spec.get("clusterIP"):
                # from ExternalName, or a Service stored without allocation: allocate now
                await self._allocate_ip(new, spec, claimed, dry_run)
            elif spec.get("clusterIP") != old_spec.get("clusterIP") or \
                    (spec.get("clusterIPs") and old_spec.get("clusterIPs")
                     and spec["clusterIPs"][0] != old_spec["clusterIPs"][0]):
                value = spec.get("clusterIP") if spec.get("clusterIP") != old_spec.get("clusterIP") \
                    else spec["clusterIPs"][0]
                raise self._invalid(new, "spec.clusterIP", value or "", "field is immutable")
            else:
                spec["clusterIPs"] = list(old_spec.get("clusterIPs") or
                                          ([old_spec["clusterIP"]] if old_spec.get("clusterIP") else []))
                if old_spec.get("ipFamilies"):
                    spec["ipFamilies"] = list(old_spec["ipFamilies"])
                if not spec["clusterIPs"]:
                    spec.pop("clusterIPs")
            old_ports = {p.get("nodePort") for p in old_spec.get("ports") or []
                         if isinstance(p, dict) and p.get("nodePort")} if needs_node_ports(old_spec) else set()
            if needs_node_ports(spec):
                await self._allocate_ports(new, spec, old_ports, claimed, dry_run)
                kept = {p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)}
            else:
                kept = set()
            release.extend(PORT_PREFIX + str(p) for p in sorted(old_ports - kept))
        except BaseException:
            await self.release_keys(claimed, new)
            raise
        self._status(new)
        return claimed, release

    def held_keys(self, obj: Obj) -> list[str]:
        """Every allocation key a stored Service holds."""
        spec = obj.get("spec") or {}
        keys = []
        if needs_cluster_ip(spec):
            keys.append(IP_PREFIX + spec["clusterIP"])
        if needs_node_ports(spec):
            keys.extend(PORT_PREFIX + str(p["nodePort"]) for p in spec.get("ports") or []
                        if isinstance(p, dict) and p.get("nodePort"))
        return keys

    async def release(self, obj: Obj) -> None:
        """A Service is gone: give back everything it held."""
        await self.release_keys(self.held_keys(obj), obj)

    async def repair(self, services: list[Obj]) -> int:
        """Re-create the allocation keys of stored Services that lack them (a store
        written before allocations were recorded); returns how many were restored."""
        restored = 0
        for svc in services:
            for key in self.held_keys(svc):
                try:
                    await self.store.create(key, self._owner(svc))
                    restored += 1
                except KeyExistsError:
                    pass
        return restored
