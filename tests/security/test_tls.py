"""A real TLS round trip through the server and client contexts the PKI builds."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kcore.apiserver.authn import Authenticator, UserInfo
from kcore.apiserver.pki import ClusterPKI, client_ssl_context


class Server:
    """Echoes the authenticated user name; records what it saw per connection."""

    def __init__(self, pki: ClusterPKI) -> None:
        self.auth = Authenticator(pki)
        self.seen: list[UserInfo | None] = []
        self.der_seen: list[bytes | None] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = (await reader.readline()).decode().strip() or None
        peer = writer.get_extra_info("peercert")
        ssl_obj = writer.get_extra_info("ssl_object")
        self.der_seen.append(ssl_obj.getpeercert(binary_form=True))
        user = self.auth.authenticate(peer, header)
        self.seen.append(user)
        writer.write(((user.name if user else "system:anonymous") + "\n").encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def server(pki: ClusterPKI) -> AsyncIterator[tuple[Server, int]]:
    srv = Server(pki)
    tcp = await asyncio.start_server(srv.handle, "127.0.0.1", 0, ssl=pki.ssl_server_context())
    port = tcp.sockets[0].getsockname()[1]
    async with tcp:
        yield srv, port
    tcp.close()
    await tcp.wait_closed()


async def talk(port: int, ctx: ssl.SSLContext, line: str = "", host: str = "127.0.0.1") -> str:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host), timeout=5
    )
    writer.write((line + "\n").encode())
    await writer.drain()
    reply = (await asyncio.wait_for(reader.readline(), timeout=5)).decode().strip()
    writer.close()
    return reply


async def test_client_cert_authenticates(server: tuple[Server, int], pki: ClusterPKI) -> None:
    srv, port = server
    cert, key = pki.issue_client_cert("system:node:node-9", ["system:nodes"])
    assert await talk(port, pki.ssl_client_context(cert, key)) == "system:node:node-9"
    assert srv.seen[-1] == UserInfo("system:node:node-9", ("system:nodes", "system:authenticated"))
    # the DER form authenticates the same way (verified again against the CA)
    assert srv.auth.authenticate(srv.der_seen[-1], None) == srv.seen[-1]


async def test_admin_cert_authenticates(server: tuple[Server, int], pki: ClusterPKI) -> None:
    srv, port = server
    assert await talk(port, pki.ssl_client_context(pki.admin_cert_pem, pki.admin_key_pem)) == "kubernetes-admin"
    assert srv.seen[-1] is not None and "system:masters" in srv.seen[-1].groups


async def test_no_cert_still_connects_with_token_or_anonymous(server: tuple[Server, int], pki: ClusterPKI) -> None:
    srv, port = server
    ctx = client_ssl_context(pki.ca_pem)
    assert await talk(port, ctx) == "system:anonymous"
    assert srv.seen[-1] is None
    assert await talk(port, ctx, f"Bearer {pki.admin_token}") == "kubernetes-admin"


@pytest.mark.parametrize("host", ["localhost", "kubernetes.default.svc", "node-a", "127.0.0.1"])
async def test_hostname_verification_against_sans(server: tuple[Server, int], pki: ClusterPKI, host: str) -> None:
    _, port = server
    assert await talk(port, client_ssl_context(pki.ca_pem), host=host) == "system:anonymous"


async def test_unknown_hostname_rejected_by_client(server: tuple[Server, int], pki: ClusterPKI) -> None:
    _, port = server
    with pytest.raises(ssl.SSLCertVerificationError):
        await talk(port, client_ssl_context(pki.ca_pem), host="evil.example")


async def test_cert_from_other_ca_fails_handshake(server: tuple[Server, int], pki: ClusterPKI, tmp_path: Path) -> None:
    srv, port = server
    other = ClusterPKI.load_or_create(tmp_path, node_name="x", bind_address="0.0.0.0")
    cert, key = other.issue_client_cert("kubernetes-admin", ["system:masters"])
    ctx = client_ssl_context(pki.ca_pem, cert, key)  # trusts the real server, presents a foreign cert
    count = len(srv.seen)
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
        reply = await talk(port, ctx)
        # TLS 1.3 reports the client-cert rejection after the handshake, on first read
        if not reply:
            raise ConnectionError("closed by server")
    assert len(srv.seen) == count  # the handler never ran


async def test_client_rejects_server_of_other_ca(server: tuple[Server, int], tmp_path: Path) -> None:
    _, port = server
    other = ClusterPKI.load_or_create(tmp_path, node_name="x", bind_address="0.0.0.0")
    with pytest.raises(ssl.SSLCertVerificationError):
        await talk(port, other.ssl_client_context())
