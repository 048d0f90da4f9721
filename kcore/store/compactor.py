"""Periodic compaction: keep a bounded window of history in the store.

Watches and lists can resume from any revision inside the window; older ones get
410 Gone from the API, as with etcd's periodic compaction in Kubernetes.
"""

from __future__ import annotations

import asyncio

from kcore.log import get_logger
from kcore.store.contract import Store

log = get_logger("store-compactor")


def compaction_target(current: int, compacted: int, retain: int) -> int | None:
    """The revision to compact to, or None when there is nothing worth doing."""
    target = current - retain
    return target if target > compacted else None


async def compact_periodically(store: Store, interval_seconds: float, retain_revisions: int) -> None:
    """Run until cancelled, compacting every ``interval_seconds``."""
    while True:
        await asyncio.sleep(interval_seconds)
        target = compaction_target(
            await store.current_revision(), await store.compacted_revision(), retain_revisions
        )
        if target is not None:
            await store.compact(target)
            log.info("compacted", revision=target)
