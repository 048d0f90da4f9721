"""The EndpointSliceMirroring controller: hand-written Endpoints as EndpointSlices.

A Service without a selector gets its addresses from an Endpoints object of the same
name that someone writes by hand; proxies and DNS read only EndpointSlices. Like
Kubernetes' ``endpointslicemirroring-controller`` (kube-controller-manager), this
controller mirrors every such Endpoints into EndpointSlices:

* an Endpoints is mirrored when its Service exists and has no selector, it is not
  labelled ``endpointslice.kubernetes.io/skip-mirror: "true"`` and carries no
  leader-election annotation (``control-plane.alpha.kubernetes.io/leader``);
* one slice per (address family, port set): subsets with equal ports share a slice,
  an IPv4 and an IPv6 address of one subset go to two slices. Slices are named
  ``<endpoints>-<random>`` (``generateName``), labelled ``kubernetes.io/service-name``
  and ``endpointslice.kubernetes.io/managed-by:
  endpointslicemirroring-controller.k8s.io`` plus the Endpoints' own labels (but the
  skip-mirror one), carry its annotations (but
  ``endpoints.kubernetes.io/last-change-trigger-time`` and kubectl's
  ``last-applied-configuration``) and are owned by the Endpoints (``controller: true``);
* ``addresses`` become endpoints with ``conditions.ready: true``,
  ``notReadyAddresses`` with ``ready: false``; ``hostname``, ``nodeName`` and
  ``targetRef`` are carried over, the IP is re-formatted canonically;
* at most :data:`MAX_ENDPOINTS_PER_SUBSET` addresses of each subset are mirrored
  (ready ones first), and at most that many per slice; the rest are dropped with a
  ``TooManyAddressesToMirror`` warning event on the Endpoints. Addresses that are not
  IPs are dropped with an ``InvalidIPAddress`` warning event.

Mirrored slices are rewritten when the Endpoints change, and deleted when the
Endpoints are deleted or labelled skip-mirror, when the Service is deleted or gains
a selector. A port set or family that is no longer used recycles its slice for a new
one (an update instead of a delete plus a create). Slices not labelled as managed by
this controller are never touched, and the EndpointSlice controller never touches
ours.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kcore.client import ApiClient, Controller, EventRecorder, Informer, InformerFactory
from kcore.client.informer import object_key
from kcore.controllers.endpoints import STALE_CACHE_RETRY, WrittenVersions, normalized, port_set_key
from kcore.controllers.endpointslice import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, write_slices
from kcore.log import get_logger

Obj = dict[str, Any]

API_VERSION = "discovery.k8s.io/v1"
CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
"""The ``managed-by`` label value of mirrored slices."""
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_ENDPOINTS_PER_SUBSET = 1000
INDEX_MIRRORED = "endpointslicemirroring-endpoints"
"""Slice informer index: ``namespace/name`` of the Endpoints a mirrored slice belongs to."""

FAMILIES = ("IPv4", "IPv6")
TOO_MANY_ADDRESSES = "TooManyAddressesToMirror"
INVALID_IP = "InvalidIPAddress"

log = get_logger("endpointslicemirroring")


# ---------------------------------------------------------------- pure decisions


def mirrored_endpoints_key(endpoint_slice: Mapping[str, Any]) -> list[str]:
    """Index function: the Endpoints key of a slice this controller manages (else none)."""
    meta = endpoint_slice.get("metadata") or {}
    labels = meta.get("labels") or {}
    name = labels.get(SERVICE_NAME_LABEL)
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not name:
        return []
    return [f"{meta.get('namespace')}/{name}"]


def should_mirror(endpoints: Mapping[str, Any] | None) -> bool:
    """Whether an Endpoints may be mirrored at all (its Service is checked apart)."""
    if endpoints is None:
        return False
    meta = endpoints.get("metadata") or {}
    if (meta.get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true":
        return False
    return LEADER_ANNOTATION not in (meta.get("annotations") or {})


def has_selector(service: Mapping[str, Any]) -> bool:
    """A Service with a (non-empty) selector: its slices are the EndpointSlice controller's."""
    return bool((service.get("spec") or {}).get("selector"))


def canonical_ip(text: str | None) -> tuple[str, str] | None:
    """``(family, canonical text)`` of an IP, or None when it is not one.

    Like Go's ``ParseIPSloppy``: IPv4 parts with leading zeros are read as decimal,
    and an IPv4-mapped IPv6 address counts as IPv4.
    """
    if not text:
        return None
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(text)
    except ValueError:
        parts = text.split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
            return None
        ip = ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ("IPv6" if ip.version == 6 else "IPv4"), str(ip)


def address_to_endpoint(address: Mapping[str, Any], ready: bool) -> tuple[str, Obj] | None:
    """A core/v1 EndpointAddress as ``(family, discovery/v1 Endpoint)``; None for a bad IP."""
    parsed = canonical_ip(address.get("ip"))
    if parsed is None:
        return None
    family, ip = parsed
    endpoint: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    if address.get("targetRef"):
        endpoint["targetRef"] = copy.deepcopy(address["targetRef"])
    return family, endpoint


def mirror_ports(ports: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """core/v1 EndpointPorts as discovery/v1 ports (name always written, "" when none)."""
    out = []
    for port in ports:
        entry: Obj = {"name": port.get("name") or "", "port": port.get("port"),
                      "protocol": port.get("protocol") or "TCP"}
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        out.append(entry)
    return out


def mirror_endpoint_key(endpoint: Mapping[str, Any]) -> tuple[Any, ...]:
    """Identity of a mirrored endpoint (Kubernetes' endpoint hash): addresses, hostname, target."""
    ref = endpoint.get("targetRef") or {}
    return (tuple(sorted(endpoint.get("addresses") or ())), endpoint.get("hostname") or "",
            ref.get("namespace") or "", ref.get("name") or "")


def slice_labels(endpoints: Mapping[str, Any]) -> dict[str, str]:
    """The Endpoints' labels (but skip-mirror), the service name and our name."""
    meta = endpoints["metadata"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != SKIP_MIRROR_LABEL}
    labels[SERVICE_NAME_LABEL] = meta["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def slice_annotations(endpoints: Mapping[str, Any]) -> dict[str, str]:
    """The Endpoints' annotations but the change-trigger time and kubectl's last-applied."""
    return {k: v for k, v in ((endpoints.get("metadata") or {}).get("annotations") or {}).items()
            if k not in (LAST_CHANGE_TRIGGER_TIME, LAST_APPLIED)}


def endpoints_owner_reference(endpoints: Mapping[str, Any]) -> Obj:
    meta = endpoints["metadata"]
    return {"apiVersion": "v1", "kind": "Endpoints", "name": meta["name"], "uid": meta.get("uid"),
            "controller": True, "blockOwnerDeletion": True}


PortKey = tuple[tuple[str, int, str, str], ...]
GroupKey = tuple[str, PortKey]


@dataclass
class MirrorPlan:
    """What to write so the mirrored slices of one Endpoints match it."""

    creates: list[Obj] = field(default_factory=list)
    """Bodies to create (``generateName``)."""
    updates: list[Obj] = field(default_factory=list)
    """Updated copies of existing slices (some recycled from a port set no longer used)."""
    deletes: list[Obj] = field(default_factory=list)
    too_many: int = 0
    """Addresses dropped for exceeding the per-subset (or per-slice) limit."""
    invalid: list[str] = field(default_factory=list)
    """Addresses dropped because they are not IPs."""

    @property
    def empty(self) -> bool:
        return not (self.creates or self.updates or self.deletes)


def desired_groups(endpoints: Mapping[str, Any], max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET,
                   ) -> tuple[dict[GroupKey, tuple[list[Obj], dict[tuple[Any, ...], Obj]]], int, list[str]]:
    """(family, port set) -> (ports, endpoint key -> endpoint); plus the over-limit count
    and the invalid addresses.

    Every subset's port set gets an entry per family, empty when no address of that
    family is in it (so its slices are deleted). At most ``max_per_subset`` addresses
    of a subset are taken, ready ones first.
    """
    groups: dict[GroupKey, tuple[list[Obj], dict[tuple[Any, ...], Obj]]] = {}
    too_many = 0
    invalid: list[str] = []
    for subset in endpoints.get("subsets") or []:
        ports = mirror_ports(subset.get("ports") or [])
        port_key = port_set_key(ports)
        for family in FAMILIES:
            groups.setdefault((family, port_key), (ports, {}))
        candidates = [(a, True) for a in subset.get("addresses") or []]
        candidates += [(a, False) for a in subset.get("notReadyAddresses") or []]
        added = 0
        for address, ready in candidates:
            if added >= max_per_subset:
                too_many += 1
                continue
            converted = address_to_endpoint(address, ready)
            if converted is None:
                invalid.append(str(address.get("ip")))
                continue
            family, endpoint = converted
            groups[(family, port_key)][1][mirror_endpoint_key(endpoint)] = endpoint
            added += 1
    return groups, too_many, invalid


def _canonical(items: Iterable[Any]) -> list[str]:
    return sorted(json.dumps(normalized(item), sort_keys=True) for item in items)


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    cur_meta, want_meta = current.get("metadata") or {}, desired["metadata"]
    return (_canonical(current.get("endpoints") or []) != _canonical(desired["endpoints"])
            or _canonical(current.get("ports") or []) != _canonical(desired["ports"])
            or (cur_meta.get("labels") or {}) != want_meta["labels"]
            or (cur_meta.get("annotations") or {}) != want_meta["annotations"]
            or normalized(cur_meta.get("ownerReferences") or []) != normalized(want_meta["ownerReferences"]))


def _slice_body(endpoints: Mapping[str, Any], family: str, ports: list[Obj], members: list[Obj]) -> Obj:
    meta = endpoints["metadata"]
    return {"apiVersion": API_VERSION, "kind": "EndpointSlice",
            "metadata": {"generateName": f"{meta['name']}-", "namespace": meta.get("namespace"),
                         "labels": slice_labels(endpoints), "annotations": slice_annotations(endpoints),
                         "ownerReferences": [endpoints_owner_reference(endpoints)]},
            "addressType": family, "endpoints": members, "ports": ports}


def _replace(existing: Obj, body: Obj) -> Obj:
    """``existing`` (name, resourceVersion, uid kept) with the content of ``body``."""
    updated = copy.deepcopy(existing)
    for key in ("labels", "annotations", "ownerReferences"):
        updated["metadata"][key] = body["metadata"][key]
    for key in ("addressType", "endpoints", "ports"):
        updated[key] = body[key]
    return updated


def plan_mirrored_slices(endpoints: Mapping[str, Any], existing: Iterable[Obj], *,
                         max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> MirrorPlan:
    """What to write so the mirrored slices of ``endpoints`` hold its addresses.

    ``existing`` are the slices this controller manages for that name. One slice per
    (family, port set) is kept (the first by name) and rewritten when it differs;
    extra or unused slices are deleted, or recycled (updated) in place of a slice
    that would be created for the same family. Nothing is created for an Endpoints
    being deleted.
    """
    plan = MirrorPlan()
    groups, plan.too_many, plan.invalid = desired_groups(endpoints, max_per_subset)
    by_group: dict[GroupKey, list[Obj]] = {}
    for endpoint_slice in sorted(existing, key=lambda s: s["metadata"]["name"]):
        group = (str(endpoint_slice.get("addressType")), port_set_key(endpoint_slice.get("ports") or []))
        by_group.setdefault(group, []).append(endpoint_slice)
    for group in sorted(groups):
        family, _port_key = group
        ports, wanted = groups[group]
        current = by_group.pop(group, [])
        if not wanted:
            plan.deletes.extend(current)
            continue
        order = sorted(wanted)
        plan.too_many += max(0, len(order) - max_per_subset)  # subsets sharing ports overflow one slice
        body = _slice_body(endpoints, family, ports, [wanted[k] for k in order[:max_per_subset]])
        if not current:
            plan.creates.append(body)
            continue
        plan.deletes.extend(current[1:])
        if _differs(current[0], body):
            plan.updates.append(_replace(current[0], body))
    for leftovers in by_group.values():  # port sets or families nobody uses any more
        plan.deletes.extend(leftovers)
    _recycle(plan)
    if (endpoints.get("metadata") or {}).get("deletionTimestamp"):
        plan.creates = []
    return plan


def _recycle(plan: MirrorPlan) -> None:
    """Turn a create plus a delete of the same family into an update of the deleted slice."""
    creates: list[Obj] = []
    for body in plan.creates:
        spare = next((s for s in plan.deletes if s.get("addressType") == body["addressType"]), None)
        if spare is None:
            creates.append(body)
            continue
        plan.deletes.remove(spare)
        plan.updates.append(_replace(spare, body))
    plan.creates = creates


# ---------------------------------------------------------------- the controller


class EndpointSliceMirroringController(Controller):
    """Mirrors the Endpoints of every selector-less Service into EndpointSlices.

    Keyed by the Endpoints' (= the Service's) ``namespace/name``.
    """

    COMPONENT = "endpointslice-mirroring-controller"

    def __init__(self, client: ApiClient, factory: InformerFactory, recorder: EventRecorder | None = None,
                 *, workers: int = 4, max_endpoints_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> None:
        super().__init__(self.COMPONENT, workers=workers)
        self.client = client
        self.factory = factory
        self.recorder = recorder or EventRecorder(client, self.COMPONENT)
        self.max_endpoints_per_subset = max_endpoints_per_subset
        self.slices = client.resource(API_VERSION, "EndpointSlice")
        self.endpoints_informer: Informer = factory.informer("v1", "Endpoints")
        self.service_informer: Informer = factory.informer("v1", "Service")
        self.slice_informer: Informer = factory.informer(API_VERSION, "EndpointSlice",
                                                         indexers={INDEX_MIRRORED: mirrored_endpoints_key})
        self.endpoints_informer.add_handler(on_add=self._endpoints_added, on_update=self._endpoints_updated,
                                            on_delete=self.enqueue)
        self.service_informer.add_handler(on_add=self._service_changed, on_update=self._service_updated,
                                          on_delete=self._service_changed)
        self.slice_informer.add_handler(on_add=self._slice_changed, on_update=self._slice_updated,
                                        on_delete=self._slice_changed)
        self.written = WrittenVersions()

    @property
    def informers(self) -> list[Informer]:
        return [self.endpoints_informer, self.service_informer, self.slice_informer]

    async def run(self, informers: list[Informer] | None = None) -> None:  # type: ignore[override]
        """Run until stop(); starts the factory's informers that are not running yet."""
        await self.factory.start()
        await super().run(informers if informers is not None else self.informers)

    # ---- handlers: only enqueue -------------------------------------------------

    def _endpoints_added(self, endpoints: Obj) -> None:
        if should_mirror(endpoints):
            self.enqueue(endpoints)

    def _endpoints_updated(self, old: Obj, new: Obj) -> None:
        if should_mirror(old) or should_mirror(new):  # also when it just got skip-mirror
            self.enqueue(new)

    def _service_changed(self, service: Obj) -> None:
        """A selector-less Service added or deleted: mirror its Endpoints, or stop."""
        if not has_selector(service):
            self.enqueue(service)

    def _service_updated(self, old: Obj, new: Obj) -> None:
        if has_selector(old) != has_selector(new):
            self.enqueue(new)

    def _slice_changed(self, endpoint_slice: Obj) -> None:
        for key in mirrored_endpoints_key(endpoint_slice):
            self.enqueue(key)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        for key in set(mirrored_endpoints_key(old)) | set(mirrored_endpoints_key(new)):
            self.enqueue(key)

    # ---- reconcile --------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        if not self.written.caught_up(key, self.slice_informer.indexer.get):
            return STALE_CACHE_RETRY
        existing = self.slice_informer.indexer.by_index(INDEX_MIRRORED, key)
        endpoints = self.endpoints_informer.indexer.get(key)
        service = self.service_informer.indexer.get(key)
        if not should_mirror(endpoints) or service is None or has_selector(service):
            # Gone, skipped, or the Service is gone or selects pods: our slices go.
            if existing:
                log.debug("deleting mirrored slices", endpoints=key, count=len(existing))
                return await self._write(key, [], [], existing)
            return None
        assert endpoints is not None
        plan = plan_mirrored_slices(endpoints, existing, max_per_subset=self.max_endpoints_per_subset)
        await self._record_dropped(endpoints, plan)
        if plan.empty:
            return None
        return await self._write(key, plan.creates, plan.updates, plan.deletes)

    async def _record_dropped(self, endpoints: Obj, plan: MirrorPlan) -> None:
        involved = {"apiVersion": "v1", "kind": "Endpoints", **endpoints}
        if plan.invalid:
            log.warning("addresses that are not IPs were not mirrored", endpoints=object_key(endpoints),
                        addresses=plan.invalid[:10])
            await self.recorder.event(involved, "Warning", INVALID_IP,
                                      f"Skipped {len(plan.invalid)} invalid IP addresses when mirroring "
                                      "to EndpointSlices")
        if plan.too_many:
            log.warning("too many addresses to mirror", endpoints=object_key(endpoints), skipped=plan.too_many)
            await self.recorder.event(involved, "Warning", TOO_MANY_ADDRESSES,
                                      f"A max of {self.max_endpoints_per_subset} addresses can be mirrored to "
                                      f"EndpointSlices per Endpoints subset. {plan.too_many} addresses were "
                                      "skipped")

    async def _write(self, key: str, creates: list[Obj], updates: list[Obj], deletes: list[Obj]) -> float | None:
        result = await write_slices(self.slices, self.written, key, creates, updates, deletes)
        log.debug("mirrored endpoint slices", endpoints=key, created=len(creates), updated=len(updates),
                  deleted=len(deletes))
        return result
