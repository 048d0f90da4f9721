"""The garbage collector against a real API server: background, foreground and orphan
cascades, owners verified by uid, and owner chains."""

from __future__ import annotations

from controllers.support_fixtures import (  # noqa: F401 - lifecycle_cluster is a fixture
    Cluster,
    Watch,
    deployment,
    lifecycle_cluster,
    owner_ref,
    pod,
    replicaset,
    running,
)

from kcore.controllers.garbage_collector import GarbageCollector, owner_uids


def _gc(c: Cluster) -> GarbageCollector:
    return GarbageCollector(c.client, c.factory)


def _names(watch: Watch) -> set[str]:
    return {o["metadata"]["name"] for o in watch.informer.indexer.list()}


def test_owner_uids_index_names_every_owner() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "a"}, {"uid": "b", "controller": True}]}}
    assert owner_uids(obj) == ["a", "b"]
    assert owner_uids({"metadata": {}}) == []


async def test_background_deletes_dependents_after_the_owner(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    rs = await c.client.resource("apps/v1", "ReplicaSet").create(replicaset("web"))
    pods = c.client.resource("v1", "Pod")
    for i in range(3):
        await pods.create(pod(f"web-{i}", owners=[owner_ref(rs)]))
    await pods.create(pod("loner"))
    async with Watch(c.client, "v1", "Pod") as watch, running(_gc(c)):
        await c.client.resource("apps/v1", "ReplicaSet").delete("web")
        await watch.wait_for(lambda: _names(watch) == {"loner"})


async def test_a_recreated_namesake_is_not_the_owner(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    sets = c.client.resource("apps/v1", "ReplicaSet")
    pods = c.client.resource("v1", "Pod")
    old = await sets.create(replicaset("web"))
    await pods.create(pod("old-pod", owners=[owner_ref(old)]))
    # The owner goes and comes back under the same name before the collector looks.
    await sets.delete("web")
    new = await sets.create(replicaset("web"))
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    await pods.create(pod("new-pod", owners=[owner_ref(new)]))
    async with Watch(c.client, "v1", "Pod") as watch, running(_gc(c)):
        await watch.wait_for(lambda: _names(watch) == {"new-pod"})
    assert (await sets.get("web"))["metadata"]["uid"] == new["metadata"]["uid"]


async def test_a_dependent_with_a_remaining_owner_only_loses_the_reference(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    sets = c.client.resource("apps/v1", "ReplicaSet")
    one = await sets.create(replicaset("one"))
    two = await sets.create(replicaset("two"))
    pods = c.client.resource("v1", "Pod")
    await pods.create(pod("shared", owners=[owner_ref(one), owner_ref(two, controller=False)]))
    async with Watch(c.client, "v1", "Pod") as watch, running(_gc(c)):
        await sets.delete("one")

        def refs() -> list[str]:
            obj = watch.get("shared", "default")
            return [r["name"] for r in (obj or {}).get("metadata", {}).get("ownerReferences") or []]

        await watch.wait_for(lambda: refs() == ["two"])
        await sets.delete("two")
        await watch.wait_for(lambda: watch.get("shared", "default") is None)


async def test_foreground_keeps_the_owner_until_blocking_dependents_are_gone(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    sets = c.client.resource("apps/v1", "ReplicaSet")
    pods = c.client.resource("v1", "Pod")
    rs = await sets.create(replicaset("web"))
    await pods.create(pod("quick", owners=[owner_ref(rs)]))
    held = pod("held", owners=[owner_ref(rs)])
    held["metadata"]["finalizers"] = ["example.com/hold"]
    await pods.create(held)
    async with Watch(c.client, "v1", "Pod") as pod_watch, \
            Watch(c.client, "apps/v1", "ReplicaSet") as rs_watch, running(_gc(c)):
        await sets.delete("web", propagation_policy="Foreground")
        # Dependents are deleted; the one held by its own finalizer keeps the owner waiting.
        await pod_watch.wait_for(lambda: pod_watch.get("quick", "default") is None and
                                 (pod_watch.get("held", "default") or {})["metadata"].get("deletionTimestamp"))
        owner = await sets.get("web")
        assert owner["metadata"]["deletionTimestamp"]
        assert owner["metadata"]["finalizers"] == ["foregroundDeletion"]
        await pods.patch("held", {"metadata": {"finalizers": None}})
        await rs_watch.wait_for(lambda: rs_watch.get("web", "default") is None)
        rs_gone = rs_watch.first_time(lambda what, o: what == "delete")
        held_gone = pod_watch.first_time(lambda what, o: what == "delete" and o["metadata"]["name"] == "held")
        assert held_gone is not None and rs_gone is not None and held_gone <= rs_gone


async def test_foreground_does_not_wait_for_non_blocking_dependents(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    sets = c.client.resource("apps/v1", "ReplicaSet")
    pods = c.client.resource("v1", "Pod")
    rs = await sets.create(replicaset("web"))
    loose = pod("loose", owners=[owner_ref(rs, block=False)])
    loose["metadata"]["finalizers"] = ["example.com/hold"]
    await pods.create(loose)
    async with Watch(c.client, "apps/v1", "ReplicaSet") as rs_watch, running(_gc(c)):
        await sets.delete("web", propagation_policy="Foreground")
        await rs_watch.wait_for(lambda: rs_watch.get("web", "default") is None)
    assert (await pods.get("loose"))["metadata"].get("deletionTimestamp")
    await pods.patch("loose", {"metadata": {"finalizers": None}})


async def test_orphan_keeps_dependents_without_the_reference(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    sets = c.client.resource("apps/v1", "ReplicaSet")
    pods = c.client.resource("v1", "Pod")
    rs = await sets.create(replicaset("web"))
    for i in range(2):
        await pods.create(pod(f"web-{i}", owners=[owner_ref(rs)]))
    async with Watch(c.client, "apps/v1", "ReplicaSet") as rs_watch, running(_gc(c)):
        await sets.delete("web", propagation_policy="Orphan")
        await rs_watch.wait_for(lambda: rs_watch.get("web", "default") is None)
    for i in range(2):
        kept = await pods.get(f"web-{i}")
        assert not kept["metadata"].get("deletionTimestamp")
        assert not kept["metadata"].get("ownerReferences")


async def test_foreground_chain_goes_bottom_up(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    deployments = c.client.resource("apps/v1", "Deployment")
    sets = c.client.resource("apps/v1", "ReplicaSet")
    pods = c.client.resource("v1", "Pod")
    deploy = await deployments.create(deployment("web"))
    rs = await sets.create(replicaset("web-abc", owners=[owner_ref(deploy)]))
    for i in range(2):
        await pods.create(pod(f"web-abc-{i}", owners=[owner_ref(rs)]))
    async with Watch(c.client, "v1", "Pod") as pod_watch, \
            Watch(c.client, "apps/v1", "ReplicaSet") as rs_watch, \
            Watch(c.client, "apps/v1", "Deployment") as deploy_watch, running(_gc(c)):
        await deployments.delete("web", propagation_policy="Foreground")
        await deploy_watch.wait_for(lambda: deploy_watch.get("web", "default") is None)
        assert rs_watch.get("web-abc", "default") is None
        assert _names(pod_watch) == set()
        pods_gone = max(t for t, what, _o in pod_watch.changes if what == "delete")
        rs_gone = rs_watch.first_time(lambda what, o: what == "delete")
        deploy_gone = deploy_watch.first_time(lambda what, o: what == "delete")
        assert rs_gone is not None and deploy_gone is not None
        assert pods_gone <= rs_gone <= deploy_gone
        # The ReplicaSet itself was deleted in foreground, because it had dependents.
        assert any(what == "update" and "foregroundDeletion" in (o["metadata"].get("finalizers") or [])
                   for _t, what, o in rs_watch.changes)


async def test_background_chain_collects_grandchildren(lifecycle_cluster: Cluster) -> None:
    c = lifecycle_cluster
    deployments = c.client.resource("apps/v1", "Deployment")
    sets = c.client.resource("apps/v1", "ReplicaSet")
    pods = c.client.resource("v1", "Pod")
    deploy = await deployments.create(deployment("web"))
    rs = await sets.create(replicaset("web-abc", owners=[owner_ref(deploy)]))
    await pods.create(pod("web-abc-0", owners=[owner_ref(rs)]))
    async with Watch(c.client, "v1", "Pod") as pod_watch, running(_gc(c)):
        await deployments.delete("web")
        await pod_watch.wait_for(lambda: _names(pod_watch) == set())
    assert await sets.get_or_none("web-abc") is None
