"""A Store wrapper that times every operation (for the API server's metrics)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from kcore.store.contract import KeyValue, ListResult, Store, WatchEvent

Observe = Callable[[str, float], None]


class InstrumentedStore(Store):
    """Delegates to ``inner`` and reports each call's duration as (operation, seconds)."""

    def __init__(self, inner: Store, observe: Observe) -> None:
        self.inner = inner
        self.observe = observe

    async def create(self, key: str, value: bytes) -> int:
        started = time.perf_counter()
        try:
            return await self.inner.create(key, value)
        finally:
            self.observe("create", time.perf_counter() - started)

    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> int:
        started = time.perf_counter()
        try:
            return await self.inner.update(key, value, expected_mod_revision)
        finally:
            self.observe("update", time.perf_counter() - started)

    async def delete(self, key: str, expected_mod_revision: int | None = None) -> int:
        started = time.perf_counter()
        try:
            return await self.inner.delete(key, expected_mod_revision)
        finally:
            self.observe("delete", time.perf_counter() - started)

    async def get(self, key: str) -> KeyValue | None:
        started = time.perf_counter()
        try:
            return await self.inner.get(key)
        finally:
            self.observe("get", time.perf_counter() - started)

    async def list(self, prefix: str, *, limit: int = 0, continue_token: str | None = None,
                   revision: int = 0) -> ListResult:
        started = time.perf_counter()
        try:
            return await self.inner.list(prefix, limit=limit, continue_token=continue_token,
                                         revision=revision)
        finally:
            self.observe("list", time.perf_counter() - started)

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        return self.inner.watch(prefix, from_revision)

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def compacted_revision(self) -> int:
        return await self.inner.compacted_revision()

    async def compact(self, revision: int) -> None:
        started = time.perf_counter()
        try:
            await self.inner.compact(revision)
        finally:
            self.observe("compact", time.perf_counter() - started)

    async def close(self) -> None:
        await self.inner.close()
