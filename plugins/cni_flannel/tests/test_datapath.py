"""The bridge data path, built inside network namespaces this test creates and removes.

A namespace ``kcore-test-<random>`` plays the node (bridge ``cni0``), two more play
pods. Traffic goes only between those namespaces' own addresses.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kcore_cni_flannel.datapath import BridgeDatapath, host_veth_name, pod_mac, run_ip
from kcore_cni_flannel.ipam import HostLocalStore

SUBNET = "10.244.1.0/24"

# Network namespaces need root and iproute2, as CI has (scripts/system-packages.sh);
# deselect with -m "not root" elsewhere.
pytestmark = pytest.mark.root

# One ICMP echo over a raw socket (no ping binary needed); exit 0 on a reply.
PING = r"""
import os, socket, struct, sys, time
dst = sys.argv[1]
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
ident = os.getpid() & 0xffff
body = b'kcore-ping'
hdr = struct.pack('!BBHHH', 8, 0, 0, ident, 1)
pkt = struct.pack('!BBHHH', 8, 0, csum(hdr + body), ident, 1) + body
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.5)
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    s.sendto(pkt, (dst, 0))
    try:
        while True:
            data, addr = s.recvfrom(2048)
            icmp = data[(data[0] & 0x0f) * 4:]
            if addr[0] == dst and icmp[0] == 0 and struct.unpack('!H', icmp[4:6])[0] == ident:
                sys.exit(0)
    except socket.timeout:
        continue
sys.exit(1)
"""


@dataclass
class Namespaces:
    prefix: str
    created: list[str]

    def add(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.created.append(name)
        return name


@pytest.fixture
def netns() -> Iterator[Namespaces]:
    spaces = Namespaces(f"kcore-test-{secrets.token_hex(4)}", [])
    try:
        yield spaces
    finally:
        for name in reversed(spaces.created):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
async def node(netns: Namespaces, tmp_path: Path) -> AsyncIterator[tuple[BridgeDatapath, HostLocalStore]]:
    datapath = BridgeDatapath(SUBNET, node_netns=netns.add("node"))
    await datapath.setup()
    try:
        yield datapath, HostLocalStore(tmp_path, SUBNET)
    finally:
        await datapath.teardown()


async def ping(from_netns: str, address: str) -> bool:
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", from_netns, sys.executable, "-c", PING, address)
    return await asyncio.wait_for(proc.wait(), 30) == 0


async def links(netns: str) -> str:
    return (await run_ip("-o", "link", "show", netns=netns))[1]


async def test_two_pods_reach_each_other_and_del_removes_everything(
        netns: Namespaces, node: tuple[BridgeDatapath, HostLocalStore]) -> None:
    datapath, ipam = node
    pods = {}
    for name in ("pa", "pb"):
        pod_ns = netns.add(name)
        address = await asyncio.to_thread(ipam.allocate, f"uid-{name}")
        result = await datapath.add(f"uid-{name}", pod_ns, address)
        assert result["ips"][0] == {"address": f"{address}/24", "gateway": "10.244.1.1", "interface": 1}
        assert await datapath.check(f"uid-{name}", pod_ns, address)
        pods[name] = (pod_ns, address)
    (a_ns, a_ip), (b_ns, b_ip) = pods["pa"], pods["pb"]
    assert (a_ip, b_ip) == ("10.244.1.2", "10.244.1.3")
    routes = (await run_ip("route", "show", "default", netns=a_ns))[1]
    assert "via 10.244.1.1 dev eth0" in routes
    assert "lo" in await links(a_ns) and "LOOPBACK,UP" in await links(a_ns)

    assert await ping(a_ns, b_ip)
    assert await ping(b_ns, a_ip)
    assert await ping(a_ns, "10.244.1.1")  # the gateway on the node's bridge

    # Re-ADD is idempotent: same address, same MAC, still reachable...
    assert await asyncio.to_thread(ipam.allocate, "uid-pa") == a_ip
    again = await datapath.add("uid-pa", a_ns, a_ip)
    assert again["interfaces"][1]["mac"] == pod_mac(a_ip) == "0a:58:0a:f4:01:02"
    # ...and a broken pod network is rebuilt by ADD, keeping its MAC so peers' ARP holds.
    await datapath.delete("uid-pa")
    assert not await datapath.check("uid-pa", a_ns, a_ip)
    await datapath.add("uid-pa", a_ns, a_ip)
    assert await datapath.check("uid-pa", a_ns, a_ip)
    assert await ping(b_ns, a_ip)

    for name, (pod_ns, _) in pods.items():
        await datapath.delete(f"uid-{name}")
        await asyncio.to_thread(ipam.release, f"uid-{name}")
        assert "eth0" not in await links(pod_ns)
        assert host_veth_name(f"uid-{name}") not in await links(datapath.node_netns or "")
        assert not await datapath.check(f"uid-{name}", pod_ns, pods[name][1])
    await datapath.delete("uid-pa")  # DEL twice is fine
    assert ipam.allocations() == {}
    node_links = await links(datapath.node_netns or "")
    assert "veth" not in node_links and "cni0" in node_links


async def test_setup_is_idempotent_and_teardown_removes_the_bridge(netns: Namespaces) -> None:
    datapath = BridgeDatapath(SUBNET, node_netns=netns.add("node"))
    await datapath.setup()
    await datapath.setup()
    addrs = (await run_ip("-o", "addr", "show", "dev", "cni0", netns=datapath.node_netns))[1]
    assert addrs.count("inet 10.244.1.1/24") == 1
    await datapath.teardown()
    await datapath.teardown()
    assert "cni0" not in await links(datapath.node_netns or "")
