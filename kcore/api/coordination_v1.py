"""coordination.k8s.io/v1 Lease: node heartbeats and leader election.

Times are MicroTime strings (``2024-01-02T03:04:05.123456Z``) kept as on the wire.
"""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.meta import KubeObject, ListMeta

GROUP = "coordination.k8s.io"
API_VERSION = f"{GROUP}/v1"


class LeaseSpec(KubeModel):
    """Who holds the lease and until when it is considered held."""

    holderIdentity: str | None = Field(default=None, description="Identity of the current holder.")
    leaseDurationSeconds: int | None = Field(
        default=None,
        description="How long candidates wait after renewTime before they may take the lease.",
    )
    acquireTime: str | None = Field(default=None, description="When the current holder acquired it (MicroTime).")
    renewTime: str | None = Field(default=None, description="When the holder last renewed it (MicroTime).")
    leaseTransitions: int | None = Field(default=None, description="How many times the holder changed.")
    strategy: str | None = Field(
        default=None,
        description='Coordinated leader election strategy, e.g. "OldestEmulationVersion".',
    )
    preferredHolder: str | None = Field(
        default=None, description="Signals the current holder to release in favour of this identity."
    )


class Lease(KubeObject):
    """A lightweight lock: kubelets renew one per node, controllers elect leaders with one."""

    spec: LeaseSpec | None = Field(default=None, description="The lease's holder and timing.")


class LeaseList(KubeModel):
    """A list of Lease objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Lease]
