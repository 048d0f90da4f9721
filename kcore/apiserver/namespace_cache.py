"""Namespaces kept in memory for admission (like the NamespaceLifecycle informer).

Every namespaced create asks whether its namespace exists and is not
terminating; answering from memory instead of the store took a tenth of a
create's time (benchmarks/api_bench.py). This server's own namespace writes
update the cache synchronously (the store has no other writer), and a miss falls
back to the store, so the answer is never stale.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from kcore.api.registry import KindInfo
from kcore.apiserver.resources import ResourceStore
from kcore.apiserver.watchcache import WatchCaches
from kcore.log import get_logger

log = get_logger("namespace-cache")


class NamespaceCache:
    def __init__(self, resources: ResourceStore, caches: WatchCaches, info: KindInfo) -> None:
        self.resources = resources
        self.caches = caches
        self.info = info
        self._objects: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None
        resources.observe(info, self._apply)

    def _apply(self, event_type: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if event_type == "DELETED":
            self._objects.pop(name, None)
        else:
            current = self._objects.get(name)
            if current is None or int(current["metadata"].get("resourceVersion") or 0) <= \
                    int(obj["metadata"].get("resourceVersion") or 0):
                self._objects[name] = obj

    async def start(self) -> None:
        page = await self.resources.list(self.info, None)
        self._objects = {o["metadata"]["name"]: o for o in page.items}
        self._task = asyncio.create_task(self._follow(int(page.resource_version)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _follow(self, revision: int) -> None:
        cache = self.caches.for_kind(self.info)
        while True:
            try:
                async for event in cache.watch(revision):
                    self._apply(event.type, event.object)
                    revision = event.revision
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - restart from a fresh list
                log.warning("namespace watch restarted", error=str(exc))
                await asyncio.sleep(0.1)
                page = await self.resources.list(self.info, None)
                self._objects = {o["metadata"]["name"]: o for o in page.items}
                revision = int(page.resource_version)

    async def lookup(self, name: str) -> dict[str, Any] | None:
        """The namespace, from memory when known, else from the store."""
        found = self._objects.get(name)
        if found is not None or self._task is None:
            return found if found is not None else await self.resources.get_or_none(self.info, None, name)
        return await self.resources.get_or_none(self.info, None, name)
