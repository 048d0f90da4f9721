"""The Controller base class against a real API server: reconcile from cache, back-off, stop."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from client.support import Recorder, configmap

from kcore.client.controller import Controller
from kcore.client.informer import Informer, split_key
from kcore.client.rest import ApiClient
from kcore.client.workqueue import RateLimiter


class Mirror(Controller):
    """Copies data["in"] of each ConfigMap into its annotation "out" — from the cache only."""

    def __init__(self, client: ApiClient, informer: Informer, **kw: Any) -> None:
        super().__init__("mirror", **kw)
        self.client = client
        self.informer = informer
        self.watch(informer)
        self.reconciled: list[str] = []
        self.failures_left: dict[str, int] = {}
        self.requeue_once: set[str] = set()
        self.changed = asyncio.Event()

    async def reconcile(self, key: str) -> float | None:
        self.reconciled.append(key)
        self.changed.set()
        if self.failures_left.get(key, 0) > 0:
            self.failures_left[key] -= 1
            raise RuntimeError(f"transient failure for {key}")
        obj = self.informer.indexer.get(key)
        if obj is None:
            return None  # deleted: nothing to do
        wanted = (obj.get("data") or {}).get("in")
        if (obj["metadata"].get("annotations") or {}).get("out") != wanted:
            namespace, name = split_key(key)
            patched = copy.deepcopy(obj)  # never mutate the cache's object
            patched["metadata"].setdefault("annotations", {})["out"] = wanted
            await self.client.resource("v1", "ConfigMap").update(patched)
        if key in self.requeue_once:
            self.requeue_once.discard(key)
            return 0.01
        return None


async def wait_until(event: asyncio.Event, predicate: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            event.clear()
            await event.wait()


async def test_reconciles_from_the_cache(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("one", **{"in": "hello"}))
    informer = Informer(client, "v1", "ConfigMap")
    rec = Recorder()
    informer.add_handler(**rec.handlers())
    controller = Mirror(client, informer)
    inf_task = asyncio.create_task(informer.run())
    run = asyncio.create_task(controller.run([informer]))
    try:
        def out(name: str) -> str | None:
            obj = informer.indexer.get(f"default/{name}")
            return None if obj is None else (obj["metadata"].get("annotations") or {}).get("out")

        await rec.wait_for(lambda: out("one") == "hello")
        await cms.patch("one", {"data": {"in": "again"}})
        await cms.create(configmap("two", **{"in": "second"}))
        await rec.wait_for(lambda: out("one") == "again" and out("two") == "second")
        assert (await cms.get("one"))["metadata"]["annotations"]["out"] == "again"
        # The cached objects were never modified in place by the controller.
        for what, old, new in rec.objects:
            if what == "update" and old is not new:
                assert old["metadata"]["resourceVersion"] != new["metadata"]["resourceVersion"]
    finally:
        await controller.stop()
        await informer.stop()
    await asyncio.wait_for(run, 5)
    assert inf_task.done()


async def test_failures_are_retried_with_backoff_then_forgotten(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("flaky", **{"in": "x"}))
    informer = Informer(client, "v1", "ConfigMap")
    limiter = RateLimiter(base_delay=0.01, qps=0)
    delays: list[float] = []
    original_when = limiter.when

    def spying_when(item: Any) -> float:
        delays.append(original_when(item))
        return delays[-1]

    limiter.when = spying_when  # type: ignore[method-assign]
    controller = Mirror(client, informer, workers=3, rate_limiter=limiter)
    controller.failures_left["default/flaky"] = 3
    inf_task = asyncio.create_task(informer.run())
    run = asyncio.create_task(controller.run([informer]))
    try:
        await wait_until(controller.changed, lambda: controller.reconciled.count("default/flaky") >= 4
                         and controller.queue.num_requeues("default/flaky") == 0)
        assert delays == [0.01, 0.02, 0.04]  # exponential per-item back-off
        obj = informer.indexer.get("default/flaky")
        assert obj is not None
        # Reconciled eventually; success made the queue forget the failures.
        assert controller.queue.num_requeues("default/flaky") == 0
    finally:
        await controller.stop()
        await informer.stop()
    await asyncio.wait_for(run, 5)
    assert inf_task.done()


async def test_requeue_after_and_dedup(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    settled = configmap("again", **{"in": "v"})
    settled["metadata"]["annotations"] = {"out": "v"}  # already as wanted: reconcile writes nothing
    await cms.create(settled)
    informer = Informer(client, "v1", "ConfigMap")
    controller = Mirror(client, informer, workers=1)
    controller.requeue_once.add("default/again")
    inf_task = asyncio.create_task(informer.run())
    await informer.wait_synced(timeout=10)
    # The sync's add and many enqueues before the workers start: one reconcile.
    for _ in range(5):
        controller.enqueue("default/again")
    assert len(controller.queue) == 1
    run = asyncio.create_task(controller.run([informer]))
    try:
        # Nothing changes on the server, so only the requeue brings the key back.
        await wait_until(controller.changed, lambda: controller.reconciled.count("default/again") >= 2)
        assert controller.reconciled == ["default/again", "default/again"]
    finally:
        await controller.stop()
        await informer.stop()
    await asyncio.wait_for(run, 5)
    assert inf_task.done()


async def test_run_waits_for_sync_and_stop_before_sync_returns(client: ApiClient) -> None:
    informer = Informer(client, "v1", "ConfigMap")  # never started: never syncs
    controller = Mirror(client, informer)
    controller.enqueue("default/whatever")
    run = asyncio.create_task(controller.run([informer]))
    await asyncio.sleep(0)
    assert controller.reconciled == []  # no worker before the cache has synced
    await controller.stop()
    await asyncio.wait_for(run, 5)
    assert controller.reconciled == []
