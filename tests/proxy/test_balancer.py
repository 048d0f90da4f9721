"""Round-robin and ClientIP affinity, with a fake clock."""

from __future__ import annotations

from collections import Counter

from kcore.proxy.balancer import Balancer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_round_robin_is_even_and_in_order():
    b = Balancer(["a", "b", "c"])
    picks = [b.pick() for _ in range(9)]
    assert picks == ["a", "b", "c"] * 3


def test_candidates_start_at_rotation_and_cover_all():
    b = Balancer(["a", "b", "c"])
    assert b.candidates() == ["a", "b", "c"]
    assert b.candidates() == ["b", "c", "a"]
    assert b.candidates() == ["c", "a", "b"]
    assert b.candidates() == ["a", "b", "c"]


def test_no_endpoints():
    b = Balancer([])
    assert b.candidates("10.0.0.1") == []
    assert b.pick("10.0.0.1") is None


def test_update_keeps_rotation_when_unchanged_and_dedupes():
    b = Balancer(["a", "b", "c"])
    b.pick()
    b.update(["a", "b", "c"])
    assert b.pick() == "b"
    b.update(["a", "a", "b"])
    assert b.endpoints == ("a", "b")
    assert Counter(b.pick() for _ in range(10)) == {"a": 5, "b": 5}


def test_affinity_sticks_per_client_and_expires():
    clock = FakeClock()
    b = Balancer(["a", "b", "c"], affinity=True, affinity_timeout=10, clock=clock)
    first = b.pick("10.0.0.1")
    assert (first, b.pick("10.0.0.2")) == ("a", "b")
    for _ in range(5):
        clock.now += 9  # each use refreshes the timer
        assert b.pick("10.0.0.1") == first
    clock.now += 10.5
    assert b.sticky_endpoint("10.0.0.1") is None
    # Expired: back to the rotation, which has moved on to "c".
    assert b.pick("10.0.0.1") == "c"
    assert b.pick("10.0.0.1") == "c"


def test_affinity_off_is_plain_round_robin():
    b = Balancer(["a", "b"], affinity=False)
    assert [b.pick("10.0.0.1") for _ in range(4)] == ["a", "b", "a", "b"]


def test_affinity_candidates_put_sticky_first_then_the_rest():
    b = Balancer(["a", "b", "c"], affinity=True, clock=FakeClock())
    b.connected("10.0.0.1", "b")
    assert b.candidates("10.0.0.1") == ["b", "c", "a"]


def test_failed_forgets_sticky_endpoint():
    b = Balancer(["a", "b"], affinity=True, clock=FakeClock())
    b.connected("10.0.0.1", "a")
    b.failed("10.0.0.1", "b")  # not the sticky one: no change
    assert b.sticky_endpoint("10.0.0.1") == "a"
    b.failed("10.0.0.1", "a")
    assert b.sticky_endpoint("10.0.0.1") is None


def test_removed_endpoint_drops_affinity_and_turning_affinity_off_forgets():
    b = Balancer(["a", "b"], affinity=True, clock=FakeClock())
    b.connected("10.0.0.1", "a")
    b.connected("10.0.0.2", "b")
    b.update(["b", "c"])
    assert b.sticky_endpoint("10.0.0.1") is None
    assert b.sticky_endpoint("10.0.0.2") == "b"
    assert b.pick("10.0.0.1") in ("b", "c")
    b.update(["b", "c"], affinity=False)
    assert b.sticky_endpoint("10.0.0.2") is None


def test_expired_entries_are_pruned():
    clock = FakeClock()
    b = Balancer(["a", "b"], affinity=True, affinity_timeout=5, clock=clock)
    for i in range(100):
        b.pick(f"10.0.1.{i}")
    clock.now += 6
    b.pick("10.0.0.1")
    assert len(b._sticky) == 1
