"""Entry point ``memory`` of group ``kcore.store``: the in-process MemoryStore.

Nothing survives a restart; meant for tests and simulations.
"""

from __future__ import annotations

import pathlib
from typing import Any

from kcore.hookspecs import hookimpl
from kcore.store.contract import Store
from kcore.store.memory import MemoryStore


@hookimpl
def kcore_store_open(settings: dict[str, Any], data_dir: pathlib.Path) -> Store:
    """A fresh, empty MemoryStore (``data_dir`` is unused: nothing is written)."""
    return MemoryStore(watch_buffer=int(settings.get("watch_buffer", 10_000)))
