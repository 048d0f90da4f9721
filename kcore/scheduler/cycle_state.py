"""Per-attempt scratch space shared by the plugins of one scheduling cycle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kcore.scheduler.framework import Handle
    from kcore.scheduler.node_info import PodInfo


class CycleState:
    """A dict-like bag that lives for one scheduling attempt of one pod.

    Why separate from plugins: a plugin instance lives as long as the scheduler,
    but what it precomputes in pre-filter/pre-score belongs to one attempt; keys
    are conventionally the plugin's name. ``pod_info`` (the pod's precomputed
    requests, ports and labels) and ``handle`` (the long-lived scheduler
    services: API client, cache, event recorder) are set by the framework.
    """

    __slots__ = ("_data", "pod_info", "handle", "skip_filter", "skip_score")

    def __init__(self, handle: Handle | None = None, pod_info: PodInfo | None = None) -> None:
        self._data: dict[str, Any] = {}
        self.handle = handle
        self.pod_info = pod_info
        # Plugins whose pre-filter/pre-score returned Skip: not called this cycle.
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def read(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def clone(self) -> CycleState:
        """A shallow copy (values shared), e.g. to try a what-if in post-filter."""
        other = CycleState(self.handle, self.pod_info)
        other._data = dict(self._data)
        other.skip_filter = set(self.skip_filter)
        other.skip_score = set(self.skip_score)
        return other
