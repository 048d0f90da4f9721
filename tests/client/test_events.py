"""EventRecorder against a real API server: Events created, repeats aggregated, never raising."""

from __future__ import annotations

import datetime as dt

from client.support import Cluster, pod

from kcore.client.events import EventRecorder
from kcore.client.rest import ApiClient


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def events_about(client: ApiClient, name: str, namespace: str = "default") -> list[dict]:
    items, _ = await client.resource("v1", "Event").list(namespace)
    return sorted((e for e in items if e["involvedObject"]["name"] == name),
                  key=lambda e: e["metadata"]["creationTimestamp"])


async def test_event_is_created_with_source_and_reference(client: ApiClient) -> None:
    target = await client.resource("v1", "Pod").create(pod("web"))
    recorder = EventRecorder(client, "default-scheduler", host="node-1")
    await recorder.event(target, "Normal", "Scheduled", "Successfully assigned default/web to node-1")
    [event] = await events_about(client, "web")
    assert event["reason"] == "Scheduled" and event["type"] == "Normal"
    assert event["message"] == "Successfully assigned default/web to node-1"
    assert event["source"] == {"component": "default-scheduler", "host": "node-1"}
    involved = event["involvedObject"]
    assert involved["kind"] == "Pod" and involved["namespace"] == "default"
    assert involved["uid"] == target["metadata"]["uid"] and involved["apiVersion"] == "v1"
    assert event["count"] == 1 and event["firstTimestamp"] == event["lastTimestamp"]


async def test_repeats_are_aggregated_into_a_count(client: ApiClient) -> None:
    target = await client.resource("v1", "Pod").create(pod("crashy"))
    times = iter([dt.datetime(2024, 1, 1, 12, 0, s, tzinfo=dt.UTC) for s in range(10)])
    ticker = Ticker()
    recorder = EventRecorder(client, "kubelet", clock=lambda: next(times), monotonic=ticker)
    for _ in range(3):
        await recorder.event(target, "Warning", "BackOff", "Back-off restarting failed container")
        ticker.now += 60
    await recorder.event(target, "Warning", "Failed", "Error: ImagePullBackOff")
    events = await events_about(client, "crashy")
    by_reason = {e["reason"]: e for e in events}
    assert len(events) == 2
    backoff = by_reason["BackOff"]
    assert backoff["count"] == 3
    assert backoff["firstTimestamp"] == "2024-01-01T12:00:00Z"
    assert backoff["lastTimestamp"] == "2024-01-01T12:00:02Z"
    assert by_reason["Failed"]["count"] == 1

    # Past the ten-minute window the same story starts a new Event.
    ticker.now += 601
    await recorder.event(target, "Warning", "BackOff", "Back-off restarting failed container")
    assert [e["count"] for e in await events_about(client, "crashy") if e["reason"] == "BackOff"] == [3, 1]


async def test_deleted_event_is_recreated(client: ApiClient) -> None:
    target = await client.resource("v1", "Pod").create(pod("p"))
    recorder = EventRecorder(client, "test")
    await recorder.event(target, "Normal", "Pulled", "image pulled")
    [first] = await events_about(client, "p")
    await client.resource("v1", "Event").delete(first["metadata"]["name"], "default")
    await recorder.event(target, "Normal", "Pulled", "image pulled")
    [second] = await events_about(client, "p")
    assert second["metadata"]["name"] != first["metadata"]["name"] and second["count"] == 1


async def test_cluster_scoped_objects_get_events_in_default(client: ApiClient) -> None:
    node = await client.resource("v1", "Node").create({"metadata": {"name": "node-9"}})
    recorder = EventRecorder(client, "node-controller")
    await recorder.event(node, "Normal", "RegisteredNode", "Node node-9 event: Registered")
    [event] = await events_about(client, "node-9", "default")
    assert event["involvedObject"]["kind"] == "Node" and "namespace" not in event["involvedObject"]


async def test_recording_never_raises(cluster: Cluster) -> None:
    target = await cluster.client.resource("v1", "Pod").create(pod("quiet"))
    recorder = EventRecorder(cluster.client, "test")
    await cluster.stop_server()
    await recorder.event(target, "Warning", "Unreachable", "the server is down")  # must not raise
    await cluster.start_server()
    # A rejected Event (invalid namespace) is logged, not raised, too.
    await recorder.event({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": "x", "namespace": "Not Valid"}}, "Normal", "R", "m")
    await recorder.event(target, "Warning", "Unreachable", "the server is down")
    assert [e["count"] for e in await events_about(cluster.client, "quiet")] == [1]
