"""The EndpointSlice controller: a Service's endpoints as discovery.k8s.io/v1 EndpointSlices.

The same pods as the Endpoints controller (:mod:`kcore.controllers.endpoints`), in
the scalable form that proxies and DNS read, as Kubernetes'
``endpointslice-controller`` writes it:

* slices are named ``<service>-<random>`` (``generateName``), labelled
  ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
  endpointslice-controller.k8s.io``, and owned by the Service (``controller: true``),
  so the garbage collector would remove them too;
* one slice holds endpoints of one address family (``addressType``, from the
  service's ``ipFamilies``) with one set of resolved ports, at most
  :data:`MAX_ENDPOINTS_PER_SLICE` of them;
* every endpoint carries ``conditions``: ``serving`` is the pod's readiness,
  ``terminating`` whether it is being deleted, and ``ready`` is serving and not
  terminating (or always true with ``publishNotReadyAddresses``) — terminating pods
  stay listed (Kubernetes 1.26+), so proxies can drain them;
* a service that selects nothing keeps one empty placeholder slice.

Reconciling keeps endpoints in the slice they are in (an update touches few
slices), fills slices with room before creating new ones, and writes creations
first, then updates, then deletions, so consumers never see a gap. Slices of
services that are gone, lost their selector or became ExternalName are deleted
explicitly (the ownerReference lets the GC do it as well). Slices not labelled as
managed by this controller are never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kcore.client import ApiClient, ApiStatusError, EventRecorder, Informer, InformerFactory
from kcore.client.informer import object_key, split_key
from kcore.controllers import podutil
from kcore.controllers.endpoints import (
    HEADLESS_LABEL,
    STALE_CACHE_RETRY,
    ServicePodController,
    WrittenVersions,
    endpoint_hostname,
    normalized,
    pod_endpoint_ports,
    pod_ip_for_family,
    pod_reference,
    port_set_key,
    service_ip_families,
    service_selector,
    should_pod_be_in_endpoints,
)
from kcore.log import get_logger

Obj = dict[str, Any]

API_VERSION = "discovery.k8s.io/v1"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
ZONE_LABEL = "topology.kubernetes.io/zone"
INDEX_SERVICE = "endpointslice-service"
"""Slice informer index: ``namespace/service`` of the slices this controller manages."""

log = get_logger("endpointslice")


# ---------------------------------------------------------------- pure decisions


def managed_service_key(endpoint_slice: Obj) -> list[str]:
    """Index function: the service key of a slice this controller manages (else none)."""
    meta = endpoint_slice.get("metadata") or {}
    labels = meta.get("labels") or {}
    service = labels.get(SERVICE_NAME_LABEL)
    if labels.get(MANAGED_BY_LABEL) != CONTROLLER_NAME or not service:
        return []
    return [f"{meta.get('namespace')}/{service}"]


def slice_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The service's labels (but the reserved ones), the service name, our name, headless."""
    labels = {k: v for k, v in ((service.get("metadata") or {}).get("labels") or {}).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL)}
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels


def service_owner_reference(service: Mapping[str, Any]) -> Obj:
    meta = service["metadata"]
    return {"apiVersion": "v1", "kind": "Service", "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def slice_endpoint(pod: Mapping[str, Any], ip: str, service: Mapping[str, Any],
                   zone: str | None = None) -> Obj:
    """A discovery/v1 Endpoint for ``pod`` (Kubernetes' podToEndpoint)."""
    serving = podutil.is_pod_ready(pod)
    terminating = podutil.is_terminating(pod)
    ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses")) or (serving and not terminating)
    endpoint: Obj = {"addresses": [ip],
                     "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    hostname = endpoint_hostname(pod, service)
    if hostname:
        endpoint["hostname"] = hostname
    endpoint["targetRef"] = pod_reference(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        endpoint["nodeName"] = node
    if zone:
        endpoint["zone"] = zone
    return endpoint


def endpoint_key(endpoint: Mapping[str, Any]) -> tuple[Any, ...]:
    """Identity of an endpoint across reconciles: its addresses and pod."""
    return (tuple(endpoint.get("addresses") or ()), (endpoint.get("targetRef") or {}).get("uid") or "")


def _slice_ports(ports: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """discovery/v1 ports: the name is always written ("" for an unnamed port)."""
    out = []
    for port in ports:
        entry: Obj = {"name": port.get("name") or "", "port": port["port"], "protocol": port.get("protocol") or "TCP"}
        if port.get("appProtocol"):
            entry["appProtocol"] = port["appProtocol"]
        out.append(entry)
    return out


PortKey = tuple[tuple[str, int, str, str], ...]


def desired_endpoints(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], family: str,
                      zone_of: Callable[[str], str | None] = lambda _node: None,
                      ) -> dict[PortKey, tuple[list[Obj], dict[tuple[Any, ...], Obj]]]:
    """Port set -> (its ports, endpoint key -> endpoint) for one address family."""
    groups: dict[PortKey, tuple[list[Obj], dict[tuple[Any, ...], Obj]]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ip = pod_ip_for_family(pod, family)
        if ip is None:
            continue
        ports = pod_endpoint_ports(service, pod)
        if ports is None:
            continue
        node = (pod.get("spec") or {}).get("nodeName")
        endpoint = slice_endpoint(pod, ip, service, zone_of(node) if node else None)
        _ports, endpoints = groups.setdefault(port_set_key(ports), (_slice_ports(ports), {}))
        endpoints[endpoint_key(endpoint)] = endpoint
    return groups


def owned_by(endpoint_slice: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("controller") and ref.get("kind") == "Service" and ref.get("uid") == uid
               for ref in (endpoint_slice.get("metadata") or {}).get("ownerReferences") or [])


def _slice_body(service: Mapping[str, Any], family: str, ports: list[Obj], endpoints: list[Obj]) -> Obj:
    meta = service["metadata"]
    return {"apiVersion": API_VERSION, "kind": "EndpointSlice",
            "metadata": {"generateName": f"{meta['name']}-", "namespace": meta.get("namespace"),
                         "labels": slice_labels(service), "ownerReferences": [service_owner_reference(service)]},
            "addressType": family, "endpoints": endpoints, "ports": ports}


def _differs(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    cur_meta, want_meta = current.get("metadata") or {}, desired["metadata"]
    return (normalized(current.get("endpoints") or []) != normalized(desired["endpoints"])
            or normalized(current.get("ports") or []) != normalized(desired["ports"])
            or (cur_meta.get("labels") or {}) != want_meta["labels"]
            or normalized(cur_meta.get("ownerReferences") or []) != normalized(want_meta["ownerReferences"]))


def plan_slices(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], existing: Iterable[Obj], *,
                zone_of: Callable[[str], str | None] = lambda _node: None,
                max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """What to write so the managed slices of ``service`` hold its endpoints.

    ``existing`` are the slices managed for this service name. Returns the bodies to
    create, the updated copies of slices to replace, and the slices to delete.
    Endpoints stay in the slice they are in; new ones fill slices with room first.
    """
    pods = list(pods)
    uid = service["metadata"]["uid"]
    families = service_ip_families(service)
    creates: list[Obj] = []
    updates: list[Obj] = []
    deletes: list[Obj] = []
    mine: list[Obj] = []
    for endpoint_slice in existing:
        if owned_by(endpoint_slice, uid) and endpoint_slice.get("addressType") in families:
            mine.append(endpoint_slice)
        else:
            deletes.append(endpoint_slice)  # an earlier namesake's, or a family no longer used
    for family in families:
        groups = desired_endpoints(service, pods, family, zone_of) or {(): ([], {})}  # the placeholder
        by_ports: dict[PortKey, list[Obj]] = {}
        for endpoint_slice in sorted((s for s in mine if s.get("addressType") == family),
                                     key=lambda s: s["metadata"]["name"]):
            by_ports.setdefault(port_set_key(endpoint_slice.get("ports") or []), []).append(endpoint_slice)
        for port_key in sorted(groups):
            ports, wanted = groups[port_key]
            remaining = dict(wanted)
            plans: list[tuple[Obj | None, list[Obj]]] = []
            for endpoint_slice in by_ports.pop(port_key, []):
                kept = [remaining.pop(k) for k in (endpoint_key(e) for e in endpoint_slice.get("endpoints") or [])
                        if k in remaining]
                plans.append((endpoint_slice, kept))
            order = sorted(remaining)
            for _slice, members in plans:
                while order and len(members) < max_per_slice:
                    members.append(remaining[order.pop(0)])
            while order:
                chunk, order = order[:max_per_slice], order[max_per_slice:]
                plans.append((None, [remaining[k] for k in chunk]))
            if not wanted:  # the placeholder: exactly one empty slice
                deletes.extend(s for s, _ in plans[1:] if s is not None)
                plans = plans[:1] or [(None, [])]
            for endpoint_slice, members in plans:
                if endpoint_slice is not None and not members and wanted:
                    deletes.append(endpoint_slice)
                    continue
                body = _slice_body(service, family, ports, sorted(members, key=endpoint_key))
                if endpoint_slice is None:
                    creates.append(body)
                elif _differs(endpoint_slice, body):
                    updated = copy.deepcopy(endpoint_slice)
                    updated["metadata"]["labels"] = body["metadata"]["labels"]
                    updated["metadata"]["ownerReferences"] = body["metadata"]["ownerReferences"]
                    updated["endpoints"] = body["endpoints"]
                    updated["ports"] = body["ports"]
                    updates.append(updated)
        for leftovers in by_ports.values():  # port sets nobody uses any more
            deletes.extend(leftovers)
    return creates, updates, _unique(deletes)


def _unique(slices: list[Obj]) -> list[Obj]:
    seen: set[str] = set()
    out = []
    for endpoint_slice in slices:
        name = endpoint_slice["metadata"]["name"]
        if name not in seen:
            seen.add(name)
            out.append(endpoint_slice)
    return out


# ---------------------------------------------------------------- the controller


async def write_slices(slices: Any, written: WrittenVersions, key: str, creates: list[Obj], updates: list[Obj],
                       deletes: list[Obj]) -> float | None:
    """Creations, then updates, then deletions (consumers never see a gap); every write is
    recorded in ``written`` under ``key``. The first hard failure is raised at the end;
    a conflict returns the stale-cache retry delay."""
    namespace, _name = split_key(key)
    failure: Exception | None = None
    stale = False
    for body in creates:
        try:
            created = await slices.create(body, namespace=namespace)
        except ApiStatusError as exc:
            failure = failure or exc
            continue
        written.record(key, object_key(created), created["metadata"].get("resourceVersion"))
    for updated in updates:
        try:
            result = await slices.update(updated)
        except ApiStatusError as exc:
            if exc.code in (404, 409):  # changed under us: the cache will show it
                stale = True
                continue
            failure = failure or exc
            continue
        written.record(key, object_key(result), result["metadata"].get("resourceVersion"))
    for endpoint_slice in deletes:
        meta = endpoint_slice["metadata"]
        try:
            await slices.delete(meta["name"], meta.get("namespace"), missing_ok=True,
                                preconditions={"uid": meta.get("uid")} if meta.get("uid") else None)
        except ApiStatusError as exc:
            if exc.code == 409:
                stale = True
                continue
            failure = failure or exc
            continue
        written.record(key, object_key(endpoint_slice), None)
    if failure is not None:
        raise failure
    return STALE_CACHE_RETRY if stale else None


class EndpointSliceController(ServicePodController):
    """Keeps the ``discovery.k8s.io/v1`` EndpointSlices of every Service with a selector."""

    COMPONENT = "endpointslice-controller"

    def __init__(self, client: ApiClient, factory: InformerFactory, recorder: EventRecorder | None = None,
                 *, workers: int = 4, max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        super().__init__(self.COMPONENT, client, factory, workers=workers)
        self.recorder = recorder or EventRecorder(client, self.COMPONENT)
        self.max_endpoints_per_slice = max_endpoints_per_slice
        self.slices = client.resource(API_VERSION, "EndpointSlice")
        self.slice_informer: Informer = factory.informer(API_VERSION, "EndpointSlice",
                                                         indexers={INDEX_SERVICE: managed_service_key})
        self.node_informer: Informer = factory.informer("v1", "Node")
        self.slice_informer.add_handler(on_add=self._slice_changed, on_update=self._slice_updated,
                                        on_delete=self._slice_changed)
        self.written = WrittenVersions()

    @property
    def informers(self) -> list[Informer]:
        return [self.service_informer, self.pod_informer, self.slice_informer, self.node_informer]

    def _slice_changed(self, endpoint_slice: Obj) -> None:
        for key in managed_service_key(endpoint_slice):
            self.enqueue(key)

    def _slice_updated(self, old: Obj, new: Obj) -> None:
        for key in set(managed_service_key(old)) | set(managed_service_key(new)):
            self.enqueue(key)

    def _zone_of(self, node_name: str) -> str | None:
        node = self.node_informer.indexer.get(node_name)
        return (((node or {}).get("metadata") or {}).get("labels") or {}).get(ZONE_LABEL)

    async def reconcile(self, key: str) -> float | None:
        if not self.written.caught_up(key, self.slice_informer.indexer.get):
            return STALE_CACHE_RETRY
        existing = self.slice_informer.indexer.by_index(INDEX_SERVICE, key)
        service = self.service_informer.indexer.get(key)
        selector = service_selector(service) if service is not None else None
        if service is None or selector is None or (service.get("spec") or {}).get("type") == "ExternalName":
            # Gone, or no longer selecting pods: the slices we made for it go too.
            if existing:
                await self._write(key, [], [], existing)
            return None
        creates, updates, deletes = plan_slices(service, self.selected_pods(service, selector), existing,
                                                zone_of=self._zone_of,
                                                max_per_slice=self.max_endpoints_per_slice)
        if creates or updates or deletes:
            return await self._write(key, creates, updates, deletes)
        return None

    async def _write(self, key: str, creates: list[Obj], updates: list[Obj], deletes: list[Obj]) -> float | None:
        result = await write_slices(self.slices, self.written, key, creates, updates, deletes)
        log.debug("synced endpoint slices", service=key, created=len(creates), updated=len(updates),
                  deleted=len(deletes))
        return result
