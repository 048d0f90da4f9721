"""The ``fake`` runtime: hollow containers with no processes, for simulated nodes.

A container is "running" the moment it starts and "exited" with code 0 when it
is stopped; nothing touches the disk. It is cheap enough for hundreds of
simulated nodes in one process, so the control plane can be exercised at scale.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from kcore.hookspecs import hookimpl
from kcore.kubelet.crilog import LogOptions, format_timestamp
from kcore.kubelet.runtime_process import ContainerNotFoundError, rfc3339

FAKE_LOG_LINE = b"fake container: no process runs here"


@dataclass
class _FakeContainer:
    id: str
    sandbox_id: str
    name: str
    image: str | None
    restart_count: int
    started_at: float
    state: str = "running"
    exit_code: int | None = None
    finished_at: float | None = None

    def status(self) -> dict[str, Any]:
        return {
            "id": self.id, "sandbox_id": self.sandbox_id, "name": self.name, "image": self.image,
            "state": self.state, "exit_code": self.exit_code,
            "reason": None if self.state == "running" else "Completed", "message": None,
            "started_at": rfc3339(self.started_at), "finished_at": rfc3339(self.finished_at),
            "pid": None, "restart_count": self.restart_count, "log_path": None,
        }


class FakeRuntime:
    """The ``fake`` entry point of ``kcore.runtime``."""

    def __init__(self) -> None:
        self._sandboxes: dict[str, str] = {}
        self._containers: dict[str, _FakeContainer] = {}

    @hookimpl
    def kcore_runtime_run_sandbox(self, pod: Any, context: Any) -> str:
        meta = pod.metadata
        sandbox_id = f"{meta.namespace or 'default'}_{meta.name}_{meta.uid}"
        self._sandboxes[sandbox_id] = "ready"
        return sandbox_id

    @hookimpl
    def kcore_runtime_stop_sandbox(self, sandbox_id: str) -> None:
        for c in self._containers.values():
            if c.sandbox_id == sandbox_id:
                self._stop(c)
        if sandbox_id in self._sandboxes:
            self._sandboxes[sandbox_id] = "notready"

    @hookimpl
    def kcore_runtime_remove_sandbox(self, sandbox_id: str) -> None:
        self._sandboxes.pop(sandbox_id, None)
        for cid in [c.id for c in self._containers.values() if c.sandbox_id == sandbox_id]:
            del self._containers[cid]

    @hookimpl
    def kcore_runtime_start_container(self, sandbox_id: str, container: Any, context: Any) -> str:
        if sandbox_id not in self._sandboxes:
            raise ContainerNotFoundError(f"no pod sandbox {sandbox_id!r}")
        restart = sum(1 for c in self._containers.values() if c.sandbox_id == sandbox_id and c.name == container.name)
        rec = _FakeContainer(uuid.uuid4().hex, sandbox_id, container.name, container.image, restart, time.time())
        self._containers[rec.id] = rec
        return rec.id

    @hookimpl
    def kcore_runtime_stop_container(self, container_id: str, grace_seconds: int) -> None:
        self._stop(self._get(container_id))

    @hookimpl
    def kcore_runtime_container_status(self, container_id: str) -> dict[str, Any]:
        return self._get(container_id).status()

    @hookimpl
    def kcore_runtime_list_containers(self) -> list[dict[str, Any]]:
        return [c.status() for c in self._containers.values()]

    @hookimpl
    async def kcore_runtime_container_logs(self, container_id: str, options: Any) -> AsyncIterator[bytes]:
        rec = self._get(container_id)
        opts = LogOptions.from_any(options)
        if opts.tail_lines == 0:
            return
        line = FAKE_LOG_LINE + b"\n"
        if opts.timestamps:
            line = format_timestamp(int(rec.started_at * 1e9)).encode() + b" " + line
        yield line[: opts.limit_bytes] if opts.limit_bytes is not None else line

    def _stop(self, rec: _FakeContainer) -> None:
        if rec.state == "running":
            rec.state, rec.exit_code, rec.finished_at = "exited", 0, time.time()

    def _get(self, container_id: str) -> _FakeContainer:
        try:
            return self._containers[container_id]
        except KeyError:
            raise ContainerNotFoundError(f"no container {container_id!r}") from None
