"""Service ClusterIP and NodePort allocation, LoadBalancer status, the `kubernetes` Service."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import aiohttp
from support.api import Api

from kcore.apiserver.resources import object_key
from kcore.apiserver.server import ApiServer
from kcore.config import ApiServerConfig
from kcore.store.memory import MemoryStore

SERVICES = "/api/v1/namespaces/default/services"
CIDR = ipaddress.ip_network("10.96.0.0/12")


def service(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80, "targetPort": 8080}])
    spec.setdefault("selector", {"app": name})
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def create(api: Api, body: dict[str, Any]) -> Any:
    reply = await api.post(SERVICES, body)
    assert reply.status == 201, reply.body
    return reply.body


async def allocation_keys(server: ApiServer, prefix: str) -> list[str]:
    page = await server.store.list(prefix)
    return [kv.key.removeprefix(prefix) for kv in page.items]


# ---------------------------------------------------------------- cluster IPs


async def test_cluster_ip_allocated_from_the_cidr(api: Api) -> None:
    svc = await create(api, service("web"))
    spec = svc["spec"]
    ip = ipaddress.ip_address(spec["clusterIP"])
    assert ip in CIDR and ip not in (CIDR.network_address, CIDR.network_address + 1, CIDR.broadcast_address)
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert svc["status"] == {"loadBalancer": {}}
    assert spec["clusterIP"] in await allocation_keys(api.server, "/registry/ranges/serviceips/")
    got = await api.get(f"{SERVICES}/web")
    assert got.body["spec"]["clusterIP"] == spec["clusterIP"]


async def test_explicit_cluster_ip_honoured(api: Api) -> None:
    svc = await create(api, service("fixed", clusterIP="10.96.100.100"))
    assert svc["spec"]["clusterIP"] == "10.96.100.100"
    assert svc["spec"]["clusterIPs"] == ["10.96.100.100"]


async def test_explicit_cluster_ip_out_of_range(api: Api) -> None:
    reply = await api.post(SERVICES, service("outside", clusterIP="10.0.0.1"))
    assert reply.status == 422 and reply.body["reason"] == "Invalid"
    assert 'spec.clusterIP: Invalid value: "10.0.0.1": the provided IP (10.0.0.1) is not in the ' \
           'valid range. The range of valid IPs is 10.96.0.0/12' in reply.body["message"]
    assert (await api.get(f"{SERVICES}/outside")).status == 404


async def test_explicit_cluster_ip_taken(api: Api) -> None:
    await create(api, service("first", clusterIP="10.96.0.50"))
    reply = await api.post(SERVICES, service("second", clusterIP="10.96.0.50"))
    assert reply.status == 422
    assert 'spec.clusterIP: Invalid value: "10.96.0.50": provided IP is already allocated' \
        in reply.body["message"]
    # the kubernetes Service holds the first address
    reply = await api.post(SERVICES, service("third", clusterIP="10.96.0.1"))
    assert reply.status == 422 and "already allocated" in reply.body["message"]


async def test_headless_and_external_name_get_no_ip(api: Api) -> None:
    before = await allocation_keys(api.server, "/registry/ranges/serviceips/")
    headless = await create(api, service("headless", clusterIP="None"))
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["clusterIPs"] == ["None"]
    external = await create(api, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                                  "spec": {"type": "ExternalName", "externalName": "example.com"}})
    assert "clusterIP" not in external["spec"] and "clusterIPs" not in external["spec"]
    assert await allocation_keys(api.server, "/registry/ranges/serviceips/") == before


async def test_release_on_delete(api: Api) -> None:
    svc = await create(api, service("gone", type="NodePort",
                                    ports=[{"port": 80, "nodePort": 30080}], clusterIP="10.96.7.7"))
    assert svc["spec"]["ports"][0]["nodePort"] == 30080
    assert (await api.delete(f"{SERVICES}/gone")).status == 200
    assert "10.96.7.7" not in await allocation_keys(api.server, "/registry/ranges/serviceips/")
    assert "30080" not in await allocation_keys(api.server, "/registry/ranges/servicenodeports/")
    again = await create(api, service("again", type="NodePort",
                                      ports=[{"port": 80, "nodePort": 30080}], clusterIP="10.96.7.7"))
    assert again["spec"]["clusterIP"] == "10.96.7.7"
    assert again["spec"]["ports"][0]["nodePort"] == 30080


async def test_failed_create_releases_allocations(api: Api) -> None:
    await create(api, service("dup"))
    ips = await allocation_keys(api.server, "/registry/ranges/serviceips/")
    ports = await allocation_keys(api.server, "/registry/ranges/servicenodeports/")
    reply = await api.post(SERVICES, service("dup", type="NodePort", clusterIP="10.96.9.9"))
    assert reply.status == 409
    assert await allocation_keys(api.server, "/registry/ranges/serviceips/") == ips
    assert await allocation_keys(api.server, "/registry/ranges/servicenodeports/") == ports
    # a taken node port fails the create after the IP was claimed: the IP goes back
    await create(api, service("holder", type="NodePort", ports=[{"port": 80, "nodePort": 30500}]))
    ips = await allocation_keys(api.server, "/registry/ranges/serviceips/")
    reply = await api.post(SERVICES, service("loser", type="NodePort", clusterIP="10.96.9.10",
                                             ports=[{"port": 80, "nodePort": 30500}]))
    assert reply.status == 422
    assert await allocation_keys(api.server, "/registry/ranges/serviceips/") == ips


async def test_dry_run_allocates_nothing(api: Api) -> None:
    before = await allocation_keys(api.server, "/registry/ranges/")
    reply = await api.post(SERVICES + "?dryRun=All", service("dry", type="NodePort"))
    assert reply.status == 201, reply.body
    assert ipaddress.ip_address(reply.body["spec"]["clusterIP"]) in CIDR
    assert reply.body["spec"]["ports"][0]["nodePort"]
    assert await allocation_keys(api.server, "/registry/ranges/") == before


async def test_concurrent_creates_get_distinct_ips_and_ports(api: Api) -> None:
    replies = await asyncio.gather(*(api.post(SERVICES, service(f"c{i}", type="NodePort"))
                                     for i in range(50)))
    assert all(r.status == 201 for r in replies), [r.body for r in replies if r.status != 201]
    ips = {r.body["spec"]["clusterIP"] for r in replies}
    ports = {r.body["spec"]["ports"][0]["nodePort"] for r in replies}
    assert len(ips) == 50 and len(ports) == 50


async def test_concurrent_creates_in_a_small_range() -> None:
    """A /27 has 29 addresses automatic picks may use: 29 creates all fit, the 30th fails."""
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True),
                       service_cidr="10.0.0.0/27", node_port_range="30000-30100")
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(server, session)
            replies = await asyncio.gather(*(api.post(SERVICES, service(f"s{i}")) for i in range(29)))
            assert [r.status for r in replies] == [201] * 29
            ips = {r.body["spec"]["clusterIP"] for r in replies}
            assert len(ips) == 29 and "10.0.0.1" not in ips and "10.0.0.0" not in ips
            full = await api.post(SERVICES, service("one-too-many"))
            assert full.status == 500 and "range is full" in full.body["message"]
    finally:
        await server.stop()
        await store.close()


async def test_cluster_ip_is_immutable(api: Api) -> None:
    svc = await create(api, service("imm"))
    svc["spec"]["clusterIP"] = "10.96.55.55"
    svc["spec"]["clusterIPs"] = ["10.96.55.55"]
    reply = await api.put(f"{SERVICES}/imm", svc)
    assert reply.status == 422
    assert 'spec.clusterIP: Invalid value: "10.96.55.55": field is immutable' in reply.body["message"]
    assert "10.96.55.55" not in await allocation_keys(api.server, "/registry/ranges/serviceips/")


async def test_put_without_cluster_ip_keeps_it(api: Api) -> None:
    svc = await create(api, service("keep", type="NodePort"))
    body = service("keep", type="NodePort")  # the original manifest: no clusterIP, no nodePort
    body["metadata"]["resourceVersion"] = svc["metadata"]["resourceVersion"]
    reply = await api.put(f"{SERVICES}/keep", body)
    assert reply.status == 200, reply.body
    assert reply.body["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    assert reply.body["spec"]["ports"][0]["nodePort"] == svc["spec"]["ports"][0]["nodePort"]


async def test_change_to_external_name_releases_ip(api: Api) -> None:
    svc = await create(api, service("switch", type="NodePort"))
    ip, node_port = svc["spec"]["clusterIP"], str(svc["spec"]["ports"][0]["nodePort"])
    reply = await api.patch(f"{SERVICES}/switch",
                            {"spec": {"type": "ExternalName", "externalName": "example.com",
                                      "clusterIP": "", "clusterIPs": None, "selector": None}},
                            "application/merge-patch+json")
    assert reply.status == 200, reply.body
    assert "clusterIP" not in reply.body["spec"]
    assert "nodePort" not in reply.body["spec"]["ports"][0]
    assert ip not in await allocation_keys(api.server, "/registry/ranges/serviceips/")
    assert node_port not in await allocation_keys(api.server, "/registry/ranges/servicenodeports/")
    back = await api.patch(f"{SERVICES}/switch",
                           {"spec": {"type": "ClusterIP", "externalName": None, "selector": {"a": "b"}}},
                           "application/merge-patch+json")
    assert back.status == 200, back.body
    assert ipaddress.ip_address(back.body["spec"]["clusterIP"]) in CIDR


# ---------------------------------------------------------------- node ports


async def test_node_port_auto_and_explicit(api: Api) -> None:
    svc = await create(api, service("np", type="NodePort", ports=[
        {"name": "a", "port": 80}, {"name": "b", "port": 81, "nodePort": 30123}]))
    auto, explicit = (p["nodePort"] for p in svc["spec"]["ports"])
    assert 30000 <= auto <= 32767 and auto != 30123 and explicit == 30123
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"
    held = await allocation_keys(api.server, "/registry/ranges/servicenodeports/")
    assert {str(auto), "30123"} <= set(held)


async def test_node_port_taken_and_out_of_range(api: Api) -> None:
    await create(api, service("owner", type="NodePort", ports=[{"port": 80, "nodePort": 30200}]))
    taken = await api.post(SERVICES, service("taker", type="NodePort",
                                             ports=[{"port": 80, "nodePort": 30200}]))
    assert taken.status == 422
    assert "spec.ports[0].nodePort: Invalid value: 30200: provided port is already allocated" \
        in taken.body["message"]
    outside = await api.post(SERVICES, service("outside", type="NodePort",
                                               ports=[{"port": 80, "nodePort": 8080}]))
    assert outside.status == 422
    assert ("spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. "
            "The range of valid ports is 30000-32767") in outside.body["message"]


async def test_apply_style_update_keeps_node_port(api: Api) -> None:
    applied = service("applied", type="NodePort", ports=[{"name": "http", "port": 80}])
    ssa = "application/apply-patch+yaml"
    first = await api.patch(f"{SERVICES}/applied?fieldManager=kubectl", applied, ssa)
    assert first.status == 201, first.body
    node_port = first.body["spec"]["ports"][0]["nodePort"]
    applied["spec"]["ports"].append({"name": "https", "port": 443})
    second = await api.patch(f"{SERVICES}/applied?fieldManager=kubectl", applied, ssa)
    assert second.status == 200, second.body
    ports = {p["name"]: p["nodePort"] for p in second.body["spec"]["ports"]}
    assert ports["http"] == node_port and ports["https"] != node_port
    assert second.body["spec"]["clusterIP"] == first.body["spec"]["clusterIP"]
    # client-side apply sends a strategic merge patch without nodePort
    third = await api.patch(f"{SERVICES}/applied",
                            {"spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                                                {"$patch": "delete", "port": 443}],
                                      "$setElementOrder/ports": [{"port": 80}]}},
                            "application/strategic-merge-patch+json")
    assert third.status == 200, third.body
    assert [p["nodePort"] for p in third.body["spec"]["ports"]] == [node_port]
    held = await allocation_keys(api.server, "/registry/ranges/servicenodeports/")
    assert str(ports["https"]) not in held and str(node_port) in held


async def test_type_change_to_cluster_ip_releases_node_ports(api: Api) -> None:
    svc = await create(api, service("down", type="NodePort"))
    node_port = str(svc["spec"]["ports"][0]["nodePort"])
    reply = await api.patch(f"{SERVICES}/down", {"spec": {"type": "ClusterIP"}},
                            "application/merge-patch+json")
    assert reply.status == 200, reply.body
    assert "nodePort" not in reply.body["spec"]["ports"][0]
    assert reply.body["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    assert node_port not in await allocation_keys(api.server, "/registry/ranges/servicenodeports/")


# ---------------------------------------------------------------- LoadBalancer


async def test_load_balancer_gets_node_ports_and_ingress(api: Api) -> None:
    svc = await create(api, service("lb", type="LoadBalancer"))
    assert svc["spec"]["ports"][0]["nodePort"]
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1", "ipMode": "VIP"}]
    table = await api.get(f"{SERVICES}/lb", headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    row = table.body["rows"][0]["cells"]
    assert row[3] == "127.0.0.1"  # EXTERNAL-IP
    no_ports = await create(api, service("lb2", type="LoadBalancer", allocateLoadBalancerNodePorts=False))
    assert "nodePort" not in no_ports["spec"]["ports"][0]
    down = await api.patch(f"{SERVICES}/lb", {"spec": {"type": "ClusterIP"}}, "application/merge-patch+json")
    assert down.status == 200, down.body
    assert down.body["status"] == {"loadBalancer": {}}


# ---------------------------------------------------------------- the kubernetes Service


async def test_kubernetes_service_and_endpoints(api: Api) -> None:
    svc = (await api.get(f"{SERVICES}/kubernetes")).body
    assert svc["spec"]["clusterIP"] == "10.96.0.1"
    assert svc["spec"]["ports"] == [{"name": "https", "protocol": "TCP", "port": 443,
                                     "targetPort": api.server.port}]
    assert "selector" not in svc["spec"]
    endpoints = (await api.get("/api/v1/namespaces/default/endpoints/kubernetes")).body
    assert endpoints["subsets"] == [{"addresses": [{"ip": "127.0.0.1"}],
                                     "ports": [{"name": "https", "port": api.server.port, "protocol": "TCP"}]}]
    slices = (await api.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
                            "?labelSelector=kubernetes.io/service-name%3Dkubernetes")).body["items"]
    assert len(slices) == 1 and slices[0]["endpoints"][0]["addresses"] == ["127.0.0.1"]
    assert slices[0]["ports"][0]["port"] == api.server.port


async def test_restart_keeps_allocations_and_updates_kubernetes_port() -> None:
    store = MemoryStore()
    config = ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True)
    first = ApiServer(store, config=config)
    await first.start()
    async with aiohttp.ClientSession() as session:
        api = Api(first, session)
        svc = await create(api, service("survivor", type="NodePort"))
        ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    await first.stop()
    kubernetes = await first.resources.get(first.registry.get("v1", "Service"), "default", "kubernetes")
    assert kubernetes["spec"]["ports"][0]["targetPort"] == first.port
    second = ApiServer(store, config=config)
    await second.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(second, session)
            taken_ip = await api.post(SERVICES, service("copy", clusterIP=ip))
            assert taken_ip.status == 422 and "already allocated" in taken_ip.body["message"]
            taken_port = await api.post(SERVICES, service("copy", type="NodePort",
                                                          ports=[{"port": 80, "nodePort": node_port}]))
            assert taken_port.status == 422 and "already allocated" in taken_port.body["message"]
            kube = (await api.get(f"{SERVICES}/kubernetes")).body
            assert kube["spec"]["ports"][0]["targetPort"] == second.port
            assert kube["spec"]["clusterIP"] == "10.96.0.1"
            endpoints = (await api.get("/api/v1/namespaces/default/endpoints/kubernetes")).body
            assert endpoints["subsets"][0]["ports"][0]["port"] == second.port
            assert (await api.delete(f"{SERVICES}/survivor")).status == 200
            again = await api.post(SERVICES, service("copy", clusterIP=ip))
            assert again.status == 201, again.body
    finally:
        await second.stop()
        await store.close()


async def test_two_api_servers_on_one_store_share_the_ranges() -> None:
    """Allocations are store keys: two servers over one store (started together) never
    hand out the same address or port."""
    store = MemoryStore()
    config = ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True)
    servers = [ApiServer(store, config=config, service_cidr="10.0.0.0/26", node_port_range="30000-30063")
               for _ in range(2)]
    await asyncio.gather(*(s.start() for s in servers))
    try:
        async with aiohttp.ClientSession() as session:
            apis = [Api(s, session) for s in servers]
            replies = await asyncio.gather(*(apis[i % 2].post(SERVICES, service(f"m{i}", type="NodePort"))
                                             for i in range(40)))
            assert all(r.status == 201 for r in replies), [r.body for r in replies if r.status != 201]
            assert len({r.body["spec"]["clusterIP"] for r in replies}) == 40
            assert len({r.body["spec"]["ports"][0]["nodePort"] for r in replies}) == 40
            kube = (await apis[0].get(f"{SERVICES}/kubernetes")).body
            assert kube["spec"]["clusterIP"] == "10.0.0.1"
    finally:
        for s in servers:
            await s.stop()
        await store.close()


async def test_start_restores_missing_allocation_keys() -> None:
    """A Service stored without its allocation keys (an older store) gets them back at start."""
    import orjson

    store = MemoryStore()
    legacy = service("legacy", type="NodePort", clusterIP="10.96.3.3", clusterIPs=["10.96.3.3"],
                     ports=[{"port": 80, "nodePort": 30303, "protocol": "TCP"}])
    legacy["metadata"].update(namespace="default", uid="u-legacy", creationTimestamp="2026-01-01T00:00:00Z")
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True))
    kind = server.registry.get("v1", "Service")
    await store.create(object_key(kind, "default", "legacy"), orjson.dumps(legacy))
    await server.start()
    try:
        assert "10.96.3.3" in await allocation_keys(server, "/registry/ranges/serviceips/")
        assert "30303" in await allocation_keys(server, "/registry/ranges/servicenodeports/")
    finally:
        await server.stop()
        await store.close()


def test_the_advertised_address_follows_a_specific_bind_address() -> None:
    def advertised(**config: Any) -> str:
        return ApiServer(MemoryStore(), config=ApiServerConfig(insecure_http=True, **config)).advertise_address
    assert advertised(bind_address="0.0.0.0") == "127.0.0.1"
    assert advertised(bind_address="192.168.77.1") == "192.168.77.1"
    assert advertised(bind_address="0.0.0.0", advertise_address="10.0.0.5") == "10.0.0.5"
