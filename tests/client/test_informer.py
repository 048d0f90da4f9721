"""Informers against a real API server: sync, handlers, indexes, re-watch, re-list, resync."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from client.support import Cluster, Recorder, configmap, pod

from kcore.client.informer import (
    INDEX_NAMESPACE,
    INDEX_NODE,
    INDEX_OWNER,
    Indexer,
    Informer,
    InformerFactory,
    object_key,
)
from kcore.client.rest import ApiClient


def names(objs: list[dict[str, Any]]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


async def start(informer: Informer) -> asyncio.Task[None]:
    task = asyncio.create_task(informer.run())
    await informer.wait_synced(timeout=10)
    return task


async def test_synced_cache_equals_list(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await client.resource("v1", "Namespace").create({"metadata": {"name": "other"}})
    for i in range(5):
        await cms.create(configmap(f"cm-{i}"))
    await cms.create(configmap("elsewhere", namespace="other"))
    informer = Informer(client, "v1", "ConfigMap")
    assert not informer.has_synced
    task = await start(informer)
    try:
        assert informer.has_synced
        items, rv = await cms.list()
        assert sorted(informer.indexer.keys()) == sorted(object_key(i) for i in items)
        for item in items:
            assert informer.indexer.get(object_key(item)) == item
        assert informer.last_resource_version == rv
        assert names(informer.indexer.by_index(INDEX_NAMESPACE, "other")) == ["elsewhere"]
    finally:
        await informer.stop()
    assert task.done() and task.exception() is None


async def test_namespaced_and_selected_informers(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await client.resource("v1", "Namespace").create({"metadata": {"name": "other"}})
    await cms.create(configmap("a", labels={"app": "web"}))
    await cms.create(configmap("b", labels={"app": "db"}))
    await cms.create(configmap("c", namespace="other", labels={"app": "web"}))
    scoped = Informer(client, "v1", "ConfigMap", namespace="default", label_selector="app=web")
    rec = Recorder()
    scoped.add_handler(**rec.handlers())
    await start(scoped)
    try:
        assert scoped.indexer.keys() == ["default/a"]
        # Relabelling b into the selection adds it; relabelling a out of it deletes it.
        await cms.patch("b", {"metadata": {"labels": {"app": "web"}}})
        await cms.patch("a", {"metadata": {"labels": {"app": "gone"}}})
        await cms.create(configmap("d", namespace="other", labels={"app": "web"}))
        await rec.wait_for(lambda: ("delete", "a") in rec.calls)
        assert scoped.indexer.keys() == ["default/b"]
        assert rec.calls == [("add", "a"), ("add", "b"), ("delete", "a")]
    finally:
        await scoped.stop()


async def test_handler_callbacks_in_order(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("first"))
    informer = Informer(client, "v1", "ConfigMap")
    rec = Recorder()
    informer.add_handler(**rec.handlers())
    await start(informer)
    try:
        assert rec.calls == [("add", "first")]
        await cms.create(configmap("second", v="1"))
        await cms.patch("second", {"data": {"v": "2"}})
        await cms.delete("first")
        await cms.patch("second", {"data": {"v": "3"}})
        await rec.wait_for(lambda: len(rec.calls) == 5)
        assert rec.calls == [("add", "first"), ("add", "second"), ("update", "second"),
                             ("delete", "first"), ("update", "second")]
        _, old, new = rec.objects[2]
        assert old["data"] == {"v": "1"} and new["data"] == {"v": "2"}
        _, gone, _ = rec.objects[3]
        assert gone["metadata"]["name"] == "first"
        assert informer.indexer.get("default/first") is None
        assert informer.indexer.get("default/second")["data"] == {"v": "3"}

        # A handler added after sync gets synthetic adds for what is cached now.
        late = Recorder()
        informer.add_handler(**late.handlers())
        assert late.calls == [("add", "second")]
    finally:
        await informer.stop()


async def test_a_failing_handler_does_not_stop_the_others(client: ApiClient) -> None:
    informer = Informer(client, "v1", "ConfigMap")

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken)
    rec = Recorder()
    informer.add_handler(**rec.handlers())
    await start(informer)
    try:
        await client.resource("v1", "ConfigMap").create(configmap("x"))
        await rec.wait_for(lambda: ("add", "x") in rec.calls)
    finally:
        await informer.stop()


async def test_indexes_follow_updates_and_deletes(client: ApiClient) -> None:
    pods = client.resource("v1", "Pod")
    await client.resource("v1", "Namespace").create({"metadata": {"name": "ns2"}})
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "uid-1", "controller": True}
    other_owner = {**owner, "name": "rs2", "uid": "uid-2"}
    await pods.create({**pod("p1", nodeName="node-a"),
                       "metadata": {"name": "p1", "namespace": "default", "ownerReferences": [owner],
                                    "labels": {"tier": "web"}}})
    await pods.create(pod("p2", nodeName="node-b"))
    await pods.create(pod("p3", namespace="ns2"))

    def by_tier(obj: dict[str, Any]) -> list[str]:
        tier = (obj["metadata"].get("labels") or {}).get("tier")
        return [tier] if tier else []

    informer = Informer(client, "v1", "Pod", indexers={"tier": by_tier})
    rec = Recorder()
    informer.add_handler(**rec.handlers())
    await start(informer)
    idx = informer.indexer
    try:
        assert names(idx.by_index(INDEX_NODE, "node-a")) == ["p1"]
        assert names(idx.by_index(INDEX_NODE, "node-b")) == ["p2"]
        assert names(idx.by_index(INDEX_OWNER, "uid-1")) == ["p1"]
        assert names(idx.by_index(INDEX_NAMESPACE, "default")) == ["p1", "p2"]
        assert names(idx.by_index(INDEX_NAMESPACE, "ns2")) == ["p3"]
        assert names(idx.by_index("tier", "web")) == ["p1"]

        # Re-own p1, move it to another tier, label p3 into "web", bind p3, delete p2.
        await pods.patch("p1", {"metadata": {"ownerReferences": [other_owner], "labels": {"tier": "db"}}})
        await pods.patch("p3", {"metadata": {"labels": {"tier": "web"}}}, namespace="ns2")
        await pods.create_subresource("p3", "binding", {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p3"},
            "target": {"kind": "Node", "name": "node-a"}}, namespace="ns2")
        await pods.delete("p2", grace_period_seconds=0)
        await rec.wait_for(lambda: ("delete", "p2") in rec.calls)

        assert names(idx.by_index(INDEX_OWNER, "uid-1")) == []
        assert names(idx.by_index(INDEX_OWNER, "uid-2")) == ["p1"]
        assert names(idx.by_index("tier", "db")) == ["p1"]
        assert names(idx.by_index("tier", "web")) == ["p3"]
        assert names(idx.by_index(INDEX_NODE, "node-a")) == ["p1", "p3"]
        assert names(idx.by_index(INDEX_NODE, "node-b")) == []
        assert names(idx.by_index(INDEX_NAMESPACE, "default")) == ["p1"]
        with pytest.raises(KeyError):
            idx.by_index("no-such-index", "x")

        # An index added later covers what is cached already.
        informer.add_indexers({"name-length": lambda o: [str(len(o["metadata"]["name"]))]})
        assert names(idx.by_index("name-length", "2")) == ["p1", "p3"]
    finally:
        await informer.stop()


def test_indexer_unit_semantics() -> None:
    idx = Indexer({"color": lambda o: list((o.get("spec") or {}).get("colors", []))})
    a = {"metadata": {"name": "a"}, "spec": {"colors": ["red", "blue"]}}
    assert idx.upsert(a) is None
    assert object_key(a) == "a" and idx.get("a") is a
    a2 = {"metadata": {"name": "a"}, "spec": {"colors": ["blue"]}}
    assert idx.upsert(a2) is a
    assert idx.by_index("color", "red") == [] and idx.by_index("color", "blue") == [a2]
    assert idx.delete("a") is a2 and idx.by_index("color", "blue") == [] and idx.keys() == []
    assert idx.delete("a") is None


async def test_rewatch_after_server_restart_loses_nothing(cluster: Cluster) -> None:
    client = cluster.client
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("keep"))
    await cms.create(configmap("doomed"))
    informer = Informer(client, "v1", "ConfigMap")
    rec = Recorder()
    informer.add_handler(**rec.handlers())
    await start(informer)
    try:
        await cms.create(configmap("live"))
        await rec.wait_for(lambda: ("add", "live") in rec.calls)

        # Our server goes away; changes keep happening through another server.
        await cluster.stop_server()
        side, side_client = await cluster.side_server()
        try:
            side_cms = side_client.resource("v1", "ConfigMap")
            await side_cms.create(configmap("while-down"))
            await side_cms.patch("keep", {"data": {"changed": "yes"}})
            await side_cms.delete("doomed")
        finally:
            await side_client.close()
            await side.stop()
        await cluster.start_server()  # same port, same store

        await rec.wait_for(lambda: ("delete", "doomed") in rec.calls)
        await cms.create(configmap("after"))
        await rec.wait_for(lambda: ("add", "after") in rec.calls)
        assert rec.calls == [("add", "doomed"), ("add", "keep"), ("add", "live"),
                             ("add", "while-down"), ("update", "keep"), ("delete", "doomed"),
                             ("add", "after")]
        assert informer.relists == 1  # resumed from its resourceVersion, no re-list
        items, _ = await cms.list()
        assert sorted(informer.indexer.keys()) == sorted(object_key(i) for i in items)
        assert informer.indexer.get("default/keep")["data"] == {"changed": "yes"}
    finally:
        await informer.stop()


async def test_410_relists_and_converges(cluster: Cluster) -> None:
    client = cluster.client
    cms = client.resource("v1", "ConfigMap")
    for name in ("stays", "changes", "deleted"):
        await cms.create(configmap(name))
    informer = Informer(client, "v1", "ConfigMap")
    rec = Recorder()
    informer.add_handler(**rec.handlers())
    await start(informer)
    try:
        stale_rv = informer.last_resource_version
        await cluster.stop_server()
        side, side_client = await cluster.side_server()
        try:
            side_cms = side_client.resource("v1", "ConfigMap")
            await side_cms.patch("changes", {"data": {"v": "2"}})
            await side_cms.delete("deleted")
            await side_cms.create(configmap("new"))
        finally:
            await side_client.close()
            await side.stop()
        # History below the informer's version is gone: it must re-list.
        await cluster.store.compact(await cluster.store.current_revision())
        assert int(stale_rv or 0) < await cluster.store.compacted_revision()
        await cluster.start_server()

        await rec.wait_for(lambda: informer.relists == 2 and ("delete", "deleted") in rec.calls)
        # The re-list reports what changed in list order, then what vanished meanwhile.
        assert rec.calls[3:] == [("update", "changes"), ("add", "new"), ("delete", "deleted")]
        assert ("update", "stays") not in rec.calls  # unchanged objects are not re-announced
        items, _ = await cms.list()
        assert sorted(informer.indexer.keys()) == sorted(object_key(i) for i in items)
        assert informer.indexer.get("default/changes")["data"] == {"v": "2"}

        # And it watches again afterwards.
        await cms.delete("stays")
        await rec.wait_for(lambda: ("delete", "stays") in rec.calls)
    finally:
        await informer.stop()


async def test_resync_redelivers_updates(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("a"))
    await cms.create(configmap("b"))
    informer = Informer(client, "v1", "ConfigMap", resync_seconds=0.05)
    rec = Recorder()
    informer.add_handler(**rec.handlers())
    await start(informer)
    try:
        await rec.wait_for(lambda: rec.calls.count(("update", "a")) >= 2 and rec.calls.count(("update", "b")) >= 2)
        for what, old, new in rec.objects:
            if what == "update":
                assert old is new  # a resync: same object, nothing changed
    finally:
        await informer.stop()


async def test_factory_shares_informers(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("x"))
    await client.resource("v1", "Pod").create(pod("p"))
    factory = InformerFactory(client)
    a = factory.informer("v1", "ConfigMap")
    b = factory.informer("v1", "ConfigMap", indexers={"first-letter": lambda o: [o["metadata"]["name"][0]]})
    assert a is b
    assert factory.informer("v1", "ConfigMap", namespace="default") is not a
    pods = factory.informer("v1", "Pod")
    await factory.start()
    await factory.wait_synced(timeout=10)
    try:
        assert a.has_synced and pods.has_synced
        assert names(a.indexer.by_index("first-letter", "x")) == ["x"]
        assert pods.indexer.keys() == ["default/p"]
        # An informer asked for after start() starts on the next start().
        nodes = factory.informer("v1", "Node")
        await factory.start()
        await nodes.wait_synced(timeout=10)
    finally:
        await factory.stop()
    assert all(i._task is None for i in factory.informers)  # noqa: SLF001 - every loop ended


async def test_wait_synced_times_out_when_the_server_is_down(cluster: Cluster) -> None:
    await cluster.stop_server()
    informer = Informer(cluster.client, "v1", "ConfigMap")
    task = asyncio.create_task(informer.run())
    try:
        with pytest.raises(TimeoutError):
            await informer.wait_synced(timeout=0.3)
        await cluster.start_server()
        await informer.wait_synced(timeout=10)  # the list is retried until it works
    finally:
        await informer.stop()
    assert task.done()
