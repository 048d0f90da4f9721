"""Watch fan-out shared by the built-in backends.

A backend keeps history (so a watch can replay it) and, after each write is
committed, publishes the new events to a :class:`WatchHub`. :func:`run_watch`
turns both into one ordered, gap-free, duplicate-free stream:

1. subscribe to the hub first, so nothing committed from now on can be missed;
2. replay history after the watcher's last revision, in chunks, until a chunk
   comes back short (history is then caught up with everything committed before
   the subscription);
3. deliver live events, dropping any whose revision was already replayed.

Writers never wait for watchers: each subscription has a bounded buffer. When a
slow watcher lets it overflow, the buffer is dropped and the watcher silently
goes back to step 1 from its last delivered revision, reading the missed events
from history. Only if that history was compacted meanwhile does the iterator
raise CompactedError (the caller re-lists, as Kubernetes clients do on 410).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from kcore.log import get_logger
from kcore.store.contract import WatchEvent

log = get_logger("store")

#: Reads events with revision > ``after`` under ``prefix``, at most ``limit``,
#: in revision order. Raises CompactedError / FutureRevisionError.
HistoryReader = Callable[[str, int, int], Awaitable[list[WatchEvent]]]

DEFAULT_BUFFER = 10_000
DEFAULT_CHUNK = 1_000


def prefix_end(prefix: str) -> str | None:
    """Smallest string greater than every string that starts with ``prefix``.

    Lets a sorted store bound a prefix scan by a range (``prefix <= k < end``);
    None means unbounded (empty prefix, or only maximal code points).
    """
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if code == 0xD800:  # surrogates cannot be encoded; skip to the next valid code point
            code = 0xE000
        if code <= 0x10FFFF:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


class Subscription:
    """One watcher's bounded inbox of published event batches."""

    __slots__ = ("prefix", "limit", "_batches", "_size", "_wakeup", "overflowed", "closed")

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self.limit = limit
        self._batches: list[Sequence[WatchEvent]] = []
        self._size = 0
        self._wakeup = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def offer(self, events: Sequence[WatchEvent]) -> None:
        """Queue events without ever blocking the publisher."""
        if self.overflowed or self.closed:
            return
        self._size += len(events)
        if self._size > self.limit:
            self._batches.clear()
            self._size = 0
            self.overflowed = True
        else:
            self._batches.append(events)
        self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def take(self) -> list[Sequence[WatchEvent]]:
        """Wait for and return pending batches; empty when overflowed or closed."""
        while not self._batches and not self.overflowed and not self.closed:
            self._wakeup.clear()
            await self._wakeup.wait()
        batches, self._batches, self._size = self._batches, [], 0
        return batches


class WatchHub:
    """In-memory broadcast of committed events to every live subscription."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self.closed = False

    def subscribe(self, prefix: str, limit: int = DEFAULT_BUFFER) -> Subscription:
        sub = Subscription(prefix, limit)
        if self.closed:
            sub.close()
        else:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, events: Sequence[WatchEvent]) -> None:
        """Hand ``events`` (ascending revisions) to every matching subscription.

        Subscriptions sharing a prefix share one filtered list, so fan-out to many
        watchers of the same resource costs one filter pass.
        """
        if not events or not self._subs:
            return
        filtered: dict[str, Sequence[WatchEvent]] = {"": events}
        for sub in self._subs:
            matched = filtered.get(sub.prefix)
            if matched is None:
                p = sub.prefix
                matched = filtered[p] = [e for e in events if e.kv.key.startswith(p)]
            if matched:
                sub.offer(matched)

    def close(self) -> None:
        """End every subscription (their watch iterators return)."""
        self.closed = True
        for sub in self._subs:
            sub.close()
        self._subs.clear()


async def run_watch(
    hub: WatchHub,
    prefix: str,
    from_revision: int,
    read_history: HistoryReader,
    *,
    buffer: int = DEFAULT_BUFFER,
    chunk: int = DEFAULT_CHUNK,
) -> AsyncIterator[WatchEvent]:
    """The watch stream described in this module's docstring."""
    last = from_revision
    while True:
        sub = hub.subscribe(prefix, buffer)
        try:
            while True:  # replay: everything committed before the subscription
                events = await read_history(prefix, last, chunk)
                for event in events:
                    yield event
                    last = event.revision
                if len(events) < chunk:
                    break
            while True:  # live
                batches = await sub.take()
                if not batches:
                    break
                for batch in batches:
                    for event in batch:
                        if event.revision > last:
                            yield event
                            last = event.revision
        finally:
            hub.unsubscribe(sub)
        if sub.closed:
            return
        log.info("watch.overflow", prefix=prefix, resume_from=last)
