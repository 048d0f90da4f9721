"""The base of every controller: informers enqueue keys, workers reconcile from the cache.

Level-triggered, as in client-go's examples/workqueue: a handler never acts on the
event it was given, it only enqueues ``namespace/name``. A worker then reads the
*current* state from the informer cache and makes the world match it. Missed,
merged or repeated events are therefore harmless, and a failure is simply retried
with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from kcore.client.informer import Informer, object_key
from kcore.client.workqueue import QueueShutDown, RateLimiter, WorkQueue
from kcore.log import get_logger


class Controller:
    """Subclass and implement :meth:`reconcile`; register handlers that call :meth:`enqueue`."""

    name: str

    def __init__(self, name: str, *, workers: int = 2, rate_limiter: RateLimiter | None = None,
                 stop_grace_seconds: float = 5.0) -> None:
        self.name = name
        self.workers = workers
        self.queue = WorkQueue(name, rate_limiter)
        self.stop_grace_seconds = stop_grace_seconds
        self.log = get_logger("controller", controller=name)
        self._stop = asyncio.Event()
        self._worker_tasks: list[asyncio.Task[None]] = []

    # ---- enqueueing ------------------------------------------------------------

    def enqueue(self, obj_or_key: dict[str, Any] | str) -> None:
        """Queue an object's key (or a key) for reconciling."""
        key = obj_or_key if isinstance(obj_or_key, str) else object_key(obj_or_key)
        self.queue.add(key)

    def enqueue_after(self, obj_or_key: dict[str, Any] | str, seconds: float) -> None:
        key = obj_or_key if isinstance(obj_or_key, str) else object_key(obj_or_key)
        self.queue.add_after(key, seconds)

    def watch(self, informer: Informer) -> None:
        """Enqueue the key of every object ``informer`` reports added, changed or deleted."""
        informer.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                             on_delete=self.enqueue)

    # ---- the loop --------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        """Make the world match the desired state of ``key``; read it from the cache.

        Return seconds after which to look again, or None. Raise to be retried with
        rate-limited back-off. Must be idempotent: it may run again for no reason.
        """
        raise NotImplementedError

    async def run(self, informers: list[Informer]) -> None:
        """Wait for the caches to sync, then reconcile with ``workers`` workers until stop()."""
        self._stop.clear()
        synced = asyncio.ensure_future(asyncio.gather(*(i.wait_synced() for i in informers)))
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({synced, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (synced, stopped):
                if not fut.done():
                    fut.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fut
        if self._stop.is_set():
            return
        self.log.info("controller started", workers=self.workers)
        self._worker_tasks = [asyncio.create_task(self._worker(i), name=f"{self.name}-worker-{i}")
                              for i in range(self.workers)]
        try:
            await asyncio.gather(*self._worker_tasks)
        except asyncio.CancelledError:
            if not self._stop.is_set():
                for task in self._worker_tasks:
                    task.cancel()
                raise
        self.log.info("controller stopped")

    async def stop(self) -> None:
        """Stop taking work; in-flight reconciles get ``stop_grace_seconds`` to finish."""
        self._stop.set()
        self.queue.shutdown()
        tasks = [t for t in self._worker_tasks if not t.done()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.stop_grace_seconds)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _worker(self, number: int) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                requeue_after = await self.reconcile(key)  # type: ignore[arg-type]
            except asyncio.CancelledError:
                self.queue.done(key)
                raise
            except Exception as exc:  # noqa: BLE001 - retried with back-off, never fatal
                retries = self.queue.num_requeues(key)
                self.log.warning("reconcile failed; will retry", key=key, retries=retries,
                                 error=str(exc) or type(exc).__name__, exc_info=retries >= 5)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if requeue_after is not None:
                    self.queue.add_after(key, requeue_after)
            self.queue.done(key)
