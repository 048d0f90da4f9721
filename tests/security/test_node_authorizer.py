"""Node authorizer: a kubelet may touch its own node and what its pods need, nothing else."""

from __future__ import annotations

import pytest

from kcore.apiserver.authn import UserInfo
from kcore.apiserver.bootstrap_rbac import bootstrap_policy
from kcore.apiserver.rbac import (
    InMemoryRBACLister,
    NodeAuthorizer,
    RequestAttributes,
    default_authorizer,
)

N1 = UserInfo("system:node:n1", ("system:nodes", "system:authenticated"))
PODS = {("default", "web-1"): "n1", ("default", "web-2"): "n2"}
REFS = {("n1", "secrets", "default", "web-secret"), ("n1", "configmaps", "default", "web-cm"),
        ("n1", "serviceaccounts", "default", "web-sa")}


@pytest.fixture
def node_authz() -> NodeAuthorizer:
    return NodeAuthorizer(
        pod_node=lambda ns, name: PODS.get((ns, name)),
        referenced=lambda node, res, ns, name: (node, res, ns, name) in REFS,
    )


def a(verb: str, resource: str, ns: str | None = None, *, group: str = "", sub: str | None = None,
      name: str | None = None, user: UserInfo = N1) -> RequestAttributes:
    return RequestAttributes(user, verb, ns, group, resource, sub, name, "", True)


CASES = [
    (a("get", "nodes", name="n2"), True),
    (a("list", "nodes"), True),
    (a("watch", "pods"), True),
    (a("list", "services"), True),
    (a("list", "endpoints"), True),
    (a("watch", "endpointslices", group="discovery.k8s.io"), True),
    (a("create", "nodes", name="n1"), True),
    (a("create", "nodes"), True),
    (a("patch", "nodes", name="n1"), True),
    (a("update", "nodes", sub="status", name="n1"), True),
    (a("patch", "nodes", sub="status", name="n1"), True),
    (a("patch", "nodes", name="n2"), False),
    (a("update", "nodes", sub="status", name="n2"), False),
    (a("delete", "nodes", name="n2"), False),
    (a("create", "leases", "kube-node-lease", group="coordination.k8s.io", name="n1"), True),
    (a("update", "leases", "kube-node-lease", group="coordination.k8s.io", name="n1"), True),
    (a("get", "leases", "kube-node-lease", group="coordination.k8s.io", name="n1"), True),
    (a("update", "leases", "kube-node-lease", group="coordination.k8s.io", name="n2"), False),
    (a("update", "leases", "kube-system", group="coordination.k8s.io", name="n1"), False),
    (a("patch", "pods", "default", sub="status", name="web-1"), True),
    (a("patch", "pods", "default", sub="status", name="web-2"), False),
    (a("delete", "pods", "default", name="web-1"), True),
    (a("delete", "pods", "default", name="web-2"), False),
    (a("create", "pods", "default", sub="exec", name="web-1"), False),
    (a("create", "events", "default"), True),
    (a("create", "events", "default", group="events.k8s.io"), True),
    (a("delete", "events", "default", name="e"), False),
    (a("get", "secrets", "default", name="web-secret"), True),
    (a("watch", "configmaps", "default", name="web-cm"), True),
    (a("get", "secrets", "default", name="other"), False),
    (a("list", "secrets", "default"), False),
    (a("get", "secrets", "kube-system", name="web-secret"), False),
    (a("create", "serviceaccounts", "default", sub="token", name="web-sa"), True),
    (a("create", "serviceaccounts", "default", sub="token", name="admin"), False),
    (a("create", "deployments", "default", group="apps"), False),
    (a("delete", "namespaces", name="default"), False),
]


@pytest.mark.parametrize(("attrs", "allowed"), CASES)
def test_node_rules(node_authz: NodeAuthorizer, attrs: RequestAttributes, allowed: bool) -> None:
    assert node_authz.authorize(attrs).allowed is allowed


def test_identity_requires_group(node_authz: NodeAuthorizer) -> None:
    impostor = UserInfo("system:node:n1", ("system:authenticated",))
    d = node_authz.authorize(a("patch", "nodes", name="n1", user=impostor))
    assert not d.allowed and d.reason == ""  # no opinion for non-nodes
    other = UserInfo("jane", ("system:nodes",))
    assert node_authz.authorize(a("get", "nodes", name="n1", user=other)).reason == ""


def test_other_node_reason(node_authz: NodeAuthorizer) -> None:
    d = node_authz.authorize(a("patch", "nodes", name="n2"))
    assert d.reason == 'node "n1" cannot modify node "n2"'


def test_default_chain_combines_reasons() -> None:
    authz = default_authorizer(
        InMemoryRBACLister(bootstrap_policy()),
        pod_node=lambda ns, name: PODS.get((ns, name)),
        referenced=lambda node, res, ns, name: (node, res, ns, name) in REFS,
    )
    assert authz.authorize(a("patch", "nodes", sub="status", name="n1")).allowed
    d = authz.authorize(a("patch", "nodes", name="n2"))
    assert not d.allowed
    assert d.reason == (
        'User "system:node:n1" cannot patch resource "nodes" in API group "" at the cluster scope: '
        'node "n1" cannot modify node "n2"'
    )
    # nodes still get what RBAC grants every authenticated user
    disc = RequestAttributes(N1, "get", None, "", "", None, None, "/apis", False)
    assert authz.authorize(disc).allowed
    admin = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
    assert authz.authorize(a("delete", "nodes", name="n2", user=admin)).allowed
