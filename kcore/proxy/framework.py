"""Services + EndpointSlices -> one ``ProxyState`` (pure; no I/O).

``build_state`` is what every proxy mode is fed: the proxy runner calls it
with its informers' caches on every sync, ``kcore proxy rules`` with one list
of each kind. Kubernetes semantics, as kube-proxy reads the API:

* one ``ServicePort`` per port of every Service with a cluster IP; headless
  services (``clusterIP: None``), ExternalName services and services without a
  cluster IP yet are left out (nothing to proxy);
* a service's endpoints come from the EndpointSlices in its namespace labelled
  ``kubernetes.io/service-name: <name>``; a slice port is matched to the
  service port by NAME (``""`` when unnamed), and gives the endpoint's target
  port; FQDN slices and endpoints without addresses are skipped; an endpoint
  listed twice (in two slices) counts once;
* conditions: ``ready`` absent means ready; ``serving`` absent means
  ``ready``; ``terminating`` absent means false;
* ``sessionAffinity: ClientIP`` with ``sessionAffinityConfig.clientIP.
  timeoutSeconds`` (default 10800); ``nodePort``; ``externalIPs``; load
  balancer ingress IPs; ``externalTrafficPolicy: Local``; protocol (default
  TCP).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kcore.proxy.state import Endpoint, ProxyState, ServicePort

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_AFFINITY_TIMEOUT = 10800

Obj = Mapping[str, Any]


def _has_cluster_ip(service: Obj) -> str | None:
    spec = service.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return None
    ip = spec.get("clusterIP")
    if not ip or ip == "None":
        return None
    return str(ip)


def _slices_by_service(slices: Iterable[Obj]) -> dict[tuple[str, str], list[Obj]]:
    out: dict[tuple[str, str], list[Obj]] = {}
    for endpoint_slice in slices:
        meta = endpoint_slice.get("metadata") or {}
        name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not name or endpoint_slice.get("addressType") == "FQDN":
            continue
        out.setdefault((meta.get("namespace") or "default", name), []).append(endpoint_slice)
    for group in out.values():
        group.sort(key=lambda s: (s.get("metadata") or {}).get("name") or "")
    return out


def _endpoints_for(port_name: str, slices: list[Obj]) -> tuple[Endpoint, ...]:
    found: dict[tuple[str, int], Endpoint] = {}
    for endpoint_slice in slices:
        target = None
        for port in endpoint_slice.get("ports") or []:
            if (port.get("name") or "") == port_name and port.get("port"):
                target = int(port["port"])
                break
        if target is None:
            continue
        for ep in endpoint_slice.get("endpoints") or []:
            addresses = ep.get("addresses") or []
            if not addresses:
                continue
            conditions = ep.get("conditions") or {}
            ready = conditions.get("ready")
            ready = True if ready is None else bool(ready)
            serving = conditions.get("serving")
            serving = ready if serving is None else bool(serving)
            terminating = bool(conditions.get("terminating") or False)
            ref = ep.get("targetRef") or {}
            pod = None
            if ref.get("name"):
                pod = f"{ref.get('namespace') or (endpoint_slice.get('metadata') or {}).get('namespace') or 'default'}/{ref['name']}"
            key = (str(addresses[0]), target)
            if key in found:
                continue
            found[key] = Endpoint(
                ip=key[0], port=target, ready=ready, serving=serving, terminating=terminating,
                node_name=ep.get("nodeName"), pod=pod,
            )
    return tuple(found[k] for k in sorted(found))


def service_ports(service: Obj, slices: list[Obj]) -> list[ServicePort]:
    """The ``ServicePort``s of one Service, with endpoints from its slices."""
    cluster_ip = _has_cluster_ip(service)
    if cluster_ip is None:
        return []
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    affinity = spec.get("sessionAffinity") == "ClientIP"
    timeout = DEFAULT_AFFINITY_TIMEOUT
    if affinity:
        configured = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")
        if configured:
            timeout = int(configured)
    lb_ips = tuple(
        str(i["ip"]) for i in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if i.get("ip")
    )
    out = []
    for port in spec.get("ports") or []:
        if not port.get("port"):
            continue
        port_name = port.get("name") or ""
        out.append(ServicePort(
            namespace=meta.get("namespace") or "default",
            name=meta.get("name") or "",
            port_name=port_name,
            protocol=port.get("protocol") or "TCP",
            cluster_ip=cluster_ip,
            port=int(port["port"]),
            node_port=int(port["nodePort"]) if port.get("nodePort") else None,
            external_ips=tuple(str(ip) for ip in spec.get("externalIPs") or ()),
            load_balancer_ips=lb_ips,
            session_affinity=affinity,
            affinity_timeout_seconds=timeout,
            external_traffic_local=spec.get("externalTrafficPolicy") == "Local",
            endpoints=_endpoints_for(port_name, slices),
        ))
    return out


def build_state(
    services: Iterable[Obj],
    slices: Iterable[Obj],
    *,
    node_name: str,
    node_ips: Iterable[str],
    cluster_cidr: str | None = None,
    generation: int = 0,
) -> ProxyState:
    """The complete desired state for one node (services sorted by key)."""
    by_service = _slices_by_service(slices)
    ports: list[ServicePort] = []
    for service in services:
        meta = service.get("metadata") or {}
        key = (meta.get("namespace") or "default", meta.get("name") or "")
        ports.extend(service_ports(service, by_service.get(key, [])))
    ports.sort(key=lambda sp: (sp.namespace, sp.name, sp.port_name, sp.protocol, sp.port))
    return ProxyState(
        services=tuple(ports), node_name=node_name, node_ips=tuple(node_ips),
        cluster_cidr=cluster_cidr, generation=generation,
    )
