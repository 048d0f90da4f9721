"""The replay/live switch-over of kcore.store.watchhub, with commits forced into the gap.

Backends make these races rare and timing-dependent; here a fake history reader
publishes live events *while* it is being read, so both ways to get the
switch-over wrong (a gap, a duplicate) fail deterministically.
"""

from __future__ import annotations

import asyncio

import pytest

from kcore.store.contract import EventType, KeyValue, WatchEvent
from kcore.store.watchhub import WatchHub, prefix_end, run_watch


def ev(rev: int, key: str = "/r/k") -> WatchEvent:
    return WatchEvent(EventType.ADDED, KeyValue(key, b"v", rev, rev), None, rev)


async def test_events_both_replayed_and_published_are_delivered_once(take) -> None:  # noqa: ANN001
    hub = WatchHub()
    log = [ev(r) for r in range(1, 5)]

    async def history(prefix: str, after: int, limit: int) -> list[WatchEvent]:
        if after == 0:
            hub.publish(log[2:])  # revisions 3, 4 commit during the read and are in the snapshot
        return [e for e in log if e.revision > after][:limit]

    watch = run_watch(hub, "/r/", 0, history)
    first = await take(watch, 4)
    hub.publish([ev(5)])
    assert [e.revision for e in first + await take(watch, 1)] == [1, 2, 3, 4, 5]
    await watch.aclose()


async def test_events_committed_after_the_snapshot_are_not_lost(take) -> None:  # noqa: ANN001
    hub = WatchHub()
    log = [ev(r) for r in range(1, 3)]

    async def history(prefix: str, after: int, limit: int) -> list[WatchEvent]:
        snapshot = [e for e in log if e.revision > after][:limit]
        if after == 0:
            hub.publish([ev(3)])  # commits after the snapshot was taken
        return snapshot

    watch = run_watch(hub, "/r/", 0, history)
    assert [e.revision for e in await take(watch, 3)] == [1, 2, 3]
    await watch.aclose()


async def test_replay_reads_history_in_chunks(take) -> None:  # noqa: ANN001
    hub = WatchHub()
    log = [ev(r) for r in range(1, 26)]
    calls: list[int] = []

    async def history(prefix: str, after: int, limit: int) -> list[WatchEvent]:
        calls.append(after)
        return [e for e in log if e.revision > after][:limit]

    watch = run_watch(hub, "/r/", 0, history, chunk=10)
    assert [e.revision for e in await take(watch, 25)] == list(range(1, 26))
    assert calls == [0, 10, 20]
    await watch.aclose()


async def test_publish_filters_by_prefix_and_close_ends_watches(take) -> None:  # noqa: ANN001
    hub = WatchHub()
    subscribed = asyncio.Event()

    async def history(prefix: str, after: int, limit: int) -> list[WatchEvent]:
        subscribed.set()  # history is read only after subscribing
        return []

    watch = run_watch(hub, "/r/a/", 0, history)
    hub.publish([ev(1, "/r/a/x")])  # nobody subscribed yet: not for this watch
    task = asyncio.ensure_future(take(watch, 1))
    await subscribed.wait()
    hub.publish([ev(4, "/r/b/x"), ev(5, "/r/a/y"), ev(6, "/r/ab")])
    assert [e.kv.key for e in await task] == ["/r/a/y"]
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await anext(watch)


def test_prefix_end_bounds_exactly_the_prefix() -> None:
    assert prefix_end("/r/") == "/r0"
    assert prefix_end("") is None
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\U0010ffff") is None
    assert prefix_end("a\ud7ff") == "a\ue000"
    for key in ["/r/", "/r/a", "/r/\U0010ffff\U0010ffff", "/r/\uffff"]:
        assert "/r/" <= key < prefix_end("/r/")  # type: ignore[operator]
    for key in ["/r0", "/s", "/r", "/q\U0010ffff"]:
        assert not ("/r/" <= key < prefix_end("/r/"))  # type: ignore[operator]
