"""Subnet leases: the pure picker, and leases recorded on Nodes through a real API server."""

from __future__ import annotations

import asyncio
import ipaddress
import json

import pytest

from kcore.client import ApiClient
from kcore.config import NetworkConfig
from kcore_cni_flannel.subnets import SubnetExhaustedError, allocate_subnet, lease_subnet


def test_picks_lowest_free_subnet_skipping_the_first() -> None:
    assert allocate_subnet("10.244.0.0/16", 24, set()) == "10.244.1.0/24"
    assert allocate_subnet("10.244.0.0/16", 24, {"10.244.1.0/24", "10.244.2.0/24"}) == "10.244.3.0/24"


def test_preferred_subnet_is_kept_when_free_and_valid() -> None:
    assert allocate_subnet("10.244.0.0/16", 24, set(), preferred="10.244.7.0/24") == "10.244.7.0/24"
    taken = {"10.244.7.0/24"}
    assert allocate_subnet("10.244.0.0/16", 24, taken, preferred="10.244.7.0/24") == "10.244.1.0/24"
    assert allocate_subnet("10.244.0.0/16", 24, set(), preferred="10.99.0.0/24") == "10.244.1.0/24"
    assert allocate_subnet("10.244.0.0/16", 24, set(), preferred="10.244.7.0/25") == "10.244.1.0/24"
    assert allocate_subnet("10.244.0.0/16", 24, set(), preferred="garbage") == "10.244.1.0/24"


def test_overlapping_and_foreign_taken_entries() -> None:
    # A /23 blocks both /24s it covers; out-of-range and malformed entries are ignored.
    taken = {"10.244.0.0/23", "192.168.0.0/24", "nonsense"}
    assert allocate_subnet("10.244.0.0/16", 24, taken) == "10.244.2.0/24"


def test_exhaustion_is_a_clear_error() -> None:
    taken = {f"10.244.0.{i * 64}/26" for i in range(1, 4)}
    with pytest.raises(SubnetExhaustedError, match=r"no free /26 subnet left in cluster CIDR 10.244.0.0/24"):
        allocate_subnet("10.244.0.0/24", 26, taken)


def test_every_subnet_handed_out_once_until_exhausted() -> None:
    taken: set[str] = set()
    for _ in range(15):
        taken.add(allocate_subnet("10.0.0.0/20", 24, taken))
    assert len(taken) == 15
    assert all(ipaddress.ip_network(s).subnet_of(ipaddress.ip_network("10.0.0.0/20")) for s in taken)
    with pytest.raises(SubnetExhaustedError):
        allocate_subnet("10.0.0.0/20", 24, taken)


def test_subnet_length_must_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        allocate_subnet("10.244.0.0/16", 8, set())


async def make_node(client: ApiClient, name: str) -> None:
    await client.resource("v1", "Node").create({"metadata": {"name": name}})


async def test_lease_records_subnet_and_annotations(client: ApiClient) -> None:
    await make_node(client, "n1")
    subnet = await lease_subnet(client, "n1", NetworkConfig(), vtep_mac="aa:bb:cc:dd:ee:ff",
                                public_ip="192.0.2.10")
    node = await client.resource("v1", "Node").get("n1")
    assert subnet == node["spec"]["podCIDR"] == "10.244.1.0/24"
    assert node["spec"]["podCIDRs"] == [subnet]
    ann = node["metadata"]["annotations"]
    assert ann["flannel.alpha.coreos.com/backend-type"] == "vxlan"
    assert json.loads(ann["flannel.alpha.coreos.com/backend-data"]) == {"VNI": 1, "VtepMAC": "aa:bb:cc:dd:ee:ff"}
    assert ann["flannel.alpha.coreos.com/public-ip"] == "192.0.2.10"
    assert ann["flannel.alpha.coreos.com/kube-subnet-manager"] == "true"


async def test_restarted_node_keeps_its_subnet(client: ApiClient) -> None:
    for name in ("a", "b"):
        await make_node(client, name)
    first = await lease_subnet(client, "b", {"cluster_cidr": "10.244.0.0/16"})
    await lease_subnet(client, "a", {})
    assert await lease_subnet(client, "b", {}) == first


async def test_deleted_node_returns_its_subnet_to_the_pool(client: ApiClient) -> None:
    settings = {"cluster_cidr": "10.9.0.0/22", "subnet_length": 24}  # 3 usable subnets
    for name in ("a", "b", "c", "d"):
        await make_node(client, name)
    leased = {name: await lease_subnet(client, name, settings) for name in ("a", "b", "c")}
    assert len(set(leased.values())) == 3
    with pytest.raises(SubnetExhaustedError):
        await lease_subnet(client, "d", settings)
    await client.resource("v1", "Node").delete("b")
    assert await lease_subnet(client, "d", settings) == leased["b"]


async def test_twenty_concurrent_joins_never_share_a_subnet(client: ApiClient) -> None:
    names = [f"node-{i:02d}" for i in range(20)]
    await asyncio.gather(*(make_node(client, n) for n in names))
    subnets = await asyncio.gather(*(lease_subnet(client, n, NetworkConfig()) for n in names))
    assert len(set(subnets)) == 20
    items, _ = await client.resource("v1", "Node").list()
    recorded = [n["spec"]["podCIDR"] for n in items]
    assert sorted(recorded) == sorted(subnets)


async def test_concurrent_joins_into_a_small_pool_fail_clearly_when_full(client: ApiClient) -> None:
    settings = {"cluster_cidr": "10.9.0.0/21", "subnet_length": 24}  # 7 usable subnets
    names = [f"n{i}" for i in range(10)]
    await asyncio.gather(*(make_node(client, n) for n in names))
    results = await asyncio.gather(*(lease_subnet(client, n, settings) for n in names), return_exceptions=True)
    won = [r for r in results if isinstance(r, str)]
    lost = [r for r in results if not isinstance(r, str)]
    assert len(won) == len(set(won)) == 7
    assert len(lost) == 3 and all(isinstance(e, SubnetExhaustedError) for e in lost)
