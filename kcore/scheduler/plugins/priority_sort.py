"""PrioritySort: the queue order — higher ``spec.priority`` first."""

from __future__ import annotations

from typing import Any

from kcore import hookimpl


class PrioritySort:
    """Queue-sort plugin; equal priorities keep the order pods entered the queue."""

    name = "PrioritySort"

    @hookimpl
    def kcore_scheduler_queue_sort(self, pod_a: Any, pod_b: Any) -> bool | None:
        """True if pod_a has the higher priority; None on a tie so the queue keeps FIFO."""
        pa = pod_a.spec.priority or 0
        pb = pod_b.spec.priority or 0
        if pa == pb:
            return None
        return pa > pb
