"""A real API server on 127.0.0.1 (memory store), a client, and the workload controllers
running in the test's event loop; plus an independent observer that sees every change.

Nothing here sleeps: tests wait for conditions that the observer re-checks after
every watch event, under a deadline. No scheduler or kubelet runs, so pods stay
unbound (and are deleted at once); a test plays kubelet by patching pod status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kcore.apiserver.server import ApiServer
from kcore.client import ApiClient, EventRecorder, Informer, InformerFactory
from kcore.config import ApiServerConfig
from kcore.controllers import DeploymentController, ReplicaSetController, ReplicationControllerController
from kcore.controllers import podutil
from kcore.store.memory import MemoryStore

Obj = dict[str, Any]
KINDS = {"pods": ("v1", "Pod"), "rs": ("apps/v1", "ReplicaSet"), "rc": ("v1", "ReplicationController"),
         "deploy": ("apps/v1", "Deployment"), "events": ("v1", "Event")}


class Observer:
    """Informers of the test's own (separate client), a condition signalled on every
    event, and checks run on every event (for invariants that must hold at each step)."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.informers: dict[str, Informer] = {name: Informer(client, av, kind) for name, (av, kind) in KINDS.items()}
        self.checks: list[Callable[[], None]] = []
        self.failures: list[str] = []
        self.events_seen = 0
        self._changed = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        for informer in self.informers.values():
            informer.add_handler(on_add=self._note, on_update=lambda _o, n: self._note(n), on_delete=self._note)

    def _note(self, _obj: Obj) -> None:
        self.events_seen += 1
        for check in self.checks:
            try:
                check()
            except AssertionError as exc:
                self.failures.append(str(exc))
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(i.run()) for i in self.informers.values()]
        await asyncio.gather(*(i.wait_synced(10) for i in self.informers.values()))

    async def stop(self) -> None:
        for informer in self.informers.values():
            await informer.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def items(self, name: str) -> list[Obj]:
        return self.informers[name].indexer.list()

    def get(self, name: str, key: str) -> Obj | None:
        return self.informers[name].indexer.get(key)

    def pods(self, selector: Callable[[Obj], bool] = lambda _p: True, *, active: bool = True) -> list[Obj]:
        return [p for p in self.items("pods") if selector(p) and (not active or podutil.is_pod_active(p))]

    def owned_pods(self, owner: Obj, *, active: bool = True) -> list[Obj]:
        uid = owner["metadata"]["uid"]
        return self.pods(lambda p: (podutil.controller_ref(p) or {}).get("uid") == uid, active=active)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
        """Return ``predicate()`` once truthy, re-checked after every event; fail at the deadline."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    while True:
                        result = predicate()
                        if result:
                            return result
                        await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}") from None


class Cluster:
    def __init__(self, server: ApiServer, client: ApiClient, observer: Observer) -> None:
        self.server = server
        self.client = client
        self.observer = observer
        self.pods = client.resource("v1", "Pod")
        self.rs = client.resource("apps/v1", "ReplicaSet")
        self.rc = client.resource("v1", "ReplicationController")
        self.deploy = client.resource("apps/v1", "Deployment")

    async def mark_ready(self, pod: Obj, ready: bool = True) -> Obj:
        """Play kubelet: the pod runs and its Ready condition is ``ready``."""
        now = podutil.format_time(podutil.utc_now())
        status = {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]}
        return await self.pods.patch(pod["metadata"]["name"], {"status": status},
                                     namespace=pod["metadata"]["namespace"], subresource="status")


def pod_template(labels: dict[str, str], image: str = "nginx:1.25", **spec: Any) -> Obj:
    return {"metadata": {"labels": dict(labels)},
            "spec": {"containers": [{"name": "main", "image": image}], **spec}}


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True))
    await server.start()
    client = ApiClient(server.url)
    observer_client = ApiClient(server.url)
    factory = InformerFactory(client)
    recorder = EventRecorder(client, "kcore-controller-manager")
    controllers = [ReplicaSetController(client, factory, recorder),
                   ReplicationControllerController(client, factory, recorder),
                   DeploymentController(client, factory, recorder)]
    await factory.start()
    tasks = [asyncio.create_task(c.run()) for c in controllers]
    observer = Observer(observer_client)
    await observer.start()
    try:
        yield Cluster(server, client, observer)
    finally:
        await observer.stop()
        for c in controllers:
            await c.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await factory.stop()
        await observer_client.close()
        await client.close()
        await server.stop()
        await store.close()
