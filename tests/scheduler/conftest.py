"""Fixtures for scheduler tests: a real API server on 127.0.0.1, a client, a plugin host."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kcore.apiserver.server import ApiServer
from kcore.client import ApiClient
from kcore.config import ApiServerConfig
from kcore.plugins import PluginHost
from kcore.scheduler.testing import scheduler_host
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


@pytest.fixture
def host() -> PluginHost:
    """The installed kcore.scheduler entry points (built-ins and round-robin) in a fresh host."""
    return scheduler_host()
