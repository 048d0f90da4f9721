"""Promises only a durable backend makes: reopen restores everything; group commit."""

from __future__ import annotations

import asyncio
import pathlib
import sqlite3

import pytest

from kcore.store import sqlite_backend
from kcore.store.contract import CompactedError, EventType, KeyValue, StoreError
from kcore.store.sqlite import SqliteStore


async def test_backend_hook_uses_data_dir_or_path(tmp_path: pathlib.Path) -> None:
    store = sqlite_backend.kcore_store_open(settings={}, data_dir=tmp_path / "new" / "dir")
    await store.close()
    assert (tmp_path / "new" / "dir" / "store.db").is_file()
    explicit = tmp_path / "elsewhere" / "kv.db"
    store = sqlite_backend.kcore_store_open(settings={"path": str(explicit)}, data_dir=tmp_path / "unused")
    await store.close()
    assert explicit.is_file() and not (tmp_path / "unused" / "store.db").exists()


async def test_reopen_restores_data_revision_and_compaction(tmp_path: pathlib.Path, take, stop) -> None:  # noqa: ANN001
    path = tmp_path / "store.db"
    store = await SqliteStore.open(path)
    a = await store.create("/r/a", b"a1")
    a = await store.update("/r/a", b"a2", a)
    b = await store.create("/r/b", b"b1")
    await store.delete("/r/b", b)
    c = await store.create("/r/c", b"c1")
    await store.compact(b)
    state_at_c = (await store.list("/r/", revision=c)).items
    await store.close()

    store = await SqliteStore.open(path)
    try:
        assert await store.current_revision() == c
        assert await store.compacted_revision() == b
        assert (await store.list("/r/")).items == state_at_c
        assert await store.get("/r/a") == KeyValue("/r/a", b"a2", 1, a)
        with pytest.raises(CompactedError):
            await store.list("/r/", revision=b - 1)
        watch = store.watch("/r/", b)
        events = await take(watch, 2)
        assert [(e.type, e.kv.key, e.revision) for e in events] == [
            (EventType.DELETED, "/r/b", b + 1),
            (EventType.ADDED, "/r/c", c),
        ]
        assert await store.create("/r/d", b"d1") == c + 1  # the counter continues
        assert (await take(watch, 1))[0].revision == c + 1
        await stop(watch)
    finally:
        await store.close()


async def test_history_is_kept_in_a_kine_like_table(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "store.db"
    store = await SqliteStore.open(path)
    rev = await store.create("/r/a", b"v1")
    await store.update("/r/a", b"v2", rev)
    await store.delete("/r/a")
    await store.close()
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT revision, key, value, create_revision, prev_revision, deleted FROM history ORDER BY revision"
        ).fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert rows == [(1, "/r/a", b"v1", 1, 0, 0), (2, "/r/a", b"v2", 1, 1, 0), (3, "/r/a", b"v2", 1, 2, 1)]
    assert mode == "wal"


async def test_concurrent_writes_share_commits(tmp_path: pathlib.Path) -> None:
    store = await SqliteStore.open(tmp_path / "store.db")
    try:
        revs = await asyncio.gather(*(store.create(f"/r/{i}", b"v") for i in range(200)))
        assert sorted(revs) == list(range(1, 201))
        assert store.commits < 50, f"{store.commits} commits for 200 concurrent writes: no group commit"
        before = store.commits
        for i in range(5):
            await store.create(f"/s/{i}", b"v")
        assert store.commits == before + 5  # a lone writer still commits (and waits) each write
    finally:
        await store.close()


async def test_closed_store_refuses_work(tmp_path: pathlib.Path) -> None:
    store = await SqliteStore.open(tmp_path / "store.db")
    await store.create("/r/a", b"v")
    await store.close()
    with pytest.raises(StoreError):
        await store.create("/r/b", b"v")
    with pytest.raises(StoreError):
        await store.get("/r/a")
