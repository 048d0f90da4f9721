"""Kubeconfig shape (what kubectl reads) and private, atomic writing."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
import yaml

from kcore.apiserver.pki import ClusterPKI
from kcore.kubeconfig import build_kubeconfig, current_credentials, load_kubeconfig, write_kubeconfig


def test_cert_kubeconfig_shape_and_mode(tmp_path: Path, pki: ClusterPKI) -> None:
    cfg = build_kubeconfig(
        "https://127.0.0.1:6443",
        pki.ca_pem,
        user="kubernetes-admin",
        client_cert_pem=pki.admin_cert_pem,
        client_key_pem=pki.admin_key_pem,
    )
    path = tmp_path / "kubeconfig.yaml"
    write_kubeconfig(path, cfg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = yaml.safe_load(path.read_text())
    assert data["apiVersion"] == "v1" and data["kind"] == "Config"
    assert data["current-context"] == "kcore"
    (cluster,) = data["clusters"]
    assert cluster["name"] == "kcore"
    assert cluster["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]) == pki.ca_pem
    (user,) = data["users"]
    assert user["name"] == "kubernetes-admin"
    assert base64.b64decode(user["user"]["client-certificate-data"]) == pki.admin_cert_pem
    assert base64.b64decode(user["user"]["client-key-data"]) == pki.admin_key_pem
    assert "token" not in user["user"]
    (ctx,) = data["contexts"]
    assert ctx == {"name": "kcore", "context": {"cluster": "kcore", "user": "kubernetes-admin"}}


def test_token_kubeconfig_and_roundtrip(tmp_path: Path, pki: ClusterPKI) -> None:
    cfg = build_kubeconfig(
        "https://10.0.0.1:6443", pki.ca_pem, user="ops", token="abc", cluster_name="c1", context_name="x"
    )
    path = tmp_path / "k.yaml"
    write_kubeconfig(path, cfg)
    loaded = load_kubeconfig(path)
    assert loaded == cfg
    creds = current_credentials(loaded)
    assert creds["server"] == "https://10.0.0.1:6443"
    assert creds["ca_pem"] == pki.ca_pem
    assert creds["token"] == "abc"
    assert creds["client_cert_pem"] is None


def test_needs_credentials() -> None:
    with pytest.raises(ValueError):
        build_kubeconfig("https://x", b"ca", user="u")
    with pytest.raises(ValueError):
        build_kubeconfig("https://x", b"ca", user="u", client_cert_pem=b"c")
