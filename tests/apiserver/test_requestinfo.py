"""Request attributes as RBAC and routing see them."""

import pytest

from kcore.apiserver.requestinfo import parse_request


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/pods", {}, ("list", "", "v1", None, "pods", None, None)),
        ("GET", "/api/v1/namespaces/default/pods", {}, ("list", "", "v1", "default", "pods", None, None)),
        ("GET", "/api/v1/namespaces/default/pods/web", {}, ("get", "", "v1", "default", "pods", "web", None)),
        ("GET", "/api/v1/namespaces/default/pods/web/log", {}, ("get", "", "v1", "default", "pods", "web", "log")),
        ("POST", "/api/v1/namespaces/default/pods/web/binding", {}, ("create", "", "v1", "default", "pods", "web", "binding")),
        ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, ("watch", "", "v1", "default", "pods", None, None)),
        ("GET", "/api/v1/watch/namespaces/default/pods", {}, ("watch", "", "v1", "default", "pods", None, None)),
        ("DELETE", "/api/v1/namespaces/default/pods", {}, ("deletecollection", "", "v1", "default", "pods", None, None)),
        ("PATCH", "/apis/apps/v1/namespaces/x/deployments/d/scale", {}, ("patch", "apps", "v1", "x", "deployments", "d", "scale")),
        ("PUT", "/apis/apps/v1/namespaces/x/deployments/d/status", {}, ("update", "apps", "v1", "x", "deployments", "d", "status")),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "v1", None, "namespaces", None, None)),
        ("GET", "/api/v1/namespaces/kube-system", {}, ("get", "", "v1", "kube-system", "namespaces", "kube-system", None)),
        ("PUT", "/api/v1/namespaces/kube-system/finalize", {}, ("update", "", "v1", "kube-system", "namespaces", "kube-system", "finalize")),
        ("GET", "/api/v1/nodes/n1", {}, ("get", "", "v1", None, "nodes", "n1", None)),
        ("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {}, ("create", "rbac.authorization.k8s.io", "v1", None, "clusterroles", None, None)),
    ],
)
def test_resource_requests(method: str, path: str, query: dict, expected: tuple) -> None:
    info = parse_request(method, path, query)
    assert info.is_resource_request
    assert (info.verb, info.api_group, info.api_version, info.namespace, info.resource,
            info.name, info.subresource) == expected


@pytest.mark.parametrize("path", ["/healthz", "/version", "/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v3"])
def test_non_resource_requests(path: str) -> None:
    info = parse_request("GET", path)
    assert not info.is_resource_request
    assert info.verb == "get"
    assert info.path == path
