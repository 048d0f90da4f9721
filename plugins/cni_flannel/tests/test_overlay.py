"""The overlay's pure parts: peers from Node objects and the route/neigh/fdb planner."""

from __future__ import annotations

import json
from typing import Any

from kcore_cni_flannel.masquerade import chain_rules
from kcore_cni_flannel.overlay import (
    Installed,
    Peer,
    peers_from_nodes,
    plan,
    vtep_address,
    without_own_subnet,
)

DEV = "flannel.1"


def node(name: str, subnet: str | None = None, ip: str | None = None, mac: str | None = None,
         data: Any = None) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if ip:
        annotations["flannel.alpha.coreos.com/public-ip"] = ip
    if data is None and mac:
        data = {"VNI": 1, "VtepMAC": mac}
    if data is not None:
        annotations["flannel.alpha.coreos.com/backend-data"] = data if isinstance(data, str) else json.dumps(data)
    spec = {"podCIDR": subnet} if subnet else {}
    return {"metadata": {"name": name, "annotations": annotations}, "spec": spec}


A = Peer("10.244.2.0/24", "192.168.77.2", "aa:aa:aa:aa:aa:02")
B = Peer("10.244.3.0/24", "192.168.77.3", "aa:aa:aa:aa:aa:03")


def installed_for(*peers: Peer) -> Installed:
    """What the kernel holds after a sync to ``peers``."""
    return Installed(routes={p.subnet: vtep_address(p.subnet) for p in peers},
                     neighbours={vtep_address(p.subnet): str(p.vtep_mac) for p in peers},
                     fdb={str(p.vtep_mac): {p.public_ip} for p in peers})


def test_vtep_address_is_the_subnet_network_address() -> None:
    assert vtep_address("10.244.1.0/24") == "10.244.1.0"


def test_peers_from_nodes_skips_self_and_nodes_not_ready() -> None:
    nodes = [
        node("self", "10.244.1.0/24", "192.168.77.1", "aa:aa:aa:aa:aa:01"),
        node("a", "10.244.2.0/24", "192.168.77.2", "AA:AA:AA:AA:AA:02"),  # MAC normalised
        node("b", "10.244.3.0/24", "192.168.77.3", "aa:aa:aa:aa:aa:03"),
        node("no-lease", None, "192.168.77.4", "aa:aa:aa:aa:aa:04"),
        node("no-backend-data", "10.244.5.0/24", "192.168.77.5"),
        node("no-mac", "10.244.6.0/24", "192.168.77.6", data={"VNI": 1}),
        node("bad-json", "10.244.7.0/24", "192.168.77.7", data="{nope"),
        node("bad-mac", "10.244.8.0/24", "192.168.77.8", "zz:zz"),
        node("no-public-ip", "10.244.9.0/24", None, "aa:aa:aa:aa:aa:09"),
        node("bad-subnet", "10.244.10.1/24", "192.168.77.10", "aa:aa:aa:aa:aa:0a"),
    ]
    assert peers_from_nodes(nodes, "self") == {"a": A, "b": B}


def test_host_gw_peers_need_no_vtep() -> None:
    nodes = [node("a", "10.244.2.0/24", "192.168.77.2"), node("self", "10.244.1.0/24", "192.168.77.1")]
    assert peers_from_nodes(nodes, "self", backend="host-gw") == {"a": Peer("10.244.2.0/24", "192.168.77.2")}


def test_plan_adds_fdb_then_neighbour_then_route() -> None:
    commands = plan({"a": A}, Installed(), device=DEV)
    assert commands == [
        ("bridge", "fdb", "replace", "aa:aa:aa:aa:aa:02", "dev", DEV, "dst", "192.168.77.2"),
        ("ip", "neigh", "replace", "10.244.2.0", "lladdr", "aa:aa:aa:aa:aa:02", "dev", DEV, "nud", "permanent"),
        ("ip", "route", "replace", "10.244.2.0/24", "via", "10.244.2.0", "dev", DEV, "onlink"),
    ]


def test_plan_is_empty_when_in_sync() -> None:
    assert plan({"a": A, "b": B}, installed_for(A, B), device=DEV) == []


def test_plan_removes_a_deleted_node_route_first_fdb_last() -> None:
    commands = plan({"a": A}, installed_for(A, B), device=DEV)
    assert commands == [
        ("ip", "route", "del", "10.244.3.0/24", "dev", DEV),
        ("ip", "neigh", "del", "10.244.3.0", "dev", DEV),
        ("bridge", "fdb", "del", "aa:aa:aa:aa:aa:03", "dev", DEV, "dst", "192.168.77.3"),
    ]
    assert plan({}, installed_for(A, B), device=DEV)[-1][:3] == ("bridge", "fdb", "del")


def test_plan_follows_a_changed_vtep_mac() -> None:
    restarted = Peer(A.subnet, A.public_ip, "bb:bb:bb:bb:bb:02")
    commands = plan({"a": restarted}, installed_for(A), device=DEV)
    assert commands == [
        ("bridge", "fdb", "replace", "bb:bb:bb:bb:bb:02", "dev", DEV, "dst", "192.168.77.2"),
        ("ip", "neigh", "replace", "10.244.2.0", "lladdr", "bb:bb:bb:bb:bb:02", "dev", DEV, "nud", "permanent"),
        ("bridge", "fdb", "del", "aa:aa:aa:aa:aa:02", "dev", DEV, "dst", "192.168.77.2"),
    ]


def test_plan_follows_a_changed_public_ip_and_drops_extra_destinations() -> None:
    moved = Peer(A.subnet, "192.168.77.20", A.vtep_mac)
    state = installed_for(A)
    state.fdb[str(A.vtep_mac)].add("192.168.77.99")
    assert plan({"a": moved}, state, device=DEV) == [
        ("bridge", "fdb", "replace", "aa:aa:aa:aa:aa:02", "dev", DEV, "dst", "192.168.77.20"),
        ("bridge", "fdb", "del", "aa:aa:aa:aa:aa:02", "dev", DEV, "dst", "192.168.77.2"),
        ("bridge", "fdb", "del", "aa:aa:aa:aa:aa:02", "dev", DEV, "dst", "192.168.77.99"),
    ]


def test_plan_follows_a_changed_subnet() -> None:
    moved = Peer("10.244.9.0/24", A.public_ip, A.vtep_mac)
    commands = plan({"a": moved}, installed_for(A), device=DEV)
    assert commands == [
        ("ip", "route", "del", "10.244.2.0/24", "dev", DEV),
        ("ip", "neigh", "replace", "10.244.9.0", "lladdr", "aa:aa:aa:aa:aa:02", "dev", DEV, "nud", "permanent"),
        ("ip", "route", "replace", "10.244.9.0/24", "via", "10.244.9.0", "dev", DEV, "onlink"),
        ("ip", "neigh", "del", "10.244.2.0", "dev", DEV),
    ]


def test_plan_repairs_a_missing_entry_only() -> None:
    state = installed_for(A)
    del state.neighbours["10.244.2.0"]
    assert plan({"a": A}, state, device=DEV) == [
        ("ip", "neigh", "replace", "10.244.2.0", "lladdr", "aa:aa:aa:aa:aa:02", "dev", DEV, "nud", "permanent")]


def test_host_gw_plan() -> None:
    peers = {"a": Peer(A.subnet, A.public_ip), "b": Peer(B.subnet, B.public_ip)}
    assert plan(peers, Installed(), device=DEV, backend="host-gw") == [
        ("ip", "route", "replace", "10.244.2.0/24", "via", "192.168.77.2"),
        ("ip", "route", "replace", "10.244.3.0/24", "via", "192.168.77.3"),
    ]
    state = Installed(routes={A.subnet: A.public_ip, B.subnet: B.public_ip})
    assert plan(peers, state, device=DEV, backend="host-gw") == []
    assert plan({"a": peers["a"]}, state, device=DEV, backend="host-gw") == [("ip", "route", "del", B.subnet)]


def test_a_peer_claiming_our_subnet_is_ignored() -> None:
    assert without_own_subnet({"a": A, "b": B}, "10.244.3.0/24") == {"a": A}
    assert without_own_subnet({"a": A}, None) == {"a": A}


def test_masquerade_rules_return_inside_the_cluster_and_masquerade_the_rest() -> None:
    rules = chain_rules("10.244.0.0/16")
    nat = rules[("nat", "KCORE-FLANNEL-POSTRTG", "POSTROUTING")]
    assert nat[0][:4] == ["-s", "10.244.0.0/16", "-d", "10.244.0.0/16"] and nat[0][-1] == "RETURN"
    assert nat[1][:5] == ["-s", "10.244.0.0/16", "!", "-d", "224.0.0.0/4"]
    assert nat[1][-3:] == ["-j", "MASQUERADE", "--random-fully"]
    fwd = rules[("filter", "KCORE-FLANNEL-FWD", "FORWARD")]
    assert [r[:2] for r in fwd] == [["-s", "10.244.0.0/16"], ["-d", "10.244.0.0/16"]]
