"""Authentication and authorization over real HTTPS against ``kcore up``."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
from support.cluster import RunningCluster
from support.kubectl import Kubectl


def call(cluster: RunningCluster, path: str, token: str | None = None, method: str = "GET",
         body: Any = None) -> tuple[int, Any]:
    context = ssl.create_default_context(cadata=(cluster.data_dir / "pki" / "ca.crt").read_text())
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(cluster.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw.startswith(b"{") else raw.decode()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw.startswith(b"{") else raw.decode()


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/version"])
def test_anonymous_may_read_health_and_version(cluster: RunningCluster, path: str) -> None:
    status, _ = call(cluster, path)
    assert status == 200


def test_anonymous_may_not_read_resources(cluster: RunningCluster) -> None:
    status, body = call(cluster, "/api/v1/namespaces/default/pods")
    assert status == 403 and body["kind"] == "Status" and body["reason"] == "Forbidden"
    assert 'User "system:anonymous" cannot list resource "pods"' in body["message"]


def test_invalid_token_is_401_never_anonymous(cluster: RunningCluster) -> None:
    status, body = call(cluster, "/healthz", token="not-a-real-token")
    assert status == 401 and body["reason"] == "Unauthorized"


def test_admin_token_works(cluster: RunningCluster) -> None:
    token = (cluster.data_dir / "pki" / "admin-token").read_text().strip()
    status, body = call(cluster, "/api/v1/namespaces", token=token)
    assert status == 200 and body["kind"] == "NamespaceList"


def test_service_account_token_and_rbac(cluster: RunningCluster, kubectl: Kubectl) -> None:
    kubectl("create", "serviceaccount", "robot")
    token = kubectl("create", "token", "robot").strip()
    denied_status, denied = call(cluster, "/api/v1/namespaces/default/configmaps", token=token)
    assert denied_status == 403
    assert 'User "system:serviceaccount:default:robot" cannot list resource "configmaps"' \
        in denied["message"]
    kubectl("create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps")
    kubectl("create", "rolebinding", "robot-reads", "--role=cm-reader",
            "--serviceaccount=default:robot")
    status, body = call(cluster, "/api/v1/namespaces/default/configmaps", token=token)
    assert status == 200 and body["kind"] == "ConfigMapList"
    write_status, _ = call(cluster, "/api/v1/namespaces/default/configmaps", token=token,
                           method="POST", body={"metadata": {"name": "x"}})
    assert write_status == 403


def test_node_credentials_only_touch_their_own_node(cluster: RunningCluster) -> None:
    from kcore.apiserver.authn import node_token

    join = (cluster.data_dir / "token").read_text().strip()
    token = node_token(join, "worker-a")
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-a"}}
    assert call(cluster, "/api/v1/nodes", token=token, method="POST", body=node)[0] == 201
    other = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-b"}}
    status, body = call(cluster, "/api/v1/nodes", token=token, method="POST", body=other)
    assert status == 403 and "worker-b" in body["message"]


def test_auth_can_i(kubectl: Kubectl) -> None:
    assert kubectl("auth", "can-i", "delete", "deployments").strip() == "yes"
    denied = kubectl.run("auth", "can-i", "delete", "deployments", "--as=someone", check=False)
    assert denied.returncode == 1 and denied.stdout.strip().startswith("no")
