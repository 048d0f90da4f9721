"""Fixtures: a real API server on 127.0.0.1 over the memory store, and a kcore client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from client.support import Cluster, make_server

from kcore.client.rest import ApiClient
from kcore.store.memory import MemoryStore


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    store = MemoryStore()
    server = make_server(store)
    await server.start()
    client = ApiClient(server.url)
    c = Cluster(store, server, client)
    try:
        yield c
    finally:
        await client.close()
        await c.server.stop()
        await store.close()


@pytest.fixture
def client(cluster: Cluster) -> ApiClient:
    return cluster.client
