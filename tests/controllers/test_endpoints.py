"""The Endpoints controller: pure subset building, then against a real API server.

The test plays kubelet: pods are created bound (``spec.nodeName``) and get their IP
and Ready condition through the status subresource. Waiting is done on a watch of
Endpoints with a deadline, never with sleeps.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from controllers.support_fixtures import Cluster, Watch, running, running_cluster

from kcore.client.rest import ApiClient
from kcore.controllers import podutil
from kcore.controllers.endpoints import EndpointsController, compute_subsets, resolve_target_port

NS = "default"
Obj = dict[str, Any]

WEB_PORTS = [{"name": "http", "port": 80, "targetPort": 8080},
             {"name": "metrics", "port": 9090, "targetPort": "metrics"}]


# ---------------------------------------------------------------- helpers (shared with the slice tests)


def service(name: str = "web", *, selector: dict[str, str] | None = None, ports: list[Obj] | None = None,
            **spec: Any) -> Obj:
    body: Obj = {"ports": WEB_PORTS if ports is None else ports, **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS}, "spec": body}


def pod(name: str, labels: dict[str, str] | None = None, *, metrics_port: int | None = 9100,
        node: str = "node-1", **spec: Any) -> Obj:
    ports: list[Obj] = [{"name": "http", "containerPort": 8080}]
    if metrics_port is not None:
        ports.append({"name": "metrics", "containerPort": metrics_port})
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "labels": labels if labels is not None else {"app": "web"}},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "nginx", "ports": ports}], **spec}}


async def start_pod(client: ApiClient, body: Obj, ip: str, *, ready: bool) -> Obj:
    """Create a bound pod and play kubelet: Running, with ``ip`` and a Ready condition."""
    pods = client.resource("v1", "Pod")
    created = await pods.create(body)
    return await set_ready(client, created["metadata"]["name"], ip, ready)


async def set_ready(client: ApiClient, name: str, ip: str, ready: bool) -> Obj:
    now = podutil.format_time(podutil.utc_now())
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": now}]}
    return await client.resource("v1", "Pod").patch(name, {"status": status}, namespace=NS, subresource="status")


def ips(endpoints: Obj | None, field: str = "addresses", port: int | None = None) -> set[str]:
    """IPs in ``field`` of every subset (with ``port`` among its ports, when given)."""
    out: set[str] = set()
    for subset in (endpoints or {}).get("subsets") or []:
        if port is not None and port not in {p["port"] for p in subset.get("ports") or []}:
            continue
        out |= {a["ip"] for a in subset.get(field) or []}
    return out


@contextlib.asynccontextmanager
async def endpoints_cluster() -> AsyncIterator[tuple[Cluster, Watch]]:
    async with running_cluster() as c:
        async with running(EndpointsController(c.client, c.factory)), \
                Watch(c.client, "v1", "Endpoints", NS) as watch:
            yield c, watch


# ---------------------------------------------------------------- pure decisions


def test_resolve_target_port_numbers_names_and_defaults() -> None:
    p = pod("a")
    assert resolve_target_port({"port": 80, "targetPort": 8080}, p) == 8080
    assert resolve_target_port({"port": 80}, p) == 80
    assert resolve_target_port({"port": 9090, "targetPort": "metrics"}, p) == 9100
    assert resolve_target_port({"port": 9090, "targetPort": "metrics", "protocol": "UDP"}, p) is None
    assert resolve_target_port({"port": 9090, "targetPort": "metrics"}, pod("b", metrics_port=None)) is None


def _running(body: Obj, ip: str, ready: bool, uid: str) -> Obj:
    body = {**body, "metadata": {**body["metadata"], "uid": uid},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    return body


def test_subsets_are_repacked_by_resolved_ports_and_sorted() -> None:
    svc = service(selector={"app": "web"})
    pods = [_running(pod("b", metrics_port=9100), "10.0.0.2", True, "u2"),
            _running(pod("a", metrics_port=9100), "10.0.0.1", False, "u1"),
            _running(pod("c", metrics_port=9200), "10.0.0.3", True, "u3"),
            _running(pod("d", metrics_port=None), "10.0.0.4", True, "u4"),
            {**_running(pod("e"), "10.0.0.5", True, "u5"), "status": {"phase": "Pending"}}]  # no IP
    subsets = compute_subsets(svc, pods)
    by_ports = {tuple(p["port"] for p in s["ports"]): s for s in subsets}
    assert set(by_ports) == {(8080, 9100), (8080, 9200), (8080,)}
    first = by_ports[(8080, 9100)]
    assert [a["ip"] for a in first["addresses"]] == ["10.0.0.2"]
    assert [a["ip"] for a in first["notReadyAddresses"]] == ["10.0.0.1"]
    assert first["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"},
                              {"name": "metrics", "port": 9100, "protocol": "TCP"}]
    assert first["addresses"][0] == {"ip": "10.0.0.2", "nodeName": "node-1",
                                     "targetRef": {"kind": "Pod", "namespace": NS, "name": "b", "uid": "u2"}}
    assert compute_subsets(svc, list(reversed(pods))) == subsets


def test_terminal_and_terminating_pods_and_publish_not_ready() -> None:
    svc = service(selector={"app": "web"}, ports=[{"port": 80}])
    done = {**_running(pod("done"), "10.0.0.1", False, "u1")}
    done["status"] = {**done["status"], "phase": "Succeeded"}
    leaving = _running(pod("leaving"), "10.0.0.2", True, "u2")
    leaving["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    unready = _running(pod("unready"), "10.0.0.3", False, "u3")
    assert compute_subsets(svc, [done, leaving, unready]) == [{
        "notReadyAddresses": [{"ip": "10.0.0.3", "nodeName": "node-1",
                               "targetRef": {"kind": "Pod", "namespace": NS, "name": "unready", "uid": "u3"}}],
        "ports": [{"port": 80, "protocol": "TCP"}]}]
    publish = service(selector={"app": "web"}, ports=[{"port": 80}], publishNotReadyAddresses=True)
    [subset] = compute_subsets(publish, [done, leaving, unready])
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.2", "10.0.0.3"]
    assert "notReadyAddresses" not in subset


def test_hostname_only_when_the_subdomain_is_the_service() -> None:
    svc = service("db", selector={"app": "db"}, ports=[{"port": 5432}], clusterIP="None")
    named = _running(pod("db-0", {"app": "db"}, hostname="db-0", subdomain="db"), "10.0.0.1", True, "u1")
    other = _running(pod("db-1", {"app": "db"}, hostname="db-1", subdomain="other"), "10.0.0.2", True, "u2")
    [subset] = compute_subsets(svc, [named, other])
    assert [a.get("hostname") for a in subset["addresses"]] == ["db-0", None]
    no_ports = service("db", selector={"app": "db"}, ports=[], clusterIP="None")
    assert compute_subsets(no_ports, [named]) == [{"addresses": subset["addresses"][:1]}]


# ---------------------------------------------------------------- against the API server


async def test_ready_and_not_ready_pods_named_ports_and_readiness_changes() -> None:
    async with endpoints_cluster() as (c, watch):
        await c.client.resource("v1", "Service").create(service(selector={"app": "web"}))
        await start_pod(c.client, pod("web-a"), "10.1.0.1", ready=True)
        await start_pod(c.client, pod("web-b"), "10.1.0.2", ready=False)
        await start_pod(c.client, pod("web-c", metrics_port=None), "10.1.0.3", ready=True)
        await start_pod(c.client, pod("other", {"app": "other"}), "10.1.0.9", ready=True)
        await c.client.resource("v1", "Pod").create(pod("web-noip"))  # no IP yet: not an endpoint

        def settled() -> bool:
            ep = watch.get("web", NS)
            return ips(ep) == {"10.1.0.1", "10.1.0.3"} and ips(ep, "notReadyAddresses") == {"10.1.0.2"}

        await watch.wait_for(settled)
        ep = watch.get("web", NS)
        assert ep is not None
        # The pod without a "metrics" port serves only http.
        assert ips(ep, port=9100) == {"10.1.0.1"} and ips(ep, "notReadyAddresses", port=9100) == {"10.1.0.2"}
        assert ips(ep, port=8080) == {"10.1.0.1", "10.1.0.3"}
        subset = next(s for s in ep["subsets"] if "10.1.0.3" in {a["ip"] for a in s.get("addresses") or []})
        assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        address = subset["addresses"][0]
        assert address["nodeName"] == "node-1"
        assert address["targetRef"]["kind"] == "Pod" and address["targetRef"]["name"] == "web-c"
        assert address["targetRef"]["uid"]

        # Becoming ready moves the pod to addresses, within a second.
        await set_ready(c.client, "web-b", "10.1.0.2", True)
        await watch.wait_for(lambda: ips(watch.get("web", NS)) == {"10.1.0.1", "10.1.0.2", "10.1.0.3"}
                             and not ips(watch.get("web", NS), "notReadyAddresses"), timeout=1.0)

        # A terminating pod (graceful deletion, not finished: no kubelet) is no endpoint.
        await c.client.resource("v1", "Pod").delete("web-b", NS)
        await watch.wait_for(lambda: "10.1.0.2" not in ips(watch.get("web", NS)), timeout=1.0)
        assert "10.1.0.2" not in ips(watch.get("web", NS), "notReadyAddresses")

        # A pod that goes away leaves, within a second.
        await c.client.resource("v1", "Pod").delete("web-a", NS, grace_period_seconds=0)
        await watch.wait_for(lambda: "10.1.0.1" not in ips(watch.get("web", NS)), timeout=1.0)

        # Labels that stop matching take the pod out too.
        await c.client.resource("v1", "Pod").patch("web-c", {"metadata": {"labels": {"app": "gone"}}}, namespace=NS)
        await watch.wait_for(lambda: watch.get("web", NS) is not None and not ips(watch.get("web", NS)), timeout=1.0)


async def test_publish_not_ready_addresses() -> None:
    async with endpoints_cluster() as (c, watch):
        await c.client.resource("v1", "Service").create(
            service("peers", selector={"app": "web"}, publishNotReadyAddresses=True))
        await start_pod(c.client, pod("web-a"), "10.2.0.1", ready=False)
        await watch.wait_for(lambda: ips(watch.get("peers", NS)) == {"10.2.0.1"})
        assert not ips(watch.get("peers", NS), "notReadyAddresses")


async def test_service_without_selector_keeps_hand_written_endpoints() -> None:
    async with endpoints_cluster() as (c, watch):
        await c.client.resource("v1", "Service").create(service("external", ports=[{"port": 5432}]))
        hand_written = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external", "namespace": NS},
                        "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]}
        await c.client.resource("v1", "Endpoints").create(hand_written)
        # A managed service alongside proves the controller has been running meanwhile.
        await c.client.resource("v1", "Service").create(service("web", selector={"app": "web"}))
        await start_pod(c.client, pod("web-a"), "10.3.0.1", ready=True)
        await watch.wait_for(lambda: ips(watch.get("web", NS)) == {"10.3.0.1"})
        await start_pod(c.client, pod("web-b", {"app": "web", "role": "db"}), "10.3.0.2", ready=True)
        await watch.wait_for(lambda: ips(watch.get("web", NS)) == {"10.3.0.1", "10.3.0.2"})
        assert ips(watch.get("external", NS)) == {"192.0.2.10"}

        # Deleting the selector-less service leaves its hand-written Endpoints alone too.
        await c.client.resource("v1", "Service").delete("external", NS)
        await c.client.resource("v1", "Service").delete("web", NS)
        await watch.wait_for(lambda: watch.get("web", NS) is None)
        assert ips(watch.get("external", NS)) == {"192.0.2.10"}


async def test_deleting_the_service_deletes_its_endpoints() -> None:
    async with endpoints_cluster() as (c, watch):
        await c.client.resource("v1", "Service").create(service(selector={"app": "web"}))
        await start_pod(c.client, pod("web-a"), "10.4.0.1", ready=True)
        await watch.wait_for(lambda: ips(watch.get("web", NS)) == {"10.4.0.1"})
        await c.client.resource("v1", "Service").delete("web", NS)
        await watch.wait_for(lambda: watch.get("web", NS) is None)


async def test_a_service_that_selects_nothing_gets_empty_endpoints_and_edits_are_repaired() -> None:
    async with endpoints_cluster() as (c, watch):
        await c.client.resource("v1", "Service").create(service(selector={"app": "nothing"}))
        await watch.wait_for(lambda: watch.get("web", NS) is not None)
        assert not (watch.get("web", NS) or {}).get("subsets")
        endpoints = c.client.resource("v1", "Endpoints")
        await endpoints.patch("web", {"subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 1}]}]},
                              namespace=NS)
        await watch.wait_for(lambda: not (watch.get("web", NS) or {}).get("subsets"))


@pytest.mark.parametrize("count", [3])
async def test_many_pods_at_once(count: int) -> None:
    async with endpoints_cluster() as (c, watch):
        await c.client.resource("v1", "Service").create(service(selector={"app": "web"}))
        for i in range(count):
            await start_pod(c.client, pod(f"web-{i}"), f"10.5.0.{i + 1}", ready=True)
        await watch.wait_for(lambda: len(ips(watch.get("web", NS))) == count)
