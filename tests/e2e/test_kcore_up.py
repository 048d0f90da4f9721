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


def test_cacerts_is_public_and_matches_the_join_token(cluster: RunningCluster) -> None:
    import ssl
    import urllib.request

    from kcore.apiserver.pki import ca_hash, join_token_ca_hash

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # an agent cannot verify before it has the CA
    with urllib.request.urlopen(f"{cluster.url}/cacerts", context=context, timeout=10) as resp:
        pem = resp.read()
    token = (cluster.data_dir / "token").read_text().strip()
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert join_token_ca_hash(token) == ca_hash(pem)


def test_start_up_says_pods_use_the_host_network(cluster: RunningCluster) -> None:
    assert "no pod network: pods share the host's network" in cluster.log()
