"""Cluster PKI: generated once with private modes, reloaded on restart, SANs kept current."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from kcore.apiserver.pki import (
    ClusterPKI,
    PKIError,
    ca_hash,
    cert_sans,
    join_token_ca_hash,
    signed_by,
)

PRIVATE = ["ca.key", "apiserver.key", "admin.key", "sa.key", "admin-token", "token"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def make(data_dir: Path, node: str = "node-a", bind: str = "0.0.0.0", extra: list[str] | None = None) -> ClusterPKI:
    return ClusterPKI.load_or_create(data_dir, node_name=node, bind_address=bind, extra_sans=extra or ["10.96.0.1"])


def test_first_start_creates_everything_private(tmp_path: Path) -> None:
    pki = make(tmp_path)
    paths = ClusterPKI.paths(tmp_path)
    for name, path in paths.items():
        assert path.exists(), name
    for name in PRIVATE:
        assert mode(paths[name]) == 0o600, name
    assert mode(tmp_path / "pki") == 0o700
    assert paths["token"] == tmp_path / "token"
    assert set(pki.generated) >= {"ca", "apiserver", "admin", "sa"}
    assert pki.join_token == paths["token"].read_text().strip()
    assert pki.admin_token == paths["admin-token"].read_text().strip()
    assert len(pki.admin_token) >= 32
    assert pki.admin_token != pki.join_token


def test_ca_is_a_ten_year_ca(tmp_path: Path) -> None:
    pki = make(tmp_path)
    bc = pki.ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert bc.ca is True
    lifetime = pki.ca_cert.not_valid_after_utc - pki.ca_cert.not_valid_before_utc
    assert lifetime.days >= 3649


def test_serving_cert_sans(tmp_path: Path) -> None:
    pki = make(tmp_path, bind="192.168.7.9")
    sans = cert_sans(pki.serving_cert)
    for name in [
        "192.168.7.9",
        "127.0.0.1",
        "::1",
        "localhost",
        "node-a",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "10.96.0.1",
    ]:
        assert name in sans, name
    assert "0.0.0.0" not in sans
    assert signed_by(pki.serving_cert, pki.ca_cert)
    # IP SANs are real IP entries, not DNS names (TLS clients check them differently)
    ext = pki.serving_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" not in ext.get_values_for_type(x509.DNSName)


def test_wildcard_bind_address_is_not_a_san(tmp_path: Path) -> None:
    pki = make(tmp_path, bind="::")
    assert "::" not in cert_sans(pki.serving_cert)


def test_admin_cert_identity(tmp_path: Path) -> None:
    pki = make(tmp_path)
    cert = x509.load_pem_x509_certificate(pki.admin_cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes-admin"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    assert signed_by(cert, pki.ca_cert)


def test_restart_loads_instead_of_regenerating(tmp_path: Path) -> None:
    first = make(tmp_path)
    paths = ClusterPKI.paths(tmp_path)
    before = {name: p.read_bytes() for name, p in paths.items()}
    second = make(tmp_path)
    assert second.generated == []
    assert {name: p.read_bytes() for name, p in paths.items()} == before
    assert second.ca_pem == first.ca_pem
    assert second.admin_token == first.admin_token
    assert second.join_token == first.join_token
    assert second.serving_cert.serial_number == first.serving_cert.serial_number


def test_new_node_name_reissues_only_the_serving_cert(tmp_path: Path) -> None:
    first = make(tmp_path, node="node-a")
    paths = ClusterPKI.paths(tmp_path)
    before = {name: p.read_bytes() for name, p in paths.items()}
    second = make(tmp_path, node="node-b")
    assert second.generated == ["apiserver"]
    assert "node-b" in cert_sans(second.serving_cert)
    assert second.serving_cert.serial_number != first.serving_cert.serial_number
    assert signed_by(second.serving_cert, first.ca_cert)
    for name in ["ca.crt", "ca.key", "admin.crt", "admin.key", "sa.key", "admin-token", "token"]:
        assert paths[name].read_bytes() == before[name], name
    assert mode(paths["apiserver.key"]) == 0o600


def test_extra_san_added_later_reissues(tmp_path: Path) -> None:
    make(tmp_path, extra=["10.96.0.1"])
    again = make(tmp_path, extra=["10.96.0.1", "api.example.test"])
    assert again.generated == ["apiserver"]
    assert "api.example.test" in cert_sans(again.serving_cert)


def test_lost_ca_reissues_dependent_certs_and_join_token(tmp_path: Path) -> None:
    first = make(tmp_path)
    paths = ClusterPKI.paths(tmp_path)
    paths["ca.key"].unlink()
    second = make(tmp_path)
    assert "ca" in second.generated and "apiserver" in second.generated and "admin" in second.generated
    assert signed_by(second.serving_cert, second.ca_cert)
    assert signed_by(x509.load_pem_x509_certificate(second.admin_cert_pem), second.ca_cert)
    assert second.join_token != first.join_token
    assert join_token_ca_hash(second.join_token) == ca_hash(second.ca_pem)
    assert second.admin_token == first.admin_token


def test_mismatched_ca_key_is_an_error(tmp_path: Path) -> None:
    make(tmp_path)
    other = tmp_path / "other"
    make(other)
    paths = ClusterPKI.paths(tmp_path)
    paths["ca.key"].write_bytes(ClusterPKI.paths(other)["ca.key"].read_bytes())
    with pytest.raises(PKIError, match="does not match"):
        make(tmp_path)


def test_join_token_pins_ca(tmp_path: Path) -> None:
    pki = make(tmp_path)
    assert pki.join_token.startswith("K10")
    assert "::server:" in pki.join_token
    assert join_token_ca_hash(pki.join_token) == ca_hash(pki.ca_pem)
    assert join_token_ca_hash("just-a-secret") is None


def test_issue_client_cert(tmp_path: Path) -> None:
    pki = make(tmp_path)
    cert_pem, key_pem = pki.issue_client_cert("system:node:n1", ["system:nodes"], days=30)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:nodes"]
    assert signed_by(cert, pki.ca_cert)
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 31
    assert b"PRIVATE KEY" in key_pem
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku


def test_expiring_certs_are_renewed(tmp_path: Path) -> None:
    pki = make(tmp_path)
    paths = ClusterPKI.paths(tmp_path)
    short_cert, short_key = pki.issue_client_cert("kubernetes-admin", ["system:masters"], days=5)
    paths["admin.crt"].write_bytes(short_cert)
    paths["admin.key"].write_bytes(short_key)
    again = make(tmp_path)
    assert again.generated == ["admin"]
    renewed = x509.load_pem_x509_certificate(again.admin_cert_pem)
    assert (renewed.not_valid_after_utc - renewed.not_valid_before_utc).days >= 364
    assert mode(paths["admin.key"]) == 0o600
