"""The EndpointSlice controller: slice planning as pure decisions, then against a real API server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from controllers.support_fixtures import Cluster, Watch, running, running_cluster
from controllers.test_endpoints import NS, pod, service, set_ready, start_pod

from kcore.controllers.endpointslice import (
    CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    EndpointSliceController,
    plan_slices,
)

Obj = dict[str, Any]
API = "discovery.k8s.io/v1"


def slices_of(watch: Watch, service_name: str) -> list[Obj]:
    return [s for s in watch.informer.indexer.list()
            if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == service_name]


def endpoints_of(watch: Watch, service_name: str) -> dict[str, Obj]:
    """IP -> endpoint over every slice of the service."""
    return {e["addresses"][0]: e for s in slices_of(watch, service_name) for e in s.get("endpoints") or []}


def conditions(watch: Watch, service_name: str, ip: str) -> Obj | None:
    endpoint = endpoints_of(watch, service_name).get(ip)
    return None if endpoint is None else endpoint["conditions"]


@contextlib.asynccontextmanager
async def slice_cluster() -> AsyncIterator[tuple[Cluster, Watch]]:
    async with running_cluster() as c:
        async with running(EndpointSliceController(c.client, c.factory)), Watch(c.client, API, "EndpointSlice", NS) as w:
            yield c, w


# ---------------------------------------------------------------- pure decisions


def _svc(**spec: Any) -> Obj:
    body = service(selector={"app": "web"}, ports=[{"name": "http", "port": 80, "targetPort": 8080}], **spec)
    body["metadata"]["uid"] = "svc-uid"
    return body


def _pods(count: int, start: int = 0) -> list[Obj]:
    out = []
    for i in range(start, start + count):
        p = pod(f"web-{i}")
        p["metadata"]["uid"] = f"uid-{i}"
        p["status"] = {"phase": "Running", "podIP": f"10.0.{i // 250}.{i % 250 + 1}",
                       "conditions": [{"type": "Ready", "status": "True"}]}
        out.append(p)
    return out


def _materialize(creates: list[Obj], existing: list[Obj], updates: list[Obj], deletes: list[Obj]) -> list[Obj]:
    """The slices after applying a plan (names made up for the created ones)."""
    gone = {s["metadata"]["name"] for s in deletes}
    replaced = {s["metadata"]["name"]: s for s in updates}
    out = [replaced.get(s["metadata"]["name"], s) for s in existing if s["metadata"]["name"] not in gone]
    for i, body in enumerate(creates):
        out.append({**body, "metadata": {**body["metadata"], "name": f"web-new{len(existing)}-{i}"}})
    return out


def test_at_most_100_endpoints_per_slice_and_endpoints_stay_put() -> None:
    svc = _svc()
    creates, updates, deletes = plan_slices(svc, _pods(250), [])
    assert [len(s["endpoints"]) for s in creates] == [100, 100, 50] and not updates and not deletes
    first = creates[0]
    assert first["metadata"]["generateName"] == "web-"
    assert first["metadata"]["labels"] == {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert first["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                     "uid": "svc-uid", "controller": True,
                                                     "blockOwnerDeletion": True}]
    assert first["addressType"] == "IPv4"
    assert first["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    slices = _materialize(creates, [], [], [])
    assert plan_slices(svc, _pods(250), slices) == ([], [], [])  # idempotent

    # One pod goes, two arrive: the new ones fill slices with room; full ones do not move.
    victim = next(e["targetRef"]["name"] for e in slices[0]["endpoints"])
    pods = [p for p in _pods(252) if p["metadata"]["name"] != victim]
    creates, updates, deletes = plan_slices(svc, pods, slices)
    assert not creates and not deletes
    assert sorted(len(s["endpoints"]) for s in updates) == [51, 100]
    after = _materialize([], slices, updates, [])
    assert sum(len(s["endpoints"]) for s in after) == 251
    assert slices[1] in after  # untouched


def test_placeholder_for_a_service_without_endpoints_and_cleanup() -> None:
    svc = _svc()
    creates, updates, deletes = plan_slices(svc, [], [])
    assert len(creates) == 1 and creates[0]["endpoints"] == [] and creates[0]["ports"] == []
    slices = _materialize(creates, [], [], [])
    assert plan_slices(svc, [], slices) == ([], [], [])
    # Endpoints arrive: a real slice is created before the placeholder goes.
    creates, updates, deletes = plan_slices(svc, _pods(1), slices)
    assert len(creates) == 1 and [s["metadata"]["name"] for s in deletes] == [slices[0]["metadata"]["name"]]
    # A slice of an earlier service of the same name (other uid) is deleted.
    foreign = {**slices[0], "metadata": {**slices[0]["metadata"], "name": "web-old",
                                          "ownerReferences": [{"kind": "Service", "uid": "old", "controller": True}]}}
    _c, _u, deletes = plan_slices(svc, [], [*slices, foreign])
    assert [s["metadata"]["name"] for s in deletes] == ["web-old"]


def test_conditions_of_terminating_and_unready_pods() -> None:
    ready, unready, leaving = _pods(3)
    unready["status"]["conditions"][0]["status"] = "False"
    leaving["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    [body], _u, _d = plan_slices(_svc(), [ready, unready, leaving], [])
    got = {e["targetRef"]["name"]: e["conditions"] for e in body["endpoints"]}
    assert got == {"web-0": {"ready": True, "serving": True, "terminating": False},
                   "web-1": {"ready": False, "serving": False, "terminating": False},
                   "web-2": {"ready": False, "serving": True, "terminating": True}}
    [body], _u, _d = plan_slices(_svc(publishNotReadyAddresses=True), [unready], [])
    assert body["endpoints"][0]["conditions"] == {"ready": True, "serving": False, "terminating": False}


# ---------------------------------------------------------------- against the API server


async def test_slices_follow_pods_named_ports_and_readiness() -> None:
    async with slice_cluster() as (c, watch):
        svc = await c.client.resource("v1", "Service").create(service(selector={"app": "web"}))
        await start_pod(c.client, pod("web-a"), "10.1.0.1", ready=True)
        await start_pod(c.client, pod("web-b"), "10.1.0.2", ready=False)
        await start_pod(c.client, pod("web-c", metrics_port=9200), "10.1.0.3", ready=True)
        await watch.wait_for(lambda: set(endpoints_of(watch, "web")) == {"10.1.0.1", "10.1.0.2", "10.1.0.3"})

        slices = slices_of(watch, "web")
        assert len(slices) == 2  # one per resolved port set
        for s in slices:
            assert s["metadata"]["name"].startswith("web-") and len(s["metadata"]["name"]) == len("web-") + 5
            assert s["metadata"]["labels"][MANAGED_BY_LABEL] == CONTROLLER_NAME
            assert s["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
            assert s["metadata"]["ownerReferences"][0]["controller"] is True
            assert s["addressType"] == "IPv4"
        by_ip = {e["addresses"][0]: s for s in slices for e in s["endpoints"]}
        assert {p["port"] for p in by_ip["10.1.0.3"]["ports"]} == {8080, 9200}
        assert sorted((p["name"], p["port"]) for p in by_ip["10.1.0.1"]["ports"]) == [("http", 8080),
                                                                                      ("metrics", 9100)]
        endpoint = endpoints_of(watch, "web")["10.1.0.1"]
        assert endpoint["nodeName"] == "node-1" and endpoint["targetRef"]["name"] == "web-a"
        assert conditions(watch, "web", "10.1.0.2") == {"ready": False, "serving": False, "terminating": False}

        await set_ready(c.client, "web-b", "10.1.0.2", True)
        await watch.wait_for(lambda: (conditions(watch, "web", "10.1.0.2") or {}).get("ready") is True, timeout=1.0)

        # Terminating (graceful deletion; no kubelet finishes it): listed, serving, not ready.
        await c.client.resource("v1", "Pod").delete("web-c", NS)
        await watch.wait_for(lambda: conditions(watch, "web", "10.1.0.3")
                             == {"ready": False, "serving": True, "terminating": True}, timeout=1.0)

        await c.client.resource("v1", "Pod").delete("web-a", NS, grace_period_seconds=0)
        await watch.wait_for(lambda: "10.1.0.1" not in endpoints_of(watch, "web"), timeout=1.0)
        await c.client.resource("v1", "Pod").delete("web-c", NS, grace_period_seconds=0)
        await watch.wait_for(lambda: set(endpoints_of(watch, "web")) == {"10.1.0.2"}, timeout=1.0)
        assert len(slices_of(watch, "web")) == 1  # the emptied port set's slice is gone


async def test_service_without_selector_gets_no_slices_and_deletion_removes_them() -> None:
    async with slice_cluster() as (c, watch):
        services = c.client.resource("v1", "Service")
        await services.create(service("external", ports=[{"port": 5432}]))
        await services.create(service("web", selector={"app": "web"}))
        await start_pod(c.client, pod("web-a"), "10.2.0.1", ready=True)
        await watch.wait_for(lambda: "10.2.0.1" in endpoints_of(watch, "web"))
        assert slices_of(watch, "external") == []

        await services.delete("web", NS)
        await watch.wait_for(lambda: slices_of(watch, "web") == [])


async def test_empty_service_keeps_one_placeholder_slice() -> None:
    async with slice_cluster() as (c, watch):
        await c.client.resource("v1", "Service").create(service(selector={"app": "nothing"}))
        await watch.wait_for(lambda: len(slices_of(watch, "web")) == 1)
        [placeholder] = slices_of(watch, "web")
        assert not placeholder.get("endpoints")
