"""Fixtures that run every store test against every installed backend.

Backends are discovered from the ``kcore.store`` entry-point group, so a new
backend distribution is covered by the conformance suite as soon as it is
installed.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator, Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pytest

from kcore.store.contract import Store, WatchEvent

BACKENDS: dict[str, EntryPoint] = {ep.name: ep for ep in entry_points(group="kcore.store")}

StoreFactory = Callable[..., Store]


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def open_store(backend: str, tmp_path: pathlib.Path) -> AsyncIterator[StoreFactory]:
    """Opens ``backend`` on one data dir (reopening sees the same data); closes all."""
    module = BACKENDS[backend].load()
    opened: list[Store] = []

    def factory(**settings: Any) -> Store:
        store = module.kcore_store_open(settings=settings, data_dir=tmp_path / "data")
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: StoreFactory) -> Store:
    return open_store()


async def take(it: AsyncIterator[WatchEvent], n: int, timeout: float = 10.0) -> list[WatchEvent]:
    """The next ``n`` events of a watch (fails the test if they never come)."""
    async def collect() -> list[WatchEvent]:
        out: list[WatchEvent] = []
        while len(out) < n:
            out.append(await anext(it))
        return out

    return await asyncio.wait_for(collect(), timeout)


async def stop(it: AsyncIterator[WatchEvent]) -> None:
    """Disconnect a watcher the way a consumer does: close its iterator."""
    await it.aclose()  # type: ignore[attr-defined]


@pytest.fixture(name="take")
def take_fixture() -> Callable[..., Any]:
    """:func:`take` as a fixture (test modules are imported without sys.path tricks)."""
    return take


@pytest.fixture(name="stop")
def stop_fixture() -> Callable[..., Any]:
    return stop
