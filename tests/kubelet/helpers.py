"""Helpers for the kubelet tests: pod/container builders, polling, process checks."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psutil

from kcore.api.core_v1 import Container, Pod

PY = sys.executable


def make_pod(name: str = "web", namespace: str = "default", **spec: Any) -> Pod:
    return Pod.from_dict({
        "metadata": {"name": name, "namespace": namespace, "uid": uuid.uuid4().hex[:12]},
        "spec": {"containers": [{"name": "c", "image": "python:3"}], **spec},
    })


def py_container(name: str, code: str, **fields: Any) -> Container:
    """A container running ``python -c code``."""
    return Container.from_dict({"name": name, "image": "python:3", "command": [PY, "-c", code], **fields})


async def wait_until(pred: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``pred`` (sync or async) until truthy; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = pred()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def session_alive(sid: int) -> list[int]:
    """Non-zombie processes in session ``sid``."""
    alive = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if os.getsid(p.pid) == sid and p.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return alive


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


