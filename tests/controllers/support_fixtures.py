"""Shared fixtures and helpers for the GC, namespace and node lifecycle tests.

A real API server on 127.0.0.1 over the memory store, a client, and a way to wait
for a state of the cluster through an informer (a watch) instead of sleeping.
Test modules import what they use explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kcore.apiserver.server import ApiServer
from kcore.client.controller import Controller
from kcore.client.informer import Informer, InformerFactory
from kcore.client.rest import ApiClient
from kcore.config import ApiServerConfig
from kcore.store.memory import MemoryStore

Obj = dict[str, Any]


@dataclass
class Cluster:
    """The server, a client for it, and an informer factory for controllers under test."""

    store: MemoryStore
    server: ApiServer
    client: ApiClient
    factory: InformerFactory


@contextlib.asynccontextmanager
async def running_cluster(default_toleration_seconds: int = 300) -> AsyncIterator[Cluster]:
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True),
                       default_toleration_seconds=default_toleration_seconds)
    await server.start()
    client = ApiClient(server.url)
    factory = InformerFactory(client)
    try:
        yield Cluster(store, server, client, factory)
    finally:
        await factory.stop()
        await client.close()
        await server.stop()
        await store.close()


@pytest.fixture
async def lifecycle_cluster() -> AsyncIterator[Cluster]:
    """A cluster with the API server's default tolerations (named apart from the shared conftest's)."""
    async with running_cluster() as c:
        yield c


@contextlib.asynccontextmanager
async def running(controller: Controller) -> AsyncIterator[Controller]:
    """Run a controller (its ``run()`` starts its informers) for the duration of a block."""
    task = asyncio.create_task(controller.run())  # type: ignore[call-arg]
    try:
        yield controller
    finally:
        await controller.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Watch:
    """A test's own informer on one kind, to await states and note when changes happened."""

    def __init__(self, client: ApiClient, api_version: str, kind: str, namespace: str | None = None) -> None:
        self.informer = Informer(client, api_version, kind, namespace=namespace)
        self.changes: list[tuple[float, str, Obj]] = []
        """(monotonic time, event, object) for every add, update and delete."""
        self._changed = asyncio.Condition()
        self.informer.add_handler(on_add=lambda o: self._note("add", o),
                                  on_update=lambda _old, new: self._note("update", new),
                                  on_delete=lambda o: self._note("delete", o))
        self._task: asyncio.Task[None] | None = None

    def _note(self, what: str, obj: Obj) -> None:
        self.changes.append((time.monotonic(), what, obj))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def __aenter__(self) -> Watch:
        self._task = asyncio.create_task(self.informer.run())
        await self.informer.wait_synced(10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.informer.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def get(self, name: str, namespace: str | None = None) -> Obj | None:
        return self.informer.indexer.get(f"{namespace}/{name}" if namespace else name)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> None:
        """Return once ``predicate()`` is true, re-checking after every change seen."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    def first_time(self, predicate: Callable[[str, Obj], bool]) -> float | None:
        """When the first change matching ``predicate(event, obj)`` was seen."""
        for moment, what, obj in self.changes:
            if predicate(what, obj):
                return moment
        return None


def pod(name: str, namespace: str = "default", *, owners: list[Obj] | None = None,
        node: str | None = None, tolerations: list[Obj] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace}
    if owners:
        meta["ownerReferences"] = owners
    spec: Obj = {"containers": [{"name": "main", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def owner_ref(owner: Obj, *, controller: bool = True, block: bool = True) -> Obj:
    """An ownerReference to ``owner`` (as a controller writes it)."""
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": block}


def replicaset(name: str, namespace: str = "default", owners: list[Obj] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": namespace, "labels": {"app": name}}
    if owners:
        meta["ownerReferences"] = owners
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}


def deployment(name: str, namespace: str = "default") -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}
