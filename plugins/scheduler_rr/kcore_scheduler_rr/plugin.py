"""Round-robin over feasible nodes, stable while nodes join and leave.

The rotation is kept as the *name* of the last chosen node, not an index: the
next pick is the first feasible name after it in sorted order (wrapping). So a
node that is infeasible this cycle is simply passed over, and a node joining or
leaving shifts no other node's turn.
"""

from __future__ import annotations

import bisect
import threading
from typing import Any

from kcore import hookimpl
from kcore.log import get_logger

log = get_logger("scheduler.round-robin")


class RoundRobin:
    """The ``round-robin`` scheduling algorithm; one instance per scheduler."""

    def __init__(self) -> None:
        self._last: str | None = None
        self._lock = threading.Lock()  # profiles may schedule from several threads

    @property
    def last_chosen(self) -> str | None:
        """The node chosen most recently, or None before the first pick."""
        return self._last

    @hookimpl
    def kcore_scheduler_select_node(
        self, state: Any, pod: Any, feasible: list[str], scores: dict[str, int] | None
    ) -> str | None:
        """Pick the feasible node after the last chosen one (scores are ignored)."""
        if not feasible:
            return None
        ordered = sorted(set(feasible))
        with self._lock:
            index = 0 if self._last is None else bisect.bisect_right(ordered, self._last)
            choice = ordered[index % len(ordered)]
            self._last = choice
        log.debug("selected node", node=choice, feasible=len(ordered))
        return choice
