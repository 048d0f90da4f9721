"""Start and stop the components of one kcore process, in order.

``kcore up`` runs every component in one asyncio loop; ``kcore server`` the
control plane; ``kcore agent`` a node. Components that do not exist yet are
reported as such at start-up rather than silently missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from kcore.api.registry import builtin_registry
from kcore.apiserver.authn import Authenticator, node_token
from kcore.apiserver.pki import ADMIN_USER, ClusterPKI
from kcore.apiserver.security import ApiSecurity
from kcore.apiserver.server import ApiServer
from kcore.apiserver.streaming import PodStreams
from kcore.client.rest import ApiClient
from kcore.cluster_dns import ClusterDns
from kcore.cluster_dns import check_plugin as check_dns_plugin
from kcore.components import (
    CONTROLLER_MANAGER_USER,
    DNS_USER,
    PROXY_USER,
    SCHEDULER_USER,
    Identity,
    agent_client,
    local_client,
    node_identity,
)
from kcore.controllers.manager import ControllerManager
from kcore.config import KcoreConfig
from kcore.kubeconfig import build_kubeconfig, write_kubeconfig
from kcore.errors import UserFacingError
from kcore.log import configure_logging, get_logger
from kcore.store.compactor import compact_periodically
from kcore.store.contract import Store

Role = Literal["up", "server", "agent"]

# Components that later issues add; named at start-up so nobody wonders.
NOT_YET_AVAILABLE = ("log-agent",)
# Without root, Services get ClusterIPs here: all of 127/8 is local, so the
# userspace proxy binds them with no interface set-up.
LOOPBACK_SERVICE_CIDR = "127.96.0.0/16"


@dataclass
class NodeOptions:
    role: Role
    config: KcoreConfig
    data_dir: Path
    node_name: str
    config_path: str | None = None
    server_url: str | None = None
    token: str | None = None


def is_privileged() -> bool:
    """Root may create network namespaces, bind port 53 and add service addresses."""
    return os.geteuid() == 0


def effective_config(config: KcoreConfig, *, privileged: bool) -> KcoreConfig:
    """``config`` as this process can serve it: without root, Services get ClusterIPs
    from a loopback range (unless ``[network] service_cidr`` was set on purpose)."""
    if privileged or "service_cidr" in config.network.model_fields_set:
        return config
    network = config.network.model_copy(update={"service_cidr": LOOPBACK_SERVICE_CIDR})
    return config.model_copy(update={"network": network})


def tune_garbage_collector() -> None:
    """Fewer full collections: lists decode thousands of small dicts at once, and with
    the default thresholds the collector took about half of a large list's time
    (measured in benchmarks/api_bench.py)."""
    gc.collect()
    gc.freeze()  # start-up objects (modules, models) are never garbage
    gc.set_threshold(50_000, 50, 1000)


def prepare_data_dir(path: Path) -> None:
    """Create the data directory, private to the user (keys and tokens live there)."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UserFacingError(f"cannot create data directory {path}: {exc.strerror}") from None


def open_store(host: object, options: NodeOptions) -> Store:
    """Open the configured store backend through its ``kcore.store`` entry point."""
    cfg = options.config.store
    settings = cfg.plugin_settings(cfg.backend)
    if cfg.path:
        settings.setdefault("path", cfg.path)
    store = host.call_driver(  # type: ignore[attr-defined]
        "kcore.store", cfg.backend, "kcore_store_open", settings=settings, data_dir=options.data_dir
    )
    if store is None:
        raise UserFacingError(f"store backend {cfg.backend!r} returned no store")
    return store


def _service_ip(cidr: str, index: int) -> str:
    network = ipaddress.ip_network(cidr)
    return str(network.network_address + index)


async def start_api_server(store: Store, host: Any,
                           options: NodeOptions) -> tuple[ApiServer, ClusterPKI | None]:
    """Start the API server; on first start create the cluster PKI, then write the
    admin kubeconfig (mode 0600, atomically) once the API answers."""
    cfg = options.config
    security = None
    ssl_context = None
    pki = None
    if not cfg.apiserver.insecure_http:
        pki = ClusterPKI.load_or_create(
            options.data_dir, node_name=options.node_name, bind_address=cfg.apiserver.bind_address,
            extra_sans=[_service_ip(cfg.network.service_cidr, 1)]
            + ([cfg.apiserver.advertise_address] if cfg.apiserver.advertise_address else []),
        )
        ssl_context = pki.ssl_server_context()
        registry = builtin_registry()
        security = ApiSecurity(Authenticator(pki), registry)
    api = ApiServer(
        store, config=cfg.apiserver, ssl_context=ssl_context, security=security, hook=host.hook,
        ca_pem=pki.ca_pem if pki is not None else None,
        default_toleration_seconds=cfg.controllers.node_lifecycle.default_toleration_seconds,
        service_cidr=cfg.network.service_cidr, node_port_range=cfg.proxy.node_port_range,
    )
    await api.start()
    if pki is not None:
        server_url = api_url(cfg.apiserver.advertise_address or cfg.apiserver.bind_address, api.port or 0)
        kubeconfig = build_kubeconfig(server_url, pki.ca_pem, user=ADMIN_USER,
                                      client_cert_pem=pki.admin_cert_pem,
                                      client_key_pem=pki.admin_key_pem)
        path = options.data_dir / "kubeconfig.yaml"
        write_kubeconfig(path, kubeconfig)
        get_logger("kcore").info("admin kubeconfig written", path=str(path),
                                 hint=f"export KUBECONFIG={path}")
    return api, pki


def api_url(address: str, port: int) -> str:
    """The URL clients use: loopback when the server listens on every address."""
    if address in ("0.0.0.0", "::", ""):
        address = "127.0.0.1"
    if ":" in address:
        address = f"[{address}]"
    return f"https://{address}:{port}"


async def _wait_for_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


class Component(Protocol):
    async def run(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class Running:
    """A started component, its task and the client it owns."""

    name: str
    component: Component
    task: asyncio.Task[None]
    client: ApiClient | None = None


def _start(name: str, component: Component, client: ApiClient | None) -> Running:
    log = get_logger("kcore")

    async def guarded() -> None:
        try:
            await component.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one component's crash is logged, the rest go on
            log.exception("component failed", component=name)

    return Running(name, component, asyncio.create_task(guarded(), name=name), client)


async def _stop_all(running: list[Running]) -> None:
    for item in reversed(running):
        with contextlib.suppress(Exception):
            await asyncio.wait_for(item.component.stop(), 30)
        item.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await item.task
        if item.client is not None:
            await item.client.close()


async def start_components(options: NodeOptions, host: Any, api_url_: str,
                           pki: ClusterPKI | None) -> list[Running]:
    """The control-plane components (``up``/``server``) that this build provides."""
    from kcore.scheduler.runner import Scheduler

    cfg = options.config
    running: list[Running] = []
    client = local_client(api_url_, pki, Identity(SCHEDULER_USER), user_agent="kcore-scheduler")
    running.append(_start("scheduler", Scheduler(client, host, cfg.scheduler), client))
    manager_client = local_client(api_url_, pki, Identity(CONTROLLER_MANAGER_USER),
                                  user_agent="kcore-controller-manager")
    try:
        manager = ControllerManager(manager_client, cfg.controllers)
    except ValueError as exc:
        raise UserFacingError(f"[controllers] enabled: {exc}") from None
    running.append(_start("controller-manager", manager, manager_client))
    return running


def attach_pod_streams(api: ApiServer) -> PodStreams:
    """pods/log and pods/exec on this API server, routed to the pod's node's kubelet."""
    nodes = api.registry.get("v1", "Node")

    async def node_lookup(name: str) -> dict[str, Any] | None:
        return await api.resources.get_or_none(nodes, None, name)

    security = api.security
    streams = PodStreams(node_lookup=node_lookup,
                         node_token=security.authenticator.node_token if security is not None else None)
    api.handlers.streams = streams
    api.handlers.log_source = streams.logs
    return streams


def start_kubelet(options: NodeOptions, host: Any, client: ApiClient,
                  api: ApiServer | None) -> Running:
    """This node's kubelet. In ``kcore up`` the local API server calls it in-process for
    pods/log and pods/exec; an agent's kubelet serves them over HTTPS (kubelet/server.py)."""
    from kcore.kubelet.kubelet import Kubelet
    from kcore.kubelet.server import KubeletServer

    kubelet = Kubelet(client, host, options.config, node_name=options.node_name,
                      data_dir=options.data_dir)
    if api is not None:
        streams = api.handlers.streams if isinstance(api.handlers.streams, PodStreams) \
            else attach_pod_streams(api)
        streams.local_node = options.node_name
        streams.local_kubelet = kubelet
    elif options.token:
        cfg = options.config.kubelet
        kubelet.server = KubeletServer(kubelet, token=node_token(options.token, options.node_name),
                                       address=cfg.node_ip, port=cfg.port, data_dir=options.data_dir,
                                       node_name=options.node_name)
    return _start("kubelet", kubelet, client)


def check_components(host: Any, options: NodeOptions) -> None:
    """Fail at start-up, naming what is installed, when a configured plugin is missing."""
    cfg = options.config
    if cfg.proxy.enabled and options.role != "server":
        names = host.names("kcore.proxy")
        if cfg.proxy.mode not in names:
            raise UserFacingError(f"proxy.mode: no proxy mode {cfg.proxy.mode!r} is installed "
                                  f"(installed: {', '.join(sorted(names)) or 'none'})")
    if cfg.dns.enabled and options.role != "agent":
        check_dns_plugin(host, cfg)


async def start_proxy(options: NodeOptions, host: Any, client: ApiClient) -> Running:
    """This node's service proxy (``[proxy] mode``). The mode starts before this returns,
    so bad mode settings (an unknown IPVS scheduler, say) stop kcore with their message."""
    from kcore.proxy.runner import ProxyRunner

    runner = ProxyRunner(client, host, options.config, node_name=options.node_name,
                         node_ips=(options.config.kubelet.node_ip,), data_dir=options.data_dir / "proxy")
    try:
        await runner.start()
    except BaseException:
        await client.close()
        raise
    return _start("proxy", runner, client)


async def run(options: NodeOptions, stop: asyncio.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM (or ``stop`` is set); return the exit status."""
    from kcore.plugins import create_plugin_host

    cfg = options.config
    configure_logging(cfg.logging.level, cfg.logging.format)
    log = get_logger("kcore", role=options.role, node=options.node_name)
    tune_garbage_collector()
    prepare_data_dir(options.data_dir)

    host = create_plugin_host()
    for record in host.records():
        if record.status != "loaded":
            log.warning("plugin failed to load", group=record.group, name=record.name,
                        distribution=record.distribution, error=record.error)
    host.configure(cfg)
    privileged = is_privileged()
    cfg = options.config = effective_config(cfg, privileged=privileged)
    if cfg.network.service_cidr == LOOPBACK_SERVICE_CIDR and not privileged and options.role != "agent":
        log.warning("not root: Services get ClusterIPs from a loopback range, reachable from this "
                    "host only", service_cidr=cfg.network.service_cidr)
    check_components(host, options)

    tasks: list[asyncio.Task[None]] = []
    store: Store | None = None
    api: ApiServer | None = None
    streams: PodStreams | None = None
    running: list[Running] = []
    try:
        if options.role in ("up", "server"):
            store = open_store(host, options)
            log.info("store open", backend=cfg.store.backend,
                     revision=await store.current_revision())
            if cfg.store.compaction_interval_seconds:
                tasks.append(asyncio.create_task(compact_periodically(
                    store, cfg.store.compaction_interval_seconds,
                    cfg.store.compaction_retain_revisions)))
            api, pki = await start_api_server(store, host, options)
            streams = attach_pod_streams(api)
            running = await start_components(options, host, api.url, pki)
            if cfg.dns.enabled:
                dns_client = local_client(api.url, pki, Identity(DNS_USER), user_agent="kcore-dns")
                running.append(_start("dns", ClusterDns(host, cfg, dns_client, api), dns_client))
            if options.role == "up":
                node_client = local_client(api.url, pki, node_identity(options.node_name),
                                           user_agent="kcore-kubelet")
                running.append(start_kubelet(options, host, node_client, api))
                if cfg.proxy.enabled:
                    proxy_client = local_client(api.url, pki, Identity(PROXY_USER), user_agent="kcore-proxy")
                    running.append(await start_proxy(options, host, proxy_client))
        elif options.role == "agent":
            if not options.server_url or not options.token:
                raise UserFacingError("kcore agent needs --server URL and --token TOKEN")
            client = agent_client(options.server_url, options.token, options.node_name)
            running.append(start_kubelet(options, host, client, None))
            if cfg.proxy.enabled:
                proxy_client = agent_client(options.server_url, options.token, options.node_name)
                running.append(await start_proxy(options, host, proxy_client))
        log.warning("not available yet in this build", components=list(NOT_YET_AVAILABLE))
        log.info("kcore running", data_dir=str(options.data_dir),
                 components=[r.name for r in running])
        if stop is None:
            await _wait_for_signal()
        else:
            await stop.wait()
    finally:
        await _stop_all(running)
        if api is not None:
            await api.stop()
        if streams is not None:
            await streams.close()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if store is not None:
            await store.close()
        log.info("kcore stopped")
    return 0
