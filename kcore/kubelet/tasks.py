"""Stopping asyncio tasks for sure.

Python 3.11's ``asyncio.wait_for`` can lose a cancellation that races with its
result (a probe's exec finishing at that moment), so one ``cancel()`` is not
always enough; the kubelet's probers and pod workers stop through here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from kcore.log import get_logger

log = get_logger("kubelet")


async def stop_tasks(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel tasks and wait until they are done, cancelling again if one swallowed it.

    Python 3.11's ``asyncio.wait_for`` can lose a cancellation that races with its
    result (a probe's exec finishing), so one ``cancel()`` is not always enough.
    """
    for task in tasks:
        task.cancel()
    pending = {t for t in tasks if not t.done()}
    while pending:
        _done, pending = await asyncio.wait(pending, timeout=0.2)
        for task in pending:
            task.cancel()
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.warning("task ended with an error", task=task.get_name(), error=str(task.exception()))


async def until_first_done(*coros: Coroutine[Any, Any, Any]) -> None:
    """Run ``coros`` together until one of them returns, then cancel the others quietly:
    the two copy directions of a relayed stream end together."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
