"""Kubeconfig files that kubectl and the official Python client read unmodified.

Credentials are embedded (``*-data`` fields, base64) rather than referenced by path,
so a kubeconfig can be copied to another machine on its own.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import yaml

from kcore.fileutil import write_private_file


def _b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def build_kubeconfig(
    server_url: str,
    ca_pem: bytes | str,
    *,
    user: str,
    client_cert_pem: bytes | str | None = None,
    client_key_pem: bytes | str | None = None,
    token: str | None = None,
    cluster_name: str = "kcore",
    context_name: str = "kcore",
    namespace: str | None = None,
) -> dict[str, Any]:
    """A ``kind: Config`` dict with one cluster, one user and one current context."""
    if (client_cert_pem is None) != (client_key_pem is None):
        raise ValueError("client_cert_pem and client_key_pem go together")
    if client_cert_pem is None and token is None:
        raise ValueError("a kubeconfig user needs a client certificate or a token")
    credentials: dict[str, Any] = {}
    if client_cert_pem is not None and client_key_pem is not None:
        credentials["client-certificate-data"] = _b64(client_cert_pem)
        credentials["client-key-data"] = _b64(client_key_pem)
    if token is not None:
        credentials["token"] = token
    context: dict[str, Any] = {"cluster": cluster_name, "user": user}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster_name, "cluster": {"server": server_url, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": context_name, "context": context}],
        "current-context": context_name,
        "preferences": {},
    }


def write_kubeconfig(path: str | os.PathLike[str], config: dict[str, Any]) -> None:
    """Write ``config`` as YAML, atomically, readable by the owner only (it holds keys)."""
    write_private_file(path, yaml.safe_dump(config, sort_keys=False, default_flow_style=False))


def load_kubeconfig(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a kubeconfig back (for components started with ``--kubeconfig``)."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a kubeconfig (expected a mapping)")
    return data


def current_credentials(config: dict[str, Any]) -> dict[str, Any]:
    """Server URL and decoded credentials of the current context, for kcore's own clients."""
    ctx_name = config.get("current-context")
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    if ctx_name not in contexts:
        raise ValueError(f"kubeconfig current-context {ctx_name!r} not found")
    ctx = contexts[ctx_name]
    cluster = {c["name"]: c["cluster"] for c in config.get("clusters") or []}.get(ctx["cluster"])
    user = {u["name"]: u["user"] for u in config.get("users") or []}.get(ctx["user"])
    if cluster is None or user is None:
        raise ValueError(f"kubeconfig context {ctx_name!r} refers to a missing cluster or user")

    def decode(key: str) -> bytes | None:
        value = (cluster if key == "certificate-authority-data" else user).get(key)
        return base64.b64decode(value) if value else None

    return {
        "server": cluster["server"],
        "ca_pem": decode("certificate-authority-data"),
        "client_cert_pem": decode("client-certificate-data"),
        "client_key_pem": decode("client-key-data"),
        "token": user.get("token"),
        "namespace": ctx.get("namespace", "default"),
    }
