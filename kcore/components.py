"""Credentials and clients for the components of one kcore process.

Every component is a client of the API server — in ``kcore up`` too, where they
share the process: each connects over loopback HTTPS with its own identity
(``system:kube-scheduler``, ``system:kube-controller-manager``,
``system:node:<name>``), so RBAC and the Node authorizer apply to it exactly as
to a component running elsewhere. An agent on another machine authenticates
with the node token derived from the join token, after pinning the cluster CA
the token names.
"""

from __future__ import annotations

import ssl
import urllib.request
from dataclasses import dataclass

from kcore.apiserver.authn import node_token
from kcore.apiserver.pki import ClusterPKI, ca_hash, client_ssl_context, join_token_ca_hash
from kcore.client.rest import ApiClient
from kcore.errors import UserFacingError

SCHEDULER_USER = "system:kube-scheduler"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
PROXY_USER = "system:kube-proxy"
DNS_USER = "system:kube-dns"


@dataclass(frozen=True)
class Identity:
    user: str
    groups: tuple[str, ...] = ()


def node_identity(node_name: str) -> Identity:
    return Identity(f"system:node:{node_name}", ("system:nodes",))


def local_client(server_url: str, pki: ClusterPKI | None, identity: Identity, *,
                 user_agent: str) -> ApiClient:
    """A client for an in-process component, with a client certificate for ``identity``."""
    if pki is None:  # plain HTTP on loopback: no authentication configured
        return ApiClient(server_url, user_agent=user_agent)
    cert, key = pki.issue_client_cert(identity.user, list(identity.groups))
    return ApiClient(server_url, ssl_context=client_ssl_context(pki.ca_pem, cert, key),
                     user_agent=user_agent)


def fetch_cluster_ca(server_url: str, join_token: str, timeout: float = 10.0) -> bytes:
    """Download ``/cacerts`` and check it against the hash pinned in the join token."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # verified below, against the token's pin
    try:
        with urllib.request.urlopen(f"{server_url.rstrip('/')}/cacerts", context=unverified,
                                    timeout=timeout) as response:
            pem = response.read()
    except OSError as exc:
        raise UserFacingError(f"cannot reach the server at {server_url}: {exc}") from None
    pinned = join_token_ca_hash(join_token)
    if pinned is None:
        raise UserFacingError("the join token has no CA pin; use the full contents of the "
                              "server's <data-dir>/token")
    if ca_hash(pem) != pinned:
        raise UserFacingError(f"the server at {server_url} presented a CA that does not match "
                              f"the join token")
    return pem


def agent_client(server_url: str, join_token: str, node_name: str) -> ApiClient:
    """A node's client on another process or machine: pinned CA, derived node token."""
    ca_pem = fetch_cluster_ca(server_url, join_token)
    return ApiClient(server_url, ssl_context=client_ssl_context(ca_pem),
                     token=node_token(join_token, node_name), user_agent="kcore-agent")
