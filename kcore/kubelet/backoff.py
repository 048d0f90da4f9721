"""Container restart policy and CrashLoopBackOff timing, as the kubelet applies them.

Pure: the clock is injected, so the schedule is tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_BASE_SECONDS = 10.0
DEFAULT_CAP_SECONDS = 300.0
DEFAULT_RESET_SECONDS = 600.0


def should_restart(policy: str | None, exit_code: int) -> bool:
    """Whether a container that exited with ``exit_code`` is restarted under ``restartPolicy``."""
    policy = policy or "Always"
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    if policy == "Never":
        return False
    raise ValueError(f"unknown restartPolicy {policy!r}; expected Always, OnFailure or Never")


@dataclass
class _Entry:
    delay: float
    last_exit: float
    started: float | None = None


@dataclass
class Backoff:
    """Per-container restart back-off: ``base``, doubling, up to ``cap``.

    A container that ran ``reset_after`` seconds before it exited counts as
    healthy again, so its next crash starts from ``base``. Keys are whatever
    names a container instance stably (e.g. ``pod uid/container name``).
    """

    base: float = DEFAULT_BASE_SECONDS
    cap: float = DEFAULT_CAP_SECONDS
    reset_after: float = DEFAULT_RESET_SECONDS
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def started(self, key: str) -> None:
        """Note that the container (re)started now."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.started = self.clock()

    def exited(self, key: str) -> float:
        """Record an exit now and return the delay before the next start is allowed."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or (entry.started is not None and now - entry.started >= self.reset_after):
            entry = self._entries[key] = _Entry(self.base, now)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.last_exit = now
        return entry.delay

    def remaining(self, key: str) -> float:
        """Seconds left before ``key`` may start again (0 when free to start)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.last_exit + entry.delay - self.clock())

    def in_backoff(self, key: str) -> bool:
        """True while a restart would be a CrashLoopBackOff."""
        return self.remaining(key) > 0

    def forget(self, key: str) -> None:
        """Drop the history (pod deleted)."""
        self._entries.pop(key, None)

    def gc(self, max_age: float | None = None) -> None:
        """Forget entries idle for longer than ``max_age`` (default: twice the cap)."""
        limit = 2 * self.cap if max_age is None else max_age
        now = self.clock()
        for key in [k for k, e in self._entries.items() if now - e.last_exit > limit]:
            del self._entries[key]
