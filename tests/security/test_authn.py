"""Authentication: each credential source, and invalid credentials never becoming anonymous."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kcore.apiserver.authn import (
    ANONYMOUS,
    AuthenticationError,
    Authenticator,
    UserInfo,
    node_name_of,
    node_token,
    sign_service_account_token,
)
from kcore.apiserver.pki import ClusterPKI


def bearer(token: str) -> str:
    return f"Bearer {token}"


def test_no_credentials_is_anonymous(authenticator: Authenticator) -> None:
    assert authenticator.authenticate(None, None) is None
    assert authenticator.authenticate({}, "") is None
    assert ANONYMOUS.name == "system:anonymous" and ANONYMOUS.groups == ("system:unauthenticated",)


def test_admin_token(authenticator: Authenticator, pki: ClusterPKI) -> None:
    user = authenticator.authenticate(None, bearer(pki.admin_token))
    assert user is not None
    assert user.name == "kubernetes-admin"
    assert "system:masters" in user.groups and "system:authenticated" in user.groups
    # scheme is case-insensitive, as in HTTP
    assert authenticator.authenticate(None, f"bearer {pki.admin_token}") == user


@pytest.mark.parametrize(
    "header",
    ["Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Bearer kcore-node:node-a:00", "Bearer kcore-node:"],
)
def test_invalid_credentials_raise(authenticator: Authenticator, header: str) -> None:
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(None, header)


def test_node_token(authenticator: Authenticator, pki: ClusterPKI) -> None:
    token = node_token(pki.join_token, "node-7")
    assert token == authenticator.node_token("node-7")
    user = authenticator.authenticate(None, bearer(token))
    assert user == UserInfo("system:node:node-7", ("system:nodes", "system:authenticated"))
    assert user is not None and node_name_of(user) == "node-7"
    # a node cannot claim another node's name with its own digest
    forged = token.replace("node-7", "node-8")
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(None, bearer(forged))
    # tokens from another cluster's join token are rejected
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(None, bearer(node_token("K10other::server:x", "node-7")))


def test_join_token_is_bootstrapper(authenticator: Authenticator, pki: ClusterPKI) -> None:
    user = authenticator.authenticate(None, bearer(pki.join_token))
    assert user is not None
    assert user.name == "system:bootstrap:kcore"
    assert "system:bootstrappers" in user.groups
    assert node_name_of(user) is None


def test_service_account_token_claims_and_identity(authenticator: Authenticator, pki: ClusterPKI) -> None:
    token = authenticator.issue_service_account_token(
        "team-a", "builder", "uid-1", bound_pod={"name": "web-0", "uid": "pod-uid"}
    )
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "ES256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims["sub"] == "system:serviceaccount:team-a:builder"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["kubernetes.io"] == {
        "namespace": "team-a",
        "serviceaccount": {"name": "builder", "uid": "uid-1"},
        "pod": {"name": "web-0", "uid": "pod-uid"},
    }
    user = authenticator.authenticate(None, bearer(token))
    assert user is not None
    assert user.name == "system:serviceaccount:team-a:builder"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated")
    assert user.uid == "uid-1"
    assert user.extra["authentication.kubernetes.io/pod-name"] == ("web-0",)


def test_service_account_token_verifies_with_published_key(authenticator: Authenticator, pki: ClusterPKI) -> None:
    token = authenticator.issue_service_account_token("ns", "sa", "u")
    pub = serialization.load_pem_public_key((pki.pki_dir / "sa.pub").read_bytes())
    claims = jwt.decode(token, pub, algorithms=["ES256"], audience="https://kubernetes.default.svc.cluster.local")
    assert claims["sub"] == "system:serviceaccount:ns:sa"


def test_expired_service_account_token(authenticator: Authenticator) -> None:
    token = authenticator.issue_service_account_token("ns", "sa", "u", now=time.time() - 7200, expiration_seconds=3600)
    with pytest.raises(AuthenticationError, match="expired"):
        authenticator.authenticate(None, bearer(token))


def test_wrong_audience(authenticator: Authenticator) -> None:
    token = authenticator.issue_service_account_token("ns", "sa", "u", audiences=["vault"])
    with pytest.raises(AuthenticationError, match="audience"):
        authenticator.authenticate(None, bearer(token))


def test_bad_signature_and_tampering(authenticator: Authenticator, tmp_path: Path) -> None:
    other = ClusterPKI.load_or_create(tmp_path, node_name="x", bind_address="0.0.0.0")
    foreign = sign_service_account_token(other.sa_private_key, "ns", "sa", "u")
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(None, bearer(foreign))
    good = authenticator.issue_service_account_token("ns", "sa", "u")
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(None, bearer(f"{head}.{forged_body}.{sig}"))


def test_alg_none_rejected(authenticator: Authenticator) -> None:
    claims = {
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": "system:serviceaccount:ns:sa",
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u"}},
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(AuthenticationError):
        authenticator.authenticate(None, bearer(unsigned))


def test_service_account_lookup(pki: ClusterPKI) -> None:
    accounts = {("ns", "sa"): "uid-1"}
    auth = Authenticator(pki, service_account_lookup=lambda ns, name: accounts.get((ns, name)))
    token = auth.issue_service_account_token("ns", "sa", "uid-1")
    assert auth.authenticate(None, bearer(token)) is not None
    accounts[("ns", "sa")] = "uid-2"  # deleted and recreated
    with pytest.raises(AuthenticationError, match="recreated"):
        auth.authenticate(None, bearer(token))
    del accounts[("ns", "sa")]
    with pytest.raises(AuthenticationError, match="deleted"):
        auth.authenticate(None, bearer(token))


def test_bound_pod_must_exist(pki: ClusterPKI) -> None:
    pods = {("ns", "web-0"): "pod-uid"}
    auth = Authenticator(pki, pod_lookup=lambda ns, name: pods.get((ns, name)))
    token = auth.issue_service_account_token("ns", "sa", "u", bound_pod={"name": "web-0", "uid": "pod-uid"})
    assert auth.authenticate(None, bearer(token)) is not None
    pods.clear()
    with pytest.raises(AuthenticationError, match="no longer exists"):
        auth.authenticate(None, bearer(token))


def test_client_cert_forms(authenticator: Authenticator, pki: ClusterPKI, tmp_path: Path) -> None:
    cert_pem, _ = pki.issue_client_cert("jane", ["dev", "ops"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    expected = UserInfo("jane", ("dev", "ops", "system:authenticated"))
    assert authenticator.authenticate(cert, None) == expected
    assert authenticator.authenticate(cert.public_bytes(serialization.Encoding.DER), None) == expected
    ssl_form = {"subject": ((("organizationName", "dev"),), (("organizationName", "ops"),), (("commonName", "jane"),))}
    assert authenticator.authenticate(ssl_form, None) == expected
    # a certificate wins over a token, as in Kubernetes (x509 is checked first)
    assert authenticator.authenticate(cert, bearer(pki.admin_token)) == expected


def test_client_cert_from_other_ca_rejected(authenticator: Authenticator, tmp_path: Path) -> None:
    other = ClusterPKI.load_or_create(tmp_path, node_name="x", bind_address="0.0.0.0")
    cert_pem, _ = other.issue_client_cert("kubernetes-admin", ["system:masters"])
    with pytest.raises(AuthenticationError, match="not signed"):
        authenticator.authenticate(x509.load_pem_x509_certificate(cert_pem), None)


def test_userinfo_is_hashable_and_frozen() -> None:
    user = UserInfo("a", ("g",), extra={"k": ("v",)})
    assert hash(user) == hash(UserInfo("a", ("g",)))
    with pytest.raises(AttributeError):
        user.name = "b"  # type: ignore[misc]
