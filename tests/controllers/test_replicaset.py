"""ReplicaSet and ReplicationController against a real API server, through the real client."""

from __future__ import annotations

from typing import Any

import pytest
from controllers.conftest import Cluster, pod_template

from kcore.controllers import podutil

NS = "default"


def replica_set(name: str, replicas: int, labels: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": pod_template(labels), **spec}}


def replication_controller(name: str, replicas: int, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": labels, "template": pod_template(labels)}}


def status_of(obs: Any, kind: str, name: str) -> dict[str, Any]:
    return (obs.get(kind, f"{NS}/{name}") or {}).get("status") or {}


def names(pods: list[dict[str, Any]]) -> set[str]:
    return {p["metadata"]["name"] for p in pods}


async def test_creates_pods_with_owner_references_and_replaces_a_deleted_one(cluster: Cluster) -> None:
    obs = cluster.observer
    rs = await cluster.rs.create(replica_set("web", 3, {"app": "web"}))
    pods = await obs.wait_for(lambda: (p := obs.owned_pods(rs)) and len(p) == 3 and p, what="3 pods")
    for p in pods:
        assert p["metadata"]["name"].startswith("web-")
        assert p["metadata"]["labels"] == {"app": "web"}
        assert p["metadata"]["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]
    await obs.wait_for(lambda: (obs.get("rs", f"{NS}/web") or {}).get("status", {}).get("replicas") == 3
                       and status_of(obs, "rs", "web").get("observedGeneration") == 1, what="status")
    victim = sorted(names(pods))[0]
    await cluster.pods.delete(victim, NS)
    await obs.wait_for(lambda: len(obs.owned_pods(rs)) == 3 and victim not in names(obs.owned_pods(rs)),
                       what="a replacement")
    assert len(obs.owned_pods(rs)) == 3  # exactly: the expectations prevented a double create
    await obs.wait_for(lambda: sum(1 for e in obs.items("events") if e["reason"] == "SuccessfulCreate"
                                   and e["involvedObject"]["name"] == "web") >= 4, what="4 SuccessfulCreate events")
    event = next(e for e in obs.items("events") if e["reason"] == "SuccessfulCreate")
    assert event["message"].startswith("Created pod: web-")


async def test_never_overshoots_while_the_cache_lags(cluster: Cluster) -> None:
    obs = cluster.observer
    counts: list[int] = []
    rs = await cluster.rs.create(replica_set("burst", 20, {"app": "burst"}))
    obs.checks.append(lambda: counts.append(len(obs.owned_pods(rs, active=False))))
    await obs.wait_for(lambda: len(obs.owned_pods(rs)) == 20, what="20 pods")
    await obs.wait_for(lambda: (obs.get("rs", f"{NS}/burst") or {}).get("status", {}).get("replicas") == 20)
    assert max(counts) == 20


async def test_scale_down_deletes_unready_pods_first_and_status_counts(cluster: Cluster) -> None:
    obs = cluster.observer
    rs = await cluster.rs.create(replica_set("api", 4, {"app": "api"}))
    pods = await obs.wait_for(lambda: (p := obs.owned_pods(rs)) and len(p) == 4 and p)
    keep = sorted(names(pods))[:2]
    for p in pods:
        if p["metadata"]["name"] in keep:
            await cluster.mark_ready(p)
    await obs.wait_for(lambda: (obs.get("rs", f"{NS}/api") or {}).get("status", {}).get("readyReplicas") == 2,
                       what="2 ready")
    status = status_of(obs, "rs", "api")
    assert status["availableReplicas"] == 2 and status["fullyLabeledReplicas"] == 4
    await cluster.rs.patch("api", {"spec": {"replicas": 2}}, namespace=NS)
    await obs.wait_for(lambda: len(obs.owned_pods(rs)) == 2, what="2 pods")
    assert names(obs.owned_pods(rs)) == set(keep)
    await obs.wait_for(lambda: status_of(obs, "rs", "api").get("replicas") == 2
                       and status_of(obs, "rs", "api").get("observedGeneration") == 2)
    assert any(e["reason"] == "SuccessfulDelete" for e in obs.items("events"))
    # Scale up again: new pods, the ready ones stay.
    await cluster.rs.patch("api", {"spec": {"replicas": 3}}, namespace=NS)
    await obs.wait_for(lambda: len(obs.owned_pods(rs)) == 3)
    assert set(keep) <= names(obs.owned_pods(rs))


async def test_min_ready_seconds_delays_availability(cluster: Cluster) -> None:
    obs = cluster.observer
    rs = await cluster.rs.create(replica_set("slow", 1, {"app": "slow"}, minReadySeconds=1))
    (pod,) = await obs.wait_for(lambda: obs.owned_pods(rs))
    await cluster.mark_ready(pod)
    await obs.wait_for(lambda: status_of(obs, "rs", "slow").get("readyReplicas") == 1)
    assert not status_of(obs, "rs", "slow").get("availableReplicas")
    await obs.wait_for(lambda: status_of(obs, "rs", "slow").get("availableReplicas") == 1,
                       timeout=10, what="available after minReadySeconds")


async def test_adopts_matching_orphans_and_releases_pods_that_stop_matching(cluster: Cluster) -> None:
    obs = cluster.observer
    for i in range(2):
        await cluster.pods.create({"apiVersion": "v1", "kind": "Pod",
                                   "metadata": {"name": f"orphan-{i}", "namespace": NS, "labels": {"app": "db"}},
                                   "spec": pod_template({})["spec"]})
    await cluster.pods.create({"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": "stranger", "namespace": NS, "labels": {"app": "other"}},
                               "spec": pod_template({})["spec"]})
    rs = await cluster.rs.create(replica_set("db", 3, {"app": "db"}))
    await obs.wait_for(lambda: len(obs.owned_pods(rs)) == 3, what="3 owned pods")
    owned = names(obs.owned_pods(rs))
    assert {"orphan-0", "orphan-1"} <= owned and "stranger" not in owned
    assert len(obs.pods()) == 4  # one created, two adopted, the stranger untouched
    # Relabel an owned pod: it is released (no owner left) and replaced.
    await cluster.pods.patch("orphan-0", {"metadata": {"labels": {"app": "debug"}}}, namespace=NS)
    await obs.wait_for(lambda: not (obs.get("pods", f"{NS}/orphan-0") or {})["metadata"].get("ownerReferences")
                       and len(obs.owned_pods(rs)) == 3, what="release and replacement")
    assert "orphan-0" not in names(obs.owned_pods(rs))


async def test_terminating_pods_are_not_counted(cluster: Cluster) -> None:
    """A pod bound to a node lingers while terminating; the RS replaces it at once."""
    obs = cluster.observer
    labels = {"app": "bound"}
    body = replica_set("bound", 2, labels)
    body["spec"]["template"]["spec"]["nodeName"] = "node-1"
    rs = await cluster.rs.create(body)
    pods = await obs.wait_for(lambda: (p := obs.owned_pods(rs)) and len(p) == 2 and p)
    victim = pods[0]["metadata"]["name"]
    await cluster.pods.delete(victim, NS)
    await obs.wait_for(lambda: len(obs.owned_pods(rs)) == 2 and victim not in names(obs.owned_pods(rs)))
    terminating = obs.get("pods", f"{NS}/{victim}")
    assert terminating is not None and podutil.is_terminating(terminating)
    await obs.wait_for(lambda: status_of(obs, "rs", "bound").get("replicas") == 2)


@pytest.mark.parametrize("replicas", [2])
async def test_replication_controller(cluster: Cluster, replicas: int) -> None:
    obs = cluster.observer
    await cluster.pods.create({"apiVersion": "v1", "kind": "Pod",
                               "metadata": {"name": "legacy", "namespace": NS, "labels": {"app": "rc"}},
                               "spec": pod_template({})["spec"]})
    rc = await cluster.rc.create(replication_controller("rc", replicas + 1, {"app": "rc"}))
    await obs.wait_for(lambda: len(obs.owned_pods(rc)) == replicas + 1, what="rc pods")
    assert "legacy" in names(obs.owned_pods(rc))
    ref = obs.owned_pods(rc)[0]["metadata"]["ownerReferences"][0]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("v1", "ReplicationController", "rc")
    ready = next(p for p in obs.owned_pods(rc) if p["metadata"]["name"] != "legacy")
    await cluster.mark_ready(ready)
    await cluster.rc.patch("rc", {"spec": {"replicas": 1}}, namespace=NS)
    await obs.wait_for(lambda: len(obs.owned_pods(rc)) == 1)
    assert names(obs.owned_pods(rc)) == {ready["metadata"]["name"]}
    await obs.wait_for(lambda: status_of(obs, "rc", "rc").get("replicas") == 1
                       and status_of(obs, "rc", "rc").get("readyReplicas") == 1, what="rc status")
