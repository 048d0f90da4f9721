"""Helpers for the client tests: a restartable real API server, handler recorders, objects.

``Cluster.restart()`` stops the server and starts a new one on the same port over
the same store — what a client sees when the API server is restarted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kcore.apiserver.server import ApiServer
from kcore.client.rest import ApiClient
from kcore.config import ApiServerConfig
from kcore.store.memory import MemoryStore


def make_server(store: MemoryStore, port: int = 0) -> ApiServer:
    return ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=port, insecure_http=True))


class Cluster:
    """One store, the server currently in front of it, and a client."""

    def __init__(self, store: MemoryStore, server: ApiServer, client: ApiClient) -> None:
        self.store = store
        self.server = server
        self.client = client
        self.port = server.port or 0

    async def stop_server(self) -> None:
        await self.server.stop()

    async def start_server(self) -> None:
        """A fresh server on the same port over the same store."""
        self.server = make_server(self.store, self.port)
        await self.server.start()

    async def restart(self) -> None:
        await self.stop_server()
        await self.start_server()

    async def side_server(self) -> tuple[ApiServer, ApiClient]:
        """Another server over the same store on another port (to write while ours is down)."""
        server = make_server(self.store)
        await server.start()
        return server, ApiClient(server.url)


class Recorder:
    """Informer handlers that record ("add"|"update"|"delete", name) and let a test await a state."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.objects: list[tuple[str, Any, Any]] = []
        self._changed = asyncio.Condition()

    def _note(self, what: str, name: str, old: Any, new: Any) -> None:
        self.calls.append((what, name))
        self.objects.append((what, old, new))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def on_add(self, obj: dict[str, Any]) -> None:
        self._note("add", obj["metadata"]["name"], None, obj)

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._note("update", new["metadata"]["name"], old, new)

    def on_delete(self, obj: dict[str, Any]) -> None:
        self._note("delete", obj["metadata"]["name"], obj, None)

    def handlers(self) -> dict[str, Callable[..., None]]:
        return {"on_add": self.on_add, "on_update": self.on_update, "on_delete": self.on_delete}

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Return once ``predicate()`` holds, re-checking after every recorded call."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)


def configmap(name: str, namespace: str = "default", labels: dict[str, str] | None = None,
              **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def pod(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}
