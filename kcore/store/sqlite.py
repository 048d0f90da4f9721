"""Embedded, durable store on SQLite: kcore's default backend.

Layout (kine-like): one ``history`` row per revision, holding the key, its value,
the key's create revision, the revision of the version it replaces and a
deleted flag. The state at revision R is, for each key, its newest row with
revision <= R unless that row is a deletion. ``meta`` holds the current and
the compacted revision, so both survive a restart.

Durability and throughput come from group commit: every write is queued to a
single writer thread, which takes everything queued, applies it in order inside
one transaction (so compare-and-swap checks see earlier writes of the same
batch), commits once (one WAL fsync, ``synchronous=FULL``) and only then
resolves the callers' futures and publishes the batch to watchers. The more
writers wait, the bigger the batch, the fewer fsyncs per write.

Reads run on a small pool of threads, each with its own connection; a list
reads inside one read transaction, so every page is one consistent snapshot.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from kcore.log import get_logger
from kcore.store.contract import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    InvalidContinueError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Store,
    StoreError,
    WatchEvent,
    decode_continue,
    encode_continue,
)
from kcore.store.watchhub import WatchHub, prefix_end, run_watch

log = get_logger("store")

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS history (
    revision        INTEGER PRIMARY KEY,
    key             TEXT    NOT NULL,
    value           BLOB    NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    deleted         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS history_key_revision ON history (key, revision);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
"""

_LATEST = (
    "SELECT revision, value, create_revision, deleted FROM history"
    " WHERE key = ? ORDER BY revision DESC LIMIT 1"
)
_INSERT = (
    "INSERT INTO history (revision, key, value, create_revision, prev_revision, deleted)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_COMPACT = (
    "DELETE FROM history WHERE revision <= ?1 AND (deleted = 1 OR revision < ("
    " SELECT MAX(h2.revision) FROM history AS h2"
    " WHERE h2.key = history.key AND h2.revision <= ?1))"
)

MAX_BATCH = 4096


@dataclass(slots=True)
class _Op:
    """One queued request for the writer thread."""

    kind: str  # "create" | "update" | "delete" | "compact" | "stop"
    key: str = ""
    value: bytes = b""
    expected: int | None = None
    future: asyncio.Future[Any] | None = None


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _row_event(row: tuple[Any, ...]) -> WatchEvent:
    """A history row (joined with its predecessor's value) as a watch event."""
    rev, key, value, create_rev, prev_rev, deleted, prev_value = row
    kv = KeyValue(key, value, create_rev, rev)
    if deleted:
        return WatchEvent(EventType.DELETED, kv, KeyValue(key, value, create_rev, prev_rev), rev)
    if prev_rev == 0 or prev_value is None:
        return WatchEvent(EventType.ADDED, kv, None, rev)
    return WatchEvent(EventType.MODIFIED, kv, KeyValue(key, prev_value, create_rev, prev_rev), rev)


class SqliteStore(Store):
    """A durable revisioned store in one SQLite file (WAL mode)."""

    def __init__(self, path: str | os.PathLike[str], *, readers: int = 4, watch_buffer: int = 10_000) -> None:
        self.path = str(path)
        self._wconn = _connect(self.path)
        mode = self._wconn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: could not switch to WAL journal mode (got {mode})")
        self._wconn.executescript(SCHEMA)
        meta = dict(self._wconn.execute("SELECT name, value FROM meta").fetchall())
        self._revision: int = meta["revision"]  # acknowledged (loop side)
        self._compacted: int = meta["compacted"]
        self._wrev = self._revision  # committed (writer side)
        self.commits = 0  # transactions committed by the writer: writes / commits = batching
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hub = WatchHub()
        self._watch_buffer = watch_buffer
        self._closed = False
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_lock = threading.Lock()
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="kcore-store-read")
        self._writer = threading.Thread(target=self._writer_main, name="kcore-store-writer", daemon=True)
        self._writer.start()
        log.info("store.opened", backend="sqlite", path=self.path, revision=self._revision,
                 compacted=self._compacted)

    @classmethod
    async def open(cls, path: str | os.PathLike[str], **kwargs: Any) -> SqliteStore:
        """Open (creating if needed) the store at ``path`` without blocking the loop."""
        return await asyncio.to_thread(cls, path, **kwargs)

    # -- writes: submitted to the writer thread --------------------------------

    async def _submit(self, op: _Op) -> Any:
        if self._closed:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        op.future = loop.create_future()
        self._queue.put(op)
        return await op.future

    async def create(self, key: str, value: bytes) -> int:
        return await self._submit(_Op("create", key, bytes(value)))

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> int:
        return await self._submit(_Op("update", key, bytes(value), expected_mod_revision))

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> int:
        return await self._submit(_Op("delete", key, b"", expected_mod_revision))

    async def compact(self, revision: int) -> None:
        """Delete superseded rows at or below ``revision`` (in the writer, in order)."""
        await self._submit(_Op("compact", expected=revision))

    def _writer_main(self) -> None:
        """Group commit loop: one transaction and one fsync per batch of queued ops."""
        stop = False
        while not stop:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ops = [op for op in batch if op.kind != "stop"]
            stop = len(ops) != len(batch)
            if ops:
                self._commit_batch(ops)
        self._wconn.close()

    def _commit_batch(self, ops: list[_Op]) -> None:
        cur = self._wconn.cursor()
        rev = self._wrev
        compacted: int | None = None
        results: list[tuple[_Op, Any]] = []
        events: list[WatchEvent] = []
        try:
            cur.execute("BEGIN IMMEDIATE")
            for op in ops:
                try:
                    if op.kind == "compact":
                        compacted = self._apply_compact(cur, op.expected or 0, rev, compacted)
                        results.append((op, None))
                    else:
                        event = self._apply_write(cur, op, rev + 1)
                        rev += 1
                        events.append(event)
                        results.append((op, rev))
                except StoreError as exc:
                    results.append((op, exc))
            if rev != self._wrev:
                cur.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (rev,))
            cur.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - a failed commit fails every write in it
            log.error("store.commit_failed", backend="sqlite", error=str(exc), ops=len(ops))
            try:
                cur.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            failure = StoreError(f"commit failed: {exc}")
            self._deliver_threadsafe([(op, failure) for op in ops], [], None, self._wrev)
            return
        self._wrev = rev
        self.commits += 1
        self._deliver_threadsafe(results, events, compacted, rev)

    def _apply_write(self, cur: sqlite3.Cursor, op: _Op, rev: int) -> WatchEvent:
        key = op.key
        row = cur.execute(_LATEST, (key,)).fetchone()
        prev = None if row is None or row[3] else KeyValue(key, row[1], row[2], row[0])
        if op.kind == "create":
            if prev is not None:
                raise KeyExistsError(key)
            cur.execute(_INSERT, (rev, key, op.value, rev, 0, 0))
            return WatchEvent(EventType.ADDED, KeyValue(key, op.value, rev, rev), None, rev)
        if prev is None:
            raise KeyNotFoundError(key)
        if op.expected is not None and prev.mod_revision != op.expected:
            raise ConflictError(key, op.expected, prev)
        if op.kind == "update":
            cur.execute(_INSERT, (rev, key, op.value, prev.create_revision, prev.mod_revision, 0))
            kv = KeyValue(key, op.value, prev.create_revision, rev)
            return WatchEvent(EventType.MODIFIED, kv, prev, rev)
        cur.execute(_INSERT, (rev, key, prev.value, prev.create_revision, prev.mod_revision, 1))
        kv = KeyValue(key, prev.value, prev.create_revision, rev)
        return WatchEvent(EventType.DELETED, kv, prev, rev)

    def _apply_compact(self, cur: sqlite3.Cursor, revision: int, rev: int, pending: int | None) -> int | None:
        current = pending if pending is not None else self._compacted_on_disk(cur)
        if revision > rev:
            raise FutureRevisionError(revision, rev)
        if revision <= current:
            return pending
        deleted = cur.execute(_COMPACT, (revision,)).rowcount
        cur.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (revision,))
        log.info("store.compacted", backend="sqlite", revision=revision, rows_deleted=deleted)
        return revision

    @staticmethod
    def _compacted_on_disk(cur: sqlite3.Cursor) -> int:
        return cur.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()[0]

    def _deliver_threadsafe(
        self, results: list[tuple[_Op, Any]], events: list[WatchEvent], compacted: int | None, rev: int
    ) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._deliver, results, events, compacted, rev)
        except RuntimeError:  # the loop was closed under us; nobody is waiting any more
            log.warning("store.loop_closed", backend="sqlite", dropped=len(results))

    def _deliver(
        self, results: list[tuple[_Op, Any]], events: list[WatchEvent], compacted: int | None, rev: int
    ) -> None:
        """On the loop, after commit: advance, publish to watchers, then acknowledge."""
        self._revision = rev
        if compacted is not None:
            self._compacted = compacted
        self._hub.publish(events)
        for op, result in results:
            fut = op.future
            if fut is None or fut.done():
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    # -- reads: on the reader pool ---------------------------------------------

    def _read_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            self._local.conn = conn
            with self._read_lock:
                self._read_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction (one snapshot) on a reader thread."""
        if self._closed:
            raise StoreError("store is closed")

        def run() -> T:
            conn = self._read_conn()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    @staticmethod
    def _meta(conn: sqlite3.Connection) -> tuple[int, int]:
        meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        return meta["revision"], meta["compacted"]

    @staticmethod
    def _check_revision(revision: int, current: int, compacted: int) -> None:
        if revision > current:
            raise FutureRevisionError(revision, current)
        if revision < compacted:
            raise CompactedError(revision, compacted)

    async def get(self, key: str) -> KeyValue | None:
        def read(conn: sqlite3.Connection) -> KeyValue | None:
            row = conn.execute(_LATEST, (key,)).fetchone()
            if row is None or row[3]:
                return None
            return KeyValue(key, row[1], row[2], row[0])

        return await self._read(read)

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        after: str | None = None
        if continue_token is not None:
            revision, after = decode_continue(continue_token)
            if not after.startswith(prefix):
                raise InvalidContinueError(f"continue token does not belong to prefix {prefix!r}")
        end = prefix_end(prefix)
        lower, low_arg = ("h.key > ?", after) if after is not None else ("h.key >= ?", prefix)
        upper = " AND h.key < ?" if end is not None else ""
        # Walk the (key, revision) index in key order and keep, per key, the row
        # that is newest at the list's revision: stops early under LIMIT.
        visible = (
            " AND h.revision = (SELECT MAX(h2.revision) FROM history AS h2"
            " WHERE h2.key = h.key AND h2.revision <= ?) AND h.deleted = 0"
        )
        page_sql = (
            "SELECT h.key, h.value, h.create_revision, h.revision FROM history AS h"
            f" WHERE {lower}{upper}{visible} ORDER BY h.key"
        )
        count_sql = f"SELECT COUNT(*) FROM history AS h WHERE h.key > ?{upper}{visible}"

        def read(conn: sqlite3.Connection) -> ListResult:
            current, compacted = self._meta(conn)
            rev = revision or current
            self._check_revision(rev, current, compacted)
            args: list[Any] = [low_arg] + ([end] if end is not None else []) + [rev]
            sql = page_sql + (" LIMIT ?" if limit else "")
            rows = conn.execute(sql, args + ([limit + 1] if limit else [])).fetchall()
            items = [KeyValue(r[0], r[1], r[2], r[3]) for r in rows[: limit or None]]
            if not limit or len(rows) <= limit:
                return ListResult(items, rev, None, 0)
            last = items[-1].key
            count_args = [last] + ([end] if end is not None else []) + [rev]
            remaining = conn.execute(count_sql, count_args).fetchone()[0]
            return ListResult(items, rev, encode_continue(rev, last), remaining)

        return await self._read(read)

    async def current_revision(self) -> int:
        return self._revision

    async def compacted_revision(self) -> int:
        return self._compacted

    # -- watch -------------------------------------------------------------------

    async def _history(self, prefix: str, after: int, limit: int) -> list[WatchEvent]:
        end = prefix_end(prefix)
        where = "h.revision > ?"
        args: list[Any] = [after]
        if prefix:
            where += " AND h.key >= ?"
            args.append(prefix)
        if end is not None:
            where += " AND h.key < ?"
            args.append(end)
        sql = (
            "SELECT h.revision, h.key, h.value, h.create_revision, h.prev_revision, h.deleted, p.value"
            " FROM history AS h LEFT JOIN history AS p ON p.revision = h.prev_revision"
            f" WHERE {where} ORDER BY h.revision LIMIT ?"
        )
        args.append(limit)

        def read(conn: sqlite3.Connection) -> list[WatchEvent]:
            current, compacted = self._meta(conn)
            self._check_revision(after, current, compacted)
            return [_row_event(row) for row in conn.execute(sql, args)]

        return await self._read(read)

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        return run_watch(self._hub, prefix, from_revision, self._history, buffer=self._watch_buffer)

    # -- lifecycle ---------------------------------------------------------------

    async def close(self) -> None:
        """Finish queued writes, end watches, close every connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_Op("stop"))
        await asyncio.to_thread(self._writer.join)
        self._hub.close()
        self._readers.shutdown(wait=True)
        with self._read_lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
        log.info("store.closed", backend="sqlite", path=self.path, revision=self._revision)


def default_path(data_dir: pathlib.Path) -> pathlib.Path:
    """Where the sqlite backend keeps its file when no path is configured."""
    return data_dir / "store.db"
