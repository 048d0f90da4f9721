"""``kcore up`` writes a private kubeconfig and join token, and kubectl works with them."""

from __future__ import annotations

import stat

from support.cluster import RunningCluster
from support.kubectl import Kubectl


def test_kubeconfig_and_token_are_private(cluster: RunningCluster) -> None:
    for path in (cluster.kubeconfig, cluster.data_dir / "token", cluster.data_dir / "pki" / "ca.key"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (cluster.data_dir / "store.db").exists()


def test_kubectl_sees_the_system_namespaces(kubectl: Kubectl) -> None:
    out = kubectl("get", "namespaces", "-o", "name")
    assert set(out.split()) >= {"namespace/default", "namespace/kube-system",
                               "namespace/kube-public", "namespace/kube-node-lease"}


def test_not_found_is_printed_like_kubernetes(kubectl: Kubectl) -> None:
    result = kubectl.run("get", "pod", "nope", check=False)
    assert result.returncode == 1
    assert 'Error from server (NotFound): pods "nope" not found' in result.stderr


def test_impersonation_is_authorized_by_rbac(kubectl: Kubectl) -> None:
    allowed = kubectl.run("get", "pods", "--as=jane", check=False)
    assert allowed.returncode == 1
    assert 'User "jane" cannot list resource "pods" in API group "" in the namespace "default"' \
        in allowed.stderr
    assert "Error from server (Forbidden)" in allowed.stderr
