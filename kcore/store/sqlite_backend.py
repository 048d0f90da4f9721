"""Entry point ``sqlite`` of group ``kcore.store``: the durable default backend.

Settings: ``path`` (default ``<data_dir>/store.db``), ``readers`` (read threads,
default 4), ``watch_buffer`` (events a watcher may lag before catching up from
history, default 10000).
"""

from __future__ import annotations

import pathlib
from typing import Any

from kcore.hookspecs import hookimpl
from kcore.store.contract import Store
from kcore.store.sqlite import SqliteStore, default_path


@hookimpl
def kcore_store_open(settings: dict[str, Any], data_dir: pathlib.Path) -> Store:
    """Open (creating if needed) the SQLite store; construction is synchronous."""
    path = pathlib.Path(settings.get("path") or default_path(data_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteStore(
        path,
        readers=int(settings.get("readers", 4)),
        watch_buffer=int(settings.get("watch_buffer", 10_000)),
    )
