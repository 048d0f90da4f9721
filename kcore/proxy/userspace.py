"""The ``userspace`` proxy mode: real sockets that forward to endpoints.

For every service port the mode listens on ``cluster_ip:port`` (and on each
external IP), and on ``node_ip:node_port`` for each node address when the
service has a node port, and relays every TCP connection / UDP flow to one
ready endpoint, chosen round-robin or sticky per client IP
(``sessionAffinity: ClientIP``; see ``kcore.proxy.balancer``).

The mode binds whatever address the state names: run as root the cluster IPs
are put on a local interface; without root, kcore maps the service range into
127.96.0.0/16, which Linux accepts on ``lo`` with no setup. An address that
cannot be bound is reported (``status()``, the log) and retried at the next
sync; other services are not affected.

TCP: each connection is two asyncio stream pumps with backpressure
(``drain``); EOF from one side is passed on with ``write_eof`` (half-close)
while the other direction keeps flowing; a connection idle in both directions
for ``idle_timeout_seconds`` is closed; an endpoint that refuses (or does not
answer within ``connect_timeout_seconds``) is skipped for the next one.

UDP: each client address is a flow with its own connected socket to one
endpoint; replies go back from the service socket (so from the service
address); a flow idle for ``udp_idle_timeout_seconds`` is dropped.

``sync`` is incremental: listeners are opened and closed by address, endpoint
lists are updated in place, and only connections to endpoints that left the
service (or to services that left the state) are closed.

Endpoint choice is a seam: ``UserspaceProxy(chooser_factory=...)`` gives each
listener its own ``Chooser`` (the ``Balancer`` interface plus ``released``,
called when a connection or UDP flow ends), which is how the ipvs mode runs its
schedulers over these sockets when the kernel has no IPVS. Without a factory
every listener of a service port shares one ``Balancer``.

As root, started by a node's proxy (``kcore_proxy_start`` with a context that
has a ``data_dir``), service addresses that are not local are first put on
``lo`` (``kcore.proxy.local_addresses``) and taken off when unused and at
cleanup; ``manage_addresses`` forces that on or off.

Settings (``[proxy.userspace]``): ``idle_timeout_seconds`` (600),
``udp_idle_timeout_seconds`` (30), ``connect_timeout_seconds`` (5),
``nodeport_addresses`` (default: the node's addresses from the state).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kcore.hookspecs import hookimpl
from kcore.proxy.balancer import Balancer
from kcore.proxy.local_addresses import LocalAddresses
from kcore.proxy.state import ProxyState, ServicePort

log = logging.getLogger("kcore.proxy.userspace")

CHUNK = 256 * 1024
STREAM_LIMIT = 256 * 1024
MAX_PENDING_DATAGRAMS = 128

EndpointKey = tuple[str, int]  # (ip, port)


@dataclass(frozen=True, slots=True, order=True)
class ListenAddress:
    protocol: str  # "TCP" | "UDP"
    ip: str
    port: int
    kind: str = "clusterIP"  # clusterIP | externalIP | nodePort

    @property
    def sockaddr(self) -> tuple[str, int]:
        return (self.ip, self.port)

    def __str__(self) -> str:
        return f"{self.protocol} {_hostport(self.ip, self.port)}"


class Chooser(Protocol):
    """Picks endpoints for one listener's new connections (``Balancer`` is one)."""

    def update(self, endpoints: Iterable[EndpointKey], *, affinity: bool | None = None,
               affinity_timeout: float | None = None) -> None:
        """The ready endpoints changed (called on every sync)."""

    def candidates(self, client_ip: str | None = None) -> list[EndpointKey]:
        """Endpoints in the order a new connection from ``client_ip`` tries them."""
        ...

    def connected(self, client_ip: str | None, endpoint: EndpointKey) -> None:
        """The connection (or UDP flow) reached ``endpoint``."""

    def failed(self, client_ip: str | None, endpoint: EndpointKey) -> None:
        """``endpoint`` refused; the next candidate is tried."""

    def released(self, endpoint: EndpointKey) -> None:
        """A connection that ``connected`` to ``endpoint`` ended."""


ChooserFactory = Callable[[ServicePort, "ListenAddress"], Chooser]
"""Makes the chooser of one listener: (service port, listen address) -> Chooser."""


@dataclass(frozen=True, slots=True)
class Settings:
    idle_timeout_seconds: float = 600.0
    udp_idle_timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    nodeport_addresses: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> Settings:
        raw = dict(raw or {})
        values: dict[str, Any] = {}
        for name in ("idle_timeout_seconds", "udp_idle_timeout_seconds", "connect_timeout_seconds"):
            if name in raw:
                value = raw.pop(name)
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ValueError(f"proxy.userspace.{name}: must be a positive number (value: {value!r})")
                values[name] = float(value)
        if "nodeport_addresses" in raw:
            value = raw.pop("nodeport_addresses")
            if isinstance(value, str) or not isinstance(value, (list, tuple)):
                raise ValueError(
                    f"proxy.userspace.nodeport_addresses: must be a list of IP addresses (value: {value!r})"
                )
            for ip in value:
                try:
                    ipaddress.ip_address(ip)
                except (ValueError, TypeError):
                    raise ValueError(
                        f"proxy.userspace.nodeport_addresses: not an IP address (value: {ip!r})"
                    ) from None
            values["nodeport_addresses"] = tuple(value)
        if raw:
            key = sorted(raw)[0]
            raise ValueError(f"proxy.userspace.{key}: unknown setting (value: {raw[key]!r})")
        return cls(**values)


def _hostport(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def listen_addresses(sp: ServicePort, state: ProxyState, nodeport_ips: Iterable[str] | None = None) -> list[ListenAddress]:
    """Where the userspace mode listens for one service port."""
    if sp.protocol not in ("TCP", "UDP") or not sp.cluster_ip or sp.cluster_ip == "None":
        return []
    out = [ListenAddress(sp.protocol, sp.cluster_ip, sp.port, "clusterIP")]
    for ip in sp.external_ips:
        out.append(ListenAddress(sp.protocol, ip, sp.port, "externalIP"))
    if sp.node_port:
        for ip in nodeport_ips if nodeport_ips is not None else state.node_ips:
            out.append(ListenAddress(sp.protocol, ip, sp.node_port, "nodePort"))
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------
# One service port: balancer, live endpoints, connections, listeners
# ---------------------------------------------------------------------------


class _Service:
    def __init__(self, proxy: UserspaceProxy, sp: ServicePort) -> None:
        self.proxy = proxy
        self.key = sp.key
        self.protocol = sp.protocol
        self.spec = sp
        self.balancer: Balancer[EndpointKey] = Balancer(clock=proxy.clock)
        self.choosers: dict[ListenAddress, Chooser] = {}  # with a chooser factory: one per listener
        self.present: set[EndpointKey] = set()  # every endpoint listed (ready or not)
        self.conns: set[_TcpConn] = set()
        self.listeners: dict[ListenAddress, _TcpListener | _UdpListener] = {}
        self.update(sp)

    def update(self, sp: ServicePort) -> None:
        self.spec = sp
        ready = [(e.ip, e.port) for e in sp.ready_endpoints()]
        for chooser in [self.balancer, *self.choosers.values()]:
            chooser.update(ready, affinity=sp.session_affinity, affinity_timeout=sp.affinity_timeout_seconds)
        self.present = {(e.ip, e.port) for e in sp.endpoints}
        # Connections to endpoints that left the service end now; endpoints
        # still listed (even not ready / terminating) keep their connections.
        for conn in list(self.conns):
            if conn.endpoint is not None and conn.endpoint not in self.present:
                log.info("%s: endpoint %s removed, closing connection from %s", self.key, _hostport(*conn.endpoint), conn.client)
                conn.close()
        for listener in self.listeners.values():
            if isinstance(listener, _UdpListener):
                listener.drop_flows(lambda ep: ep not in self.present)

    def chooser(self, addr: ListenAddress) -> Chooser:
        """The chooser for connections arriving on ``addr``."""
        factory = self.proxy.chooser_factory
        if factory is None:
            return self.balancer
        chooser = self.choosers.get(addr)
        if chooser is None:
            chooser = self.choosers[addr] = factory(self.spec, addr)
            sp = self.spec
            chooser.update([(e.ip, e.port) for e in sp.ready_endpoints()], affinity=sp.session_affinity,
                           affinity_timeout=sp.affinity_timeout_seconds)
        return chooser

    def forget(self, addr: ListenAddress) -> None:
        """``addr`` is no longer listened on: drop its chooser."""
        self.choosers.pop(addr, None)

    def close_all(self) -> None:
        for conn in list(self.conns):
            conn.close()
        for listener in self.listeners.values():
            if isinstance(listener, _UdpListener):
                listener.drop_flows(lambda ep: True)


# ---------------------------------------------------------------------------
# TCP
# ---------------------------------------------------------------------------


class _TcpListener:
    def __init__(self, svc: _Service, addr: ListenAddress, server: asyncio.base_events.Server) -> None:
        self.svc = svc
        self.addr = addr
        self.server = server

    @classmethod
    async def open(cls, svc: _Service, addr: ListenAddress) -> _TcpListener:
        holder: dict[str, _TcpListener] = {}

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            listener = holder["listener"]
            await _TcpConn(listener.svc, reader, writer, listener.svc.chooser(listener.addr)).run()

        server = await asyncio.start_server(
            handle, host=addr.ip, port=addr.port, reuse_address=True, limit=STREAM_LIMIT, backlog=1024
        )
        listener = cls(svc, addr, server)
        holder["listener"] = listener
        return listener

    async def close(self) -> None:
        self.server.close()
        with contextlib.suppress(Exception):
            await self.server.wait_closed()


class _TcpConn:
    """One client connection relayed to one endpoint."""

    def __init__(self, svc: _Service, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 chooser: Chooser | None = None) -> None:
        self.svc = svc
        self.proxy = svc.proxy
        self.chooser: Chooser = chooser if chooser is not None else svc.balancer
        self.creader = reader
        self.cwriter = writer
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.client_ip: str = peer[0]
        self.client = _hostport(peer[0], peer[1])
        self.endpoint: EndpointKey | None = None
        self.breader: asyncio.StreamReader | None = None
        self.bwriter: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._task: asyncio.Task[Any] | None = None
        self._closed = False
        self._idle: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self.last_activity = self._loop.time()

    async def run(self) -> None:
        self._task = asyncio.current_task()
        self.proxy._conns.add(self)
        self.svc.conns.add(self)
        try:
            if not await self._connect():
                return
            self.last_activity = self._loop.time()
            self._arm_idle(self.proxy.settings.idle_timeout_seconds)
            assert self.breader is not None and self.bwriter is not None
            self._tasks = [
                asyncio.ensure_future(self._pump(self.creader, self.bwriter)),
                asyncio.ensure_future(self._pump(self.breader, self.cwriter)),
            ]
            await asyncio.gather(*self._tasks, return_exceptions=True)
        except asyncio.CancelledError:
            pass  # cleanup() or close(): the finally below tears down
        finally:
            self.close()
            self.proxy._conns.discard(self)
            self.svc.conns.discard(self)
            if self.endpoint is not None:
                self.chooser.released(self.endpoint)

    async def _connect(self) -> bool:
        balancer = self.chooser
        timeout = self.proxy.settings.connect_timeout_seconds
        tried = 0
        for ep in balancer.candidates(self.client_ip):
            if self._closed:
                return False
            tried += 1
            try:
                async with asyncio.timeout(timeout):
                    reader, writer = await asyncio.open_connection(ep[0], ep[1], limit=STREAM_LIMIT)
            except (OSError, TimeoutError) as exc:
                balancer.failed(self.client_ip, ep)
                log.info("%s: endpoint %s failed for %s: %s; trying the next", self.svc.key, _hostport(*ep), self.client, exc or type(exc).__name__)
                continue
            if ep not in self.svc.present or self._closed:  # removed while we were connecting
                writer.close()
                continue
            balancer.connected(self.client_ip, ep)
            self.endpoint, self.breader, self.bwriter = ep, reader, writer
            return True
        log.warning(
            "%s: no endpoint accepted the connection from %s (%d tried)", self.svc.key, self.client, tried
        )
        return False

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                self.last_activity = self._loop.time()
                writer.write(data)
                await writer.drain()
            # EOF from this side: pass it on, keep the other direction open.
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
        except (ConnectionError, OSError):
            self.close()  # a reset on either side ends the whole connection

    def _arm_idle(self, timeout: float) -> None:
        def check() -> None:
            if self._closed:
                return
            remaining = self.last_activity + timeout - self._loop.time()
            if remaining <= 0:
                log.info("%s: closing idle connection from %s", self.svc.key, self.client)
                self.close()
            else:
                self._idle = self._loop.call_later(remaining, check)

        self._idle = self._loop.call_later(timeout, check)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._idle is not None:
            self._idle.cancel()
        for writer in (self.cwriter, self.bwriter):
            if writer is None:
                continue
            transport = writer.transport
            # Flush what is buffered when that is possible; a peer that stopped
            # reading must not keep the connection alive, so abort then.
            if transport.get_write_buffer_size():
                transport.abort()
            else:
                writer.close()
        for task in self._tasks:
            task.cancel()
        if self._task is not None and self._task is not asyncio.current_task() and not self._tasks:
            self._task.cancel()  # still connecting


# ---------------------------------------------------------------------------
# UDP
# ---------------------------------------------------------------------------


class _UdpListener(asyncio.DatagramProtocol):
    def __init__(self, svc: _Service, addr: ListenAddress) -> None:
        self.svc = svc
        self.addr = addr
        self.transport: asyncio.DatagramTransport | None = None
        self.flows: dict[Any, _UdpFlow] = {}

    @classmethod
    async def open(cls, svc: _Service, addr: ListenAddress) -> _UdpListener:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_datagram_endpoint(lambda: cls(svc, addr), local_addr=addr.sockaddr)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        flow = self.flows.get(addr)
        if flow is None:
            flow = self.flows[addr] = _UdpFlow(self, addr)
        flow.send(data)

    def error_received(self, exc: Exception) -> None:  # pragma: no cover - unconnected socket
        log.debug("%s: %s", self.addr, exc)

    def drop_flows(self, predicate: Callable[[EndpointKey], bool]) -> None:
        for flow in list(self.flows.values()):
            if flow.endpoint is None or predicate(flow.endpoint):
                flow.close()

    async def close(self) -> None:
        self.drop_flows(lambda ep: True)
        if self.transport is not None:
            self.transport.close()


class _UdpBackend(asyncio.DatagramProtocol):
    def __init__(self, flow: _UdpFlow) -> None:
        self.flow = flow

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.flow.reply(data)

    def error_received(self, exc: Exception) -> None:
        self.flow.backend_error(exc)


class _UdpFlow:
    """Datagrams from one client address, relayed to one endpoint."""

    def __init__(self, listener: _UdpListener, client: Any) -> None:
        self.listener = listener
        self.svc = listener.svc
        self.chooser: Chooser = listener.svc.chooser(listener.addr)
        self.client = client
        self.endpoint: EndpointKey | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self.last_activity = self._loop.time()
        self._idle: asyncio.TimerHandle | None = None
        self._task = asyncio.ensure_future(self._open())
        self.svc.proxy._tasks.add(self._task)
        self._task.add_done_callback(self.svc.proxy._tasks.discard)

    async def _open(self) -> None:
        client_ip = self.client[0]
        for ep in self.chooser.candidates(client_ip):
            try:
                transport, _ = await self._loop.create_datagram_endpoint(
                    lambda: _UdpBackend(self), remote_addr=ep
                )
            except OSError as exc:
                self.chooser.failed(client_ip, ep)
                log.info("%s: UDP endpoint %s: %s", self.svc.key, _hostport(*ep), exc)
                continue
            if self._closed:
                transport.close()
                return
            self.chooser.connected(client_ip, ep)
            self.endpoint, self.transport = ep, transport  # type: ignore[assignment]
            for data in self.pending:
                transport.sendto(data)  # type: ignore[attr-defined]
            self.pending.clear()
            self._arm_idle(self.svc.proxy.settings.udp_idle_timeout_seconds)
            return
        log.warning("%s: no endpoint for UDP flow from %s", self.svc.key, _hostport(*self.client[:2]))
        self.close()

    def send(self, data: bytes) -> None:
        if self._closed:
            return
        self.last_activity = self._loop.time()
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < MAX_PENDING_DATAGRAMS:
            self.pending.append(data)

    def reply(self, data: bytes) -> None:
        front = self.listener.transport
        if self._closed or front is None or front.is_closing():
            return
        self.last_activity = self._loop.time()
        front.sendto(data, self.client)

    def backend_error(self, exc: Exception) -> None:
        # ICMP port unreachable: the endpoint is gone; the client's next
        # datagram starts a new flow on another endpoint.
        log.info("%s: UDP endpoint %s: %s", self.svc.key, self.endpoint and _hostport(*self.endpoint), exc)
        if self.endpoint is not None:
            self.chooser.failed(self.client[0], self.endpoint)
        self.close()

    def _arm_idle(self, timeout: float) -> None:
        def check() -> None:
            if self._closed:
                return
            remaining = self.last_activity + timeout - self._loop.time()
            if remaining <= 0:
                self.close()
            else:
                self._idle = self._loop.call_later(remaining, check)

        self._idle = self._loop.call_later(timeout, check)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._idle is not None:
            self._idle.cancel()
        if self.transport is not None:
            self.transport.close()
            if self.endpoint is not None:
                self.chooser.released(self.endpoint)
        if not self._task.done():
            self._task.cancel()
        if self.listener.flows.get(self.client) is self:
            del self.listener.flows[self.client]


# ---------------------------------------------------------------------------
# The mode
# ---------------------------------------------------------------------------


class UserspaceProxy:
    """kube-proxy's userspace mode, on asyncio (entry point ``kcore.proxy:userspace``)."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        chooser_factory: ChooserFactory | None = None,
        name: str = "userspace",
        manage_addresses: bool | None = None,
        addresses: LocalAddresses | None = None,
    ) -> None:
        """``chooser_factory``: one chooser per listener instead of one shared
        ``Balancer`` per service port. ``name`` names the mode in its data dir.
        ``manage_addresses``: put non-local service addresses on ``lo`` (None:
        when root and started with a data dir). ``addresses``: the manager to
        use (tests pass one bound to a network namespace)."""
        self.clock = clock
        self.chooser_factory = chooser_factory
        self.name = name
        self.manage_addresses = manage_addresses
        self.addresses: LocalAddresses | None = addresses
        self.settings = Settings()
        self.context: Any = None
        self._services: dict[tuple[str, str], _Service] = {}
        self._conns: set[_TcpConn] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._errors: dict[ListenAddress, str] = {}
        self._lock: asyncio.Lock | None = None

    # -- hooks -------------------------------------------------------------

    @hookimpl
    async def kcore_proxy_start(self, settings: dict[str, Any] | None, context: Any) -> None:
        self.settings = Settings.parse(settings)
        self.context = context
        if self.addresses is None:
            self.addresses = self._address_manager(context)

    def _address_manager(self, context: Any) -> LocalAddresses | None:
        data_dir = getattr(context, "data_dir", None)
        manage = self.manage_addresses
        if manage is None:
            manage = os.geteuid() == 0 and data_dir is not None
        if not manage:
            return None
        state_file = Path(data_dir) / f"{self.name}-local-addresses.json" if data_dir is not None else None
        return LocalAddresses(state_file)

    @hookimpl
    async def kcore_proxy_sync(self, state: ProxyState) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await self._sync(state)

    @hookimpl
    def kcore_proxy_render_rules(self, state: ProxyState) -> str:
        return self.render(state)

    @hookimpl
    async def kcore_proxy_cleanup(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            for svc in self._services.values():
                for listener in svc.listeners.values():
                    await listener.close()
                svc.listeners.clear()
                svc.close_all()
            self._services.clear()
            self._errors.clear()
            for conn in list(self._conns):
                conn.close()
            tasks = [c._task for c in self._conns if c._task is not None] + list(self._tasks)
            if tasks:
                await asyncio.wait(tasks, timeout=5)
            if self.addresses is not None:
                await asyncio.to_thread(self.addresses.cleanup)

    # -- sync --------------------------------------------------------------

    def _nodeport_ips(self, state: ProxyState) -> tuple[str, ...]:
        if self.settings.nodeport_addresses is not None:
            return self.settings.nodeport_addresses
        return tuple(state.node_ips)

    async def _sync(self, state: ProxyState) -> None:
        desired: dict[tuple[str, str], ServicePort] = {}
        for sp in state.services:
            if sp.protocol not in ("TCP", "UDP"):
                log.debug("%s: protocol %s is not supported by the userspace mode", sp.key, sp.protocol)
                continue
            if not sp.cluster_ip or sp.cluster_ip == "None":
                continue  # headless: nothing to proxy
            desired[(sp.protocol, sp.key)] = sp

        # 1. Services that left: close listeners and connections.
        for skey in [k for k in self._services if k not in desired]:
            svc = self._services.pop(skey)
            for listener in svc.listeners.values():
                await listener.close()
            svc.listeners.clear()
            svc.choosers.clear()
            svc.close_all()
            log.info("%s: removed", svc.key)

        # 2. Update the rest in place; close listeners no longer wanted.
        wanted: dict[ListenAddress, _Service] = {}
        nodeport_ips = self._nodeport_ips(state)
        for skey, sp in desired.items():
            svc = self._services.get(skey)
            if svc is None:
                svc = self._services[skey] = _Service(self, sp)
            else:
                svc.update(sp)
            addrs = listen_addresses(sp, state, nodeport_ips)
            for addr in addrs:
                owner = wanted.setdefault(addr, svc)
                if owner is not svc:
                    self._errors[addr] = f"also claimed by {owner.key}; kept for {owner.key}"
                    log.error("%s: %s is already used by %s", sp.key, addr, owner.key)
            for addr in [a for a in svc.listeners if wanted.get(a) is not svc]:
                await svc.listeners.pop(addr).close()
                svc.forget(addr)
        for addr in [a for a in self._errors if a not in wanted]:
            del self._errors[addr]

        # 3a. As root: make the addresses bindable (and drop the ones no longer used).
        if self.addresses is not None:
            await asyncio.to_thread(self.addresses.ensure, {addr.ip for addr in wanted})

        # 3b. Open what is missing (also retries what failed last time).
        for addr, svc in wanted.items():
            if addr in svc.listeners:
                continue
            try:
                if addr.protocol == "TCP":
                    svc.listeners[addr] = await _TcpListener.open(svc, addr)
                else:
                    svc.listeners[addr] = await _UdpListener.open(svc, addr)
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if exc.errno == 99:  # EADDRNOTAVAIL
                    reason = f"{addr.ip} is not an address of this host"
                elif exc.errno == 98:  # EADDRINUSE
                    reason = f"port {addr.port} is already in use on {addr.ip}"
                elif exc.errno == 13:  # EACCES
                    reason = f"port {addr.port} needs privileges to bind"
                if self._errors.get(addr) != reason:
                    log.error("%s: cannot listen on %s: %s", svc.key, addr, reason)
                self._errors[addr] = reason
            else:
                self._errors.pop(addr, None)
                log.info("%s: listening on %s (%s)", svc.key, addr, addr.kind)

    # -- introspection -----------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What is live: listeners, failed listeners, open connections per service."""
        return {
            "listeners": sorted(
                (str(addr), svc.key) for svc in self._services.values() for addr in svc.listeners
            ),
            "errors": {str(addr): reason for addr, reason in sorted(self._errors.items())},
            "connections": {svc.key: len(svc.conns) for svc in self._services.values() if svc.conns},
        }

    def render(self, state: ProxyState) -> str:
        """A listener -> endpoints table for ``state`` (pure; installs nothing)."""
        nodeport_ips = self._nodeport_ips(state)
        rows: list[tuple[str, str, str, str, str, str]] = []
        for sp in sorted(state.services, key=lambda s: (s.key, s.protocol)):
            addrs = listen_addresses(sp, state, nodeport_ips)
            if not addrs:
                continue
            ready = sp.ready_endpoints()
            eps = ", ".join(_hostport(e.ip, e.port) for e in ready) or "(none: connections are refused)"
            others = len(sp.endpoints) - len(ready)
            if others:
                eps += f" (+{others} not ready)"
            affinity = f"ClientIP {sp.affinity_timeout_seconds}s" if sp.session_affinity else "None"
            for addr in addrs:
                rows.append((addr.protocol, _hostport(addr.ip, addr.port), addr.kind, sp.key, affinity, eps))
        header = ("PROTO", "LISTEN", "KIND", "SERVICE", "AFFINITY", "ENDPOINTS")
        if not rows:
            return "# userspace proxy: no listeners\n"
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
        lines = []
        for row in [header, *rows]:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
        return "\n".join(line.rstrip() for line in lines) + "\n"
