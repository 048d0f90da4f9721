"""Restart policy and the CrashLoopBackOff schedule, with a hand-driven clock."""

from __future__ import annotations

import pytest

from kcore.kubelet.backoff import Backoff, should_restart


@pytest.mark.parametrize(("policy", "code", "expected"), [
    ("Always", 0, True), ("Always", 1, True), (None, 0, True),
    ("OnFailure", 0, False), ("OnFailure", 137, True),
    ("Never", 0, False), ("Never", 1, False),
])
def test_should_restart(policy: str | None, code: int, expected: bool) -> None:
    assert should_restart(policy, code) is expected


def test_unknown_policy() -> None:
    with pytest.raises(ValueError, match="restartPolicy"):
        should_restart("Sometimes", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_schedule_doubles_to_the_cap_and_resets() -> None:
    clock = Clock()
    b = Backoff(clock=clock)
    delays = []
    for _ in range(8):
        b.started("p/c")
        clock.now += 1
        delays.append(b.exited("p/c"))
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]
    assert b.in_backoff("p/c") and b.remaining("p/c") == 300
    clock.now += 299
    assert b.remaining("p/c") == 1
    clock.now += 1
    assert not b.in_backoff("p/c")
    b.started("p/c")
    clock.now += 600  # ran ten minutes: healthy again
    assert b.exited("p/c") == 10


def test_configurable_and_forget() -> None:
    clock = Clock()
    b = Backoff(base=0.1, cap=0.3, reset_after=5, clock=clock)
    assert [b.exited("k") for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]
    assert b.remaining("other") == 0
    b.forget("k")
    assert b.exited("k") == 0.1
    clock.now += 10
    b.gc()
    assert b.remaining("k") == 0 and not b._entries
