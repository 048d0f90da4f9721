"""The default policy means what Kubernetes' defaults mean."""

from __future__ import annotations

import pytest

from kcore.apiserver.authn import ANONYMOUS, UserInfo
from kcore.apiserver.bootstrap_rbac import bootstrap_policy
from kcore.apiserver.rbac import InMemoryRBACLister, RBACAuthorizer, RequestAttributes, subject_access_review


def bind_in(ns: str, role: str, user: str) -> dict[str, object]:
    return {
        "kind": "RoleBinding",
        "metadata": {"name": f"{user}-{role}", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}],
    }


@pytest.fixture
def authz() -> RBACAuthorizer:
    policy = bootstrap_policy()
    policy += [bind_in("dev", "view", "viewer"), bind_in("dev", "edit", "editor"), bind_in("dev", "admin", "nsadmin")]
    return RBACAuthorizer(InMemoryRBACLister(policy))


def user(name: str, *groups: str) -> UserInfo:
    return UserInfo(name, (*groups, "system:authenticated"))


def can(authz: RBACAuthorizer, who: UserInfo, verb: str, resource: str, ns: str | None = "dev", group: str = "",
        sub: str | None = None, name: str | None = None) -> bool:
    return authz.authorize(RequestAttributes(who, verb, ns, group, resource, sub, name, "", True)).allowed


def can_url(authz: RBACAuthorizer, who: UserInfo, path: str, verb: str = "get") -> bool:
    return authz.authorize(RequestAttributes(who, verb, None, "", "", None, None, path, False)).allowed


def test_objects_are_labelled_and_well_formed() -> None:
    policy = bootstrap_policy()
    names = {(o["kind"], o["metadata"]["name"]) for o in policy}
    assert len(names) == len(policy)
    for obj in policy:
        assert obj["apiVersion"] == "rbac.authorization.k8s.io/v1"
        assert obj["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        # Cluster-wide kinds have no namespace; Roles and RoleBindings live in kube-system.
        assert obj["metadata"].get("namespace") == (None if obj["kind"].startswith("Cluster") else "kube-system")
    roles = {o["metadata"]["name"] for o in policy if o["kind"] == "ClusterRole"}
    for binding in (o for o in policy if o["kind"] == "ClusterRoleBinding"):
        assert binding["roleRef"]["name"] in roles
    local_roles = {o["metadata"]["name"] for o in policy if o["kind"] == "Role"}
    for binding in (o for o in policy if o["kind"] == "RoleBinding"):
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                      "name": binding["metadata"]["name"]}
        assert binding["roleRef"]["name"] in local_roles
    for expected in ["cluster-admin", "admin", "edit", "view", "system:discovery", "system:public-info-viewer",
                     "system:basic-user", "system:kube-scheduler", "system:kube-controller-manager",
                     "system:node-proxier"]:
        assert expected in roles


def test_view_cannot_read_secrets_edit_can(authz: RBACAuthorizer) -> None:
    viewer, editor = user("viewer"), user("editor")
    assert can(authz, viewer, "list", "pods")
    assert can(authz, viewer, "get", "deployments", group="apps", name="d")
    assert can(authz, viewer, "get", "pods", sub="log", name="p")
    assert can(authz, viewer, "list", "configmaps")
    assert not can(authz, viewer, "get", "secrets", name="s")
    assert not can(authz, viewer, "list", "secrets")
    assert not can(authz, viewer, "create", "pods")
    assert not can(authz, viewer, "list", "pods", ns="other")
    assert can(authz, editor, "get", "secrets", name="s")
    assert can(authz, editor, "create", "secrets")
    assert can(authz, editor, "create", "deployments", group="apps")
    assert can(authz, editor, "patch", "deployments", group="apps", sub="scale", name="d")
    assert can(authz, editor, "delete", "services", name="s")
    assert can(authz, editor, "create", "configmaps")
    assert can(authz, editor, "create", "pods", sub="exec", name="p")
    assert not can(authz, editor, "create", "rolebindings", group="rbac.authorization.k8s.io")


def test_admin_manages_rbac_in_namespace_only(authz: RBACAuthorizer) -> None:
    nsadmin = user("nsadmin")
    assert can(authz, nsadmin, "create", "rolebindings", group="rbac.authorization.k8s.io")
    assert can(authz, nsadmin, "delete", "roles", group="rbac.authorization.k8s.io", name="r")
    assert can(authz, nsadmin, "get", "secrets", name="s")
    assert not can(authz, nsadmin, "create", "rolebindings", ns="kube-system", group="rbac.authorization.k8s.io")
    assert not can(authz, nsadmin, "list", "nodes", ns=None)


def test_cluster_admin_via_masters(authz: RBACAuthorizer) -> None:
    admin = user("kubernetes-admin", "system:masters")
    assert can(authz, admin, "delete", "nodes", ns=None, name="n")
    assert can(authz, admin, "create", "widgets", group="example.com")
    assert can_url(authz, admin, "/metrics")


def test_discovery_and_public_info(authz: RBACAuthorizer) -> None:
    someone = user("someone")
    for path in ["/api", "/api/v1", "/apis", "/apis/apps/v1", "/version", "/healthz", "/openapi/v3"]:
        assert can_url(authz, someone, path), path
    assert not can_url(authz, someone, "/metrics")
    assert not can_url(authz, someone, "/api", "post")
    assert can_url(authz, ANONYMOUS, "/version")
    assert can_url(authz, ANONYMOUS, "/healthz")
    assert not can_url(authz, ANONYMOUS, "/api")
    assert not can(authz, someone, "list", "pods")


def test_basic_user_can_i(authz: RBACAuthorizer) -> None:
    someone = user("someone")
    assert can(authz, someone, "create", "selfsubjectaccessreviews", ns=None, group="authorization.k8s.io")
    spec = {"resourceAttributes": {"namespace": "dev", "verb": "list", "resource": "pods"}}
    assert subject_access_review(authz, user("viewer"), spec)["allowed"] is True
    assert subject_access_review(authz, someone, spec)["allowed"] is False


def test_component_identities(authz: RBACAuthorizer) -> None:
    sched = UserInfo("system:kube-scheduler", ("system:authenticated",))
    assert can(authz, sched, "create", "pods", sub="binding", name="p")
    assert can(authz, sched, "watch", "nodes", ns=None)
    assert not can(authz, sched, "get", "secrets", name="s")
    proxy = UserInfo("system:kube-proxy", ("system:authenticated",))
    assert can(authz, proxy, "watch", "endpointslices", ns=None, group="discovery.k8s.io")
    assert can(authz, proxy, "list", "services", ns=None)
    assert not can(authz, proxy, "create", "services")
    kcm = UserInfo("system:kube-controller-manager", ("system:authenticated",))
    assert can(authz, kcm, "create", "replicasets", group="apps")
    assert can(authz, kcm, "delete", "pods", name="p")
    boot = UserInfo("system:bootstrap:kcore", ("system:bootstrappers", "system:authenticated"))
    assert can(authz, boot, "create", "certificatesigningrequests", ns=None, group="certificates.k8s.io")
    assert not can(authz, boot, "list", "pods")


def test_nodes_keep_pod_network_state_in_kube_system_configmaps_only(authz: RBACAuthorizer) -> None:
    node = user("system:node:n1", "system:nodes")
    for verb in ("get", "create", "update", "patch"):
        assert can(authz, node, verb, "configmaps", ns="kube-system", name="kcore-flannel-subnets")
    assert not can(authz, node, "delete", "configmaps", ns="kube-system", name="kcore-flannel-subnets")
    assert not can(authz, node, "update", "configmaps", ns="default", name="x")
    assert not can(authz, user("someone"), "update", "configmaps", ns="kube-system", name="kcore-flannel-subnets")
