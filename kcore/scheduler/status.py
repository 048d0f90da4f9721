"""The one result type of every extension point: a code plus reasons.

``None`` means success everywhere (it fits pluggy: a plugin that has nothing to
say returns nothing), so a ``Status`` object is only built when something is
not plainly fine.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.IntEnum):
    """Kubernetes' status codes, in the same order."""

    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass(frozen=True, slots=True)
class Status:
    """What a plugin says about a pod: a ``Code``, human reasons, and who said it.

    ``reasons`` are the short phrases Kubernetes aggregates into
    "0/3 nodes are available: 2 Insufficient cpu, ..."; ``timeout`` is only used
    by permit's ``Wait`` (seconds before the waiting pod is rejected).
    """

    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str | None = None
    timeout: float | None = None

    @classmethod
    def success(cls) -> Status:
        return _SUCCESS

    @classmethod
    def error(cls, message: str, plugin: str | None = None) -> Status:
        return cls(Code.ERROR, (message,), plugin)

    @classmethod
    def unschedulable(cls, *reasons: str, plugin: str | None = None) -> Status:
        return cls(Code.UNSCHEDULABLE, reasons, plugin)

    @classmethod
    def unresolvable(cls, *reasons: str, plugin: str | None = None) -> Status:
        """UnschedulableAndUnresolvable: preempting other pods would not help."""
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)

    @classmethod
    def wait(cls, timeout: float = 30.0, plugin: str | None = None) -> Status:
        return cls(Code.WAIT, (), plugin, timeout)

    @classmethod
    def skip(cls) -> Status:
        return _SKIP

    @property
    def is_success(self) -> bool:
        return self.code is Code.SUCCESS

    @property
    def is_rejected(self) -> bool:
        """Unschedulable or UnschedulableAndUnresolvable: the pod does not fit."""
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def with_plugin(self, plugin: str) -> Status:
        """The same status attributed to ``plugin`` (the framework fills it in)."""
        if self.plugin == plugin:
            return self
        return Status(self.code, self.reasons, plugin, self.timeout)


_SUCCESS = Status(Code.SUCCESS)
_SKIP = Status(Code.SKIP)


def is_success(status: Status | None) -> bool:
    """None and a Success status both mean success."""
    return status is None or status.code is Code.SUCCESS
