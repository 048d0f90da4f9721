"""A real API server on 127.0.0.1 over the memory store, plain HTTP (loopback only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from support.api import Api

from kcore.apiserver.server import ApiServer
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
async def api(api_server: ApiServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(api_server, session)
