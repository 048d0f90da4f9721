"""The scheduling queue: order, back-off, parking and moving on cluster events."""

from __future__ import annotations

import asyncio

from kcore.scheduler.plugins.priority_sort import PrioritySort
from kcore.scheduler.queue import SchedulingQueue
from kcore.scheduler.testing import make_pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def queue(clock: Clock | None = None) -> SchedulingQueue:
    return SchedulingQueue(PrioritySort().kcore_scheduler_queue_sort, clock=clock or Clock())


def test_priority_then_arrival_order() -> None:
    q = queue()
    q.add(make_pod("low-1", priority=0))
    q.add(make_pod("high", priority=100))
    q.add(make_pod("low-2"))
    q.add(make_pod("mid", priority=10))
    expected = ["default/high", "default/mid", "default/low-1", "default/low-2"]
    assert q.active_keys() == expected
    assert [q.pop_nowait().key for _ in range(4)] == expected
    assert q.pop_nowait() is None


def test_error_backoff_doubles_to_the_cap() -> None:
    clock = Clock()
    q = queue(clock)
    assert [q.backoff_duration(n) for n in (1, 2, 3, 4, 5, 6)] == [1, 2, 4, 8, 10, 10]
    q.add(make_pod("p"))
    qpi = q.pop_nowait()
    q.add_backoff(qpi)
    assert q.backoff_keys() == ["default/p"] and q.pop_nowait() is None
    clock.now += 0.99
    assert q.pop_nowait() is None
    clock.now += 0.01
    again = q.pop_nowait()
    assert again is not None and again.attempts == 2
    q.add_backoff(again)
    clock.now += 1.5
    assert q.pop_nowait() is None  # second back-off is 2 s
    clock.now += 0.5
    assert q.pop_nowait().key == "default/p"


def test_unschedulable_pods_park_until_an_event_moves_them() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(make_pod("p"))
    qpi = q.pop_nowait()
    q.add_unschedulable(qpi, q.scheduling_cycle)
    assert q.unschedulable_keys() == ["default/p"]
    clock.now += 60
    assert q.pop_nowait() is None  # parked: time alone (under 5 min) does not retry it
    assert q.move_all_to_active_or_backoff("NodeAdd") == 1
    assert q.pop_nowait().key == "default/p"


def test_moved_pod_still_backing_off_goes_to_backoff() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(make_pod("p"))
    q.add_unschedulable(q.pop_nowait(), q.scheduling_cycle)
    q.move_all_to_active_or_backoff("NodeAdd")
    assert q.backoff_keys() == ["default/p"]
    clock.now += 1
    assert q.pop_nowait().key == "default/p"


def test_event_during_the_attempt_is_not_lost() -> None:
    q = queue()
    q.add(make_pod("p"))
    qpi = q.pop_nowait()
    cycle = q.scheduling_cycle
    q.move_all_to_active_or_backoff("NodeAdd")  # a node arrived while the cycle ran
    q.add_unschedulable(qpi, cycle)
    assert q.unschedulable_keys() == [] and q.backoff_keys() == ["default/p"]


def test_parked_pods_retry_after_the_safety_interval() -> None:
    clock = Clock()
    q = queue(clock)
    q.add(make_pod("p"))
    q.add_unschedulable(q.pop_nowait(), q.scheduling_cycle)
    clock.now += 300
    assert q.pop_nowait().key == "default/p"


def test_update_and_delete() -> None:
    q = queue()
    q.add(make_pod("p"))
    q.add_unschedulable(q.pop_nowait(), q.scheduling_cycle)
    q.refresh(make_pod("p", labels={"status": "only"}))
    assert q.unschedulable_keys() == ["default/p"]  # a status-only change does not move it
    q.update(make_pod("p", cpu="1"))
    assert q.active_keys() == ["default/p"]
    q.delete("default/p")
    assert q.pop_nowait() is None and len(q) == 0


async def test_pop_waits_for_an_add_without_polling() -> None:
    q = SchedulingQueue()
    waiter = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    assert not waiter.done()
    q.add(make_pod("p"))
    assert (await asyncio.wait_for(waiter, 1)).key == "default/p"
    closing = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    q.close()
    assert await asyncio.wait_for(closing, 1) is None


async def test_pop_wakes_when_a_backoff_ends() -> None:
    q = SchedulingQueue(initial_backoff=0.05)
    q.add(make_pod("p"))
    q.add_backoff(q.pop_nowait())
    assert (await asyncio.wait_for(q.pop(), 1)).attempts == 2
