"""build_state: Services + EndpointSlices -> ProxyState (table tests, no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from kcore.proxy.framework import build_state
from kcore.proxy.state import Endpoint, ServicePort


def svc(name: str = "web", ns: str = "default", *, cluster_ip: str | None = "10.96.0.10",
        ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}]}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    body.update(spec)
    return {"metadata": {"name": name, "namespace": ns}, "spec": body}


def ep(ip: str | None, *, ready: bool | None = True, serving: bool | None = None,
       terminating: bool | None = None, node: str | None = None, pod: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"addresses": [ip] if ip else []}
    cond: dict[str, Any] = {}
    if ready is not None:
        cond["ready"] = ready
    if serving is not None:
        cond["serving"] = serving
    if terminating is not None:
        cond["terminating"] = terminating
    out["conditions"] = cond
    if node:
        out["nodeName"] = node
    if pod:
        out["targetRef"] = {"kind": "Pod", "name": pod}
    return out


def eps(service: str = "web", ns: str = "default", *, endpoints: list[dict[str, Any]],
        ports: list[dict[str, Any]] | None = None, name: str | None = None,
        address_type: str = "IPv4") -> dict[str, Any]:
    return {"metadata": {"name": name or f"{service}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": address_type, "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def state(services: list[dict[str, Any]], slices: list[dict[str, Any]] = ()) -> tuple[ServicePort, ...]:  # type: ignore[assignment]
    return build_state(services, list(slices), node_name="n1", node_ips=["127.0.0.1"]).services


def test_basic_service_with_endpoints() -> None:
    (sp,) = state([svc()], [eps(endpoints=[ep("10.244.0.5", node="n1", pod="web-1"), ep("10.244.0.4")])])
    assert sp == ServicePort(
        namespace="default", name="web", port_name="http", protocol="TCP", cluster_ip="10.96.0.10", port=80,
        endpoints=(Endpoint("10.244.0.4", 8080), Endpoint("10.244.0.5", 8080, node_name="n1", pod="default/web-1")),
    )
    assert sp.key == "default/web:http"


@pytest.mark.parametrize("service", [
    svc(cluster_ip="None"),
    svc(cluster_ip=None),
    svc(cluster_ip=""),
    svc(type="ExternalName", externalName="example.com"),
], ids=["headless", "no-cluster-ip", "empty-cluster-ip", "external-name"])
def test_services_without_a_cluster_ip_are_skipped(service: dict[str, Any]) -> None:
    assert state([service], [eps(endpoints=[ep("10.244.0.5")])]) == ()


@pytest.mark.parametrize(("conditions", "expected"), [
    ({"ready": True}, (True, True, False)),
    ({"ready": False}, (False, False, False)),
    ({"ready": None}, (True, True, False)),  # absent ready means ready
    ({"ready": False, "serving": True, "terminating": True}, (False, True, True)),
    ({"ready": False, "serving": False, "terminating": True}, (False, False, True)),
])
def test_conditions(conditions: dict[str, Any], expected: tuple[bool, bool, bool]) -> None:
    (sp,) = state([svc()], [eps(endpoints=[ep("10.244.0.5", **conditions)])])
    (e,) = sp.endpoints
    assert (e.ready, e.serving, e.terminating) == expected


def test_ports_matched_by_name_across_multi_port_service() -> None:
    service = svc(ports=[{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}])
    slices = [eps(endpoints=[ep("10.244.0.5")], ports=[{"name": "dns", "port": 5353, "protocol": "UDP"},
                                                         {"name": "http", "port": 8080}])]
    by_key = {sp.key: sp for sp in state([service], slices)}
    assert by_key["default/web:http"].protocol == "TCP"
    assert [(e.ip, e.port) for e in by_key["default/web:http"].endpoints] == [("10.244.0.5", 8080)]
    assert by_key["default/web:dns"].protocol == "UDP"
    assert [(e.ip, e.port) for e in by_key["default/web:dns"].endpoints] == [("10.244.0.5", 5353)]


def test_unnamed_port_matches_unnamed_slice_port_only() -> None:
    service = svc(ports=[{"port": 80}])
    (sp,) = state([service], [eps(endpoints=[ep("10.244.0.5")], ports=[{"port": 9000}]),
                              eps(endpoints=[ep("10.244.0.6")], name="web-other")])  # named "http": no match
    assert sp.port_name == ""
    assert [(e.ip, e.port) for e in sp.endpoints] == [("10.244.0.5", 9000)]


@pytest.mark.parametrize(("slice_", "expected"), [
    (eps("other", endpoints=[ep("10.244.0.5")]), []),  # another service's slice
    (eps("web", "prod", endpoints=[ep("10.244.0.5")]), []),  # same name, other namespace
    (eps(endpoints=[ep(None), ep("10.244.0.6")]), [("10.244.0.6", 8080)]),  # no addresses: skipped
    (eps(endpoints=[ep("web.example.com")], address_type="FQDN"), []),
    ({"metadata": {"name": "x", "namespace": "default"}, "endpoints": [ep("10.244.0.5")],
      "ports": [{"name": "http", "port": 8080}]}, []),  # no service-name label
], ids=["other-service", "other-namespace", "no-addresses", "fqdn", "unlabelled"])
def test_slice_matching(slice_: dict[str, Any], expected: list[tuple[str, int]]) -> None:
    (sp,) = state([svc()], [slice_])
    assert [(e.ip, e.port) for e in sp.endpoints] == expected


def test_endpoints_from_several_slices_merge_and_dedupe() -> None:
    (sp,) = state([svc()], [eps(endpoints=[ep("10.244.0.5"), ep("10.244.0.6")], name="web-a"),
                            eps(endpoints=[ep("10.244.0.6"), ep("10.244.0.7")], name="web-b")])
    assert [e.ip for e in sp.endpoints] == ["10.244.0.5", "10.244.0.6", "10.244.0.7"]


@pytest.mark.parametrize(("spec", "field", "value"), [
    ({"sessionAffinity": "ClientIP"}, "session_affinity", True),
    ({"sessionAffinity": "ClientIP"}, "affinity_timeout_seconds", 10800),
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
     "affinity_timeout_seconds", 60),
    ({"sessionAffinity": "None"}, "session_affinity", False),
    ({"externalIPs": ["192.0.2.1", "192.0.2.2"]}, "external_ips", ("192.0.2.1", "192.0.2.2")),
    ({"externalTrafficPolicy": "Local"}, "external_traffic_local", True),
    ({"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}, "node_port", 30080),
    ({"ports": [{"name": "http", "port": 80}]}, "node_port", None),
    ({"ports": [{"name": "http", "port": 80, "protocol": "SCTP"}]}, "protocol", "SCTP"),
    ({"ports": [{"name": "http", "port": 80}]}, "protocol", "TCP"),
])
def test_service_fields(spec: dict[str, Any], field: str, value: Any) -> None:
    (sp,) = state([svc(**spec)])
    assert getattr(sp, field) == value


def test_load_balancer_ips_from_status() -> None:
    service = svc(type="LoadBalancer")
    service["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example"}]}}
    (sp,) = state([service])
    assert sp.load_balancer_ips == ("203.0.113.7",)


def test_state_carries_node_and_is_sorted() -> None:
    result = build_state([svc("b"), svc("a", "z"), svc("a")], [], node_name="n1",
                         node_ips=["127.0.0.1", "::1"], cluster_cidr="10.244.0.0/16", generation=3)
    assert [sp.key for sp in result.services] == ["default/a:http", "default/b:http", "z/a:http"]
    assert (result.node_name, result.node_ips, result.cluster_cidr, result.generation) == (
        "n1", ("127.0.0.1", "::1"), "10.244.0.0/16", 3)
    assert all(sp.endpoints == () for sp in result.services)
