"""RBAC authorizer: table tests of grants and denials, messages, indexing, access reviews."""

from __future__ import annotations

from typing import Any

import pytest

from kcore.apiserver.authn import UserInfo
from kcore.apiserver.rbac import (
    Decision,
    InMemoryRBACLister,
    PrivilegedGroupsAuthorizer,
    RBACAuthorizer,
    RequestAttributes,
    UnionAuthorizer,
    forbidden_message,
    forbidden_status_message,
    subject_access_review,
)

JANE = UserInfo("jane", ("dev", "system:authenticated"))
BOB = UserInfo("bob", ("system:authenticated",))
SA = UserInfo(
    "system:serviceaccount:ci:builder",
    ("system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"),
)


def role(name: str, ns: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules}


def crole(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}


def rb(name: str, ns: str, kind: str, ref: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": ref},
        "subjects": subjects,
    }


def crb(name: str, ref: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ref},
        "subjects": subjects,
    }


POLICY = [
    role("pod-reader", "default", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]),
    role("log-reader", "default", [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]),
    role(
        "one-cm",
        "default",
        [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["app-config"], "verbs": ["get", "update"]}],
    ),
    crole("scaler", [{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["update", "patch", "get"]}]),
    crole("secret-reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]),
    crole("node-viewer", [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]),
    crole("health", [{"nonResourceURLs": ["/healthz", "/healthz/*"], "verbs": ["get"]}]),
    crole("deploy-all", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}]),
    crole("star", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    rb("jane-pods", "default", "Role", "pod-reader", [{"kind": "User", "name": "jane"}]),
    rb("dev-logs", "default", "Role", "log-reader", [{"kind": "Group", "name": "dev"}]),
    rb("jane-cm", "default", "Role", "one-cm", [{"kind": "User", "name": "jane"}]),
    rb("jane-scale", "default", "ClusterRole", "scaler", [{"kind": "User", "name": "jane"}]),
    # a RoleBinding to a ClusterRole grants only inside its namespace
    rb("jane-secrets", "team-a", "ClusterRole", "secret-reader", [{"kind": "User", "name": "jane"}]),
    crb("bob-nodes", "node-viewer", [{"kind": "User", "name": "bob"}]),
    crb("all-health", "health", [{"kind": "Group", "name": "system:authenticated"}]),
    rb("ci-deploy", "ci", "ClusterRole", "deploy-all", [{"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}]),
    # a ServiceAccount subject of the same name in another namespace must not match
    rb("other-sa", "ci", "ClusterRole", "star", [{"kind": "ServiceAccount", "name": "builder", "namespace": "prod"}]),
    # a binding to a Role that does not exist grants nothing
    rb("dangling", "default", "Role", "missing", [{"kind": "User", "name": "bob"}]),
    # a ClusterRoleBinding cannot reference a Role
    {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "bad-ref"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "User", "name": "bob"}],
    },
]


@pytest.fixture
def authz() -> RBACAuthorizer:
    return RBACAuthorizer(InMemoryRBACLister(POLICY))


def res(
    user: UserInfo,
    verb: str,
    resource: str,
    ns: str | None = "default",
    *,
    group: str = "",
    sub: str | None = None,
    name: str | None = None,
) -> RequestAttributes:
    return RequestAttributes(user, verb, ns, group, resource, sub, name, "", True)


def url(user: UserInfo, verb: str, path: str) -> RequestAttributes:
    return RequestAttributes(user, verb, None, "", "", None, None, path, False)


CASES = [
    # (attrs, allowed, why)
    (res(JANE, "list", "pods"), True, "role in namespace"),
    (res(JANE, "get", "pods", name="p"), True, "named get"),
    (res(JANE, "delete", "pods", name="p"), False, "verb not granted"),
    (res(JANE, "list", "pods", "kube-system"), False, "other namespace"),
    (res(JANE, "list", "pods", None), False, "cluster-wide list needs a ClusterRoleBinding"),
    (res(JANE, "get", "pods", sub="log", name="p"), True, "pods/log via group binding"),
    (res(BOB, "get", "pods", sub="log", name="p"), False, "not in group dev"),
    (res(JANE, "get", "pods", sub="exec", name="p"), False, "subresource not granted by pods rule"),
    (res(JANE, "get", "configmaps", name="app-config"), True, "resourceNames match"),
    (res(JANE, "get", "configmaps", name="other"), False, "resourceNames mismatch"),
    (res(JANE, "list", "configmaps"), False, "resourceNames cannot grant list"),
    (res(JANE, "update", "deployments", group="apps", sub="scale", name="d"), True, "*/scale"),
    (res(JANE, "update", "statefulsets", group="apps", sub="scale", name="s"), True, "*/scale any resource"),
    (res(JANE, "update", "deployments", group="apps", name="d"), False, "*/scale is not the main resource"),
    (res(JANE, "update", "deployments", group="", sub="scale", name="d"), False, "api group mismatch"),
    (res(JANE, "get", "secrets", "team-a", name="s"), True, "RoleBinding to ClusterRole in its namespace"),
    (res(JANE, "get", "secrets", "default", name="s"), False, "...but not elsewhere"),
    (res(BOB, "list", "nodes", None), True, "ClusterRoleBinding at cluster scope"),
    (res(BOB, "list", "nodes", "default"), True, "ClusterRoleBinding applies in namespaces too"),
    (res(BOB, "delete", "nodes", None, name="n"), False, "verb"),
    (res(BOB, "get", "pods", name="p"), False, "dangling and bad roleRef grant nothing"),
    (url(BOB, "get", "/healthz"), True, "exact non-resource URL"),
    (url(BOB, "get", "/healthz/ping"), True, "prefix non-resource URL"),
    (url(BOB, "get", "/healthzz"), False, "prefix needs the star"),
    (url(BOB, "post", "/healthz"), False, "non-resource verb"),
    (url(JANE, "get", "/api"), False, "no discovery rule in this policy"),
    (res(SA, "create", "deployments", "ci", group="apps"), True, "ServiceAccount subject"),
    (res(SA, "create", "deployments", "prod", group="apps"), False, "SA binding is namespaced"),
    (res(SA, "get", "secrets", "ci", name="x"), False, "SA subject in other namespace does not match"),
    (url(UserInfo("system:anonymous", ("system:unauthenticated",)), "get", "/healthz"), False, "anonymous"),
]


@pytest.mark.parametrize(("attrs", "allowed", "why"), CASES, ids=[c[2] for c in CASES])
def test_table(authz: RBACAuthorizer, attrs: RequestAttributes, allowed: bool, why: str) -> None:
    assert authz.authorize(attrs).allowed is allowed, why


def test_allow_reason_names_binding(authz: RBACAuthorizer) -> None:
    d = authz.authorize(res(SA, "create", "deployments", "ci", group="apps"))
    assert d.reason == (
        'RBAC: allowed by RoleBinding "ci-deploy" of ClusterRole "deploy-all" to '
        'ServiceAccount "ci/builder" in namespace "ci"'
    )


def test_deny_messages(authz: RBACAuthorizer) -> None:
    d = authz.authorize(res(UserInfo("jane"), "list", "pods", "kube-system"))
    assert d == Decision(
        False, 'User "jane" cannot list resource "pods" in API group "" in the namespace "kube-system"'
    )
    assert authz.authorize(res(JANE, "delete", "nodes", None, name="n")).reason == (
        'User "jane" cannot delete resource "nodes" in API group "" at the cluster scope'
    )
    assert authz.authorize(res(JANE, "get", "pods", sub="exec", name="p")).reason == (
        'User "jane" cannot get resource "pods/exec" in API group "" in the namespace "default"'
    )
    assert authz.authorize(url(JANE, "get", "/metrics")).reason == 'User "jane" cannot get path "/metrics"'


def test_forbidden_status_message() -> None:
    attrs = res(JANE, "get", "deployments", group="apps", name="web")
    assert forbidden_status_message(attrs) == (
        'deployments.apps "web" is forbidden: User "jane" cannot get resource "deployments" '
        'in API group "apps" in the namespace "default"'
    )
    assert forbidden_status_message(res(JANE, "list", "pods")).startswith("pods is forbidden: User")
    assert forbidden_status_message(url(JANE, "get", "/x")) == 'forbidden: User "jane" cannot get path "/x"'
    assert forbidden_status_message(attrs, "extra detail").endswith('in the namespace "default": extra detail')
    assert forbidden_status_message(attrs, forbidden_message(attrs)) == forbidden_status_message(attrs)


def test_policy_is_additive_and_live() -> None:
    lister = InMemoryRBACLister()
    authz = RBACAuthorizer(lister)
    attrs = res(BOB, "get", "pods", name="p")
    assert not authz.authorize(attrs).allowed
    lister.upsert(role("r", "default", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]))
    assert not authz.authorize(attrs).allowed  # a role alone grants nothing
    lister.upsert(rb("b", "default", "Role", "r", [{"kind": "User", "name": "bob"}]))
    assert authz.authorize(attrs).allowed  # the cached index notices the new generation
    lister.delete("RoleBinding", "default", "b")
    assert not authz.authorize(attrs).allowed
    # a role edit takes effect without touching the binding
    lister.upsert(rb("b", "default", "Role", "r", [{"kind": "User", "name": "bob"}]))
    lister.upsert(role("r", "default", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]))
    assert not authz.authorize(attrs).allowed


class CountingLister(InMemoryRBACLister):
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        super().__init__(objects)
        self.binding_lists = 0

    def list_cluster_role_bindings(self):  # type: ignore[no-untyped-def]
        self.binding_lists += 1
        return super().list_cluster_role_bindings()


def test_index_rebuilt_only_when_generation_changes() -> None:
    lister = CountingLister(POLICY)
    authz = RBACAuthorizer(lister)
    for _ in range(50):
        authz.authorize(res(JANE, "list", "pods"))
    assert lister.binding_lists == 1
    lister.upsert(crb("x", "health", [{"kind": "User", "name": "z"}]))
    authz.authorize(res(JANE, "list", "pods"))
    assert lister.binding_lists == 2


def test_lister_without_generation_is_read_every_time() -> None:
    inner = InMemoryRBACLister(POLICY)

    class Plain:
        def get_role(self, namespace: str, name: str):  # type: ignore[no-untyped-def]
            return inner.get_role(namespace, name)

        def get_cluster_role(self, name: str):  # type: ignore[no-untyped-def]
            return inner.get_cluster_role(name)

        def list_role_bindings(self):  # type: ignore[no-untyped-def]
            return inner.list_role_bindings()

        def list_cluster_role_bindings(self):  # type: ignore[no-untyped-def]
            return inner.list_cluster_role_bindings()

    authz = RBACAuthorizer(Plain())
    attrs = res(BOB, "get", "pods", name="p")
    assert not authz.authorize(attrs).allowed
    inner.upsert(rb("b", "default", "Role", "pod-reader", [{"kind": "User", "name": "bob"}]))
    assert authz.authorize(attrs).allowed


def test_privileged_groups_and_union(authz: RBACAuthorizer) -> None:
    admin = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
    union = UnionAuthorizer([PrivilegedGroupsAuthorizer(), authz])
    assert union.authorize(res(admin, "delete", "nodes", None, name="n")).allowed
    assert not authz.authorize(res(admin, "delete", "nodes", None, name="n")).allowed
    denied = union.authorize(res(BOB, "delete", "nodes", None, name="n"))
    assert denied.reason == 'User "bob" cannot delete resource "nodes" in API group "" at the cluster scope'


def test_subject_access_review(authz: RBACAuthorizer) -> None:
    spec = {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}}
    assert subject_access_review(authz, JANE, spec)["allowed"] is True
    assert subject_access_review(authz, BOB, spec)["allowed"] is False
    spec_sub = {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods", "subresource": "log"}}
    assert subject_access_review(authz, JANE, spec_sub)["allowed"] is True
    named = {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "configmaps", "name": "x"}}
    assert subject_access_review(authz, JANE, named)["allowed"] is False
    grouped = {"resourceAttributes": {"namespace": "ci", "verb": "create", "group": "apps", "resource": "deployments"}}
    assert subject_access_review(authz, SA, grouped)["allowed"] is True
    health = {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
    status = subject_access_review(authz, BOB, health)
    assert status["allowed"] is True and "all-health" in status["reason"]
    # SubjectAccessReview: the user comes from the spec
    sar = {"user": "bob", "groups": ["system:authenticated"], **health}
    assert subject_access_review(authz, None, sar)["allowed"] is True
    assert subject_access_review(authz, JANE, {})["allowed"] is False


def test_rules_for(authz: RBACAuthorizer) -> None:
    rules = authz.rules_for(JANE, "default")
    resources = {r for rule in rules for r in rule.get("resources", [])}
    assert {"pods", "pods/log", "configmaps", "*/scale", "nonResource"} - resources == {"nonResource"}
    assert "secrets" not in resources
    assert "secrets" in {r for rule in authz.rules_for(JANE, "team-a") for r in rule.get("resources", [])}
