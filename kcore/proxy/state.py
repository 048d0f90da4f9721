"""The desired state every proxy mode is handed: services and their endpoints.

The proxy framework watches Services and EndpointSlices and builds one complete
``ProxyState`` per sync; a mode (userspace, iptables, ipvs, ...) only turns it
into listeners or kernel rules. Pure data, so modes are unit-tested without a
cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["TCP", "UDP", "SCTP"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One backend: a pod address and the target port for this service port."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str | None = None
    pod: str | None = None  # "namespace/name", for logs and affinity
    weight: int = 1


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of one Service, with everything a mode needs to forward it."""

    namespace: str
    name: str  # the Service's name
    port_name: str  # the port's name ("" when unnamed)
    protocol: Protocol
    cluster_ip: str | None  # None for headless services (nothing to proxy)
    port: int
    node_port: int | None = None
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    session_affinity: bool = False  # sessionAffinity: ClientIP
    affinity_timeout_seconds: int = 10800
    external_traffic_local: bool = False
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def key(self) -> str:
        """``namespace/name:port_name``, as kube-proxy names a service port."""
        return f"{self.namespace}/{self.name}:{self.port_name}"

    def ready_endpoints(self) -> tuple[Endpoint, ...]:
        """Endpoints that should get new connections (ready; else serving-terminating)."""
        ready = tuple(e for e in self.endpoints if e.ready)
        if ready:
            return ready
        return tuple(e for e in self.endpoints if e.serving and e.terminating)


@dataclass(frozen=True, slots=True)
class ProxyState:
    """Everything to proxy on one node, complete (not a delta)."""

    services: tuple[ServicePort, ...] = ()
    node_name: str = ""
    node_ips: tuple[str, ...] = ("127.0.0.1",)
    cluster_cidr: str | None = None  # pod network, for masquerade decisions
    generation: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    def by_key(self) -> dict[str, ServicePort]:
        return {svc.key: svc for svc in self.services}
