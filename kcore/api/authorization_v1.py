"""authorization.k8s.io/v1: access reviews (what ``kubectl auth can-i`` asks)."""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.validation import FieldError, invalid
from kcore.api.meta import KubeObject


class ResourceAttributes(KubeModel):
    """The resource request being asked about."""

    namespace: str | None = None
    verb: str | None = None
    group: str | None = None
    version: str | None = None
    resource: str | None = None
    subresource: str | None = None
    name: str | None = None


class NonResourceAttributes(KubeModel):
    """A non-resource URL being asked about (e.g. /healthz)."""

    path: str | None = None
    verb: str | None = None


class SelfSubjectAccessReviewSpec(KubeModel):
    resourceAttributes: ResourceAttributes | None = None
    nonResourceAttributes: NonResourceAttributes | None = None


class SubjectAccessReviewStatus(KubeModel):
    allowed: bool
    denied: bool | None = None
    reason: str | None = None
    evaluationError: str | None = None


class SelfSubjectAccessReview(KubeObject):
    """Asks whether the current user may perform an action."""

    spec: SelfSubjectAccessReviewSpec = Field(description="What is being asked about.")
    status: SubjectAccessReviewStatus | None = None


def validate_self_subject_access_review(review: SelfSubjectAccessReview) -> list[FieldError]:
    """Exactly one of resourceAttributes and nonResourceAttributes must be given."""
    spec = review.spec
    given = [spec.resourceAttributes is not None, spec.nonResourceAttributes is not None]
    if given.count(True) != 1:
        return [invalid("spec", "", "exactly one of nonResourceAttributes or resourceAttributes "
                                    "must be specified")]
    return []
