"""Fixtures for the kubelet's runtime tests: a process runtime over a temp data dir
and a leak check that no container process outlives a test."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubelet.helpers import session_alive

from kcore.kubelet.runtime_process import ProcessRuntime


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[ProcessRuntime]:
    """A process runtime; afterwards every container session it started must be gone."""
    rt = ProcessRuntime(data_dir=tmp_path / "data", log_max_bytes=1 << 20, log_max_files=3)
    yield rt
    pids = [c["pid"] for c in await rt.kcore_runtime_list_containers() if c["pid"]]
    for c in await rt.kcore_runtime_list_containers():
        if c["state"] == "running":
            await rt.kcore_runtime_stop_container(c["id"], 0)
    await rt.close()
    leaked = {pid: session_alive(pid) for pid in pids if session_alive(pid)}
    for members in leaked.values():
        for pid in members:
            os.kill(pid, signal.SIGKILL)
    assert not leaked, f"container processes leaked: {leaked}"
