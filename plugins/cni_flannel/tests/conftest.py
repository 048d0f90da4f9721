"""A real API server on 127.0.0.1 over the memory store (plain HTTP, loopback only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kcore.apiserver.server import ApiServer
from kcore.client import ApiClient
from kcore.config import ApiServerConfig
from kcore.store.memory import MemoryStore


@pytest.fixture
async def api_server() -> AsyncIterator[ApiServer]:
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await store.close()


@pytest.fixture
async def client(api_server: ApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(api_server.url) as api:
        yield api
