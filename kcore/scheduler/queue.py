"""The scheduling queue: active pods in queue-sort order, backoff, and parked pods.

Three places a pending pod can be, as in Kubernetes:

* **active** — a heap ordered by the profile's queue-sort plugin (PrioritySort:
  higher priority first), then by the time the pod entered the queue;
* **backoff** — pods that failed recently, waiting ``initial * 2**(attempts-1)``
  seconds (capped) before they become active again;
* **unschedulable** — pods no node could take; they stay parked until a cluster
  event that may help (a node added or updated, an assigned pod deleted) moves
  them back, or until ``max_unschedulable_seconds`` pass as a safety net.

``pop`` waits for an event or for the earliest backoff to end — never a poll.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Any

from kcore.log import get_logger
from kcore.scheduler.node_info import PodInfo, pod_key

log = get_logger("scheduler.queue")

Less = Callable[[Any, Any], "bool | None"]


class QueuedPodInfo:
    """A pending pod with its queue bookkeeping."""

    __slots__ = ("pod_info", "timestamp", "initial_attempt", "attempts", "seq", "removed", "backoff_until",
                 "parked_at")

    def __init__(self, pod_info: PodInfo, timestamp: float, seq: int) -> None:
        self.pod_info = pod_info
        self.timestamp = timestamp
        self.initial_attempt: float | None = None
        self.attempts = 0
        self.seq = seq
        self.removed = False
        self.backoff_until = 0.0
        self.parked_at = 0.0

    @property
    def pod(self) -> Any:
        return self.pod_info.pod

    @property
    def key(self) -> str:
        return self.pod_info.key


class _ActiveEntry:
    """A heap entry: compares with the queue-sort plugin, then arrival."""

    __slots__ = ("qpi", "less")

    def __init__(self, qpi: QueuedPodInfo, less: Less) -> None:
        self.qpi = qpi
        self.less = less

    def __lt__(self, other: _ActiveEntry) -> bool:
        a, b = self.qpi, other.qpi
        verdict = self.less(a.pod, b.pod)
        if verdict:
            return True
        if verdict is False and self.less(b.pod, a.pod):
            return False
        return (a.timestamp, a.seq) < (b.timestamp, b.seq)


class SchedulingQueue:
    """Pending pods for every profile of one scheduler."""

    def __init__(
        self,
        less: Less | None = None,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._less: Less = less or (lambda a, b: None)
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable_seconds = max_unschedulable_seconds
        self._clock = clock
        self._seq = itertools.count()
        self._active: list[_ActiveEntry] = []
        self._backoff: list[tuple[float, int, QueuedPodInfo]] = []
        self._unschedulable: dict[str, QueuedPodInfo] = {}
        self._where: dict[str, QueuedPodInfo] = {}  # key -> entry in active or backoff
        self._in_flight: set[str] = set()
        self._wakeup: asyncio.Event | None = None
        self._closed = False
        self.scheduling_cycle = 0
        self._move_request_cycle = -1

    # -- state ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._where) + len(self._unschedulable)

    def active_keys(self) -> list[str]:
        """The active pods' keys in the order they would pop (for tests and debugging)."""
        return [e.qpi.key for e in sorted(e for e in self._active if not e.qpi.removed)]

    def backoff_keys(self) -> list[str]:
        return [q.key for _, _, q in sorted(self._backoff, key=lambda t: (t[0], t[1])) if not q.removed]

    def unschedulable_keys(self) -> list[str]:
        return sorted(self._unschedulable)

    def __contains__(self, key: object) -> bool:
        return key in self._where or key in self._unschedulable

    def backoff_duration(self, attempts: int) -> float:
        """``initial * 2**(attempts-1)``, at most ``max_backoff``."""
        if attempts <= 0:
            return 0.0
        return min(self.initial_backoff * (2 ** (attempts - 1)), self.max_backoff)

    # -- adding and removing -------------------------------------------------

    def add(self, pod: Any) -> None:
        """A new pending pod (or a newer copy of one already queued)."""
        key = pod_key(pod)
        if key in self._in_flight:
            return  # being scheduled right now; its outcome decides what happens next
        existing = self._where.get(key) or self._unschedulable.get(key)
        if existing is not None:
            self.update(pod)
            return
        qpi = QueuedPodInfo(PodInfo(pod), self._clock(), next(self._seq))
        self._push_active(qpi)

    def update(self, pod: Any) -> None:
        """A queued pod changed: keep its place, or retry it now if it was parked."""
        key = pod_key(pod)
        parked = self._unschedulable.pop(key, None)
        if parked is not None:
            parked.pod_info = PodInfo(pod)
            self._push_active(parked)  # its spec may fit now
            return
        queued = self._where.get(key)
        if queued is not None:
            queued.pod_info = PodInfo(pod)
        elif key not in self._in_flight:
            self.add(pod)

    def refresh(self, pod: Any) -> None:
        """Keep the newest copy of a queued pod without moving it (a status-only change)."""
        key = pod_key(pod)
        qpi = self._where.get(key) or self._unschedulable.get(key)
        if qpi is not None:
            qpi.pod_info = PodInfo(pod)

    def delete(self, key: str) -> None:
        """The pod is gone or no longer pending (bound, deleted)."""
        qpi = self._where.pop(key, None)
        if qpi is not None:
            qpi.removed = True
        self._unschedulable.pop(key, None)

    def _push_active(self, qpi: QueuedPodInfo) -> None:
        qpi.removed = False
        fresh = QueuedPodInfo(qpi.pod_info, self._clock(), next(self._seq))
        fresh.attempts, fresh.initial_attempt = qpi.attempts, qpi.initial_attempt
        old = self._where.get(qpi.key)
        if old is not None:
            old.removed = True
        self._where[fresh.key] = fresh
        heapq.heappush(self._active, _ActiveEntry(fresh, self._less))
        self._wake()

    def _push_backoff(self, qpi: QueuedPodInfo) -> None:
        fresh = QueuedPodInfo(qpi.pod_info, qpi.timestamp, next(self._seq))
        fresh.attempts, fresh.initial_attempt = qpi.attempts, qpi.initial_attempt
        fresh.backoff_until = qpi.backoff_until
        old = self._where.get(qpi.key)
        if old is not None:
            old.removed = True
        self._where[fresh.key] = fresh
        heapq.heappush(self._backoff, (fresh.backoff_until, fresh.seq, fresh))
        self._wake()

    # -- outcomes of a scheduling attempt -----------------------------------

    def add_unschedulable(self, qpi: QueuedPodInfo, cycle: int) -> None:
        """No node fit: park the pod, unless the cluster changed during its attempt."""
        self._in_flight.discard(qpi.key)
        qpi.backoff_until = self._clock() + self.backoff_duration(qpi.attempts)
        if self._move_request_cycle >= cycle:
            self._push_backoff(qpi)  # an event that may help already happened: retry soon
            return
        qpi.parked_at = self._clock()
        self._unschedulable[qpi.key] = qpi
        self._wake()  # pop's deadline may have changed

    def add_backoff(self, qpi: QueuedPodInfo) -> None:
        """The attempt failed with an error: retry after the back-off."""
        self._in_flight.discard(qpi.key)
        qpi.backoff_until = self._clock() + self.backoff_duration(qpi.attempts)
        self._push_backoff(qpi)

    def done(self, key: str) -> None:
        """The attempt ended with the pod bound (or dropped): forget it."""
        self._in_flight.discard(key)

    def move_all_to_active_or_backoff(self, event: str) -> int:
        """A cluster event that may make parked pods fit: give each another try.

        Pods still inside their back-off go to the backoff queue, the rest to
        active. Returns how many pods moved.
        """
        self._move_request_cycle = self.scheduling_cycle
        if not self._unschedulable:
            return 0
        now = self._clock()
        moved = list(self._unschedulable.values())
        self._unschedulable.clear()
        for qpi in moved:
            if qpi.backoff_until > now:
                self._push_backoff(qpi)
            else:
                self._push_active(qpi)
        log.debug("moved unschedulable pods", cluster_event=event, count=len(moved))
        return len(moved)

    # -- popping -------------------------------------------------------------

    def flush(self) -> None:
        """Move finished back-offs to active and over-long parked pods to active/backoff."""
        now = self._clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, qpi = heapq.heappop(self._backoff)
            if not qpi.removed and self._where.get(qpi.key) is qpi:
                self._push_active(qpi)
        if self._unschedulable:
            stale = [q for q in self._unschedulable.values()
                     if now - q.parked_at >= self.max_unschedulable_seconds]
            for qpi in stale:
                del self._unschedulable[qpi.key]
                self._push_active(qpi)

    def pop_nowait(self) -> QueuedPodInfo | None:
        """The next active pod, or None if none is ready."""
        self.flush()
        while self._active:
            qpi = heapq.heappop(self._active).qpi
            if qpi.removed or self._where.get(qpi.key) is not qpi:
                continue
            del self._where[qpi.key]
            qpi.attempts += 1
            if qpi.initial_attempt is None:
                qpi.initial_attempt = self._clock()
            self.scheduling_cycle += 1
            self._in_flight.add(qpi.key)
            return qpi
        return None

    def _next_deadline(self) -> float | None:
        deadlines = []
        while self._backoff and (self._backoff[0][2].removed or self._where.get(self._backoff[0][2].key)
                                 is not self._backoff[0][2]):
            heapq.heappop(self._backoff)
        if self._backoff:
            deadlines.append(self._backoff[0][0])
        if self._unschedulable:
            deadlines.append(min(q.parked_at for q in self._unschedulable.values()) + self.max_unschedulable_seconds)
        return min(deadlines) if deadlines else None

    async def pop(self) -> QueuedPodInfo | None:
        """Wait for the next pod to schedule; None once the queue is closed."""
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        while not self._closed:
            qpi = self.pop_nowait()
            if qpi is not None:
                return qpi
            self._wakeup.clear()
            deadline = self._next_deadline()
            timeout = None if deadline is None else max(deadline - self._clock(), 0.0)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                pass
        return None

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
