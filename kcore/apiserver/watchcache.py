"""One store watch per kind, fanned out to every API watcher.

A thousand ``kubectl get -w`` clients cost one store watch and one JSON decode
per event, not a thousand. The cache keeps a window of recent events so a
client resuming from a recent resourceVersion is served from memory; older
resumptions fall back to a store watch of their own (which reports compaction
as 410 Gone).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kcore.api.registry import KindInfo
from kcore.apiserver.resources import decode
from kcore.log import get_logger
from kcore.store.contract import Store, StoreError, WatchEvent

log = get_logger("watch-cache")


@dataclass(frozen=True, slots=True)
class CacheEvent:
    type: str  # ADDED | MODIFIED | DELETED
    object: dict[str, Any]
    prev_object: dict[str, Any] | None
    revision: int
    # Selectable fields of object/prev_object, computed once and shared by every
    # watcher with a field selector (one per node for kubelets).
    fields: dict[str, dict[str, str]] = field(default_factory=dict)


class WatcherOverflow(Exception):
    """A watcher fell too far behind; it must re-watch from its last revision."""


def _to_cache_event(event: WatchEvent) -> CacheEvent:
    return CacheEvent(
        type=event.type.value,
        object=decode(event.kv),
        prev_object=decode(event.prev_kv) if event.prev_kv is not None else None,
        revision=event.revision,
    )


class _Subscriber:
    __slots__ = ("queue", "overflowed")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[CacheEvent | None] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def offer(self, event: CacheEvent | None) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            # Make room for the end-of-stream marker so the consumer wakes up.
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class WatchCache:
    """Recent events of one kind plus live fan-out."""

    def __init__(self, store: Store, info: KindInfo, *, capacity: int = 2048,
                 subscriber_buffer: int = 8192) -> None:
        self.store = store
        self.info = info
        self.capacity = capacity
        self.subscriber_buffer = subscriber_buffer
        self._events: collections.deque[CacheEvent] = collections.deque()
        self._floor = 0  # every event of this kind with revision > floor is buffered
        self._progress = 0  # the cache has seen every event up to here
        self._subscribers: set[_Subscriber] = set()
        self._private: set[Any] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def progress_revision(self) -> int:
        """A revision up to which this cache has delivered every event (for bookmarks)."""
        return self._progress

    async def start(self) -> None:
        if self._task is None:
            # Fill the window from the oldest history the store still has, so clients
            # resuming from a revision older than this cache are served from it too.
            revision = await self.store.compacted_revision()
            self._floor = self._progress = revision
            self._task = asyncio.create_task(self._run(revision), name=f"watch-cache {self.info.plural}")
        await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for sub in list(self._subscribers):
            sub.offer(None)
        for stream in list(self._private):
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _run(self, revision: int) -> None:
        while True:
            try:
                stream = self.store.watch(self.info.key_prefix, revision)
                self._ready.set()
                async for event in stream:
                    self._publish(_to_cache_event(event))
                    revision = event.revision
                return  # the store closed
            except asyncio.CancelledError:
                raise
            except StoreError as exc:
                # Our own store watch fell behind: everything before `revision` was
                # delivered, so re-watching from it loses nothing.
                log.warning("store watch ended; resuming", kind=self.info.kind, error=str(exc),
                            revision=revision)
                await asyncio.sleep(0.05)

    def _publish(self, event: CacheEvent) -> None:
        self._events.append(event)
        self._progress = event.revision
        while len(self._events) > self.capacity:
            self._floor = self._events.popleft().revision
        for sub in self._subscribers:
            sub.offer(event)

    async def watch(self, from_revision: int) -> AsyncIterator[CacheEvent]:
        """Events with revision > ``from_revision``, in order, until the caller stops."""
        await self.start()
        if from_revision < self._floor:
            # Older than the window: a store watch of its own (it reports compaction).
            stream = self.store.watch(self.info.key_prefix, from_revision)
            self._private.add(stream)
            try:
                async for raw in stream:
                    yield _to_cache_event(raw)
            finally:
                self._private.discard(stream)
                await stream.aclose()  # type: ignore[attr-defined]
            return
        sub = _Subscriber(self.subscriber_buffer)
        # Snapshot and subscribe without awaiting in between: no gap, no duplicate.
        backlog = [e for e in self._events if e.revision > from_revision]
        self._subscribers.add(sub)
        last = from_revision
        try:
            for event in backlog:
                last = event.revision
                yield event
            while True:
                event = await sub.queue.get()
                if event is None:
                    if sub.overflowed:
                        raise WatcherOverflow(f"watcher fell behind after revision {last}")
                    return
                if event.revision <= last:
                    continue
                last = event.revision
                yield event
        finally:
            self._subscribers.discard(sub)


class WatchCaches:
    """The caches of one API server, created on first use per kind."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._caches: dict[str, WatchCache] = {}

    def for_kind(self, info: KindInfo) -> WatchCache:
        cache = self._caches.get(info.key_prefix)
        if cache is None:
            cache = self._caches[info.key_prefix] = WatchCache(self.store, info)
        return cache

    @property
    def watcher_count(self) -> int:
        return sum(len(c._subscribers) for c in list(self._caches.values()))

    async def stop(self) -> None:
        for cache in list(self._caches.values()):
            await cache.stop()
