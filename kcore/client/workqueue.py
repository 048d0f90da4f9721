"""Work queues for controllers, with client-go's semantics (util/workqueue).

The queue holds keys, not objects, and de-duplicates them: however many events
arrive for one object while it waits, it is reconciled once, from the cache's
latest state. A key is never handed to two workers at once: re-added while being
processed, it is queued again only when the worker calls :meth:`WorkQueue.done`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Hashable

from kcore.log import get_logger

log = get_logger("workqueue")


class QueueShutDown(Exception):
    """The queue was shut down: the worker should return."""


class RateLimiter:
    """How long to wait before retrying an item: the larger of a per-item exponential
    back-off (``base_delay * 2**failures``, capped at ``max_delay``) and an overall token
    bucket (``qps`` with ``burst``) — client-go's DefaultControllerRateLimiter.

    The exponential part stops one broken object from spinning; the bucket stops a
    mass failure (the API server is down) from becoming a retry storm.
    """

    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 1000.0, qps: float = 10.0,
                 burst: int = 100, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._failures: dict[Hashable, int] = {}
        self._tokens = float(burst)
        self._last = clock()

    def when(self, item: Hashable) -> float:
        """Seconds to wait before ``item`` is retried; counts one more failure."""
        failures = self._failures.get(item, 0)
        self._failures[item] = failures + 1
        exponential = min(self.base_delay * (2.0 ** min(failures, 64)), self.max_delay)
        return max(exponential, self._reserve())

    def _reserve(self) -> float:
        """Take one token (possibly into debt, like Go's rate.Limiter.Reserve); the wait."""
        if self.qps <= 0:
            return 0.0
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: Hashable) -> None:
        """Clear ``item``'s failures (it succeeded): the next back-off starts small again."""
        self._failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self._failures.get(item, 0)


class WorkQueue:
    """A fair FIFO of keys that de-duplicates, never hands one key to two workers at
    once, and can delay or rate-limit re-adds."""

    def __init__(self, name: str = "", rate_limiter: RateLimiter | None = None) -> None:
        self.name = name
        self.rate_limiter = rate_limiter or RateLimiter()
        self._queue: collections.deque[Hashable] = collections.deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._delayed: dict[Hashable, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    # ---- adding ----------------------------------------------------------------

    def add(self, item: Hashable) -> None:
        """Queue ``item`` unless it is queued already (or being processed: then after done())."""
        if self._shutting_down or item in self._dirty:
            return
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._wake_one()

    def add_after(self, item: Hashable, seconds: float) -> None:
        """Queue ``item`` once ``seconds`` have passed; a sooner request for it wins."""
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + seconds
        pending = self._delayed.get(item)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        handle = loop.call_at(ready_at, self._fire, item)
        self._delayed[item] = (ready_at, handle)

    def _fire(self, item: Hashable) -> None:
        self._delayed.pop(item, None)
        self.add(item)

    def add_rate_limited(self, item: Hashable) -> None:
        """Re-queue ``item`` after its back-off (it failed)."""
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: Hashable) -> None:
        self.rate_limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.rate_limiter.num_requeues(item)

    # ---- taking ----------------------------------------------------------------

    async def get(self) -> Hashable:
        """The next item (waiting for one); the caller must call done(item) afterwards."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # A wake-up meant for us must not be lost: pass it on.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
        if self._shutting_down:
            raise QueueShutDown(self.name)
        item = self._queue.popleft()
        self._processing.add(item)
        self._dirty.discard(item)
        return item

    def done(self, item: Hashable) -> None:
        """Processing of ``item`` is over; if it was re-added meanwhile, queue it again."""
        self._processing.discard(item)
        if item in self._dirty and not self._shutting_down:
            self._queue.append(item)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # ---- lifecycle -------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop handing out items: waiting and later get() calls raise QueueShutDown."""
        self._shutting_down = True
        for _ready_at, handle in self._delayed.values():
            handle.cancel()
        self._delayed.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Items ready to be handed out (not counting delayed or in-process ones)."""
        return len(self._queue)

    @property
    def waiting_delayed(self) -> int:
        """Items waiting for their delay to pass."""
        return len(self._delayed)

