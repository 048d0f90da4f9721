"""A slow watcher never blocks writers and, if it falls behind, catches up from history.

Runs against the built-in backends, which accept a ``watch_buffer`` setting.
"""

from __future__ import annotations

import asyncio

import pytest

from kcore.store.contract import CompactedError

BUILT_IN = ["memory", "sqlite"]


@pytest.fixture(params=BUILT_IN)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_slow_watcher_catches_up_from_history(open_store, take, stop) -> None:  # noqa: ANN001
    store = open_store(watch_buffer=8)
    watch = store.watch("/r/", 0)
    await store.create("/r/first", b"v")
    assert (await take(watch, 1))[0].revision == 1  # now live, with an 8-event buffer
    revs = await asyncio.gather(*(store.create(f"/r/{i:03d}", b"v") for i in range(100)))
    assert sorted(revs) == list(range(2, 102))  # writers finished without the watcher reading
    events = await take(watch, 100)
    await store.create("/r/after", b"v")
    events += await take(watch, 1)
    await stop(watch)
    assert [e.revision for e in events] == list(range(2, 103))


async def test_slow_watcher_behind_compaction_gets_compacted_error(open_store, take) -> None:  # noqa: ANN001
    store = open_store(watch_buffer=4)
    watch = store.watch("/r/", 0)
    await store.create("/r/first", b"v")
    await take(watch, 1)
    for i in range(20):
        await store.create(f"/r/{i:03d}", b"v")
    await store.compact(await store.current_revision())
    with pytest.raises(CompactedError):
        await take(watch, 20)
