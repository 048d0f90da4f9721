"""Authorization: RBAC, the Node authorizer, and their union.

Everything here is pure: an authorizer reads policy through a small lister protocol
(the API server backs it with its watch caches) and returns a :class:`Decision`; it
never touches the store or the network.

Performance: RBACAuthorizer keeps an index of bindings by subject (user, group,
service account) and rebuilds it only when the lister's ``generation`` changes, so a
request costs a few dict lookups plus the rules of the roles actually bound to the
caller, not a scan of every binding. A lister without ``generation`` gets the index
rebuilt per call (correct, just slower).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kcore.apiserver.authn import UserInfo, node_name_of, parse_service_account_username

RBAC_GROUP = "rbac.authorization.k8s.io"
Obj = Mapping[str, Any]


@dataclass(frozen=True)
class RequestAttributes:
    """What a request wants to do, as Kubernetes' authorizer.Attributes."""

    user: UserInfo
    verb: str
    namespace: str | None = None
    api_group: str = ""
    resource: str = ""
    subresource: str | None = None
    name: str | None = None
    path: str = ""
    resource_request: bool = True

    @property
    def resource_with_sub(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and why (the reason is shown to users on 403)."""

    allowed: bool
    reason: str = ""


class Authorizer(Protocol):
    def authorize(self, attrs: RequestAttributes) -> Decision: ...


@runtime_checkable
class RBACLister(Protocol):
    """Read access to the current RBAC objects, as wire dicts.

    Implementations may also expose an int ``generation`` that changes whenever any
    RBAC object changes; the authorizer then caches its binding index between calls.
    """

    def get_role(self, namespace: str, name: str) -> Obj | None: ...

    def get_cluster_role(self, name: str) -> Obj | None: ...

    def list_role_bindings(self) -> Iterable[Obj]: ...

    def list_cluster_role_bindings(self) -> Iterable[Obj]: ...


class InMemoryRBACLister:
    """An RBACLister over plain dicts: for tests, bootstrap, or a watch-fed cache."""

    def __init__(self, objects: Iterable[Obj] = ()) -> None:
        self.generation = 0
        self._roles: dict[tuple[str, str], Obj] = {}
        self._cluster_roles: dict[str, Obj] = {}
        self._role_bindings: dict[tuple[str, str], Obj] = {}
        self._cluster_role_bindings: dict[str, Obj] = {}
        for obj in objects:
            self.upsert(obj)

    def _table(self, kind: str) -> dict[Any, Obj]:
        tables: dict[str, dict[Any, Obj]] = {
            "Role": self._roles,
            "ClusterRole": self._cluster_roles,
            "RoleBinding": self._role_bindings,
            "ClusterRoleBinding": self._cluster_role_bindings,
        }
        if kind not in tables:
            raise ValueError(f"not an RBAC kind: {kind!r}")
        return tables[kind]

    @staticmethod
    def _key(kind: str, namespace: str | None, name: str) -> Any:
        return (namespace or "", name) if kind in ("Role", "RoleBinding") else name

    def upsert(self, obj: Obj) -> None:
        """Add or replace an object (its ``kind`` says which table)."""
        meta = obj.get("metadata") or {}
        kind = obj["kind"]
        self._table(kind)[self._key(kind, meta.get("namespace"), meta["name"])] = obj
        self.generation += 1

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """Forget an object; unknown ones are ignored (deletes are idempotent)."""
        self._table(kind).pop(self._key(kind, namespace, name), None)
        self.generation += 1

    def get_role(self, namespace: str, name: str) -> Obj | None:
        return self._roles.get((namespace, name))

    def get_cluster_role(self, name: str) -> Obj | None:
        return self._cluster_roles.get(name)

    def list_role_bindings(self) -> Iterable[Obj]:
        return list(self._role_bindings.values())

    def list_cluster_role_bindings(self) -> Iterable[Obj]:
        return list(self._cluster_role_bindings.values())


# --------------------------------------------------------------------------- rule matching


def _has(values: Sequence[str] | None, wanted: str) -> bool:
    """A rule's verbs/apiGroups contain ``wanted`` or the ``*`` wildcard."""
    return values is not None and ("*" in values or wanted in values)


def resource_matches(rule: Obj, resource: str, subresource: str | None) -> bool:
    """``*``, the exact ``resource[/subresource]``, or ``*/subresource``."""
    resources = rule.get("resources") or []
    if "*" in resources:
        return True
    combined = f"{resource}/{subresource}" if subresource else resource
    if combined in resources:
        return True
    return bool(subresource) and f"*/{subresource}" in resources


def non_resource_url_matches(rule_url: str, path: str) -> bool:
    """Exact match, or prefix match for a rule ending in ``*``."""
    if rule_url == "*" or rule_url == path:
        return True
    return rule_url.endswith("*") and path.startswith(rule_url[:-1])


def rule_allows(rule: Obj, attrs: RequestAttributes) -> bool:
    """Whether one PolicyRule grants the request."""
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return any(non_resource_url_matches(u, attrs.path) for u in rule.get("nonResourceURLs") or [])
    if not _has(rule.get("apiGroups"), attrs.api_group):
        return False
    if not resource_matches(rule, attrs.resource, attrs.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or (bool(attrs.name) and attrs.name in names)


def rules_allow(rules: Iterable[Obj] | None, attrs: RequestAttributes) -> bool:
    return any(rule_allows(rule, attrs) for rule in rules or [])


# --------------------------------------------------------------------------- messages


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def forbidden_message(attrs: RequestAttributes) -> str:
    """Kubernetes' wording: ``User "jane" cannot list resource "pods" in API group "" ...``."""
    who = f"User {_quote(attrs.user.name)}"
    if not attrs.resource_request:
        return f"{who} cannot {attrs.verb} path {_quote(attrs.path)}"
    msg = f"{who} cannot {attrs.verb} resource {_quote(attrs.resource_with_sub)} in API group {_quote(attrs.api_group)}"
    if attrs.namespace:
        return f"{msg} in the namespace {_quote(attrs.namespace)}"
    return f"{msg} at the cluster scope"


def forbidden_status_message(attrs: RequestAttributes, reason: str = "") -> str:
    """The full ``Status.message`` of a 403, e.g. ``pods "x" is forbidden: User ...``."""
    if attrs.resource_request:
        kind = attrs.resource if not attrs.api_group else f"{attrs.resource}.{attrs.api_group}"
        prefix = f"{kind} {_quote(attrs.name)} is forbidden" if attrs.name else f"{kind} is forbidden"
    else:
        prefix = "forbidden"
    detail = forbidden_message(attrs)
    if reason.startswith(detail):
        detail = reason  # the authorizer already used the standard wording
    elif reason:
        detail = f"{detail}: {reason}"
    return f"{prefix}: {detail}"


# --------------------------------------------------------------------------- RBAC

SubjectKey = tuple[str, ...]


def _subject_keys(subject: Obj, binding_namespace: str | None) -> SubjectKey | None:
    kind = subject.get("kind")
    name = subject.get("name") or ""
    if kind == "User":
        return ("User", name)
    if kind == "Group":
        return ("Group", name)
    if kind == "ServiceAccount":
        return ("ServiceAccount", subject.get("namespace") or binding_namespace or "", name)
    return None


def _user_keys(user: UserInfo) -> list[SubjectKey]:
    keys: list[SubjectKey] = [("User", user.name)]
    keys += [("Group", g) for g in user.groups]
    sa = parse_service_account_username(user.name)
    if sa is not None:
        keys.append(("ServiceAccount", *sa))
    return keys


@dataclass(frozen=True)
class _Grant:
    """One binding, seen from one of its subjects."""

    binding_kind: str  # RoleBinding | ClusterRoleBinding
    binding_name: str
    namespace: str | None  # the RoleBinding's namespace; None for ClusterRoleBinding
    role_kind: str  # Role | ClusterRole
    role_name: str
    subject: str  # for the reason, e.g. 'Group "system:masters"'


class RBACAuthorizer:
    """Role-based access control with Kubernetes' semantics: additive, default deny."""

    def __init__(self, lister: RBACLister) -> None:
        self._lister = lister
        self._index: dict[SubjectKey, list[_Grant]] = {}
        self._index_generation: object = object()  # never equal to a real generation

    def _grants_index(self) -> dict[SubjectKey, list[_Grant]]:
        generation = getattr(self._lister, "generation", None)
        if generation is not None and generation == self._index_generation:
            return self._index
        index: dict[SubjectKey, list[_Grant]] = {}
        sources: list[tuple[str, Obj]] = [("ClusterRoleBinding", b) for b in self._lister.list_cluster_role_bindings()]
        sources += [("RoleBinding", b) for b in self._lister.list_role_bindings()]
        for kind, binding in sources:
            meta = binding.get("metadata") or {}
            namespace = meta.get("namespace") if kind == "RoleBinding" else None
            if kind == "RoleBinding" and not namespace:
                continue
            ref = binding.get("roleRef") or {}
            role_kind = ref.get("kind", "")
            if role_kind not in ("Role", "ClusterRole") or (kind == "ClusterRoleBinding" and role_kind != "ClusterRole"):
                continue
            for subject in binding.get("subjects") or []:
                key = _subject_keys(subject, namespace)
                if key is None:
                    continue
                shown = f"{key[1]}/{key[2]}" if key[0] == "ServiceAccount" else key[1]
                label = f"{key[0]} {_quote(shown)}"
                index.setdefault(key, []).append(
                    _Grant(kind, meta.get("name", ""), namespace, role_kind, ref.get("name", ""), label)
                )
        if generation is not None:
            self._index, self._index_generation = index, generation
        return index

    def _rules_of(self, grant: _Grant) -> Sequence[Obj] | None:
        if grant.role_kind == "ClusterRole":
            role = self._lister.get_cluster_role(grant.role_name)
        else:
            role = self._lister.get_role(grant.namespace or "", grant.role_name)
        return None if role is None else (role.get("rules") or [])

    def authorize(self, attrs: RequestAttributes) -> Decision:
        """Allow when any binding of the user's subjects grants a matching rule."""
        index = self._grants_index()
        for key in _user_keys(attrs.user):
            for grant in index.get(key, ()):
                if grant.namespace is not None and grant.namespace != attrs.namespace:
                    continue  # RoleBindings grant only inside their namespace
                if rules_allow(self._rules_of(grant), attrs):
                    where = f" in namespace {_quote(grant.namespace)}" if grant.namespace else ""
                    return Decision(
                        True,
                        f"RBAC: allowed by {grant.binding_kind} {_quote(grant.binding_name)} of "
                        f"{grant.role_kind} {_quote(grant.role_name)} to {grant.subject}{where}",
                    )
        return Decision(False, forbidden_message(attrs))

    def rules_for(self, user: UserInfo, namespace: str | None) -> list[Obj]:
        """Every rule that applies to ``user`` in ``namespace`` (SelfSubjectRulesReview)."""
        index = self._grants_index()
        out: list[Obj] = []
        for key in _user_keys(user):
            for grant in index.get(key, ()):
                if grant.namespace is None or grant.namespace == namespace:
                    out.extend(self._rules_of(grant) or [])
        return out


# --------------------------------------------------------------------------- privileged groups


class PrivilegedGroupsAuthorizer:
    """Always allows members of the given groups (Kubernetes does this for system:masters)."""

    def __init__(self, groups: Iterable[str] = ("system:masters",)) -> None:
        self._groups = frozenset(groups)

    def authorize(self, attrs: RequestAttributes) -> Decision:
        hit = self._groups.intersection(attrs.user.groups)
        if hit:
            return Decision(True, f"allowed: member of privileged group {_quote(sorted(hit)[0])}")
        return Decision(False, "")


# --------------------------------------------------------------------------- Node authorizer

# (namespace, pod name) -> the node the pod is bound to, or None
PodNodeLookup = Callable[[str, str], str | None]
# (node name, resource, namespace, name) -> whether a pod bound to the node references it
ReferencedLookup = Callable[[str, str, str, str], bool]

_READ = frozenset({"get", "list", "watch"})
_WRITE_OWN = frozenset({"create", "update", "patch", "get", "list", "watch"})
NODE_LEASE_NAMESPACE = "kube-node-lease"

# resources any node may read, by (group, resource)
_NODE_READABLE = frozenset(
    {
        ("", "nodes"),
        ("", "services"),
        ("", "endpoints"),
        ("", "pods"),
        ("", "namespaces"),
        ("discovery.k8s.io", "endpointslices"),
        ("node.k8s.io", "runtimeclasses"),
        ("storage.k8s.io", "csidrivers"),
        ("storage.k8s.io", "csinodes"),
        ("storage.k8s.io", "storageclasses"),
    }
)
# resources that must be referenced by a pod on the node, by (group, resource)
_NODE_REFERENCED = frozenset(
    {("", "secrets"), ("", "configmaps"), ("", "persistentvolumeclaims"), ("", "persistentvolumes")}
)


class NodeAuthorizer:
    """What a kubelet (``system:node:<name>`` in ``system:nodes``) may do.

    Reads of cluster-wide data a kubelet needs (nodes, services, endpoints, pods),
    writes to its own Node, Node status and Lease, pod status and deletion for pods
    bound to it, events anywhere, and reads of the secrets/configmaps/volumes its pods
    reference. Other users get no opinion (``allowed=False``, empty reason).
    """

    def __init__(
        self,
        pod_node: PodNodeLookup | None = None,
        referenced: ReferencedLookup | None = None,
    ) -> None:
        self._pod_node = pod_node or (lambda _ns, _name: None)
        self._referenced = referenced or (lambda _node, _res, _ns, _name: False)

    def authorize(self, attrs: RequestAttributes) -> Decision:
        node = node_name_of(attrs.user)
        if node is None or not attrs.resource_request:
            return Decision(False, "")
        verdict = self._decide(node, attrs)
        if verdict is True:
            return Decision(True, f"Node: allowed for node {_quote(node)}")
        return Decision(False, verdict or f"node {_quote(node)} is not allowed to {attrs.verb} {attrs.resource_with_sub}")

    def _decide(self, node: str, a: RequestAttributes) -> bool | str:
        """True to allow, otherwise the reason for denying."""
        key = (a.api_group, a.resource)
        if key == ("", "nodes"):
            if a.subresource in (None, "status") and a.verb in ("create", "update", "patch", "delete"):
                if a.name == node or (a.verb == "create" and a.name in (None, node)):
                    return True
                return f"node {_quote(node)} cannot modify node {_quote(a.name or '')}"
            if a.subresource is None and a.verb in _READ:
                return True
            if a.subresource == "status" and a.verb == "get":
                return True
            return ""
        if key == ("coordination.k8s.io", "leases"):
            if a.namespace != NODE_LEASE_NAMESPACE:
                return f"node {_quote(node)} can only access leases in {NODE_LEASE_NAMESPACE}"
            if a.verb in _WRITE_OWN | {"delete"} and (a.name == node or (a.verb == "create" and a.name is None)):
                return True
            return f"node {_quote(node)} can only access its own lease"
        if key == ("", "pods"):
            if a.subresource is None and a.verb in _READ:
                return True
            if (a.subresource == "status" and a.verb in ("update", "patch", "get")) or (
                a.subresource is None and a.verb == "delete"
            ):
                bound = self._pod_node(a.namespace or "", a.name or "") if a.name else None
                if bound == node:
                    return True
                return f"node {_quote(node)} can only modify pods bound to it; pod {_quote(a.name or '')} is not"
            return ""
        if key in (("", "events"), ("events.k8s.io", "events")):
            return a.verb in ("create", "update", "patch") or ""
        if key in _NODE_READABLE and a.subresource is None and a.verb in _READ:
            return True
        if key in _NODE_REFERENCED and a.subresource is None and a.verb in _READ:
            if a.name and self._referenced(node, a.resource, a.namespace or "", a.name):
                return True
            return (
                f"no relationship found between node {_quote(node)} and this object"
                if a.name
                else f"node {_quote(node)} may only get {a.resource} by name"
            )
        if key == ("", "serviceaccounts") and a.subresource == "token" and a.verb == "create":
            if a.name and self._referenced(node, "serviceaccounts", a.namespace or "", a.name):
                return True
            return f"no relationship found between node {_quote(node)} and this service account"
        if key in (("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews")):
            return a.verb == "create" or ""
        return ""


# --------------------------------------------------------------------------- union


class UnionAuthorizer:
    """Allow when any authorizer allows; a denial carries the reasons of all of them.

    The last authorizer's reason leads (RBAC's standard message), followed by any
    earlier, more specific reasons (e.g. the Node authorizer's), joined by ": ".
    """

    def __init__(self, authorizers: Sequence[Authorizer]) -> None:
        self._authorizers = list(authorizers)

    def authorize(self, attrs: RequestAttributes) -> Decision:
        reasons: list[str] = []
        for authorizer in self._authorizers:
            decision = authorizer.authorize(attrs)
            if decision.allowed:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        if not reasons:
            return Decision(False, forbidden_message(attrs))
        return Decision(False, ": ".join([reasons[-1], *reasons[:-1]]))


def default_authorizer(
    lister: RBACLister,
    *,
    pod_node: PodNodeLookup | None = None,
    referenced: ReferencedLookup | None = None,
) -> UnionAuthorizer:
    """Kubernetes' usual chain: privileged groups, then Node, then RBAC."""
    return UnionAuthorizer([PrivilegedGroupsAuthorizer(), NodeAuthorizer(pod_node, referenced), RBACAuthorizer(lister)])


# --------------------------------------------------------------------------- access reviews


def attributes_from_review(user: UserInfo, spec: Obj) -> RequestAttributes:
    """RequestAttributes for a (Self)SubjectAccessReview spec."""
    non_resource = spec.get("nonResourceAttributes")
    if non_resource:
        return RequestAttributes(
            user=user,
            verb=non_resource.get("verb", ""),
            path=non_resource.get("path", ""),
            resource_request=False,
        )
    res = spec.get("resourceAttributes") or {}
    return RequestAttributes(
        user=user,
        verb=res.get("verb", ""),
        namespace=res.get("namespace") or None,
        api_group=res.get("group", ""),
        resource=res.get("resource", ""),
        subresource=res.get("subresource") or None,
        name=res.get("name") or None,
        path="",
        resource_request=True,
    )


def user_from_review_spec(spec: Obj) -> UserInfo:
    """The user a SubjectAccessReview asks about (``spec.user``, ``groups``, ``uid``, ``extra``)."""
    extra = {k: tuple(v) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""), extra)


def subject_access_review(authorizer: Authorizer, user: UserInfo | None, spec: Obj) -> dict[str, Any]:
    """The ``status`` of a (Self)SubjectAccessReview: ``{"allowed": bool, "reason": str}``.

    ``user`` is the requester for a SelfSubjectAccessReview; pass None for a
    SubjectAccessReview to take the user from the spec.
    """
    who = user if user is not None else user_from_review_spec(spec)
    if not spec.get("resourceAttributes") and not spec.get("nonResourceAttributes"):
        return {"allowed": False, "reason": "", "evaluationError": "resourceAttributes or nonResourceAttributes is required"}
    decision = authorizer.authorize(attributes_from_review(who, spec))
    return {"allowed": decision.allowed, "reason": decision.reason}
