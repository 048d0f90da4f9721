"""meta/v1 structures shared by every kind: TypeMeta, ObjectMeta, lists, Status.

Timestamps stay RFC 3339 strings (``2024-01-02T03:04:05Z``) as on the wire, so
they round-trip byte for byte.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kcore.api.base import KubeModel


class OwnerReference(KubeModel):
    apiVersion: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    blockOwnerDeletion: bool | None = None


class ManagedFieldsEntry(KubeModel):
    manager: str | None = None
    operation: str | None = None
    apiVersion: str | None = None
    time: str | None = None
    fieldsType: str | None = None
    fieldsV1: dict[str, Any] | None = None
    subresource: str | None = None


class ObjectMeta(KubeModel):
    name: str | None = None
    generateName: str | None = None
    namespace: str | None = None
    selfLink: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    deletionGracePeriodSeconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    ownerReferences: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managedFields: list[ManagedFieldsEntry] | None = None


class TypeMeta(KubeModel):
    apiVersion: str | None = None
    kind: str | None = None


class ListMeta(KubeModel):
    selfLink: str | None = None
    resourceVersion: str | None = None
    continue_: str | None = Field(default=None, alias="continue")
    remainingItemCount: int | None = None


class LabelSelectorRequirement(KubeModel):
    key: str
    operator: str
    values: list[str] | None = None


class LabelSelector(KubeModel):
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = None


class Condition(KubeModel):
    """metav1.Condition (used by newer kinds); older kinds define their own."""

    type: str
    status: str
    observedGeneration: int | None = None
    lastTransitionTime: str | None = None
    reason: str | None = None
    message: str | None = None


class StatusCause(KubeModel):
    reason: str | None = None
    message: str | None = None
    field: str | None = None


class StatusDetails(KubeModel):
    name: str | None = None
    group: str | None = None
    kind: str | None = None
    uid: str | None = None
    causes: list[StatusCause] | None = None
    retryAfterSeconds: int | None = None


class Status(KubeModel):
    """The body of every error answer (and of some successful deletes)."""

    apiVersion: str | None = "v1"
    kind: str | None = "Status"
    metadata: ListMeta | None = None
    status: str | None = None
    message: str | None = None
    reason: str | None = None
    details: StatusDetails | None = None
    code: int | None = None


class KubeObject(KubeModel):
    """A top-level object: TypeMeta inline plus ObjectMeta."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)


class ObjectReference(KubeModel):
    apiVersion: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    fieldPath: str | None = None


class LocalObjectReference(KubeModel):
    name: str | None = None
