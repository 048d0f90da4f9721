"""The EndpointSliceMirroring controller: mirroring planned as pure decisions, then
against a real API server (with the EndpointSlice controller running beside it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from controllers.support_fixtures import Cluster, Watch, running, running_cluster
from controllers.test_endpoints import NS, pod, service, start_pod

from kcore.controllers.endpointslice import EndpointSliceController
from kcore.controllers.endpointslice_mirroring import (
    CONTROLLER_NAME,
    LAST_CHANGE_TRIGGER_TIME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    SKIP_MIRROR_LABEL,
    EndpointSliceMirroringController,
    canonical_ip,
    plan_mirrored_slices,
    should_mirror,
)

Obj = dict[str, Any]
API = "discovery.k8s.io/v1"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"


def endpoints(name: str = "db", subsets: list[Obj] | None = None, *, labels: dict[str, str] | None = None,
              annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": NS, "uid": f"{name}-uid"}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta, "subsets": subsets or []}


def addr(ip: str, **extra: Any) -> Obj:
    return {"ip": ip, **extra}


DB_PORTS = [{"name": "pg", "port": 5432, "protocol": "TCP"}]


def _materialize(plan: Any, existing: list[Obj]) -> list[Obj]:
    """The slices after applying a plan (names made up for the created ones)."""
    gone = {s["metadata"]["name"] for s in plan.deletes}
    replaced = {s["metadata"]["name"]: s for s in plan.updates}
    out = [replaced.get(s["metadata"]["name"], s) for s in existing if s["metadata"]["name"] not in gone]
    for i, body in enumerate(plan.creates):
        out.append({**body, "metadata": {**body["metadata"], "name": f"db-new{len(existing)}-{i}"}})
    return out


# ---------------------------------------------------------------- pure decisions


def test_ready_and_not_ready_addresses_with_their_details() -> None:
    target = {"kind": "Pod", "namespace": NS, "name": "db-0", "uid": "p0"}
    ep = endpoints(subsets=[{"addresses": [addr("10.0.0.1", hostname="db-0", nodeName="node-1", targetRef=target)],
                             "notReadyAddresses": [addr("10.0.0.2")],
                             "ports": DB_PORTS}])
    plan = plan_mirrored_slices(ep, [])
    assert not plan.updates and not plan.deletes and not plan.too_many and not plan.invalid
    [body] = plan.creates
    assert body["addressType"] == "IPv4"
    assert body["ports"] == [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    assert body["metadata"]["generateName"] == "db-"
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Endpoints", "name": "db",
                                                    "uid": "db-uid", "controller": True,
                                                    "blockOwnerDeletion": True}]
    by_ip = {e["addresses"][0]: e for e in body["endpoints"]}
    assert by_ip["10.0.0.1"] == {"addresses": ["10.0.0.1"], "conditions": {"ready": True}, "hostname": "db-0",
                                 "nodeName": "node-1", "targetRef": target}
    assert by_ip["10.0.0.2"] == {"addresses": ["10.0.0.2"], "conditions": {"ready": False}}
    # Idempotent: the created slice needs nothing more.
    assert plan_mirrored_slices(ep, _materialize(plan, [])).empty


def test_one_slice_per_port_set_and_family() -> None:
    ep = endpoints(subsets=[
        {"addresses": [addr("10.0.0.1"), addr("fd00::1"), addr("::ffff:10.0.0.9")], "ports": DB_PORTS},
        {"addresses": [addr("10.0.0.2")], "ports": DB_PORTS},  # same ports: same slice
        {"addresses": [addr("10.0.0.3")], "ports": [{"port": 9187}]},  # unnamed, protocol defaulted
    ])
    plan = plan_mirrored_slices(ep, [])
    got = {(s["addressType"], tuple((p["name"], p["port"]) for p in s["ports"])):
           sorted(e["addresses"][0] for e in s["endpoints"]) for s in plan.creates}
    assert got == {("IPv4", (("pg", 5432),)): ["10.0.0.1", "10.0.0.2", "10.0.0.9"],
                   ("IPv6", (("pg", 5432),)): ["fd00::1"],
                   ("IPv4", (("", 9187),)): ["10.0.0.3"]}
    unnamed = next(s for s in plan.creates if s["ports"][0]["port"] == 9187)
    assert unnamed["ports"] == [{"name": "", "port": 9187, "protocol": "TCP"}]


def test_ports_or_family_change_recycles_the_slice_and_unused_ones_go() -> None:
    ep = endpoints(subsets=[{"addresses": [addr("10.0.0.1"), addr("fd00::1")], "ports": DB_PORTS}])
    first = plan_mirrored_slices(ep, [])
    slices = _materialize(first, [])
    assert len(slices) == 2
    # The port changes: both slices are rewritten in place, nothing is created or deleted.
    moved = endpoints(subsets=[{"addresses": [addr("10.0.0.1"), addr("fd00::1")],
                                "ports": [{"name": "pg", "port": 6432, "protocol": "TCP"}]}])
    plan = plan_mirrored_slices(moved, slices)
    assert not plan.creates and not plan.deletes
    assert sorted(s["metadata"]["name"] for s in plan.updates) == sorted(s["metadata"]["name"] for s in slices)
    assert {s["ports"][0]["port"] for s in plan.updates} == {6432}
    # The IPv6 address goes: its slice is deleted; no addresses at all: every slice goes.
    v4_only = endpoints(subsets=[{"addresses": [addr("10.0.0.1")], "ports": DB_PORTS}])
    plan = plan_mirrored_slices(v4_only, slices)
    assert not plan.creates and not plan.updates
    assert [s["addressType"] for s in plan.deletes] == ["IPv6"]
    plan = plan_mirrored_slices(endpoints(subsets=[]), slices)
    assert len(plan.deletes) == 2 and not plan.creates and not plan.updates
    # A duplicate slice for the same group is deleted, the first kept.
    dup = {**slices[0], "metadata": {**slices[0]["metadata"], "name": "zz-dup"}}
    plan = plan_mirrored_slices(ep, [*slices, dup])
    assert [s["metadata"]["name"] for s in plan.deletes] == ["zz-dup"] and not plan.updates and not plan.creates


def test_at_most_1000_addresses_per_subset_ready_first() -> None:
    ready = [addr(f"10.1.{i // 250}.{i % 250 + 1}") for i in range(990)]
    not_ready = [addr(f"10.2.{i // 250}.{i % 250 + 1}") for i in range(20)]
    ep = endpoints(subsets=[{"addresses": ready, "notReadyAddresses": not_ready, "ports": DB_PORTS}])
    plan = plan_mirrored_slices(ep, [])
    [body] = plan.creates
    assert len(body["endpoints"]) == 1000 and plan.too_many == 10
    assert sum(1 for e in body["endpoints"] if e["conditions"]["ready"]) == 990
    # A smaller limit (the controller's knob) applies the same way.
    plan = plan_mirrored_slices(ep, [], max_per_subset=5)
    assert len(plan.creates[0]["endpoints"]) == 5 and plan.too_many == 1005
    assert all(e["conditions"]["ready"] for e in plan.creates[0]["endpoints"])


def test_invalid_ips_are_dropped_and_ips_canonicalized() -> None:
    ep = endpoints(subsets=[{"addresses": [addr("not-an-ip"), addr("010.000.000.001"), addr("FD00:0::1")],
                             "ports": DB_PORTS}])
    plan = plan_mirrored_slices(ep, [])
    assert plan.invalid == ["not-an-ip"]
    assert sorted(e["addresses"][0] for s in plan.creates for e in s["endpoints"]) == ["10.0.0.1", "fd00::1"]
    assert canonical_ip("::ffff:1.2.3.4") == ("IPv4", "1.2.3.4")
    assert canonical_ip("") is None


def test_labels_and_annotations_copied_but_reserved_ones() -> None:
    ep = endpoints(subsets=[{"addresses": [addr("10.0.0.1")], "ports": DB_PORTS}],
                   labels={"app": "db", SKIP_MIRROR_LABEL: "false", MANAGED_BY_LABEL: "someone"},
                   annotations={"team": "data", LAST_CHANGE_TRIGGER_TIME: "2024-01-01T00:00:00Z",
                                "kubectl.kubernetes.io/last-applied-configuration": "{}"})
    assert should_mirror(ep)
    [body] = plan_mirrored_slices(ep, []).creates
    assert body["metadata"]["labels"] == {"app": "db", SERVICE_NAME_LABEL: "db", MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert body["metadata"]["annotations"] == {"team": "data"}
    slices = _materialize(plan_mirrored_slices(ep, []), [])
    # Only the trigger time changes: nothing to write. A label changes: the slice is updated.
    ep["metadata"]["annotations"][LAST_CHANGE_TRIGGER_TIME] = "2025-01-01T00:00:00Z"
    assert plan_mirrored_slices(ep, slices).empty
    ep["metadata"]["labels"]["tier"] = "gold"
    [updated] = plan_mirrored_slices(ep, slices).updates
    assert updated["metadata"]["labels"]["tier"] == "gold"
    assert not should_mirror(endpoints(labels={SKIP_MIRROR_LABEL: "true"}))
    assert not should_mirror(endpoints(annotations={"control-plane.alpha.kubernetes.io/leader": "{}"}))
    assert not should_mirror(None)


def test_an_endpoints_being_deleted_gets_no_new_slices() -> None:
    ep = endpoints(subsets=[{"addresses": [addr("10.0.0.1")], "ports": DB_PORTS}])
    ep["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert plan_mirrored_slices(ep, []).empty


# ---------------------------------------------------------------- against the API server


def mirrored(watch: Watch, name: str) -> list[Obj]:
    return [s for s in watch.informer.indexer.list()
            if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
            and s["metadata"]["labels"].get(MANAGED_BY_LABEL) == CONTROLLER_NAME]


def mirrored_ips(watch: Watch, name: str) -> dict[str, bool]:
    """IP -> ready over every mirrored slice of ``name``."""
    return {e["addresses"][0]: e["conditions"]["ready"] for s in mirrored(watch, name) for e in s.get("endpoints") or []}


@contextlib.asynccontextmanager
async def mirroring_cluster() -> AsyncIterator[tuple[Cluster, Watch]]:
    async with running_cluster() as c:
        async with running(EndpointSliceMirroringController(c.client, c.factory)), \
                running(EndpointSliceController(c.client, c.factory)), \
                Watch(c.client, API, "EndpointSlice") as w:
            yield c, w


async def test_selectorless_service_is_mirrored_updated_and_cleaned_up() -> None:
    async with mirroring_cluster() as (c, watch):
        services = c.client.resource("v1", "Service")
        eps = c.client.resource("v1", "Endpoints")
        await services.create(service("db", ports=[{"port": 5432, "targetPort": 5432}]))
        created = await eps.create(endpoints(subsets=[{"addresses": [addr("192.0.2.42", nodeName="node-1")],
                                                      "notReadyAddresses": [addr("192.0.2.43")],
                                                      "ports": DB_PORTS}], labels={"app": "db"}))
        await watch.wait_for(lambda: mirrored_ips(watch, "db") == {"192.0.2.42": True, "192.0.2.43": False})
        [mirror] = mirrored(watch, "db")
        assert mirror["metadata"]["name"].startswith("db-")
        assert mirror["addressType"] == "IPv4"
        assert mirror["ports"] == [{"name": "pg", "port": 5432, "protocol": "TCP"}]
        assert mirror["metadata"]["labels"]["app"] == "db"
        owner = mirror["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("Endpoints", created["metadata"]["uid"], True)
        assert next(e for e in mirror["endpoints"] if e["addresses"] == ["192.0.2.42"])["nodeName"] == "node-1"

        # The Endpoints change: the same slice is rewritten.
        current = await eps.get("db", NS)
        current["subsets"] = [{"addresses": [addr("192.0.2.42"), addr("192.0.2.44")], "ports": DB_PORTS}]
        await eps.update(current)
        await watch.wait_for(lambda: mirrored_ips(watch, "db") == {"192.0.2.42": True, "192.0.2.44": True})
        assert [s["metadata"]["name"] for s in mirrored(watch, "db")] == [mirror["metadata"]["name"]]

        # The Endpoints go: so do the slices.
        await eps.delete("db", NS)
        await watch.wait_for(lambda: mirrored(watch, "db") == [])


async def test_service_gaining_a_selector_or_going_away_removes_mirrored_slices() -> None:
    async with mirroring_cluster() as (c, watch):
        services = c.client.resource("v1", "Service")
        eps = c.client.resource("v1", "Endpoints")
        # Endpoints first: nothing is mirrored until the selector-less Service exists.
        await eps.create(endpoints("web", subsets=[{"addresses": [addr("192.0.2.10")], "ports": DB_PORTS}]))
        await eps.create(endpoints("db", subsets=[{"addresses": [addr("192.0.2.20")], "ports": DB_PORTS}]))
        await services.create(service("web"))
        await services.create(service("db"))
        await watch.wait_for(lambda: mirrored_ips(watch, "web") and mirrored_ips(watch, "db"))

        svc = await services.get("web", NS)
        svc["spec"]["selector"] = {"app": "web"}
        await services.update(svc)
        await watch.wait_for(lambda: mirrored(watch, "web") == [])
        await start_pod(c.client, pod("web-a"), "10.9.0.1", ready=True)
        # The EndpointSlice controller now owns the service's slices.
        await watch.wait_for(lambda: any(e["addresses"] == ["10.9.0.1"] for s in watch.informer.indexer.list()
                                         if s["metadata"]["labels"].get(SERVICE_NAME_LABEL) == "web"
                                         for e in s.get("endpoints") or []))

        await services.delete("db", NS)
        await watch.wait_for(lambda: mirrored(watch, "db") == [])
        assert await eps.get("db", NS) is not None  # hand-written Endpoints are left alone


async def test_skip_mirror_label_and_system_services_are_not_mirrored() -> None:
    async with mirroring_cluster() as (c, watch):
        services = c.client.resource("v1", "Service")
        eps = c.client.resource("v1", "Endpoints")
        await services.create(service("skipped"))
        await eps.create(endpoints("skipped", subsets=[{"addresses": [addr("192.0.2.30")], "ports": DB_PORTS}],
                                   labels={SKIP_MIRROR_LABEL: "true"}))
        await services.create(service("mirrored"))
        await eps.create(endpoints("mirrored", subsets=[{"addresses": [addr("192.0.2.31")], "ports": DB_PORTS}]))
        await watch.wait_for(lambda: mirrored(watch, "mirrored"))  # the controller has seen both by now
        assert mirrored(watch, "skipped") == []
        assert mirrored(watch, "kubernetes") == []  # the API server's own, labelled skip-mirror

        # Labelling a mirrored Endpoints skip-mirror removes its slices.
        current = await eps.get("mirrored", NS)
        current["metadata"]["labels"] = {SKIP_MIRROR_LABEL: "true"}
        await eps.update(current)
        await watch.wait_for(lambda: mirrored(watch, "mirrored") == [])


async def test_slices_of_other_managers_are_left_alone() -> None:
    async with mirroring_cluster() as (c, watch):
        services = c.client.resource("v1", "Service")
        eps = c.client.resource("v1", "Endpoints")
        slices = c.client.resource(API, "EndpointSlice")

        # A Service with a selector: its slices are the EndpointSlice controller's, and a
        # same-named Endpoints (as the Endpoints controller writes it) is not mirrored.
        await services.create(service("web", selector={"app": "web"}))
        await start_pod(c.client, pod("web-a"), "10.9.0.2", ready=True)
        await eps.create(endpoints("web", subsets=[{"addresses": [addr("10.9.0.2")], "ports": DB_PORTS}]))

        # A selector-less Service with a hand-made slice and one of another manager.
        hand_made = await slices.create({
            "apiVersion": API, "kind": "EndpointSlice",
            "metadata": {"name": "db-by-hand", "namespace": NS, "labels": {SERVICE_NAME_LABEL: "db"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.99"]}], "ports": []})
        other = await slices.create({
            "apiVersion": API, "kind": "EndpointSlice",
            "metadata": {"name": "db-other", "namespace": NS,
                         "labels": {SERVICE_NAME_LABEL: "db", MANAGED_BY_LABEL: "other-controller.example.com"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.98"]}], "ports": []})
        await services.create(service("db"))
        await eps.create(endpoints(subsets=[{"addresses": [addr("192.0.2.40")], "ports": DB_PORTS}]))
        await watch.wait_for(lambda: mirrored_ips(watch, "db") == {"192.0.2.40": True})
        await eps.delete("db", NS)
        await watch.wait_for(lambda: mirrored(watch, "db") == [])

        for before in (hand_made, other):
            after = watch.get(before["metadata"]["name"], NS)
            assert after is not None
            assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
        web = [s for s in watch.informer.indexer.list() if s["metadata"]["labels"].get(SERVICE_NAME_LABEL) == "web"]
        assert mirrored(watch, "web") == []
        assert {s["metadata"]["labels"][MANAGED_BY_LABEL] for s in web} == {SLICE_CONTROLLER}
        assert {e["addresses"][0] for s in web for e in s.get("endpoints") or []} == {"10.9.0.2"}
