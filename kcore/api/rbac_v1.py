"""rbac.authorization.k8s.io/v1: Role, ClusterRole and their bindings.

The authorizer reads these objects straight from the store, so the shapes match the
Kubernetes wire format exactly (``kubectl create role`` output applies unchanged).
"""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.meta import KubeObject, LabelSelector, ListMeta

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"


class PolicyRule(KubeModel):
    """One permission: verbs allowed on resources (or non-resource URLs)."""

    apiGroups: list[str] | None = Field(
        default=None, description='API groups of the resources; "" is the core group, "*" all groups.'
    )
    resources: list[str] | None = Field(
        default=None, description='Resources the rule applies to, "pods/log" for subresources, "*" for all.'
    )
    verbs: list[str] = Field(
        description='Verbs allowed ("get", "list", "watch", "create", ...); "*" allows all.'
    )
    resourceNames: list[str] | None = Field(
        default=None, description="Optional allow-list of object names; empty means all."
    )
    nonResourceURLs: list[str] | None = Field(
        default=None,
        description='Partial URLs such as "/healthz" or "/api/*"; only meaningful in ClusterRoles.',
    )


class AggregationRule(KubeModel):
    """Builds a ClusterRole's rules from the rules of the ClusterRoles it selects."""

    clusterRoleSelectors: list[LabelSelector] | None = Field(
        default=None, description="ClusterRoles whose rules are merged into this one."
    )


class Subject(KubeModel):
    """Who a binding grants to: a User, Group or ServiceAccount."""

    kind: str = Field(description='"User", "Group" or "ServiceAccount".')
    apiGroup: str | None = Field(
        default=None,
        description='"rbac.authorization.k8s.io" for User and Group, "" for ServiceAccount.',
    )
    name: str = Field(description="Name of the user, group or service account.")
    namespace: str | None = Field(
        default=None, description="Namespace of a ServiceAccount subject."
    )


class RoleRef(KubeModel):
    """The Role or ClusterRole a binding grants; immutable once created."""

    apiGroup: str = Field(description='Always "rbac.authorization.k8s.io".')
    kind: str = Field(description='"Role" or "ClusterRole".')
    name: str = Field(description="Name of the referenced role.")


class Role(KubeObject):
    """A namespaced set of permissions, granted through a RoleBinding."""

    rules: list[PolicyRule] | None = Field(default=None, description="The permissions of this role.")


class ClusterRole(KubeObject):
    """A cluster-wide set of permissions, granted by a ClusterRoleBinding or RoleBinding."""

    rules: list[PolicyRule] | None = Field(default=None, description="The permissions of this role.")
    aggregationRule: AggregationRule | None = Field(
        default=None,
        description="If set, the controller manages rules as the union of the selected ClusterRoles.",
    )


class RoleBinding(KubeObject):
    """Grants a Role or ClusterRole to subjects within one namespace."""

    subjects: list[Subject] | None = Field(default=None, description="Who is granted the role.")
    roleRef: RoleRef = Field(description="The role granted; cannot be changed after creation.")


class ClusterRoleBinding(KubeObject):
    """Grants a ClusterRole to subjects across the whole cluster."""

    subjects: list[Subject] | None = Field(default=None, description="Who is granted the role.")
    roleRef: RoleRef = Field(description="The ClusterRole granted; cannot be changed after creation.")


class RoleList(KubeModel):
    """A list of Role objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Role]


class ClusterRoleList(KubeModel):
    """A list of ClusterRole objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ClusterRole]


class RoleBindingList(KubeModel):
    """A list of RoleBinding objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[RoleBinding]


class ClusterRoleBindingList(KubeModel):
    """A list of ClusterRoleBinding objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ClusterRoleBinding]
