"""The overlay across "hosts": namespaces joined by an underlay bridge, one Flannel per host.

Every network change happens inside namespaces named ``kcore-<purpose>-<hex>-*``
that the test creates (kcore_cni_flannel.lab) and deletes in ``finally``; traffic
goes only to those namespaces' addresses.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from kcore.client import ApiClient
from kcore.config import NetworkConfig
from kcore_cni_flannel.datapath import run_cmd
from kcore_cni_flannel.lab import Host, Lab
from kcore_cni_flannel.plugin import Flannel

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")]

BACKEND_DATA = "flannel.alpha.coreos.com/backend-data"


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    lab = Lab("test-overlay")
    try:
        yield lab
    finally:
        await lab.aclose()
        assert lab.leftovers() == []


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}}


async def make_node(client: ApiClient, host: Host) -> dict[str, Any]:
    return await client.resource("v1", "Node").create(
        {"metadata": {"name": host.name},
         "status": {"addresses": [{"type": "InternalIP", "address": host.ip}]}})


def context(client: ApiClient, host: Host, tmp_path: Path, node_ip: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(client=client, data_dir=tmp_path / host.name, node_name=host.name,
                           node_ip=node_ip or host.ip, node_netns=host.netns)


async def out(*argv: str, netns: str) -> str:
    return (await run_cmd(*argv, netns=netns, check=False))[1]


async def overlay_state(host: Host) -> str:
    return "\n".join([await out("ip", "route", netns=host.netns),
                      await out("ip", "neigh", "show", "dev", "flannel.1", netns=host.netns),
                      await out("bridge", "fdb", "show", "dev", "flannel.1", netns=host.netns)])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check.__name__}")
        await asyncio.sleep(0.05)


async def vtep_of(client: ApiClient, name: str) -> tuple[str, str]:
    node = await client.resource("v1", "Node").get(name)
    return node["spec"]["podCIDR"], json.loads(node["metadata"]["annotations"][BACKEND_DATA])["VtepMAC"]


def peer_lines(subnet: str, mac: str, ip: str) -> list[str]:
    net = subnet.split("/")[0]
    return [f"{subnet} via {net} dev flannel.1 onlink", f"{net} lladdr {mac} PERMANENT",
            f"{mac} dst {ip} self permanent"]


async def has_peer(host: Host, subnet: str, mac: str, ip: str) -> bool:
    state = await overlay_state(host)
    return all(line in state for line in peer_lines(subnet, mac, ip))


async def has_no_trace(host: Host, subnet: str, mac: str) -> bool:
    state = await overlay_state(host)
    return subnet not in state and subnet.split("/")[0] not in state and mac not in state


async def test_pods_on_three_hosts_talk_through_the_vxlan_overlay(
        lab: Lab, client: ApiClient, tmp_path: Path) -> None:
    hosts = [await lab.add_host(i) for i in (1, 2, 3)]
    plugins: dict[str, Flannel] = {}
    try:
        for host in hosts:
            node = await make_node(client, host)
            plugins[host.name] = Flannel()
            await plugins[host.name].kcore_cni_setup_node(
                settings=NetworkConfig(), node=node, context=context(client, host, tmp_path))
        vteps = {h.name: await vtep_of(client, h.name) for h in hosts}
        assert sorted(s for s, _ in vteps.values()) == ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"]

        # Each host's VTEP: the MAC in its Node, its subnet's .0/32, underlay MTU - 50, no learning.
        for host in hosts:
            subnet, mac = vteps[host.name]
            link = await out("ip", "-d", "link", "show", "dev", "flannel.1", netns=host.netns)
            assert f"link/ether {mac}" in link and "mtu 1450" in link
            assert f"vxlan id 1 local {host.ip} dev eth0" in link
            assert "dstport 8472" in link and "nolearning" in link
            addrs = await out("ip", "-o", "-4", "addr", "show", "dev", "flannel.1", netns=host.netns)
            assert f"inet {subnet.split('/')[0]}/32" in addrs
            assert (await out("sysctl", "-n", "net.ipv4.ip_forward", netns=host.netns)).strip() == "1"
            nat = await out("iptables", "-t", "nat", "-S", netns=host.netns)
            assert "-A POSTROUTING -j KCORE-FLANNEL-POSTRTG" in nat
            assert "-A KCORE-FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16" in nat
            assert "MASQUERADE --random-fully" in nat
            assert "-A FORWARD -j KCORE-FLANNEL-FWD" in await out("iptables", "-S", netns=host.netns)

        # Every host learns every other host (the first ones through the watch).
        for host in hosts:
            for other in hosts:
                if other is not host:
                    subnet, mac = vteps[other.name]
                    await eventually(lambda h=host, s=subnet, m=mac, ip=other.ip: has_peer(h, s, m, ip))

        # A pod per host; HTTP across hosts, both ways, by pod IP.
        pods: dict[str, tuple[str, str]] = {}
        for host in hosts:
            pod_ns = await lab.add_netns(f"{host.name}-pod")
            result = await plugins[host.name].kcore_cni_add(
                pod=pod(host.name), netns=pod_ns, context=context(client, host, tmp_path))
            address = result["ips"][0]["address"].split("/")[0]
            assert address.startswith(vteps[host.name][0].rsplit(".", 2)[0])
            assert "mtu 1450" in await out("ip", "link", "show", "dev", "eth0", netns=pod_ns)
            pods[host.name] = (pod_ns, address)
            await lab.serve_http(pod_ns, address)
        for src, dst in (("h1", "h2"), ("h2", "h1"), ("h3", "h1"), ("h1", "h3")):
            body = await lab.http_get(pods[src][0], f"http://{pods[dst][1]}:8080/")
            assert body == f"hello from {pods[dst][0]}", (src, dst, body)

        # h2 "restarts": the agent stops (entries stay), its VTEP is lost (new MAC);
        # the new agent re-announces it and the other hosts follow the change.
        old_mac = vteps["h2"][1]
        await plugins["h2"].kcore_cni_stop_node(context=None)
        assert plugins["h2"].watch is None
        assert await has_peer(hosts[1], *vteps["h1"], hosts[0].ip)  # data path kept
        await run_cmd("ip", "link", "del", "flannel.1", netns=hosts[1].netns)
        plugins["h2"] = Flannel()
        node2 = await client.resource("v1", "Node").get("h2")
        await plugins["h2"].kcore_cni_setup_node(
            settings=NetworkConfig(), node=node2, context=context(client, hosts[1], tmp_path))
        vteps["h2"] = await vtep_of(client, "h2")
        assert vteps["h2"][1] != old_mac
        nat = await out("iptables", "-t", "nat", "-S", netns=hosts[1].netns)
        assert nat.count("-j KCORE-FLANNEL-POSTRTG") == 1 and nat.count("-A KCORE-FLANNEL-POSTRTG") == 2
        for host in (hosts[0], hosts[2]):
            await eventually(lambda h=host: has_peer(h, *vteps["h2"], hosts[1].ip))
            assert old_mac not in await overlay_state(host)
        assert await plugins["h2"].kcore_cni_check(pod=pod("h2"), netns=pods["h2"][0], context=None)
        body = await lab.http_get(pods["h1"][0], f"http://{pods['h2'][1]}:8080/")
        assert body == f"hello from {pods['h2'][0]}"

        # Node h3 deleted: its route, neighbour and FDB entry go away on h1 and h2.
        await client.resource("v1", "Node").delete("h3")
        for host in hosts[:2]:
            await eventually(lambda h=host: has_no_trace(h, *vteps["h3"]))
        assert await has_peer(hosts[0], *vteps["h2"], hosts[1].ip)

        # Teardown leaves nothing node-level behind.
        for host in hosts:
            plugin = plugins.pop(host.name)
            await plugin.kcore_cni_del(pod=pod(host.name), netns=pods[host.name][0], context=None)
            await plugin.kcore_cni_teardown_node(context=None)
            assert plugin.watch is None
            links = await out("ip", "-o", "link", "show", netns=host.netns)
            assert "flannel.1" not in links and "cni0" not in links and "veth" not in links
            assert "10.244." not in await out("ip", "route", netns=host.netns)
            rules = await out("iptables", "-S", netns=host.netns) + await out(
                "iptables", "-t", "nat", "-S", netns=host.netns)
            assert "KCORE-FLANNEL" not in rules
            if host.name != "h2":  # h2's second agent found forwarding on already
                assert (await out("sysctl", "-n", "net.ipv4.ip_forward", netns=host.netns)).strip() == "0"
    finally:
        for plugin in plugins.values():
            await plugin.kcore_cni_teardown_node(context=None)


async def test_host_gw_routes_via_peer_addresses(lab: Lab, client: ApiClient, tmp_path: Path) -> None:
    hosts = [await lab.add_host(i) for i in (1, 2)]
    settings = {"cluster_cidr": "10.244.0.0/16", "backend": "host-gw"}
    plugins: list[Flannel] = []
    try:
        pods = []
        for host in hosts:
            plugin = Flannel()
            plugins.append(plugin)
            await plugin.kcore_cni_setup_node(settings=settings, node=await make_node(client, host),
                                              context=context(client, host, tmp_path))
            pod_ns = await lab.add_netns(f"{host.name}-pod")
            result = await plugin.kcore_cni_add(pod=pod(host.name), netns=pod_ns, context=None)
            pods.append((pod_ns, result["ips"][0]["address"].split("/")[0]))
            assert "flannel.1" not in await out("ip", "link", netns=host.netns)
            assert "mtu 1500" in await out("ip", "link", "show", "dev", "eth0", netns=pod_ns)

        async def routed() -> bool:
            return ("10.244.2.0/24 via 192.168.77.2 dev eth0" in await out("ip", "route", netns=hosts[0].netns)
                    and "10.244.1.0/24 via 192.168.77.1 dev eth0" in await out("ip", "route", netns=hosts[1].netns))

        await eventually(routed)
        await lab.serve_http(pods[1][0], pods[1][1])
        assert await lab.http_get(pods[0][0], f"http://{pods[1][1]}:8080/") == f"hello from {pods[1][0]}"

        await client.resource("v1", "Node").delete("h2")

        async def unrouted() -> bool:
            return "10.244.2.0/24" not in await out("ip", "route", netns=hosts[0].netns)

        await eventually(unrouted)
        for plugin, host in zip(plugins, hosts, strict=True):
            await plugin.kcore_cni_teardown_node(context=None)
            assert "10.244." not in await out("ip", "route", netns=host.netns)
        plugins.clear()
    finally:
        for plugin in plugins:
            await plugin.kcore_cni_teardown_node(context=None)


async def test_loopback_node_ip_skips_the_vxlan_device(lab: Lab, client: ApiClient, tmp_path: Path) -> None:
    host = await lab.add_host(1)
    node = await client.resource("v1", "Node").create({"metadata": {"name": host.name}})
    plugin = Flannel()
    try:
        with capture_logs() as logs:
            await plugin.kcore_cni_setup_node(settings={}, node=node,
                                              context=context(client, host, tmp_path, node_ip="127.0.0.1"))
        assert [e for e in logs if "loopback" in e["event"]], logs
        links = await out("ip", "-o", "link", "show", netns=host.netns)
        assert "flannel.1" not in links and "cni0" in links
        assert plugin.watch is None
        pods = []
        for name in ("a", "b"):
            pod_ns = await lab.add_netns(f"pod-{name}")
            result = await plugin.kcore_cni_add(pod=pod(name), netns=pod_ns, context=None)
            pods.append((pod_ns, result["ips"][0]["address"].split("/")[0]))
        await lab.serve_http(pods[1][0], pods[1][1])
        assert await lab.http_get(pods[0][0], f"http://{pods[1][1]}:8080/") == f"hello from {pods[1][0]}"
    finally:
        await plugin.kcore_cni_teardown_node(context=None)
    assert "cni0" not in await out("ip", "-o", "link", "show", netns=host.netns)


async def test_fifty_concurrent_add_del_cycles_never_share_an_address(
        lab: Lab, client: ApiClient, tmp_path: Path) -> None:
    host = await lab.add_host(1)
    plugin = Flannel()
    ctx = context(client, host, tmp_path)
    settings = {"cluster_cidr": "10.244.0.0/16", "subnet_length": 27}  # 29 pod addresses for 12 at once
    await plugin.kcore_cni_setup_node(settings=settings, node=await make_node(client, host), context=ctx)
    holders: dict[str, str] = {}
    errors: list[str] = []
    spaces = [await lab.add_netns(f"c{i}") for i in range(50)]
    gate = asyncio.Semaphore(12)

    async def cycle(i: int) -> None:
        async with gate:
            name = f"cycle-{i}"
            result = await plugin.kcore_cni_add(pod=pod(name), netns=spaces[i], context=ctx)
            address = result["ips"][0]["address"].split("/")[0]
            if address in holders:
                errors.append(f"{address} handed to {name} while {holders[address]} holds it")
            holders[address] = name
            addrs = await out("ip", "-o", "-4", "addr", "show", "dev", "eth0", netns=spaces[i])
            if f"inet {address}/27" not in addrs:
                errors.append(f"{name}: {address} not on eth0: {addrs!r}")
            await asyncio.sleep(random.random() / 50)
            del holders[address]
            await plugin.kcore_cni_del(pod=pod(name), netns=spaces[i], context=ctx)
            if await plugin.kcore_cni_check(pod=pod(name), netns=spaces[i], context=ctx):
                errors.append(f"{name}: still wired after DEL")

    try:
        await asyncio.gather(*(cycle(i) for i in range(50)))
        assert errors == []
        assert plugin.ipam is not None and plugin.ipam.allocations() == {}
        assert "veth" not in await out("ip", "-o", "link", "show", netns=host.netns)
    finally:
        await plugin.kcore_cni_teardown_node(context=ctx)
