"""Every promise of kcore.store.contract.Store, against every installed backend.

The ``store`` fixture is parametrized over the ``kcore.store`` entry points (see
conftest.py), so each test here runs once per backend.
"""

from __future__ import annotations

import asyncio
import random

import pytest

from kcore.store.contract import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    InvalidContinueError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
    WatchEvent,
)


async def snapshot(store: Store, prefix: str = "", **kwargs: int) -> dict[str, KeyValue]:
    result = await store.list(prefix, **kwargs)
    return {kv.key: kv for kv in result.items}


async def paginate(store: Store, prefix: str, limit: int, revision: int = 0) -> tuple[list[KeyValue], set[int]]:
    """All pages of one list; returns the items and every page's revision."""
    page = await store.list(prefix, limit=limit, revision=revision)
    items, revisions = list(page.items), {page.revision}
    while page.continue_token:
        assert len(page.items) == limit
        await asyncio.sleep(0)  # yield: let concurrent writers run between pages
        page = await store.list(prefix, limit=limit, continue_token=page.continue_token)
        items += page.items
        revisions.add(page.revision)
    return items, revisions


# -- writes -------------------------------------------------------------------


async def test_create_if_absent(store: Store) -> None:
    rev = await store.create("/r/a", b"one")
    assert rev == 1
    with pytest.raises(KeyExistsError) as err:
        await store.create("/r/a", b"two")
    assert err.value.key == "/r/a"
    assert await store.get("/r/a") == KeyValue("/r/a", b"one", 1, 1)
    assert await store.get("/r/missing") is None


async def test_revision_increments_by_one_per_write_only(store: Store) -> None:
    assert await store.current_revision() == 0
    revs = [await store.create(f"/r/{i}", b"v") for i in range(3)]
    revs.append(await store.update("/r/0", b"w", revs[0]))
    with pytest.raises(ConflictError):
        await store.update("/r/0", b"x", revs[0])  # failed writes do not advance
    with pytest.raises(KeyExistsError):
        await store.create("/r/1", b"x")
    revs.append(await store.delete("/r/2"))
    revs.append(await store.create("/r/2", b"again"))
    assert revs == [1, 2, 3, 4, 5, 6]
    assert await store.current_revision() == 6


async def test_update_is_compare_and_swap(store: Store) -> None:
    created = await store.create("/r/a", b"v1")
    updated = await store.update("/r/a", b"v2", created)
    assert await store.get("/r/a") == KeyValue("/r/a", b"v2", created, updated)
    with pytest.raises(ConflictError) as err:
        await store.update("/r/a", b"v3", created)
    assert err.value.expected == created
    assert err.value.current == KeyValue("/r/a", b"v2", created, updated)
    assert (await store.get("/r/a")).value == b"v2"  # type: ignore[union-attr]
    with pytest.raises(KeyNotFoundError):
        await store.update("/r/nope", b"x", 1)


async def test_delete_is_compare_and_swap(store: Store) -> None:
    created = await store.create("/r/a", b"v1")
    updated = await store.update("/r/a", b"v2", created)
    with pytest.raises(ConflictError) as err:
        await store.delete("/r/a", created)
    assert err.value.current == KeyValue("/r/a", b"v2", created, updated)
    deleted = await store.delete("/r/a", updated)
    assert deleted == updated + 1
    assert await store.get("/r/a") is None
    with pytest.raises(KeyNotFoundError):
        await store.delete("/r/a")
    recreated = await store.create("/r/a", b"v3")
    assert await store.get("/r/a") == KeyValue("/r/a", b"v3", recreated, recreated)
    assert await store.delete("/r/a") == recreated + 1  # unguarded delete


async def test_cas_in_one_batch_sees_earlier_writes(store: Store) -> None:
    """Two updates racing on one revision: exactly one wins, however writes are batched."""
    rev = await store.create("/r/a", b"0")
    results = await asyncio.gather(
        store.update("/r/a", b"first", rev), store.update("/r/a", b"second", rev), return_exceptions=True
    )
    wins = [r for r in results if isinstance(r, int)]
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    assert len(wins) == 1 and len(conflicts) == 1
    assert conflicts[0].current == await store.get("/r/a")
    assert conflicts[0].current.mod_revision == wins[0]  # type: ignore[union-attr]


async def test_concurrent_cas_increments_lose_nothing(store: Store) -> None:
    writers, increments = 20, 10
    await store.create("/r/counter", b"0")

    async def worker() -> int:
        retries = 0
        for _ in range(increments):
            kv = await store.get("/r/counter")
            while True:
                assert kv is not None
                try:
                    await store.update("/r/counter", str(int(kv.value) + 1).encode(), kv.mod_revision)
                    break
                except ConflictError as err:
                    kv, retries = err.current, retries + 1
        return retries

    await asyncio.gather(*(worker() for _ in range(writers)))
    kv = await store.get("/r/counter")
    assert kv is not None and int(kv.value) == writers * increments
    assert kv.mod_revision == 1 + writers * increments == await store.current_revision()


# -- lists --------------------------------------------------------------------


async def test_list_prefix_in_key_order(store: Store) -> None:
    keys = ["/r/b/2", "/r/a", "/r/b/1", "/r/b", "/r/b0", "/s/x", "/r/b/3/deep"]
    for key in keys:
        await store.create(key, key.encode())
    result = await store.list("/r/b/")
    assert [kv.key for kv in result.items] == ["/r/b/1", "/r/b/2", "/r/b/3/deep"]
    assert result.revision == len(keys) and result.continue_token is None
    assert [kv.key for kv in (await store.list("")).items] == sorted(keys)
    assert all(kv.value == kv.key.encode() for kv in (await store.list("")).items)
    assert (await store.list("/nothing/")).items == []


async def test_list_pages_with_limit_and_continue(store: Store) -> None:
    for i in range(10):
        await store.create(f"/r/{i:02d}", b"v")
    await store.create("/s/outside", b"v")
    first = await store.list("/r/", limit=4)
    assert [kv.key for kv in first.items] == ["/r/00", "/r/01", "/r/02", "/r/03"]
    assert first.remaining == 6 and first.continue_token
    second = await store.list("/r/", limit=4, continue_token=first.continue_token)
    assert [kv.key for kv in second.items] == ["/r/04", "/r/05", "/r/06", "/r/07"]
    assert second.remaining == 2 and second.revision == first.revision
    last = await store.list("/r/", limit=4, continue_token=second.continue_token)
    assert [kv.key for kv in last.items] == ["/r/08", "/r/09"]
    assert last.continue_token is None
    exact = await store.list("/r/", limit=10)
    assert len(exact.items) == 10 and exact.continue_token is None


async def test_pages_stay_at_the_first_page_revision(store: Store) -> None:
    for i in range(9):
        await store.create(f"/r/{i}", f"v{i}".encode())
    expected = await snapshot(store, "/r/")
    page = await store.list("/r/", limit=3)
    # Writes between pages: before and after the cursor, creations and deletions.
    await store.delete("/r/1")
    await store.delete("/r/7")
    kv = await store.get("/r/5")
    await store.update("/r/5", b"changed", kv.mod_revision)  # type: ignore[union-attr]
    await store.create("/r/55", b"new")
    items = list(page.items)
    while page.continue_token:
        page = await store.list("/r/", limit=3, continue_token=page.continue_token)
        items += page.items
    assert {kv.key: kv for kv in items} == expected
    assert [kv.key for kv in items] == sorted(expected)


async def test_list_at_every_older_revision(store: Store) -> None:
    rng = random.Random(7)
    history: dict[int, dict[str, KeyValue]] = {0: {}}
    for _ in range(60):
        key = f"/r/{rng.randrange(8)}"
        current = await store.get(key)
        if current is None:
            rev = await store.create(key, f"{key}@c".encode())
        elif rng.random() < 0.3:
            rev = await store.delete(key, current.mod_revision)
        else:
            rev = await store.update(key, f"{key}@{rng.random()}".encode(), current.mod_revision)
        history[rev] = await snapshot(store, "/r/")
    for rev, state in history.items():
        if rev == 0:
            continue
        assert await snapshot(store, "/r/", revision=rev) == state
        items, revisions = await paginate(store, "/r/", 2, revision=rev)
        assert {kv.key: kv for kv in items} == state and revisions == {rev}


async def test_future_revision_is_an_error(store: Store, take) -> None:  # noqa: ANN001
    await store.create("/r/a", b"v")
    with pytest.raises(FutureRevisionError) as err:
        await store.list("/r/", revision=2)
    assert err.value.current == 1
    with pytest.raises(FutureRevisionError):
        await take(store.watch("/r/", 5), 1)


async def test_garbage_continue_token_is_rejected(store: Store) -> None:
    await store.create("/r/a", b"v")
    with pytest.raises(InvalidContinueError):
        await store.list("/r/", limit=1, continue_token="not-a-token!")


async def test_pagination_under_concurrent_writes(store: Store) -> None:
    for i in range(200):
        await store.create(f"/r/{i:03d}", b"0")
    done = asyncio.Event()

    async def churn() -> None:
        rng = random.Random(1)
        while not done.is_set():
            await asyncio.sleep(0)  # yield: an in-process store may never suspend on its own
            key = f"/r/{rng.randrange(260):03d}"
            kv = await store.get(key)
            try:
                if kv is None:
                    await store.create(key, b"100")
                elif rng.random() < 0.3:
                    await store.delete(key, kv.mod_revision)
                else:
                    await store.update(key, str(int(kv.value) + 1).encode(), kv.mod_revision)
            except (ConflictError, KeyExistsError, KeyNotFoundError):
                pass

    churner = asyncio.create_task(churn())
    try:
        page_revisions = []
        for _ in range(3):
            items, revisions = await paginate(store, "/r/", 7)
            (rev,) = revisions  # every page of one list shares one revision
            page_revisions.append(rev)
            assert [kv.key for kv in items] == sorted({kv.key for kv in items})
            assert all(kv.mod_revision <= rev for kv in items)
            assert {kv.key: kv for kv in items} == await snapshot(store, "/r/", revision=rev)
    finally:
        done.set()
        await churner
    assert page_revisions[-1] > page_revisions[0]  # the writes really interleaved


# -- watch --------------------------------------------------------------------


async def test_watch_replays_then_follows_live(store: Store, take, stop) -> None:  # noqa: ANN001
    a1 = await store.create("/r/a", b"a1")
    await store.create("/s/other", b"x")
    a2 = await store.update("/r/a", b"a2", a1)
    watch = store.watch("/r/", 0)
    replayed = await take(watch, 2)
    b1 = await store.create("/r/b", b"b1")
    ad = await store.delete("/r/a", a2)
    live = await take(watch, 2)
    await stop(watch)
    assert replayed + live == [
        WatchEvent(EventType.ADDED, KeyValue("/r/a", b"a1", a1, a1), None, a1),
        WatchEvent(EventType.MODIFIED, KeyValue("/r/a", b"a2", a1, a2), KeyValue("/r/a", b"a1", a1, a1), a2),
        WatchEvent(EventType.ADDED, KeyValue("/r/b", b"b1", b1, b1), None, b1),
        WatchEvent(EventType.DELETED, KeyValue("/r/a", b"a2", a1, ad), KeyValue("/r/a", b"a2", a1, a2), ad),
    ]


async def test_watch_from_a_revision_skips_older_events(store: Store, take, stop) -> None:  # noqa: ANN001
    revs = [await store.create(f"/r/{i}", b"v") for i in range(5)]
    watch = store.watch("/r/", revs[2])
    events = await take(watch, 2)
    await stop(watch)
    assert [e.revision for e in events] == revs[3:]


async def test_watch_resumes_after_disconnect_exactly_once(store: Store, take, stop) -> None:  # noqa: ANN001
    async def write(n: int, start: int) -> None:
        for i in range(start, start + n):
            await store.create(f"/r/{i:03d}", b"v")

    await write(10, 0)
    watch = store.watch("/r/", 0)
    seen = await take(watch, 7)
    await stop(watch)
    await write(10, 10)  # written while nobody watches
    watch = store.watch("/r/", seen[-1].revision)
    seen += await take(watch, 8)
    await write(5, 20)  # live after the resume
    seen += await take(watch, 10)
    await stop(watch)
    assert [e.revision for e in seen] == list(range(1, 26))
    assert [e.kv.key for e in seen] == [f"/r/{i:03d}" for i in range(25)]


async def test_switch_over_has_no_gap_and_no_duplicate(store: Store, take, stop) -> None:  # noqa: ANN001
    """Watches start while writers run: each sees exactly revisions from+1, from+2, ..."""
    total = 300

    progress = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(total // 3):
            await store.create(f"/r/{w}/{i}", b"v")
            progress.set()
            await asyncio.sleep(0)  # yield: an in-process store may never suspend on its own

    async def watcher(start: int) -> list[int]:
        watch = store.watch("/r/", start)
        events = await take(watch, total - start)
        await stop(watch)
        return [e.revision for e in events]

    writers = [asyncio.create_task(writer(w)) for w in range(3)]
    watchers = []
    for _ in range(10):
        start = await store.current_revision()
        watchers.append((start, asyncio.create_task(watcher(start))))
        progress.clear()
        await asyncio.wait_for(progress.wait(), 10)  # at least one more write before the next watch
    await asyncio.gather(*writers)
    starts = [start for start, _ in watchers]
    assert starts[-1] > starts[0]  # watches really started mid-stream
    for start, task in watchers:
        assert await task == list(range(start + 1, total + 1))


async def test_many_watchers_see_identical_sequences(store: Store, take, stop) -> None:  # noqa: ANN001
    await store.create("/r/seed", b"v")
    watches = [store.watch("/r/", 0) for _ in range(25)]
    firsts = await asyncio.gather(*(take(w, 1) for w in watches))  # all subscribed and replaying

    async def writer(w: int) -> None:
        for i in range(20):
            rev = await store.create(f"/r/{w}/{i}", b"v")
            if i % 3 == 0:
                await store.update(f"/r/{w}/{i}", b"w", rev)

    await asyncio.gather(*(writer(w) for w in range(5)))
    total = await store.current_revision()
    rests = await asyncio.gather(*(take(w, total - 1) for w in watches))
    for w in watches:
        await stop(w)
    sequences = [first + rest for first, rest in zip(firsts, rests, strict=True)]
    assert [e.revision for e in sequences[0]] == list(range(1, total + 1))
    assert all(seq == sequences[0] for seq in sequences)


async def test_watch_ends_when_the_store_closes(store: Store, take) -> None:  # noqa: ANN001
    await store.create("/r/a", b"v")
    watch = store.watch("/r/", 0)
    await take(watch, 1)
    pending = asyncio.ensure_future(anext(watch))
    await asyncio.sleep(0)
    await store.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 5)


# -- compaction ---------------------------------------------------------------


async def test_compaction(store: Store, take, stop) -> None:  # noqa: ANN001
    a = await store.create("/r/a", b"a1")
    a = await store.update("/r/a", b"a2", a)
    b = await store.create("/r/b", b"b1")
    await store.delete("/r/b", b)
    c = await store.create("/r/c", b"c1")
    state_at_c = await snapshot(store, "/r/")
    c2 = await store.update("/r/c", b"c2", c)
    await store.create("/r/d", b"d1")
    current = await snapshot(store, "/r/")

    await store.compact(c)
    assert await store.compacted_revision() == c
    with pytest.raises(CompactedError) as err:
        await store.list("/r/", revision=c - 1)
    assert err.value.compacted == c
    with pytest.raises(CompactedError):
        await take(store.watch("/r/", c - 1), 1)
    assert await snapshot(store, "/r/", revision=c) == state_at_c
    assert await snapshot(store, "/r/") == current
    watch = store.watch("/r/", c)
    events = await take(watch, 2)
    await stop(watch)
    assert events[0].type == EventType.MODIFIED and events[0].revision == c2
    assert events[0].prev_kv == KeyValue("/r/c", b"c1", c, c)
    assert [e.kv.key for e in events] == ["/r/c", "/r/d"]

    await store.compact(c - 1)  # older than the compaction point: nothing changes
    assert await store.compacted_revision() == c
    with pytest.raises(FutureRevisionError):
        await store.compact(await store.current_revision() + 1)
    await store.compact(await store.current_revision())
    assert await snapshot(store, "/r/") == current
    with pytest.raises(CompactedError):
        await store.list("/r/", revision=c)


async def test_continue_token_below_compaction_is_compacted(store: Store) -> None:
    for i in range(4):
        await store.create(f"/r/{i}", b"v")
    page = await store.list("/r/", limit=2)
    rev = await store.create("/r/9", b"v")
    await store.compact(rev)
    with pytest.raises(CompactedError):
        await store.list("/r/", limit=2, continue_token=page.continue_token)
