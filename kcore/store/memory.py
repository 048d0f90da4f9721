"""In-process MVCC store: the reference backend for tests and large simulations.

Every method runs to completion without awaiting, so on one event loop each
write is atomic without locks. History is kept per key (for lists at older
revisions) and as one global event log (for watch replay) until ``compact``.
Keys are held in a sorted list so a prefix list is a bisect plus a scan; new
keys wait in an unsorted side list and are merged on the next list (one
linear merge instead of an O(n) insertion per create). Watch events are
published once per event-loop iteration, so a burst of writes fans out as one
batch per watcher.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
from collections.abc import AsyncIterator

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
from kcore.store.watchhub import WatchHub, run_watch

log = get_logger("store")


class MemoryStore(Store):
    """A revisioned key-value store that lives in one Python process."""

    def __init__(self, *, watch_buffer: int = 10_000) -> None:
        self._revision = 0
        self._compacted = 0
        self._current: dict[str, KeyValue] = {}
        # Per key, ascending revisions and the version written at each (None = deleted).
        self._revs: dict[str, list[int]] = {}
        self._vers: dict[str, list[KeyValue | None]] = {}
        self._keys: list[str] = []  # sorted; every key with history (see _sorted_keys)
        self._new_keys: list[str] = []  # created since the last merge, unsorted
        self._unpublished: list[WatchEvent] = []
        self._log: list[WatchEvent] = []  # _log[i].revision == _log_base + 1 + i
        self._log_base = 0
        self._hub = WatchHub()
        self._watch_buffer = watch_buffer
        self._closed = False

    # -- writes ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("store is closed")

    def _commit(self, type_: EventType, kv: KeyValue, prev: KeyValue | None, live: bool) -> int:
        """Record one write in every index and tell the watchers."""
        key = kv.key
        revs = self._revs.get(key)
        if revs is None:
            self._revs[key] = [kv.mod_revision]
            self._vers[key] = [kv if live else None]
            self._new_keys.append(key)
        else:
            revs.append(kv.mod_revision)
            self._vers[key].append(kv if live else None)
        if live:
            self._current[key] = kv
        else:
            del self._current[key]
        self._revision = kv.mod_revision
        event = WatchEvent(type_, kv, prev, kv.mod_revision)
        self._log.append(event)
        if not self._unpublished:
            asyncio.get_running_loop().call_soon(self._publish)
        self._unpublished.append(event)
        return kv.mod_revision

    def _publish(self) -> None:
        """Hand this loop iteration's events to the watchers as one batch."""
        events, self._unpublished = self._unpublished, []
        self._hub.publish(events)

    def _sorted_keys(self) -> list[str]:
        if self._new_keys:
            self._new_keys.sort()
            self._keys = list(heapq.merge(self._keys, self._new_keys))
            self._new_keys = []
        return self._keys

    async def create(self, key: str, value: bytes) -> int:
        self._check_open()
        if key in self._current:
            raise KeyExistsError(key)
        rev = self._revision + 1
        return self._commit(EventType.ADDED, KeyValue(key, value, rev, rev), None, True)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> int:
        self._check_open()
        prev = self._current.get(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if prev.mod_revision != expected_mod_revision:
            raise ConflictError(key, expected_mod_revision, prev)
        rev = self._revision + 1
        kv = KeyValue(key, value, prev.create_revision, rev)
        return self._commit(EventType.MODIFIED, kv, prev, True)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> int:
        self._check_open()
        prev = self._current.get(key)
        if prev is None:
            raise KeyNotFoundError(key)
        if expected_mod_revision is not None and prev.mod_revision != expected_mod_revision:
            raise ConflictError(key, expected_mod_revision, prev)
        rev = self._revision + 1
        kv = KeyValue(key, prev.value, prev.create_revision, rev)
        return self._commit(EventType.DELETED, kv, prev, False)

    # -- reads ----------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        self._check_open()
        return self._current.get(key)

    def _check_revision(self, revision: int) -> None:
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision < self._compacted:
            raise CompactedError(revision, self._compacted)

    def _at(self, key: str, revision: int) -> KeyValue | None:
        """The version of ``key`` visible at ``revision``."""
        revs = self._revs[key]
        i = bisect.bisect_right(revs, revision) - 1
        return self._vers[key][i] if i >= 0 else None

    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        self._check_open()
        keys = self._sorted_keys()
        if continue_token is not None:
            revision, last_key = decode_continue(continue_token)
            if not last_key.startswith(prefix):
                raise InvalidContinueError(f"continue token does not belong to prefix {prefix!r}")
            start = bisect.bisect_right(keys, last_key)
        else:
            start = bisect.bisect_left(keys, prefix)
        if revision == 0:
            revision = self._revision
        self._check_revision(revision)
        current = revision == self._revision
        items: list[KeyValue] = []
        remaining = 0
        for i in range(start, len(keys)):
            key = keys[i]
            if not key.startswith(prefix):
                break
            kv = self._current.get(key) if current else self._at(key, revision)
            if kv is None:
                continue
            if limit and len(items) >= limit:
                remaining += 1
            else:
                items.append(kv)
        token = encode_continue(revision, items[-1].key) if remaining else None
        return ListResult(items, revision, token, remaining)

    async def current_revision(self) -> int:
        return self._revision

    async def compacted_revision(self) -> int:
        return self._compacted

    # -- watch ----------------------------------------------------------------

    async def _history(self, prefix: str, after: int, limit: int) -> list[WatchEvent]:
        self._check_revision(after)
        out: list[WatchEvent] = []
        for i in range(after - self._log_base, len(self._log)):
            event = self._log[i]
            if event.kv.key.startswith(prefix):
                out.append(event)
                if len(out) >= limit:
                    break
        return out

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        return run_watch(self._hub, prefix, from_revision, self._history, buffer=self._watch_buffer)

    # -- maintenance ----------------------------------------------------------

    async def compact(self, revision: int) -> None:
        """Drop every version superseded at ``revision`` and the events up to it."""
        self._check_open()
        if revision > self._revision:
            raise FutureRevisionError(revision, self._revision)
        if revision <= self._compacted:
            return
        gone: list[str] = []
        for key, revs in self._revs.items():
            i = bisect.bisect_right(revs, revision) - 1  # the version visible at `revision`
            if i < 0:
                continue
            vers = self._vers[key]
            keep_from = i if vers[i] is not None else i + 1
            if keep_from:
                del revs[:keep_from]
                del vers[:keep_from]
                if not revs:
                    gone.append(key)
        for key in gone:
            del self._revs[key]
            del self._vers[key]
        if gone:
            self._keys, self._new_keys = sorted(self._revs), []
        del self._log[: revision - self._log_base]
        self._log_base = revision
        self._compacted = revision
        log.info("store.compacted", backend="memory", revision=revision, keys_dropped=len(gone))

    async def close(self) -> None:
        self._closed = True
        self._publish()
        self._hub.close()
