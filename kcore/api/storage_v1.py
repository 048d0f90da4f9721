"""storage.k8s.io/v1 StorageClass: how dynamically provisioned volumes are made."""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.meta import KubeObject, ListMeta

GROUP = "storage.k8s.io"
API_VERSION = f"{GROUP}/v1"


class TopologySelectorLabelRequirement(KubeModel):
    """core/v1 TopologySelectorLabelRequirement; StorageClass is its only user."""

    key: str = Field(description="Label key the selector applies to.")
    values: list[str] = Field(description="Allowed values; one must match.")


class TopologySelectorTerm(KubeModel):
    """core/v1 TopologySelectorTerm: requirements that are ANDed together."""

    matchLabelExpressions: list[TopologySelectorLabelRequirement] | None = None


class StorageClass(KubeObject):
    """A class of storage: which provisioner makes volumes and with what parameters."""

    provisioner: str = Field(description="Name of the volume plugin that provisions volumes of this class.")
    parameters: dict[str, str] | None = Field(
        default=None, description="Provisioner-specific parameters; opaque to kcore."
    )
    reclaimPolicy: str | None = Field(
        default=None, description='"Delete" (default) or "Retain" for provisioned volumes.'
    )
    mountOptions: list[str] | None = Field(
        default=None, description='Mount options for provisioned volumes, e.g. ["ro", "soft"].'
    )
    allowVolumeExpansion: bool | None = Field(
        default=None, description="Whether claims of this class may be resized."
    )
    volumeBindingMode: str | None = Field(
        default=None,
        description='"Immediate" (default) or "WaitForFirstConsumer" to delay binding until a pod is scheduled.',
    )
    allowedTopologies: list[TopologySelectorTerm] | None = Field(
        default=None, description="Where volumes may be provisioned; empty means anywhere."
    )


class StorageClassList(KubeModel):
    """A list of StorageClass objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[StorageClass]
