"""Fixtures for the kubelet's integration tests: a real API server on 127.0.0.1, a client,
and a factory of real Kubelets (process runtime, real child processes) whose teardown
checks with psutil that no container process outlived the test.

Import the fixtures into a test module: ``from kubelet.kubelet_fixtures import *``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from kubelet.helpers import wait_until

from kcore.apiserver.server import ApiServer
from kcore.client import ApiClient
from kcore.config import ApiServerConfig, KcoreConfig
from kcore.kubelet import Kubelet
from kcore.plugins import create_plugin_host
from kcore.store.memory import MemoryStore

__all__ = ["api_server", "client", "free_port", "http_server_code", "kubelets", "pod_body", "wait_until"]

PY = sys.executable

# Fast settings: probe periods in tenths of their seconds, short back-off, quick relists.
FAST_KUBELET: dict[str, Any] = {
    "probe_period_scale": 0.05,
    "backoff_base_seconds": 0.4,
    "backoff_max_seconds": 5,
    "relist_period_seconds": 0.05,
    "lease_renew_interval_seconds": 0.2,
    "status_update_interval_seconds": 2,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_server_code(port: int) -> str:
    """A tiny HTTP server answering 200 on every GET, printing a line when it starts."""
    return textwrap.dedent(f"""
        import http.server, sys
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
            def log_message(self, *a):
                pass
        srv = http.server.HTTPServer(("127.0.0.1", {port}), H)
        print("serving on {port}", flush=True)
        srv.serve_forever()
    """)


def pod_body(name: str, node: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "containers": containers, **spec}}


class _LogHolder:
    """The API server's pods/log source, pointed at whichever kubelet runs."""

    kubelet: Kubelet | None = None

    def __call__(self, pod: dict[str, Any], container: str, options: dict[str, Any]) -> AsyncIterator[bytes]:
        assert self.kubelet is not None, "no kubelet serves logs"
        return self.kubelet.logs(pod, container, options)


@pytest.fixture
async def api_server() -> AsyncIterator[ApiServer]:
    store = MemoryStore()
    holder = _LogHolder()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True),
                       log_source=holder)
    server.log_holder = holder  # type: ignore[attr-defined]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await store.close()


@pytest.fixture
async def client(api_server: ApiServer) -> AsyncIterator[ApiClient]:
    async with ApiClient(f"http://127.0.0.1:{api_server.port}") as c:
        yield c


def _leaked(root: str) -> list[psutil.Process]:
    """Live processes whose working directory is under ``root`` (container processes)."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.cwd().startswith(root):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


class KubeletFactory:
    """Starts Kubelets (each with a fresh plugin host, as a new process would have)."""

    def __init__(self, client: ApiClient, api_server: ApiServer, root: Path) -> None:
        self.client = client
        self.api_server = api_server
        self.root = root
        self.running: list[tuple[Kubelet, asyncio.Task[None]]] = []

    async def start(self, node: str = "node-1", data_dir: Path | None = None, **settings: Any) -> Kubelet:
        config = KcoreConfig.model_validate({"kubelet": {**FAST_KUBELET, **settings},
                                             "network": {"plugin": "none"}})  # never touch the host's network
        kubelet = Kubelet(self.client, create_plugin_host(), config, node_name=node,
                          data_dir=data_dir or self.root / node, usage_interval_seconds=0.2)
        task = asyncio.create_task(kubelet.run())
        self.running.append((kubelet, task))
        self.api_server.log_holder.kubelet = kubelet  # type: ignore[attr-defined]
        running = asyncio.ensure_future(kubelet.wait_running())
        await asyncio.wait({running, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            running.cancel()
            task.result()
        assert running.done(), "the kubelet did not start within 15s"
        return kubelet

    async def stop(self, kubelet: Kubelet) -> None:
        await asyncio.wait_for(kubelet.stop(), 60)
        for k, task in self.running:
            if k is kubelet:
                await task
        self.running = [(k, t) for k, t in self.running if k is not kubelet]


@pytest.fixture
async def kubelets(client: ApiClient, api_server: ApiServer, tmp_path: Path) -> AsyncIterator[KubeletFactory]:
    root = tmp_path / "kubelets"
    factory = KubeletFactory(client, api_server, root)
    try:
        yield factory
    finally:
        for kubelet, _task in list(factory.running):
            kubelet.cfg.stop_pods_on_shutdown = True  # never leave processes behind a test
            await factory.stop(kubelet)
        leaked = _leaked(str(root))
        for proc in leaked:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert not leaked, f"container processes outlived the test: {[p.pid for p in leaked]}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"

