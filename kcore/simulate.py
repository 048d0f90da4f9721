"""Hollow nodes: many simulated kubelets in one process, like Kubernetes' kubemark.

``kcore simulate --server URL --token TOKEN --nodes N`` (or, from Python,
``async with hollow_nodes(url, token, N) as nodes:``) runs N real
:class:`~kcore.kubelet.kubelet.Kubelet` objects in one asyncio loop, each with
the ``fake`` runtime: every one registers its own Node (``<prefix><i>``),
renews its own Lease and runs the pods bound to it — they go Running and Ready
without a process behind them. The control plane (API server, scheduler,
controllers) cannot tell them from real nodes, which is the point: it can be
exercised at a scale one machine could never run for real.

What each hollow node has of its own, and why:

- an identity: requests carry the node's token (derived from the join token),
  so the Node authorizer and RBAC treat it exactly like a real kubelet;
- a plugin host holding a fresh ``fake`` runtime instance. The runtime cannot be
  shared: a kubelet adopts (and stops) whatever containers its runtime lists that
  belong to no pod of its own, so a shared runtime would have every node stop
  every other node's pods. A bare :class:`~kcore.plugins.PluginHost` with only
  that runtime registered costs about a millisecond (a full entry-point
  discovery costs ~30 ms);
- a pod informer with the ``spec.nodeName=<node>`` field selector: one watch
  per node, hence N long-lived watch connections to the API server.

What they share: one pinned CA download and one TLS context, one aiohttp
session (connection pool; each request is signed with its node's token), one
Service informer (a kubelet only reads Services for pods' environment
variables), and static "healthy" node readings — hollow nodes report no
memory, disk or PID pressure and sample no container usage (there are no
processes), so they read nothing from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kcore.apiserver.authn import node_token
from kcore.apiserver.pki import client_ssl_context
from kcore.client import ApiClient, Informer
from kcore.client.rest import JSON
from kcore.components import fetch_cluster_ca
from kcore.config import KcoreConfig
from kcore.errors import UserFacingError
from kcore.kubelet.kubelet import Kubelet
from kcore.kubelet.node_status import node_conditions, node_status, read_system_info
from kcore.kubelet.pod_worker import RUNTIME_GROUP
from kcore.log import get_logger

log = get_logger("simulate")

HOLLOW_RUNTIME = "fake"
DEFAULT_PREFIX = "hollow-"
# What a hollow node offers when the configuration does not say: a modest machine,
# the same for every node, so scheduling decisions do not depend on the host.
DEFAULT_CPU = "4"
DEFAULT_MEMORY = "16Gi"
_NO_PRESSURE = {"MemoryPressure": False, "DiskPressure": False, "PIDPressure": False}


def hollow_config(config: KcoreConfig | None = None) -> KcoreConfig:
    """``config`` with the ``fake`` runtime and fixed node resources (unless set)."""
    config = config or KcoreConfig()
    kubelet = config.kubelet.model_copy(update={
        "runtime": HOLLOW_RUNTIME,
        "cpu": config.kubelet.cpu or DEFAULT_CPU,
        "memory": config.kubelet.memory or DEFAULT_MEMORY,
    })
    # Hollow pods are no processes: they get no network namespace either.
    network = config.network.model_copy(update={"plugin": "none"})
    return config.model_copy(update={"kubelet": kubelet, "network": network})


# -- shared pieces ------------------------------------------------------------------------


class _NodeSession:
    """One node's view of the shared aiohttp session: every request signed with its token."""

    __slots__ = ("_shared", "_auth")

    def __init__(self, shared: aiohttp.ClientSession, token: str) -> None:
        self._shared = shared
        self._auth = {"Authorization": f"Bearer {token}"}

    @property
    def closed(self) -> bool:
        return self._shared.closed

    def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                **kwargs: Any) -> Any:
        return self._shared.request(method, url, headers={**(headers or {}), **self._auth}, **kwargs)

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    async def close(self) -> None:  # the shared session is closed by its owner
        return None


class _SharedTransport:
    """The one TLS context and aiohttp session every hollow node's client goes through."""

    def __init__(self, ssl_context: Any) -> None:
        self.ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No connection cap: every node holds one connection open for its pod watch.
            connector = aiohttp.TCPConnector(limit=0, ssl=self.ssl_context if self.ssl_context else True)
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": "kcore-hollow-node", "Accept": JSON}, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HollowNodeClient(ApiClient):
    """An :class:`ApiClient` authenticating as one node, over the shared transport."""

    def __init__(self, server_url: str, transport: _SharedTransport, token: str) -> None:
        super().__init__(server_url, ssl_context=transport.ssl_context, token=token,
                         user_agent="kcore-hollow-node")
        self._transport = transport

    def _get_session(self) -> Any:
        return _NodeSession(self._transport.session(), self.token or "")


class _SharedInformerView:
    """Stands in for a kubelet's own Service informer: reads the shared one, never runs it."""

    def __init__(self, shared: Informer) -> None:
        self._shared = shared

    @property
    def indexer(self) -> Any:
        return self._shared.indexer

    def has_synced(self) -> bool:
        return self._shared.has_synced()

    async def wait_synced(self, timeout: float | None = None) -> None:
        await self._shared.wait_synced(timeout)

    async def run(self) -> None:
        await asyncio.Event().wait()  # until cancelled with the kubelet's other tasks

    async def stop(self) -> None:
        return None


_SYSTEM_INFO: dict[str, str] | None = None


def _system_info() -> dict[str, str]:
    global _SYSTEM_INFO
    if _SYSTEM_INFO is None:
        _SYSTEM_INFO = read_system_info()
    return _SYSTEM_INFO


class HollowKubelet(Kubelet):
    """A kubelet with the fake runtime that reads nothing from the host while it runs."""

    async def _compute_node_status(self) -> dict[str, Any]:
        previous = (self._last_status or ((self.node or {}).get("status")) or {}).get("conditions") or []
        now = self.clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = node_conditions(previous, _NO_PRESSURE, ready=True, now=now)
        resources = self._resources()
        return node_status(capacity=resources, allocatable=resources, node_ip=self.cfg.node_ip,
                           hostname=self.node_name, system_info=_system_info(), conditions=conditions)

    async def sample_usage(self) -> None:
        """Hollow containers have no processes: nothing to sample."""
        self._usage = {}


def _runtime_factory() -> type:
    """The class behind the ``fake`` entry point of ``kcore.runtime`` (discovered once)."""
    from kcore.plugins import create_plugin_host

    probe = create_plugin_host(groups=[RUNTIME_GROUP])
    return type(probe.driver(RUNTIME_GROUP, HOLLOW_RUNTIME))


def _node_host(runtime_cls: type) -> Any:
    """A bare plugin host with one fresh runtime instance (runtimes keep per-node state)."""
    from kcore.plugins import PluginHost

    host = PluginHost()
    host.register(runtime_cls(), HOLLOW_RUNTIME, RUNTIME_GROUP)
    return host


# -- the set of hollow nodes ------------------------------------------------------------------


@dataclass
class HollowNode:
    name: str
    kubelet: HollowKubelet
    client: HollowNodeClient
    task: asyncio.Task[None] | None = None


@dataclass
class HollowNodes:
    """N hollow kubelets in this loop. ``await start()``, ``await stop()``."""

    server_url: str
    join_token: str
    count: int
    prefix: str = DEFAULT_PREFIX
    config: KcoreConfig | None = None
    data_dir: Path | None = None
    start_index: int = 0
    nodes: list[HollowNode] = field(default_factory=list)
    _transport: _SharedTransport | None = None
    _services: Informer | None = None
    _services_task: asyncio.Task[None] | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def names(self) -> list[str]:
        return [node.name for node in self.nodes]

    async def start(self) -> None:
        """Create every kubelet and start it (registration goes on in the background)."""
        if self.count < 1:
            raise UserFacingError("--nodes must be at least 1")
        config = hollow_config(self.config)
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kcore-hollow-")
            base = Path(self._tmp.name)
        else:
            base = Path(self.data_dir).expanduser().resolve()
        ca_pem = await asyncio.to_thread(fetch_cluster_ca, self.server_url, self.join_token) \
            if self.server_url.startswith("https://") else None
        self._transport = _SharedTransport(client_ssl_context(ca_pem) if ca_pem else None)
        runtime_cls = _runtime_factory()
        names = [f"{self.prefix}{i}" for i in range(self.start_index, self.start_index + self.count)]
        # One Service informer for all; it authenticates as the first node.
        services_client = HollowNodeClient(self.server_url, self._transport,
                                           node_token(self.join_token, names[0]))
        self._services = Informer(services_client, "v1", "Service")
        self._services_task = asyncio.create_task(self._services.run(), name="hollow-services")
        for name in names:
            client = HollowNodeClient(self.server_url, self._transport, node_token(self.join_token, name))
            kubelet = HollowKubelet(client, _node_host(runtime_cls), config, node_name=name,
                                    data_dir=base / name, usage_interval_seconds=3600)
            kubelet.service_informer = _SharedInformerView(self._services)  # type: ignore[assignment]
            node = HollowNode(name, kubelet, client)
            node.task = asyncio.create_task(self._guarded(kubelet), name=f"hollow-{name}")
            self.nodes.append(node)
        log.info("hollow nodes started", count=self.count, prefix=self.prefix, data_dir=str(base))

    @staticmethod
    async def _guarded(kubelet: Kubelet) -> None:
        try:
            await kubelet.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one node's crash is logged; the others go on
            log.exception("hollow kubelet failed", node=kubelet.node_name)

    async def wait_running(self, timeout: float | None = None) -> None:
        """Return once every node is registered and running its pods."""
        waits = [node.kubelet.wait_running() for node in self.nodes]
        await asyncio.wait_for(asyncio.gather(*waits), timeout)

    def running(self) -> int:
        return sum(1 for node in self.nodes if node.kubelet._running.is_set())

    async def stop(self) -> None:
        """Stop every kubelet (their hollow pods with them) and close the connections."""
        await asyncio.gather(*(self._stop_one(node) for node in self.nodes), return_exceptions=True)
        if self._services is not None:
            await self._services.stop()
        if self._services_task is not None:
            self._services_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._services_task
        if self._transport is not None:
            await self._transport.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @staticmethod
    async def _stop_one(node: HollowNode) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(node.kubelet.stop(), 30)
        if node.task is not None:
            node.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await node.task


@contextlib.asynccontextmanager
async def hollow_nodes(server_url: str, join_token: str, count: int, *, prefix: str = DEFAULT_PREFIX,
                       config: KcoreConfig | None = None, data_dir: str | Path | None = None,
                       start_index: int = 0, wait: bool = True,
                       timeout: float | None = 120.0) -> AsyncIterator[HollowNodes]:
    """``count`` hollow nodes joined to the cluster at ``server_url`` for the block's duration.

    With ``wait`` (the default) the block starts once every node is registered and
    running pods; ``nodes.names`` are their Node names.
    """
    nodes = HollowNodes(server_url, join_token, count, prefix=prefix, config=config,
                        data_dir=Path(data_dir) if data_dir is not None else None, start_index=start_index)
    try:
        await nodes.start()
        if wait:
            await nodes.wait_running(timeout)
        yield nodes
    finally:
        await nodes.stop()


# -- kcore simulate -------------------------------------------------------------------------------


@dataclass
class SimulateOptions:
    server_url: str
    token: str
    nodes: int
    prefix: str = DEFAULT_PREFIX
    config: KcoreConfig = field(default_factory=KcoreConfig)
    data_dir: Path | None = None
    start_index: int = 0


async def run(options: SimulateOptions, stop: asyncio.Event | None = None) -> int:
    """Run the hollow nodes until SIGINT/SIGTERM (or ``stop``); return the exit status."""
    from kcore.cluster import tune_garbage_collector
    from kcore.log import configure_logging

    cfg = options.config
    configure_logging(cfg.logging.level, cfg.logging.format)
    tune_garbage_collector()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nodes = HollowNodes(options.server_url, options.token, options.nodes, prefix=options.prefix,
                        config=cfg, data_dir=options.data_dir, start_index=options.start_index)
    started = time.monotonic()
    try:
        await nodes.start()
        waiting = asyncio.ensure_future(nodes.wait_running())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        for fut in (waiting, stopped):
            fut.cancel()
        if not stop.is_set():
            log.info("hollow nodes running", count=options.nodes, prefix=options.prefix,
                        seconds=round(time.monotonic() - started, 2), pid=os.getpid(),
                        host=socket.gethostname())
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await nodes.stop()
        log.info("hollow nodes stopped", count=options.nodes)
    return 0
