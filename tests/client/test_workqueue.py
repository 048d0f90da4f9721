"""WorkQueue and RateLimiter semantics (client-go's util/workqueue)."""

from __future__ import annotations

import asyncio

import pytest

from kcore.client.workqueue import QueueShutDown, RateLimiter, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_deduplicates_queued_items() -> None:
    q = WorkQueue("t")
    for item in ("a", "b", "a", "a", "c", "b"):
        q.add(item)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]
    assert len(q) == 0


async def test_readd_while_processing_is_queued_after_done() -> None:
    q = WorkQueue("t")
    q.add("a")
    item = await q.get()
    assert item == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # never handed to a second worker while being processed
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.done("a")
    assert await asyncio.wait_for(getter, 5) == "a"  # once, although added twice
    q.done("a")
    assert len(q) == 0


async def test_done_without_readd_forgets_the_item() -> None:
    q = WorkQueue("t")
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0
    q.add("a")
    assert len(q) == 1


async def test_waiting_getters_are_served_in_order() -> None:
    q = WorkQueue("t")
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for item in ("x", "y", "z"):
        q.add(item)
    assert [await asyncio.wait_for(g, 5) for g in getters] == ["x", "y", "z"]


async def test_cancelled_getter_does_not_swallow_an_item() -> None:
    q = WorkQueue("t")
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("only")  # wakes `first` ...
    first.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(second, 5) == "only"


async def test_add_after_orders_by_ready_time() -> None:
    q = WorkQueue("t")
    q.add_after("late", 0.06)
    q.add_after("soon", 0.02)
    q.add("now")
    q.add_after("zero", 0)
    assert len(q) == 2 and q.waiting_delayed == 2
    got = [await asyncio.wait_for(q.get(), 5) for _ in range(4)]
    assert got == ["now", "zero", "soon", "late"]


async def test_add_after_keeps_the_earliest_request() -> None:
    q = WorkQueue("t")
    q.add_after("a", 30)
    q.add_after("a", 0.01)  # sooner wins
    q.add_after("a", 60)  # later is ignored
    assert q.waiting_delayed == 1
    assert await asyncio.wait_for(q.get(), 5) == "a"
    assert q.waiting_delayed == 0


def test_rate_limiter_backs_off_exponentially_and_forgets() -> None:
    rl = RateLimiter(base_delay=0.005, max_delay=1.0, qps=0)
    delays = [rl.when("item") for _ in range(10)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[-1] == 1.0 and max(delays) == 1.0  # capped
    assert rl.num_requeues("item") == 10
    assert rl.when("other") == 0.005  # per item
    rl.forget("item")
    assert rl.num_requeues("item") == 0
    assert rl.when("item") == 0.005


def test_rate_limiter_default_matches_client_go() -> None:
    rl = RateLimiter()
    assert (rl.base_delay, rl.max_delay, rl.qps, rl.burst) == (0.005, 1000.0, 10.0, 100)
    for _ in range(40):
        rl.when("x")
    assert rl.when("x") == 1000.0


def test_rate_limiter_token_bucket_limits_overall_rate() -> None:
    clock = FakeClock()
    rl = RateLimiter(base_delay=0.001, qps=10, burst=3, clock=clock)
    assert [rl.when(f"i{n}") for n in range(3)] == [0.001, 0.001, 0.001]  # the burst
    assert rl.when("i3") == pytest.approx(0.1)  # bucket empty: one token per 1/qps
    assert rl.when("i4") == pytest.approx(0.2)
    clock.now += 10  # refills, but only up to the burst
    assert [rl.when(f"j{n}") for n in range(3)] == [0.001, 0.001, 0.001]
    assert rl.when("j3") == pytest.approx(0.1)


async def test_add_rate_limited_uses_the_limiter() -> None:
    q = WorkQueue("t", RateLimiter(base_delay=0.01, qps=0))
    q.add_rate_limited("k")
    assert len(q) == 0 and q.num_requeues("k") == 1
    assert await asyncio.wait_for(q.get(), 5) == "k"
    q.done("k")
    q.add_rate_limited("k")
    assert q.num_requeues("k") == 2
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_wakes_getters_and_refuses_work() -> None:
    q = WorkQueue("t")
    waiting = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add_after("later", 30)
    q.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(waiting, 5)
    q.add("x")
    assert len(q) == 0 and q.waiting_delayed == 0
    with pytest.raises(QueueShutDown):
        await q.get()
    assert q.shutting_down
