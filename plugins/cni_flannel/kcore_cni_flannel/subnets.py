"""Per-node subnet leases carved out of the cluster CIDR (flannel's kube subnet manager).

Each node gets one ``subnet_length`` subnet of ``cluster_cidr``, recorded on its Node
as ``spec.podCIDR``/``spec.podCIDRs`` with flannel's annotations beside it.

Why a registry object: a Node's resourceVersion only guards *that* Node, so two nodes
that list at the same moment could both pick the same free subnet and both write it
successfully. Every lease therefore first records itself in one shared ConfigMap
(``kube-system/kcore-flannel-subnets``, data ``{node name: subnet}``) with a
resourceVersion-conditional update: of two concurrent leases only one write wins,
the other gets 409 Conflict, re-reads and picks again. The ConfigMap is read
*before* the Node list, so every entry in it belongs to a Node that the list shows
unless that Node was deleted; entries of deleted Nodes are dropped, which returns
their subnets to the pool.

A Node that already has a ``podCIDR`` keeps it: Kubernetes makes the field immutable
once set, so a restarted node finds its old subnet.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from kcore.client import ApiClient, ApiStatusError
from kcore.errors import UserFacingError
from kcore.log import get_logger

log = get_logger("cni.flannel.subnets")

REGISTRY_NAMESPACE = "kube-system"
REGISTRY_NAME = "kcore-flannel-subnets"
ANNOTATION_PREFIX = "flannel.alpha.coreos.com/"
MAX_ATTEMPTS = 200


class SubnetExhaustedError(UserFacingError):
    """Every subnet of the cluster CIDR is leased to some node."""


def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=True)


def allocate_subnet(cluster_cidr: str, subnet_length: int, taken: Iterable[str],
                    preferred: str | None = None) -> str:
    """Pick a free ``/subnet_length`` subnet of ``cluster_cidr``.

    ``preferred`` wins if it is a valid, free subnet of the cluster CIDR (a node asking
    for its old lease back). Otherwise the lowest free subnet is chosen, skipping the
    very first one (``x.x.0.0/24``), whose ``.0`` addresses confuse some software, as
    flannel does. Entries of ``taken`` that are not inside the cluster CIDR are
    ignored; overlapping ones block every subnet they overlap.

    :raises SubnetExhaustedError: when no subnet is free.
    :raises ValueError: for a subnet length shorter than the cluster prefix.
    """
    cluster = _network(cluster_cidr)
    if subnet_length < cluster.prefixlen or subnet_length > cluster.max_prefixlen:
        raise ValueError(f"subnet length /{subnet_length} does not fit in cluster CIDR {cluster_cidr}")
    blocked = []
    for item in taken:
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            continue
        if net.version == cluster.version and net.overlaps(cluster):
            blocked.append(net)

    def free(candidate: Any) -> bool:
        return not any(candidate.overlaps(b) for b in blocked)

    if preferred:
        try:
            want = ipaddress.ip_network(preferred, strict=True)
        except ValueError:
            want = None
        if (want is not None and want.version == cluster.version and want.prefixlen == subnet_length
                and want.subnet_of(cluster) and free(want)):  # type: ignore[arg-type]
            return str(want)
    count = 1 << (subnet_length - cluster.prefixlen)
    step = 1 << (cluster.max_prefixlen - subnet_length)
    base = int(cluster.network_address)
    # With only one subnet possible it must be used; otherwise skip the first one.
    for index in range(1 if count > 1 else 0, count):
        candidate = ipaddress.ip_network((base + index * step, subnet_length))
        if free(candidate):
            return str(candidate)
    raise SubnetExhaustedError(
        f"no free /{subnet_length} subnet left in cluster CIDR {cluster_cidr} "
        f"({count} subnets, all leased); remove unused nodes or widen network.cluster_cidr")


def flannel_annotations(*, vni: int, vtep_mac: str | None, public_ip: str | None,
                        backend: str = "vxlan") -> dict[str, str]:
    """The annotations flannel's kube subnet manager puts on a Node."""
    data: dict[str, Any] = {"VNI": vni} if backend == "vxlan" else {}
    if backend == "vxlan" and vtep_mac:
        data["VtepMAC"] = vtep_mac
    annotations = {
        ANNOTATION_PREFIX + "backend-type": backend,
        ANNOTATION_PREFIX + "backend-data": json.dumps(data, separators=(",", ":")),
        ANNOTATION_PREFIX + "kube-subnet-manager": "true",
    }
    if public_ip:
        annotations[ANNOTATION_PREFIX + "public-ip"] = public_ip
    return annotations


def _setting(settings: Any, name: str, default: Any) -> Any:
    if isinstance(settings, dict):
        return settings.get(name, default)
    return getattr(settings, name, default)


async def _registry(client: ApiClient) -> dict[str, Any]:
    configmaps = client.resource("v1", "ConfigMap")
    current = await configmaps.get_or_none(REGISTRY_NAME, REGISTRY_NAMESPACE)
    if current is not None:
        return current
    try:
        return await configmaps.create(
            {"metadata": {"name": REGISTRY_NAME, "namespace": REGISTRY_NAMESPACE,
                          "labels": {"app.kubernetes.io/managed-by": "kcore-cni-flannel"}},
             "data": {}}, namespace=REGISTRY_NAMESPACE)
    except ApiStatusError as exc:
        if exc.code != 409:
            raise
        return await configmaps.get(REGISTRY_NAME, REGISTRY_NAMESPACE)


async def _reserve(client: ApiClient, node_name: str, cluster_cidr: str, subnet_length: int) -> str:
    """Record a subnet for ``node_name`` in the registry; retried until no write races it."""
    configmaps = client.resource("v1", "ConfigMap")
    nodes = client.resource("v1", "Node")
    for _attempt in range(MAX_ATTEMPTS):
        registry = await _registry(client)  # read before the Node list (see module doc)
        items, _ = await nodes.list()
        existing = {n["metadata"]["name"]: n for n in items}
        entries: dict[str, str] = dict(registry.get("data") or {})
        live = {name: subnet for name, subnet in entries.items() if name in existing}
        taken: set[str] = {subnet for name, subnet in live.items() if name != node_name}
        for name, node in existing.items():
            if name == node_name:
                continue
            spec = node.get("spec") or {}
            taken.update(c for c in [spec.get("podCIDR"), *(spec.get("podCIDRs") or [])] if c)
        subnet = allocate_subnet(cluster_cidr, subnet_length, taken, preferred=entries.get(node_name))
        live[node_name] = subnet
        if live == entries:
            return subnet
        registry["data"] = live
        try:
            await configmaps.update(registry)  # carries the resourceVersion: 409 if stale
        except ApiStatusError as exc:
            if exc.code == 409:
                continue
            raise
        dropped = sorted(set(entries) - set(live))
        if dropped:
            log.info("released subnets of deleted nodes", nodes=dropped)
        return subnet
    raise RuntimeError(f"could not lease a subnet for node {node_name}: {MAX_ATTEMPTS} conflicting writes")


async def lease_subnet(client: ApiClient, node_name: str, settings: Any = None, *,
                       vtep_mac: str | None = None, public_ip: str | None = None) -> str:
    """Lease this node's pod subnet and record it on its Node; returns the subnet.

    ``settings`` is the network configuration (a ``NetworkConfig`` or a dict with
    ``cluster_cidr``, ``subnet_length``, ``backend``, ``vni``). The Node must exist.
    A Node whose ``spec.podCIDR`` is already set keeps it. The Node write is
    conditional on its resourceVersion and retried on 409.

    :raises SubnetExhaustedError: when every subnet is leased.
    """
    cluster_cidr = str(_setting(settings, "cluster_cidr", "10.244.0.0/16"))
    subnet_length = int(_setting(settings, "subnet_length", 24))
    backend = str(_setting(settings, "backend", "vxlan"))
    vni = int(_setting(settings, "vni", 1))
    nodes = client.resource("v1", "Node")
    annotations = flannel_annotations(vni=vni, vtep_mac=vtep_mac, public_ip=public_ip, backend=backend)
    subnet: str | None = None
    for _attempt in range(MAX_ATTEMPTS):
        node = await nodes.get(node_name)
        spec = node.setdefault("spec", {})
        existing = spec.get("podCIDR")
        if existing:
            subnet = existing
        elif subnet is None:
            subnet = await _reserve(client, node_name, cluster_cidr, subnet_length)
        meta = node.setdefault("metadata", {})
        current = meta.get("annotations") or {}
        if existing and all(current.get(k) == v for k, v in annotations.items()):
            return existing
        meta["annotations"] = {**current, **annotations}
        if not existing:
            spec["podCIDR"] = subnet
            spec["podCIDRs"] = [subnet]
        try:
            await nodes.update(node)
        except ApiStatusError as exc:
            if exc.code == 409:
                continue
            raise
        log.info("leased pod subnet", node=node_name, subnet=subnet, kept=bool(existing))
        return str(subnet)
    raise RuntimeError(f"could not record the subnet on node {node_name}: {MAX_ATTEMPTS} conflicting writes")
