"""The default ClusterRoles and ClusterRoleBindings every cluster starts with.

Names and meanings follow Kubernetes' bootstrap policy, so manifests and habits from
its documentation carry over: ``cluster-admin`` for ``system:masters``; the
user-facing ``admin`` / ``edit`` / ``view`` (view cannot read secrets; edit can, and
writes workloads; admin also manages Roles and RoleBindings); discovery for
authenticated users; health and version for everyone. kcore's own components get
coarser rules than Kubernetes' (noted per role). All objects carry the label
``kubernetes.io/bootstrapping: rbac-defaults`` and are returned as wire dicts.
"""

from __future__ import annotations

from typing import Any

RBAC_API_VERSION = "rbac.authorization.k8s.io/v1"
RBAC_GROUP = "rbac.authorization.k8s.io"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]

Rule = dict[str, Any]


def rule(groups: list[str], resources: list[str], verbs: list[str], names: list[str] | None = None) -> Rule:
    """A resource PolicyRule."""
    out: Rule = {"apiGroups": groups, "resources": resources, "verbs": verbs}
    if names:
        out["resourceNames"] = names
    return out


def url_rule(urls: list[str], verbs: list[str]) -> Rule:
    """A non-resource PolicyRule."""
    return {"nonResourceURLs": urls, "verbs": verbs}


def cluster_role(name: str, rules: list[Rule]) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(AUTOUPDATE_ANNOTATIONS)},
        "rules": rules,
    }


def subject(kind: str, name: str, namespace: str | None = None) -> dict[str, str]:
    out = {"kind": kind, "name": name}
    if kind == "ServiceAccount":
        out["namespace"] = namespace or "default"
    else:
        out["apiGroup"] = RBAC_GROUP
    return out


def cluster_role_binding(name: str, role: str, subjects: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_API_VERSION,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(BOOTSTRAP_LABELS), "annotations": dict(AUTOUPDATE_ANNOTATIONS)},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }


def namespaced(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """``obj`` (a ClusterRole or ClusterRoleBinding) as a Role or RoleBinding in ``namespace``."""
    kind = obj["kind"].removeprefix("Cluster")
    out = {**obj, "kind": kind, "metadata": {**obj["metadata"], "namespace": namespace}}
    if "roleRef" in out:
        out["roleRef"] = {**out["roleRef"], "kind": "Role"}
    return out


# Network plugins keep node-shared state (e.g. flannel's subnet registry) in ConfigMaps
# in kube-system, written by the nodes themselves; the Node authorizer only lets nodes
# read ConfigMaps their pods reference, so this Role grants the rest.
POD_NETWORK_ROLE = "system:kcore:pod-network"


def pod_network_policy() -> list[dict[str, Any]]:
    rules = [rule([""], ["configmaps"], ["get", "list", "watch", "create", "update", "patch"])]
    return [namespaced(cluster_role(POD_NETWORK_ROLE, rules), "kube-system"),
            namespaced(cluster_role_binding(POD_NETWORK_ROLE, POD_NETWORK_ROLE,
                                            [subject("Group", "system:nodes")]), "kube-system")]


# --------------------------------------------------------------------------- user-facing roles

# Namespaced resources everyone with "view" may read (no secrets, by design: reading a
# secret of a service account would let a viewer act as it).
_VIEW_CORE = [
    "bindings",
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "namespaces/status",
    "persistentvolumeclaims",
    "persistentvolumeclaims/status",
    "pods",
    "pods/log",
    "pods/status",
    "replicationcontrollers",
    "replicationcontrollers/scale",
    "replicationcontrollers/status",
    "resourcequotas",
    "resourcequotas/status",
    "serviceaccounts",
    "services",
    "services/status",
]
_VIEW_BY_GROUP: dict[str, list[str]] = {
    "apps": [
        "controllerrevisions",
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "statefulsets",
        "statefulsets/scale",
        "statefulsets/status",
    ],
    "autoscaling": ["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
    "batch": ["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
    "discovery.k8s.io": ["endpointslices"],
    "policy": ["poddisruptionbudgets", "poddisruptionbudgets/status"],
    "networking.k8s.io": ["ingresses", "ingresses/status", "networkpolicies"],
}

# What "edit" may change.
_EDIT_CORE = [
    "configmaps",
    "endpoints",
    "persistentvolumeclaims",
    "pods",
    "pods/attach",
    "pods/exec",
    "pods/portforward",
    "pods/proxy",
    "replicationcontrollers",
    "replicationcontrollers/scale",
    "secrets",
    "serviceaccounts",
    "services",
    "services/proxy",
]
_EDIT_BY_GROUP: dict[str, list[str]] = {
    "apps": [
        "daemonsets",
        "deployments",
        "deployments/rollback",
        "deployments/scale",
        "replicasets",
        "replicasets/scale",
        "statefulsets",
        "statefulsets/scale",
    ],
    "autoscaling": ["horizontalpodautoscalers"],
    "batch": ["cronjobs", "jobs"],
    "policy": ["poddisruptionbudgets"],
    "networking.k8s.io": ["ingresses", "networkpolicies"],
    "discovery.k8s.io": ["endpointslices"],
}


def view_rules() -> list[Rule]:
    return [rule([""], list(_VIEW_CORE), list(READ))] + [
        rule([group], list(resources), list(READ)) for group, resources in _VIEW_BY_GROUP.items()
    ]


def edit_rules() -> list[Rule]:
    return [
        *view_rules(),
        # reading secrets and the interactive pod subresources comes with editing
        rule([""], ["secrets", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "services/proxy"], list(READ)),
        rule([""], list(_EDIT_CORE), list(WRITE)),
        rule([""], ["pods/eviction", "serviceaccounts/token"], ["create"]),
        rule([""], ["serviceaccounts"], ["impersonate"]),
        *(rule([group], list(resources), list(WRITE)) for group, resources in _EDIT_BY_GROUP.items()),
    ]


def admin_rules() -> list[Rule]:
    return [
        *edit_rules(),
        rule([RBAC_GROUP], ["roles", "rolebindings"], [*READ, *WRITE]),
        rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    ]


# --------------------------------------------------------------------------- component roles


def _component_roles() -> list[dict[str, Any]]:
    events = rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"])
    return [
        cluster_role(
            "system:kube-scheduler",
            [
                events,
                rule(["coordination.k8s.io"], ["leases"], ["create", *READ, "update"]),
                rule([""], ["nodes", "namespaces", "services", "replicationcontrollers"], list(READ)),
                rule([""], ["persistentvolumes", "persistentvolumeclaims"], list(READ)),
                rule([""], ["pods"], [*READ, "delete"]),
                rule([""], ["bindings", "pods/binding"], ["create"]),
                rule([""], ["pods/status"], ["patch", "update"]),
                rule(["apps"], ["replicasets", "statefulsets"], list(READ)),
                rule(["policy"], ["poddisruptionbudgets"], list(READ)),
                rule(["storage.k8s.io"], ["storageclasses", "csinodes", "csidrivers", "csistoragecapacities"], list(READ)),
                rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]),
                rule(["authorization.k8s.io"], ["subjectaccessreviews"], ["create"]),
            ],
        ),
        # Coarse on purpose: kcore's controller manager runs every controller under one
        # identity (Kubernetes splits them into per-controller service accounts), and
        # the garbage collector and namespace controller must be able to delete anything.
        cluster_role(
            "system:kube-controller-manager",
            [rule(["*"], ["*"], ["*"]), url_rule(["/healthz", "/livez", "/readyz", "/version"], ["get"])],
        ),
        cluster_role(
            "system:node-proxier",
            [
                rule([""], ["services", "endpoints", "nodes"], list(READ)),
                rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
                events,
            ],
        ),
        cluster_role(
            "system:kube-dns",
            [
                rule([""], ["endpoints", "services", "namespaces", "pods"], ["list", "watch"]),
                rule(["discovery.k8s.io"], ["endpointslices"], ["list", "watch"]),
            ],
        ),
        # Not bound by default: the Node authorizer covers kubelets. Kept so an operator
        # running without it can bind it, as in Kubernetes.
        cluster_role(
            "system:node",
            [
                rule([""], ["nodes", "nodes/status"], ["create", *READ, "patch", "update", "delete"]),
                rule(["coordination.k8s.io"], ["leases"], ["create", "delete", *READ, "patch", "update"]),
                rule([""], ["pods"], [*READ, "delete", "create"]),
                rule([""], ["pods/status"], ["patch", "update"]),
                rule([""], ["services", "endpoints"], list(READ)),
                rule([""], ["configmaps", "secrets", "persistentvolumeclaims", "persistentvolumes"], ["get"]),
                rule([""], ["serviceaccounts/token"], ["create"]),
                events,
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            [rule(["certificates.k8s.io"], ["certificatesigningrequests"], ["create", *READ])],
        ),
    ]


def bootstrap_policy() -> list[dict[str, Any]]:
    """Every default ClusterRole, then every default ClusterRoleBinding."""
    authenticated = subject("Group", "system:authenticated")
    unauthenticated = subject("Group", "system:unauthenticated")
    roles = [
        cluster_role("cluster-admin", [rule(["*"], ["*"], ["*"]), url_rule(["*"], ["*"])]),
        cluster_role("admin", admin_rules()),
        cluster_role("edit", edit_rules()),
        cluster_role("view", view_rules()),
        cluster_role(
            "system:discovery",
            [
                url_rule(
                    [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                    ["get"],
                )
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            [url_rule(["/healthz", "/livez", "/readyz", "/version", "/version/"], ["get"])],
        ),
        cluster_role(
            "system:basic-user",
            [
                rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
                rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
            ],
        ),
        cluster_role(
            "system:service-account-issuer-discovery",
            [url_rule(["/.well-known/openid-configuration", "/openid/v1/jwks"], ["get"])],
        ),
        *_component_roles(),
    ]
    bindings = [
        cluster_role_binding("cluster-admin", "cluster-admin", [subject("Group", "system:masters")]),
        cluster_role_binding("system:discovery", "system:discovery", [authenticated]),
        cluster_role_binding("system:basic-user", "system:basic-user", [authenticated]),
        cluster_role_binding("system:public-info-viewer", "system:public-info-viewer", [authenticated, unauthenticated]),
        cluster_role_binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            [subject("Group", "system:serviceaccounts")],
        ),
        cluster_role_binding("system:kube-scheduler", "system:kube-scheduler", [subject("User", "system:kube-scheduler")]),
        cluster_role_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            [subject("User", "system:kube-controller-manager")],
        ),
        cluster_role_binding("system:node-proxier", "system:node-proxier", [subject("User", "system:kube-proxy")]),
        cluster_role_binding(
            "system:kube-dns",
            "system:kube-dns",
            [subject("ServiceAccount", "kube-dns", "kube-system"), subject("User", "system:kube-dns")],
        ),
        cluster_role_binding(
            "system:node-bootstrapper", "system:node-bootstrapper", [subject("Group", "system:bootstrappers")]
        ),
    ]
    return roles + bindings + pod_network_policy()
