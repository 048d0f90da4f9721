"""The scheduler against a real API server: bindings, conditions, events, retries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kcore.api.core_v1 import Pod
from kcore.client import ApiClient, bind_pod
from kcore.config import SchedulerConfig, SchedulerProfile
from kcore.plugins import PluginHost
from kcore.scheduler.node_info import PodInfo
from kcore.scheduler.queue import QueuedPodInfo
from kcore.scheduler.runner import Scheduler


def node(name: str, cpu: str = "2", memory: str = "4Gi", **spec: Any) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"zone": name}},
            "spec": spec, "status": {"allocatable": allocatable, "capacity": allocatable}}


def pod(name: str, cpu: str = "500m", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": "pause",
                                     "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}], **spec}}


async def create_node(client: ApiClient, body: dict[str, Any]) -> None:
    """Nodes are registered with status (as a kubelet does): create, then write the status."""
    created = await client.resource("v1", "Node").create(body)
    created["status"] = body["status"]
    await client.resource("v1", "Node").update_status(created)


async def wait_for(client: ApiClient, name: str, check: Callable[[dict[str, Any]], bool],
                   timeout: float = 10.0) -> dict[str, Any]:
    """Watch the pod until ``check`` holds (no polling with sleeps)."""
    pods = client.resource("v1", "Pod")
    async with asyncio.timeout(timeout):
        while True:
            current = await pods.get(name, "default")
            if check(current):
                return current
            rv = current["metadata"]["resourceVersion"]
            async for event in pods.watch("default", resource_version=rv,
                                          field_selector=f"metadata.name={name}"):
                if check(event.object):
                    return event.object


@pytest.fixture
async def running(client: ApiClient, host: PluginHost) -> AsyncIterator[Scheduler]:
    config = SchedulerConfig(profiles=[SchedulerProfile(name="default-scheduler"),
                                       SchedulerProfile(name="rr", algorithm="round-robin")])
    scheduler = Scheduler(client, host, config, initial_backoff=0.05, max_backoff=0.2)
    task = asyncio.create_task(scheduler.run())
    try:
        yield scheduler
    finally:
        await scheduler.stop()
        await task


async def test_pods_are_bound_to_feasible_nodes(client: ApiClient, running: Scheduler) -> None:
    for name in ("n1", "n2", "n3"):
        await create_node(client, node(name, unschedulable=(name == "n3")))
    pods = client.resource("v1", "Pod")
    for i in range(4):
        await pods.create(pod(f"web-{i}"))
    bound = [await wait_for(client, f"web-{i}", lambda p: bool(p["spec"].get("nodeName"))) for i in range(4)]
    assert {p["spec"]["nodeName"] for p in bound} <= {"n1", "n2"}
    # 4 x 500m on two 2-cpu nodes: least-allocated spreads them 2 + 2.
    assert sorted(p["spec"]["nodeName"] for p in bound) == ["n1", "n1", "n2", "n2"]
    await running.idle()
    events, _ = await client.resource("v1", "Event").list("default")
    scheduled = [e for e in events if e["reason"] == "Scheduled"]
    assert {e["involvedObject"]["name"] for e in scheduled} == {f"web-{i}" for i in range(4)}
    assert any(e["message"] == f"Successfully assigned default/web-0 to {bound[0]['spec']['nodeName']}"
               for e in scheduled)


async def test_unschedulable_pod_gets_condition_and_event_then_fits_a_new_node(
    client: ApiClient, running: Scheduler
) -> None:
    await create_node(client, node("small-1", cpu="1"))
    await create_node(client, node("small-2", cpu="1"))
    await create_node(client, node("tainted", cpu="8", taints=[
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]))
    await client.resource("v1", "Pod").create(pod("big", cpu="3"))

    def unschedulable(p: dict[str, Any]) -> bool:
        conds = (p.get("status") or {}).get("conditions") or []
        return any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conds)

    current = await wait_for(client, "big", unschedulable)
    (cond,) = [c for c in current["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert cond["reason"] == "Unschedulable"
    assert cond["message"] == ("0/3 nodes are available: 2 Insufficient cpu, "
                               "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.")
    await running.idle()
    events, _ = await client.resource("v1", "Event").list("default")
    failed = [e for e in events if e["reason"] == "FailedScheduling"]
    assert failed and failed[0]["type"] == "Warning" and failed[0]["message"] == cond["message"]

    await create_node(client, node("large", cpu="4"))
    bound = await wait_for(client, "big", lambda p: bool(p["spec"].get("nodeName")))
    assert bound["spec"]["nodeName"] == "large"


async def test_profiles_round_robin_and_unknown_scheduler_name(client: ApiClient, running: Scheduler) -> None:
    for name in ("a", "b", "c"):
        await create_node(client, node(name, cpu="8"))
    pods = client.resource("v1", "Pod")
    for i in range(3):
        await pods.create(pod(f"rr-{i}", schedulerName="rr"))
    await pods.create(pod("orphan", schedulerName="nobody-serves-this"))
    got = [(await wait_for(client, f"rr-{i}", lambda p: bool(p["spec"].get("nodeName"))))["spec"]["nodeName"]
           for i in range(3)]
    assert sorted(got) == ["a", "b", "c"]
    await running.idle()
    orphan = await pods.get("orphan", "default")
    assert not orphan["spec"].get("nodeName")
    assert not (orphan.get("status") or {}).get("conditions")
    assert "default/orphan" not in running.queue


async def test_already_assigned_conflict_forgets_the_assumed_pod(
    client: ApiClient, running: Scheduler
) -> None:
    await create_node(client, node("only"))
    pods = client.resource("v1", "Pod")
    # A pod no profile serves, bound by "someone else" behind the scheduler's back.
    created = await pods.create(pod("raced", schedulerName="another-scheduler"))
    seen_bound = asyncio.Event()
    running.pods.add_handler(on_update=lambda old, new: new["spec"].get("nodeName") and seen_bound.set())
    await bind_pod(client, "default", "raced", "only")
    await seen_bound.wait()

    # Our binding cycle for the same pod now meets 409 "already assigned".
    qpi = QueuedPodInfo(PodInfo(Pod.model_validate(created)), 0.0, 0)
    framework = running.frameworks["default-scheduler"]
    state = framework.new_state(qpi.pod_info)
    running.cache.assume_pod(qpi.pod_info, "only")
    await running._binding_cycle(qpi, framework, state, "only", None)

    assert not running.cache.is_assumed("default/raced")
    assert "default/raced" not in running.queue
    running.cache.add_pod(Pod.model_validate(await pods.get("raced", "default")))  # as the watch would
    assert running.cache.node_of("default/raced") == "only"
    assert len(running.cache.node("only").pods) == 1
