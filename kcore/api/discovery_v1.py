"""discovery.k8s.io/v1 EndpointSlice: the scalable form of a Service's endpoints.

Proxies and DNS read slices rather than Endpoints, so they carry readiness per
address (ready/serving/terminating) and topology (nodeName, zone, hints).
"""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.meta import KubeObject, ListMeta, ObjectReference

GROUP = "discovery.k8s.io"
API_VERSION = f"{GROUP}/v1"


class EndpointConditions(KubeModel):
    """Readiness of one endpoint; ``None`` means unknown (treated as ready)."""

    ready: bool | None = Field(default=None, description="Ready to receive traffic (serving and not terminating).")
    serving: bool | None = Field(default=None, description="Passing readiness checks, even while terminating.")
    terminating: bool | None = Field(default=None, description="The backing pod is shutting down.")


class ForZone(KubeModel):
    name: str


class ForNode(KubeModel):
    name: str


class EndpointHints(KubeModel):
    """Topology-aware routing hints set by the EndpointSlice controller."""

    forZones: list[ForZone] | None = Field(default=None, description="Zones that should consume this endpoint.")
    forNodes: list[ForNode] | None = Field(default=None, description="Nodes that should consume this endpoint.")


class Endpoint(KubeModel):
    """One backend: its addresses, readiness and where it runs."""

    addresses: list[str] = Field(description="Addresses of the endpoint, interpreted per addressType.")
    conditions: EndpointConditions | None = Field(default=None, description="Readiness of the endpoint.")
    hostname: str | None = Field(default=None, description="DNS label for the endpoint (headless services).")
    targetRef: ObjectReference | None = Field(default=None, description="The object (usually a Pod) behind it.")
    deprecatedTopology: dict[str, str] | None = None
    nodeName: str | None = Field(default=None, description="Node hosting the endpoint.")
    zone: str | None = Field(default=None, description="Zone the endpoint is in.")
    hints: EndpointHints | None = Field(default=None, description="Topology hints for consumers.")


class EndpointPort(KubeModel):
    """A port every endpoint in the slice exposes."""

    name: str | None = Field(default=None, description="Matches the Service port name.")
    protocol: str | None = Field(default=None, description="TCP (default), UDP or SCTP.")
    port: int | None = Field(default=None, description="Port number; unset means all ports.")
    appProtocol: str | None = Field(default=None, description="Application protocol, e.g. http or kubernetes.io/h2c.")


class EndpointSlice(KubeObject):
    """A subset of a Service's endpoints, all of one address type."""

    addressType: str = Field(description='"IPv4", "IPv6" or "FQDN"; immutable.')
    endpoints: list[Endpoint] | None = Field(
        default=None, description="Up to 1000 endpoints (Kubernetes accepts null for an empty slice)."
    )
    ports: list[EndpointPort] | None = Field(default=None, description="Ports exposed by every endpoint.")


class EndpointSliceList(KubeModel):
    """A list of EndpointSlice objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[EndpointSlice]
