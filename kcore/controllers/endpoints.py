"""The Endpoints controller: the addresses behind every Service with a selector.

For each Service with a ``spec.selector`` it keeps an Endpoints object of the same
name whose subsets list the pods the selector matches, as Kubernetes'
``endpoints-controller`` does:

* a pod is an endpoint when it has an IP, is not terminal (Succeeded/Failed) and is
  not terminating (unless ``publishNotReadyAddresses``);
* ready pods go to ``addresses``, the others to ``notReadyAddresses`` — or all of
  them to ``addresses`` with ``publishNotReadyAddresses: true``;
* every service port is resolved per pod: a numeric ``targetPort`` as is, a named one
  through the pod's container ports (a pod without that name is left out of that
  port); addresses with the same resolved ports share a subset (``RepackSubsets``).

Services without a selector are not managed: their Endpoints are written by hand
and never touched. When a Service that had a selector is deleted, its Endpoints are
deleted too (Kubernetes sets no ownerReference on Endpoints).

Pods reach the right services quickly: a pod event enqueues every service in its
namespace whose selector matches the pod's old or new labels. The pod -> service
mapping, the per-pod decisions and the cache-freshness bookkeeping are shared with
the EndpointSlice controller (:mod:`kcore.controllers.endpointslice`).
"""

from __future__ import annotations

import copy
import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kcore.apiserver.selectors import LabelSelector, SelectorError, selector_from_set
from kcore.client import ApiClient, ApiStatusError, Controller, EventRecorder, Informer, InformerFactory
from kcore.client.informer import INDEX_NAMESPACE, object_key, split_key
from kcore.controllers import podutil
from kcore.log import get_logger

Obj = dict[str, Any]

HEADLESS_LABEL = "service.kubernetes.io/headless"
"""Set (to "") on the Endpoints/EndpointSlices of a headless service (clusterIP None)."""

FRESHNESS_TIMEOUT = 5.0
"""After this long an unseen write of ours no longer holds a reconcile back."""
STALE_CACHE_RETRY = 0.05
"""Seconds before looking again when the cache has not caught up with our writes."""

log = get_logger("endpoints")


# ---------------------------------------------------------------- pure decisions


def service_selector(service: Mapping[str, Any]) -> LabelSelector | None:
    """The pod selector of a service; None when it has none (it is then not managed)."""
    raw = (service.get("spec") or {}).get("selector")
    if not raw:
        return None
    try:
        return selector_from_set(raw)
    except SelectorError:
        return None


def is_headless(service: Mapping[str, Any]) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def ip_family(ip: str | None) -> str | None:
    """``IPv4``, ``IPv6`` or None for something that is not an IP."""
    if not ip:
        return None
    try:
        return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"
    except ValueError:
        return None


def service_ip_families(service: Mapping[str, Any]) -> list[str]:
    """The address families a service's endpoints use, primary first (IPv4 by default)."""
    spec = service.get("spec") or {}
    families = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    if families:
        return families
    family = ip_family(spec.get("clusterIP"))
    return [family] if family else ["IPv4"]


def pod_ips(pod: Mapping[str, Any]) -> list[str]:
    status = pod.get("status") or {}
    ips = [entry.get("ip") for entry in status.get("podIPs") or [] if entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def pod_ip_for_family(pod: Mapping[str, Any], family: str) -> str | None:
    """The pod's IP of ``family``, if it has one."""
    for ip in pod_ips(pod):
        if ip_family(ip) == family:
            return ip
    return None


def should_pod_be_in_endpoints(pod: Mapping[str, Any], *, include_terminating: bool) -> bool:
    """Kubernetes' ShouldPodBeInEndpoints: not terminal, has an IP, and not terminating
    unless ``include_terminating``."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ips(pod):
        return False
    return include_terminating or not podutil.is_terminating(pod)


def _container_ports(pod: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Ports of the regular containers and of sidecars (init containers that keep running)."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in containers:
        yield from container.get("ports") or []


def resolve_target_port(service_port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    """The pod port a service port sends to (Kubernetes' FindPort).

    A number is used as is; a name is looked up among the pod's container ports of
    the same protocol; no targetPort means the service port itself. None when the
    pod has no port of that name.
    """
    target = service_port.get("targetPort")
    if target is None or target == 0 or target == "":
        return int(service_port["port"])
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    for port in _container_ports(pod):
        if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
            return int(port["containerPort"])
    return None


def endpoint_hostname(pod: Mapping[str, Any], service: Mapping[str, Any]) -> str | None:
    """``spec.hostname`` when the pod's subdomain is this service (DNS records per pod)."""
    spec = pod.get("spec") or {}
    hostname = spec.get("hostname")
    if hostname and spec.get("subdomain") == service["metadata"]["name"] \
            and pod["metadata"].get("namespace") == service["metadata"].get("namespace"):
        return str(hostname)
    return None


def pod_reference(pod: Mapping[str, Any]) -> Obj:
    meta = pod.get("metadata") or {}
    return {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"), "uid": meta.get("uid")}


def endpoint_address(pod: Mapping[str, Any], ip: str, service: Mapping[str, Any]) -> Obj:
    """A core/v1 EndpointAddress for ``pod``."""
    address: Obj = {"ip": ip}
    hostname = endpoint_hostname(pod, service)
    if hostname:
        address["hostname"] = hostname
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    address["targetRef"] = pod_reference(pod)
    return address


def endpoint_port(service_port: Mapping[str, Any], number: int) -> Obj:
    """A core/v1 EndpointPort for a resolved port (no name when the service port has none)."""
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port["name"] = service_port["name"]
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def pod_endpoint_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[Obj] | None:
    """The ports ``pod`` serves for ``service``, in service order; None when it serves none.

    A service without ports gives ``[]`` for headless services (addresses only, for
    DNS) and None otherwise.
    """
    service_ports = (service.get("spec") or {}).get("ports") or []
    if not service_ports:
        return [] if is_headless(service) else None
    ports = []
    for service_port in service_ports:
        number = resolve_target_port(service_port, pod)
        if number is not None:
            ports.append(endpoint_port(service_port, number))
    return ports or None


def port_set_key(ports: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, int, str, str], ...]:
    """An order-free identity of a list of ports."""
    return tuple(sorted((p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP",
                         p.get("appProtocol") or "") for p in ports))


def _address_sort_key(address: Mapping[str, Any]) -> tuple[str, str]:
    return (address.get("ip") or "", ((address.get("targetRef") or {}).get("uid") or ""))


def compute_subsets(service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The ``subsets`` of a service's Endpoints from the pods its selector matches.

    Addresses with identical resolved port sets share one subset (RepackSubsets);
    everything is sorted so that equal inputs give equal output.
    """
    spec = service.get("spec") or {}
    tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
    family = service_ip_families(service)[0]
    groups: dict[tuple[Any, ...], tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=tolerate_unready):
            continue
        ip = pod_ip_for_family(pod, family)
        if ip is None:
            continue
        ports = pod_endpoint_ports(service, pod)
        if ports is None:
            continue
        key = port_set_key(ports)
        ready, not_ready, group_ports = groups.setdefault(key, ([], [], ports))
        address = endpoint_address(pod, ip, service)
        (ready if tolerate_unready or podutil.is_pod_ready(pod) else not_ready).append(address)
    subsets: list[Obj] = []
    for key in sorted(groups):
        ready, not_ready, ports = groups[key]
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_sort_key)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_sort_key)
        if ports:
            subset["ports"] = sorted(ports, key=lambda p: (p.get("name") or "", p["port"], p["protocol"]))
        subsets.append(subset)
    return subsets


def normalized(value: Any) -> Any:
    """``value`` without None, empty strings, lists and maps (how the server may omit them)."""
    if isinstance(value, Mapping):
        out = {k: normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def endpoints_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The service's labels plus the headless marker, as Kubernetes copies them."""
    labels = dict((service.get("metadata") or {}).get("labels") or {})
    labels.pop(HEADLESS_LABEL, None)
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def endpoint_relevant(pod: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a pod can change its endpoints; an update that leaves this equal is ignored."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    return (meta.get("labels"), meta.get("deletionTimestamp"), tuple(pod_ips(pod)), podutil.is_pod_ready(pod),
            status.get("phase"), spec.get("nodeName"), spec.get("hostname"), spec.get("subdomain"),
            tuple((p.get("name"), p.get("containerPort"), p.get("protocol")) for p in _container_ports(pod)))


# ---------------------------------------------------------------- cache freshness


class WrittenVersions:
    """Our own recent writes, per service key, until the cache shows them.

    The informer cache lags the API: right after creating a slice a reconcile may not
    see it and would create a second one. So a reconcile records the resourceVersion
    of every write (None for a delete), and the next one waits (briefly) until the
    cache reflects them all, or until :data:`FRESHNESS_TIMEOUT` passed.
    """

    def __init__(self, timeout: float = FRESHNESS_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._items: dict[str, dict[str, tuple[str | None, float]]] = {}

    def record(self, key: str, object_key_: str, resource_version: str | None) -> None:
        self._items.setdefault(key, {})[object_key_] = (resource_version, self._clock())

    def forget(self, key: str) -> None:
        self._items.pop(key, None)

    def caught_up(self, key: str, lookup: Callable[[str], Obj | None]) -> bool:
        """True when the cache (``lookup`` by object key) shows every recorded write."""
        pending = self._items.get(key)
        if not pending:
            return True
        now = self._clock()
        for name, (rv, when) in list(pending.items()):
            cached = lookup(name)
            if now - when > self.timeout or _reflects(cached, rv):
                del pending[name]
        if not pending:
            del self._items[key]
            return True
        return False


def _reflects(cached: Obj | None, rv: str | None) -> bool:
    if rv is None:
        return cached is None
    if cached is None:
        return False
    have = (cached.get("metadata") or {}).get("resourceVersion")
    try:
        return int(have) >= int(rv)
    except (TypeError, ValueError):
        return have == rv


# ---------------------------------------------------------------- the shared base


class ServicePodController(Controller):
    """A controller keyed by Service that also reacts to the pods its services select.

    Subclasses implement :meth:`reconcile` (the key is the service's ``namespace/name``).
    """

    def __init__(self, name: str, client: ApiClient, factory: InformerFactory, *, workers: int) -> None:
        super().__init__(name, workers=workers)
        self.client = client
        self.factory = factory
        self.service_informer: Informer = factory.informer("v1", "Service")
        self.pod_informer: Informer = factory.informer("v1", "Pod")
        self.service_informer.add_handler(on_add=self.enqueue, on_update=self._service_updated,
                                          on_delete=self._service_deleted)
        self.pod_informer.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                      on_delete=self._pod_deleted)

    @property
    def informers(self) -> list[Informer]:
        return [self.service_informer, self.pod_informer]

    async def run(self, informers: list[Informer] | None = None) -> None:  # type: ignore[override]
        """Run until stop(); starts the factory's informers that are not running yet."""
        await self.factory.start()
        await super().run(informers if informers is not None else self.informers)

    # ---- handlers --------------------------------------------------------------

    def _service_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") != new["metadata"].get("resourceVersion"):
            self.enqueue(new)

    def _service_deleted(self, service: Obj) -> None:
        self.enqueue(service)

    def services_for_pod(self, pod: Mapping[str, Any]) -> set[str]:
        """Keys of the services in the pod's namespace whose selector matches it."""
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        keys: set[str] = set()
        for service in self.service_informer.indexer.by_index(INDEX_NAMESPACE, meta.get("namespace") or ""):
            selector = service_selector(service)
            if selector is not None and selector.matches(labels):
                keys.add(object_key(service))
        return keys

    def _pod_added(self, pod: Obj) -> None:
        for key in self.services_for_pod(pod):
            self.enqueue(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if endpoint_relevant(old) == endpoint_relevant(new):
            return
        keys = self.services_for_pod(new)
        if (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {}):
            keys |= self.services_for_pod(old)
        for key in keys:
            self.enqueue(key)

    def _pod_deleted(self, pod: Obj) -> None:
        for key in self.services_for_pod(pod):
            self.enqueue(key)

    def selected_pods(self, service: Mapping[str, Any], selector: LabelSelector) -> list[Obj]:
        namespace = service["metadata"].get("namespace") or ""
        return [p for p in self.pod_informer.indexer.by_index(INDEX_NAMESPACE, namespace)
                if selector.matches((p.get("metadata") or {}).get("labels") or {})]


# ---------------------------------------------------------------- the controller


class EndpointsController(ServicePodController):
    """Keeps ``v1/Endpoints`` of every Service with a selector."""

    COMPONENT = "endpoint-controller"

    def __init__(self, client: ApiClient, factory: InformerFactory, recorder: EventRecorder | None = None,
                 *, workers: int = 4) -> None:
        super().__init__(self.COMPONENT, client, factory, workers=workers)
        self.recorder = recorder or EventRecorder(client, self.COMPONENT)
        self.endpoints = client.resource("v1", "Endpoints")
        self.endpoints_informer: Informer = factory.informer("v1", "Endpoints")
        self.endpoints_informer.add_handler(on_add=self._endpoints_changed,
                                            on_update=lambda _old, new: self._endpoints_changed(new),
                                            on_delete=self._endpoints_changed)
        self.written = WrittenVersions()
        self._deleted_managed: dict[str, bool] = {}
        """Service key -> whether the service, when it was deleted, had a selector."""

    @property
    def informers(self) -> list[Informer]:
        return [self.service_informer, self.pod_informer, self.endpoints_informer]

    def _service_deleted(self, service: Obj) -> None:
        self._deleted_managed[object_key(service)] = service_selector(service) is not None
        self.enqueue(service)

    def _endpoints_changed(self, endpoints: Obj) -> None:
        """Someone (maybe us) changed an Endpoints: look again if its service is ours."""
        service = self.service_informer.indexer.get(object_key(endpoints))
        if service is not None and service_selector(service) is not None:
            self.enqueue(endpoints)

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        service = self.service_informer.indexer.get(key)
        if service is None:
            if self._deleted_managed.pop(key, False):
                await self.endpoints.delete(name, namespace, missing_ok=True)
                log.info("deleted endpoints of a deleted service", service=key)
            self.written.forget(key)
            return None
        self._deleted_managed.pop(key, None)
        selector = service_selector(service)
        if selector is None:
            return None  # hand-written Endpoints: not ours
        if not self.written.caught_up(key, self.endpoints_informer.indexer.get):
            return STALE_CACHE_RETRY
        subsets = compute_subsets(service, self.selected_pods(service, selector))
        labels = endpoints_labels(service)
        current = self.endpoints_informer.indexer.get(key)
        if current is None:
            body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name, "namespace": namespace, "labels": labels or None},
                         "subsets": subsets}
            try:
                created = await self.endpoints.create(body, namespace=namespace)
            except ApiStatusError as exc:
                if exc.code == 409:  # exists, the cache has not shown it yet: look again
                    return STALE_CACHE_RETRY
                raise
            self.written.record(key, key, created["metadata"].get("resourceVersion"))
            log.debug("created endpoints", service=key, subsets=len(subsets))
            return None
        current_labels = (current.get("metadata") or {}).get("labels") or {}
        if normalized(current.get("subsets") or []) == normalized(subsets) and current_labels == labels:
            return None
        updated = copy.deepcopy(current)
        updated["metadata"]["labels"] = labels or None
        updated["subsets"] = subsets
        try:
            result = await self.endpoints.update(updated)
        except ApiStatusError as exc:
            if exc.code in (404, 409):  # changed or deleted under us: the cache will tell
                return STALE_CACHE_RETRY
            raise
        self.written.record(key, key, result["metadata"].get("resourceVersion"))
        log.debug("updated endpoints", service=key, subsets=len(subsets))
        return None
