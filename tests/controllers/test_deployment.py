"""Deployments against a real API server: the Deployment and ReplicaSet controllers run
together; the test plays kubelet by marking pods Ready, and checks the rollout
invariants on every pod change it observes."""

from __future__ import annotations

from typing import Any

import pytest
from controllers.conftest import Cluster, Observer, pod_template

from kcore.controllers import podutil
from kcore.controllers.deployment import (
    DESIRED_REPLICAS_ANNOTATION,
    MAX_REPLICAS_ANNOTATION,
    REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION,
)

NS = "default"


def deployment(name: str, replicas: int, *, surge: Any = "25%", unavailable: Any = "25%",
               strategy: str = "RollingUpdate", image: str = "nginx:1.25", **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    strat: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "strategy": strat,
                     "template": pod_template(labels, image), **spec}}


def rollout_complete(d: dict[str, Any] | None) -> bool:
    """What ``kubectl rollout status`` waits for."""
    if d is None:
        return False
    s = d.get("status") or {}
    want = d["spec"]["replicas"]
    conds = {c["type"]: c for c in s.get("conditions") or []}
    return (s.get("observedGeneration") == d["metadata"]["generation"]
            and all((s.get(f) or 0) == want for f in ("replicas", "updatedReplicas", "readyReplicas",
                                                      "availableReplicas"))
            and conds.get("Available", {}).get("status") == "True"
            and conds.get("Progressing", {}).get("status") == "True")


def app_pods(obs: Observer, name: str, *, active: bool = True) -> list[dict[str, Any]]:
    return obs.pods(lambda p: (p["metadata"].get("labels") or {}).get("app") == name, active=active)


def owned_rss(obs: Observer, d: dict[str, Any]) -> list[dict[str, Any]]:
    uid = d["metadata"]["uid"]
    return [rs for rs in obs.items("rs") if (podutil.controller_ref(rs) or {}).get("uid") == uid]


def gen(obj: dict[str, Any] | None) -> int:
    return int(((obj or {}).get("metadata") or {}).get("generation") or 1)


def pod_hash(pod: dict[str, Any]) -> str:
    return pod["metadata"]["labels"][podutil.POD_TEMPLATE_HASH_LABEL]


async def drive(cluster: Cluster, name: str, *, kubelet_deletes: bool = False, timeout: float = 30,
                generation: int = 1) -> dict[str, Any]:
    """Play kubelet until the rollout of ``generation`` (at least) completes: mark not-ready
    pods Ready one at a time (and, with ``kubelet_deletes``, finish terminating pods)."""
    obs = cluster.observer
    key = f"{NS}/{name}"
    marked: set[str] = set()
    while True:
        def step() -> Any:
            d = obs.get("deploy", key)
            if rollout_complete(d) and d["metadata"]["generation"] >= generation and not [p for p in app_pods(obs, name, active=False)
                                            if podutil.is_terminating(p)]:
                return ("done", d)
            if kubelet_deletes:
                gone = [p for p in app_pods(obs, name, active=False) if podutil.is_terminating(p)]
                if gone:
                    return ("delete", gone[0])
            todo = [p for p in app_pods(obs, name) if not podutil.is_pod_ready(p)
                    and p["metadata"]["uid"] not in marked]
            return ("ready", todo[0]) if todo else None
        action, obj = await obs.wait_for(step, timeout=timeout, what=f"rollout of {name} to progress")
        if action == "done":
            return obj
        if action == "delete":
            await cluster.pods.delete(obj["metadata"]["name"], NS, grace_period_seconds=0, missing_ok=True)
        else:
            marked.add(obj["metadata"]["uid"])
            await cluster.mark_ready(obj)


async def test_creates_replica_set_and_pods_and_status_converges(cluster: Cluster) -> None:
    obs = cluster.observer
    changed = await cluster.deploy.create(deployment("web", 3))
    d = await drive(cluster, "web", generation=gen(changed))
    (rs,) = owned_rss(obs, d)
    hash_ = rs["metadata"]["labels"][podutil.POD_TEMPLATE_HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", podutil.POD_TEMPLATE_HASH_LABEL: hash_}
    assert rs["spec"]["template"]["metadata"]["labels"][podutil.POD_TEMPLATE_HASH_LABEL] == hash_
    annotations = rs["metadata"]["annotations"]
    assert annotations[REVISION_ANNOTATION] == "1"
    assert annotations[DESIRED_REPLICAS_ANNOTATION] == "3"
    assert annotations[MAX_REPLICAS_ANNOTATION] == "4"
    assert d["metadata"]["annotations"][REVISION_ANNOTATION] == "1"
    pods = app_pods(obs, "web")
    assert len(pods) == 3 and all(pod_hash(p) == hash_ for p in pods)
    status = d["status"]
    assert status["unavailableReplicas"] == 0
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conds["Progressing"]["lastUpdateTime"] and conds["Progressing"]["lastTransitionTime"]


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [(4, 1, 1), (3, 1, 0), (4, 0, 1), (5, "40%", "20%")])
async def test_rolling_update_respects_surge_and_unavailable_at_every_step(
        cluster: Cluster, replicas: int, surge: Any, unavailable: Any) -> None:
    obs = cluster.observer
    changed = await cluster.deploy.create(deployment("roll", replicas, surge=surge, unavailable=unavailable))
    d = await drive(cluster, "roll", generation=gen(changed))
    (old_rs,) = owned_rss(obs, d)
    max_pods = replicas + (surge if isinstance(surge, int) else -(-replicas * int(surge[:-1]) // 100))
    min_ready = replicas - (unavailable if isinstance(unavailable, int) else replicas * int(unavailable[:-1]) // 100)
    seen: dict[str, int] = {"max_pods": 0, "min_ready": replicas, "checks": 0}

    def invariant() -> None:
        pods = app_pods(obs, "roll")
        ready = sum(1 for p in pods if podutil.is_pod_ready(p))
        seen["checks"] += 1
        seen["max_pods"] = max(seen["max_pods"], len(pods))
        seen["min_ready"] = min(seen["min_ready"], ready)
        assert len(pods) <= max_pods, f"{len(pods)} pods > {max_pods}"
        assert ready >= min_ready, f"{ready} ready < {min_ready}"

    obs.checks.append(invariant)
    changed = await cluster.deploy.patch("roll", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "nginx:1.26"}]}}}}, namespace=NS, patch_type="strategic")
    d = await drive(cluster, "roll", generation=gen(changed))
    assert obs.failures == []
    assert seen["checks"] > replicas  # we really watched the steps
    rss = {rs["metadata"]["name"]: rs for rs in owned_rss(obs, d)}
    assert set(rss) - {old_rs["metadata"]["name"]}
    assert rss[old_rs["metadata"]["name"]]["spec"]["replicas"] == 0
    new_rs = next(rs for name, rs in rss.items() if name != old_rs["metadata"]["name"])
    assert new_rs["metadata"]["annotations"][REVISION_ANNOTATION] == "2"
    assert d["metadata"]["annotations"][REVISION_ANNOTATION] == "2"
    pods = app_pods(obs, "roll")
    assert len(pods) == replicas and {pod_hash(p) for p in pods} == {new_rs["metadata"]["labels"]["pod-template-hash"]}
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in pods)


async def test_rollback_reuses_the_old_replica_set(cluster: Cluster) -> None:
    obs = cluster.observer
    changed = await cluster.deploy.create(deployment("undo", 2, surge=1, unavailable=0))
    d1 = await drive(cluster, "undo", generation=gen(changed))
    (rs1,) = owned_rss(obs, d1)
    changed = await cluster.deploy.patch("undo", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "nginx:1.26"}]}}}}, namespace=NS, patch_type="strategic")
    await drive(cluster, "undo", generation=gen(changed))
    # What `kubectl rollout undo` sends: the old RS's template without the hash label.
    template = podutil.template_without_hash(rs1["spec"]["template"])
    changed = await cluster.deploy.patch("undo", [{"op": "replace", "path": "/spec/template", "value": template}],
                               namespace=NS, patch_type="json")
    d3 = await drive(cluster, "undo", generation=gen(changed))
    rss = owned_rss(obs, d3)
    assert len(rss) == 2
    reused = obs.get("rs", f"{NS}/{rs1['metadata']['name']}")
    assert reused["metadata"]["uid"] == rs1["metadata"]["uid"]
    assert reused["spec"]["replicas"] == 2
    assert reused["metadata"]["annotations"][REVISION_ANNOTATION] == "3"
    assert reused["metadata"]["annotations"][REVISION_HISTORY_ANNOTATION] == "1"
    assert d3["metadata"]["annotations"][REVISION_ANNOTATION] == "3"
    assert {pod_hash(p) for p in app_pods(obs, "undo")} == {rs1["metadata"]["labels"]["pod-template-hash"]}


async def test_rollout_restart_starts_a_new_rollout(cluster: Cluster) -> None:
    obs = cluster.observer
    changed = await cluster.deploy.create(deployment("restart", 1))
    d = await drive(cluster, "restart", generation=gen(changed))
    changed = await cluster.deploy.patch("restart", {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2024-05-01T12:00:00Z"}}}}}, namespace=NS, patch_type="strategic")
    d = await drive(cluster, "restart", generation=gen(changed))
    assert len(owned_rss(obs, d)) == 2
    (pod,) = app_pods(obs, "restart")
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] == "2024-05-01T12:00:00Z"


async def test_recreate_never_overlaps_old_and_new_pods(cluster: Cluster) -> None:
    obs = cluster.observer
    body = deployment("rec", 3, strategy="Recreate")
    # Bound pods linger while terminating, until "the kubelet" (the test) finishes them.
    body["spec"]["template"]["spec"]["nodeName"] = "node-1"
    changed = await cluster.deploy.create(body)
    await drive(cluster, "rec", kubelet_deletes=True, generation=gen(changed))

    def no_overlap() -> None:
        hashes = {pod_hash(p) for p in app_pods(obs, "rec", active=False)}
        assert len(hashes) <= 1, f"old and new pods at once: {hashes}"

    obs.checks.append(no_overlap)
    changed = await cluster.deploy.patch("rec", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "nginx:1.26"}]}}}}, namespace=NS, patch_type="strategic")
    d = await drive(cluster, "rec", kubelet_deletes=True, generation=gen(changed))
    assert obs.failures == []
    assert len(app_pods(obs, "rec")) == 3
    assert sorted(rs["spec"]["replicas"] for rs in owned_rss(obs, d)) == [0, 3]


async def test_revision_history_limit_prunes_old_replica_sets(cluster: Cluster) -> None:
    obs = cluster.observer
    changed = await cluster.deploy.create(deployment("hist", 1, surge=1, unavailable=0, revisionHistoryLimit=1))
    await drive(cluster, "hist", generation=gen(changed))
    for version in ("1.26", "1.27", "1.28"):
        changed = await cluster.deploy.patch("hist", {"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": f"nginx:{version}"}]}}}}, namespace=NS, patch_type="strategic")
        d = await drive(cluster, "hist", generation=gen(changed))
    await obs.wait_for(lambda: len(owned_rss(obs, d)) == 2, what="pruned to limit + 1")
    revisions = sorted(int(rs["metadata"]["annotations"][REVISION_ANNOTATION]) for rs in owned_rss(obs, d))
    assert revisions == [3, 4]


async def test_paused_deployment_does_not_roll_out_until_resumed(cluster: Cluster) -> None:
    obs = cluster.observer
    changed = await cluster.deploy.create(deployment("pause", 2))
    await drive(cluster, "pause", generation=gen(changed))
    changed = await cluster.deploy.patch("pause", {"spec": {"paused": True, "template": {"spec": {"containers": [
        {"name": "main", "image": "nginx:1.26"}]}}}}, namespace=NS, patch_type="strategic")

    def paused_observed() -> bool:
        d = obs.get("deploy", f"{NS}/pause")
        conds = {c["type"]: c for c in d["status"].get("conditions") or []}
        return d["status"].get("observedGeneration") == d["metadata"]["generation"] and \
            conds.get("Progressing", {}).get("reason") == "DeploymentPaused"

    await obs.wait_for(paused_observed, what="paused condition")
    d = obs.get("deploy", f"{NS}/pause")
    assert len(owned_rss(obs, d)) == 1
    # Scaling still works while paused.
    changed = await cluster.deploy.patch("pause", {"spec": {"replicas": 3}}, namespace=NS)
    await obs.wait_for(lambda: [rs["spec"]["replicas"] for rs in owned_rss(obs, d)] == [3], what="scaled")
    changed = await cluster.deploy.patch("pause", {"spec": {"paused": False}}, namespace=NS)
    d = await drive(cluster, "pause", generation=gen(changed))
    assert len(owned_rss(obs, d)) == 2
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in app_pods(obs, "pause"))


async def test_scaling_updates_replica_set_and_annotations(cluster: Cluster) -> None:
    obs = cluster.observer
    changed = await cluster.deploy.create(deployment("scale", 2))
    d = await drive(cluster, "scale", generation=gen(changed))
    changed = await cluster.deploy.patch("scale", {"spec": {"replicas": 4}}, namespace=NS)
    d = await drive(cluster, "scale", generation=gen(changed))
    (rs,) = owned_rss(obs, d)
    assert rs["spec"]["replicas"] == 4
    assert rs["metadata"]["annotations"][DESIRED_REPLICAS_ANNOTATION] == "4"
    assert rs["metadata"]["annotations"][MAX_REPLICAS_ANNOTATION] == "5"


async def test_progress_deadline_exceeded(cluster: Cluster) -> None:
    obs = cluster.observer
    changed = await cluster.deploy.create(deployment("stuck", 1, progressDeadlineSeconds=1))

    def timed_out() -> bool:
        d = obs.get("deploy", f"{NS}/stuck")
        conds = {c["type"]: c for c in ((d or {}).get("status") or {}).get("conditions") or []}
        return conds.get("Progressing", {}).get("reason") == "ProgressDeadlineExceeded"

    await obs.wait_for(timed_out, timeout=15, what="ProgressDeadlineExceeded")
    cond = next(c for c in obs.get("deploy", f"{NS}/stuck")["status"]["conditions"] if c["type"] == "Progressing")
    assert cond["status"] == "False"
