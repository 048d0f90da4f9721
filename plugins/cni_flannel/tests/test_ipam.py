"""Host-local IPAM: the pure next-fit picker and the file-backed store."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kcore_cni_flannel.ipam import (
    AddressExhaustedError,
    HostLocalStore,
    candidates,
    gateway,
    next_free,
    range_set,
)

SUBNET = "10.244.1.0/24"


def test_range_and_gateway() -> None:
    assert range_set(SUBNET) == ("10.244.1.1", "10.244.1.254")
    assert gateway(SUBNET) == "10.244.1.1"
    with pytest.raises(ValueError, match="too small"):
        range_set("10.0.0.0/31")


def test_candidates_skip_gateway_network_and_broadcast_and_wrap() -> None:
    all_ = list(candidates(SUBNET))
    assert all_[0] == "10.244.1.2" and all_[-1] == "10.244.1.254" and len(all_) == 253
    after = list(candidates(SUBNET, "10.244.1.253"))
    assert after[:3] == ["10.244.1.254", "10.244.1.2", "10.244.1.3"] and len(after) == 253
    assert list(candidates(SUBNET, "10.244.1.254"))[0] == "10.244.1.2"
    assert list(candidates(SUBNET, "10.9.9.9"))[0] == "10.244.1.2"  # foreign cursor ignored
    assert list(candidates("10.0.0.0/30")) == ["10.0.0.2"]


def test_next_free_is_next_fit() -> None:
    assert next_free(SUBNET, {"10.244.1.2"}) == "10.244.1.3"
    assert next_free(SUBNET, set(), last_reserved="10.244.1.9") == "10.244.1.10"
    assert next_free(SUBNET, {"10.244.1.10"}, last_reserved="10.244.1.9") == "10.244.1.11"


def test_exhaustion_message_names_the_range() -> None:
    with pytest.raises(AddressExhaustedError) as info:
        next_free(SUBNET, set(candidates(SUBNET)))
    assert str(info.value) == "no IP addresses available in range set: 10.244.1.1-10.244.1.254"


def test_store_allocates_persists_and_releases(tmp_path: Path) -> None:
    store = HostLocalStore(tmp_path, SUBNET)
    a = store.allocate("pod-a")
    b = store.allocate("pod-b")
    assert (a, b) == ("10.244.1.2", "10.244.1.3")
    assert store.allocate("pod-a") == a  # idempotent
    directory = tmp_path / "cni" / "ipam" / "10.244.1.0-24"
    assert (directory / a).read_text() == "pod-a"
    assert (directory / "last_reserved").read_text() == b
    restarted = HostLocalStore(tmp_path, SUBNET)
    assert restarted.allocations() == {a: "pod-a", b: "pod-b"}
    assert restarted.allocate("pod-a") == a
    assert restarted.release("pod-a") == [a]
    assert restarted.release("pod-a") == []  # idempotent
    assert not (directory / a).exists()
    # Round robin: the freed .2 is not reused until the range wraps.
    assert restarted.allocate("pod-c") == "10.244.1.4"


def test_store_exhaustion_and_reuse_after_release(tmp_path: Path) -> None:
    store = HostLocalStore(tmp_path, "10.0.0.0/29")  # .2-.6 usable
    got = [store.allocate(f"p{i}") for i in range(5)]
    assert got == [f"10.0.0.{i}" for i in range(2, 7)]
    with pytest.raises(AddressExhaustedError, match=r"range set: 10.0.0.1-10.0.0.6$"):
        store.allocate("extra")
    store.release("p2")
    assert store.allocate("extra") == "10.0.0.4"


def test_foreign_file_is_never_overwritten(tmp_path: Path) -> None:
    store = HostLocalStore(tmp_path, SUBNET)
    (store.directory / "10.244.1.2").write_text("someone-else")
    assert store.allocate("pod-a") == "10.244.1.3"
    assert (store.directory / "10.244.1.2").read_text() == "someone-else"


def test_concurrent_cycles_never_share_an_address(tmp_path: Path) -> None:
    """1,000 add/del cycles from 16 threads over 4 store instances (as after restarts)."""
    stores = [HostLocalStore(tmp_path, "10.0.0.0/26") for _ in range(4)]  # 61 addresses
    holders: dict[str, str] = {}
    guard = threading.Lock()
    errors: list[str] = []

    def cycle(i: int) -> None:
        rng = random.Random(i)
        store = stores[i % len(stores)]
        owner = f"pod-{i}"
        address = store.allocate(owner)
        assert store.allocate(owner) == address
        with guard:
            if address in holders:
                errors.append(f"{address} given to {owner} while held by {holders[address]}")
            holders[address] = owner
        if rng.random() < 0.5:
            threading.Event().wait(0.0005)
        with guard:
            del holders[address]
        assert store.release(owner) == [address]

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(cycle, range(1000)))
    assert errors == []
    assert stores[0].allocations() == {}


def test_concurrent_same_owner_gets_one_address(tmp_path: Path) -> None:
    stores = [HostLocalStore(tmp_path, SUBNET) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda s: s.allocate("same-pod"), stores))
    assert len(set(got)) == 1
    assert list(stores[0].allocations().values()) == ["same-pod"]
