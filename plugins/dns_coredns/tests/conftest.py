"""Fixtures: a real API server on 127.0.0.1 (memory store, plain HTTP), a client, and the DNS server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kcore.apiserver.server import ApiServer
from kcore.client.rest import ApiClient
from kcore.config import ApiServerConfig
from kcore.store.memory import MemoryStore
from kcore_dns_coredns import DnsServer, build_server


@pytest.fixture
async def client() -> AsyncIterator[ApiClient]:
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True))
    await server.start()
    api = ApiClient(server.url)
    try:
        yield api
    finally:
        await api.close()
        await server.stop()
        await store.close()


@pytest.fixture
async def dns_server(client: ApiClient) -> AsyncIterator[DnsServer]:
    """The DNS server on 127.0.0.1 and a free port, fed by informers of ``client``, no upstream."""
    server = await build_server({"bind_address": "127.0.0.1", "port": 0, "service_ip": "10.96.0.10"},
                                {"client": client}).start()
    try:
        yield server
    finally:
        await server.stop()
