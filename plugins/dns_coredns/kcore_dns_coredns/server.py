"""The DNS server: one UDP and one TCP socket, answers from the resolver, the rest upstream.

:class:`DnsServer` owns the sockets and, unless given shared ones, the informers
that keep its :class:`~kcore_dns_coredns.view.ClusterView` current. Queries are
answered on the event loop straight from the view (no await on the hot path),
and so are forwarded queries whose answer is in the :class:`Forwarder`'s cache;
only upstream round trips (a cache miss, an ExternalName target) become tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import socket
import struct
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode

from kcore.client.informer import InformerFactory
from kcore.log import get_logger
from kcore_dns_coredns.cache import AnswerCache
from kcore_dns_coredns.resolver import FORWARD, UDP_DEFAULT_LIMIT, Chase, Resolver
from kcore_dns_coredns.view import ClusterView

log = get_logger("dns.coredns")

UPSTREAM_TIMEOUT = 2.0
TCP_IDLE_TIMEOUT = 10.0


class DnsStartError(RuntimeError):
    """The server could not start (address in use, no permission, bad upstream)."""


def parse_upstreams(entries: list[str]) -> list[tuple[str, int]]:
    """``["10.0.0.2", "127.0.0.1:5353", "[::1]:53", "/etc/resolv.conf"]`` -> ``[(host, port)]``.

    A path names a resolv.conf whose ``nameserver`` lines are used (port 53).
    """
    out: list[tuple[str, int]] = []
    for entry in entries:
        entry = entry.strip()
        if entry.startswith("/"):
            try:
                lines = Path(entry).read_text().splitlines()
            except OSError as err:
                raise DnsStartError(f"dns upstream {entry}: cannot read it: {err.strerror}") from err
            for line in lines:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    out.append((fields[1].split("%")[0], 53))
            continue
        host, port = entry, 53
        if entry.startswith("["):
            host, _, rest = entry[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif entry.count(":") == 1:
            host, _, text = entry.partition(":")
            port = int(text)
        try:
            ipaddress.ip_address(host)
        except ValueError as err:
            raise DnsStartError(f"dns upstream {entry!r} is not an IP address (with optional :port)") from err
        out.append((host, port))
    return out


class Forwarder:
    """Sends a query to the upstream resolvers in turn until one answers, through a cache.

    Each upstream gets ``timeout`` seconds (UDP, then TCP when the answer is
    truncated); when none answers the client gets SERVFAIL, as from CoreDNS's
    ``forward``. Answers are kept in ``cache`` (an :class:`AnswerCache`) when given.
    """

    def __init__(self, upstreams: list[tuple[str, int]], timeout: float = UPSTREAM_TIMEOUT,
                 cache: AnswerCache | None = None) -> None:
        self.upstreams = upstreams
        self.timeout = timeout
        self.cache = cache

    def cached(self, wire: bytes) -> dns.message.Message | None:
        """The cached answer to ``wire``, without I/O (None: ask :meth:`forward`)."""
        if self.cache is None:
            return None
        try:
            return self.cache.get(dns.message.from_wire(wire))
        except Exception:  # noqa: BLE001 - the resolver parsed it once; be safe anyway
            return None

    async def forward(self, wire: bytes) -> dns.message.Message:
        """The upstream's (or the cache's) response to the query ``wire``."""
        return await self.query(dns.message.from_wire(wire))

    async def resolve(self, name: dns.name.Name, rdtype: int) -> dns.message.Message:
        """Ask the upstream about one name (the target of an ExternalName CNAME)."""
        return await self.query(dns.message.make_query(name, rdtype))

    async def query(self, query: dns.message.Message) -> dns.message.Message:
        if self.cache is not None:
            hit = self.cache.get(query)
            if hit is not None:
                return hit
        for host, port in self.upstreams:
            try:
                response = await dns.asyncquery.udp(query, host, port=port, timeout=self.timeout,
                                                    ignore_unexpected=True)
                if response.flags & dns.flags.TC:
                    response = await dns.asyncquery.tcp(query, host, port=port, timeout=self.timeout)
            except (OSError, dns.exception.DNSException) as err:
                log.debug("upstream failed", upstream=f"{host}:{port}", error=str(err) or type(err).__name__)
                continue
            if self.cache is not None:
                self.cache.put(query, response)
            return response
        log.debug("no upstream answered", name=query.question[0].name.to_text() if query.question else None)
        failure = dns.message.make_response(query)
        failure.set_rcode(dns.rcode.SERVFAIL)
        return failure


def _udp_limit(wire: bytes) -> int:
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # noqa: BLE001
        return UDP_DEFAULT_LIMIT
    return max(UDP_DEFAULT_LIMIT, query.payload) if query.edns >= 0 else UDP_DEFAULT_LIMIT


def _fit(response: dns.message.Message, limit: int) -> bytes:
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer.clear()
        response.authority.clear()
        response.additional.clear()
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        result = self.server.resolver.answer(data, udp=True)
        if result is None or self.transport is None:
            return
        if result is FORWARD:
            hit = self.server.forwarder.cached(data)
            if hit is not None:
                self.transport.sendto(_fit(hit, _udp_limit(data)), addr)
            else:
                self.server.spawn(self._forward(data, addr))
            return
        if isinstance(result, Chase):
            self.server.spawn(self._chase(result, addr))
            return
        self.transport.sendto(result, addr)  # type: ignore[arg-type]

    async def _forward(self, data: bytes, addr: Any) -> None:
        response = await self.server.forwarder.forward(data)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(_fit(response, _udp_limit(data)), addr)

    async def _chase(self, chase: Chase, addr: Any) -> None:
        wire = await self.server.chase(chase)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error", error=str(exc))


class DnsServer:
    """A running cluster DNS server; the handle ``kcore_dns_start`` returns.

    ``address``/``port`` are where it listens (the real port when 0 was asked for).
    """

    def __init__(self, view: ClusterView, resolver: Resolver, *, bind_address: str = "0.0.0.0",
                 port: int = 53, forwarder: Forwarder | None = None,
                 informers: InformerFactory | None = None, own_informers: bool = False) -> None:
        self.view = view
        self.resolver = resolver
        self.forwarder = forwarder or Forwarder([])
        self.address = bind_address
        self.port = port
        self._informers = informers
        self._own_informers = own_informers
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self, sync_timeout: float | None = 30.0) -> DnsServer:
        """Listen, and (with informers) return once the caches have synced."""
        if self._informers is not None:
            watch_cluster(self._informers, self.view)
            await self._informers.start()
            await self._informers.wait_synced(sync_timeout)
        udp_sock, tcp_sock = self._bind()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self), sock=udp_sock)
        self._udp = transport
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp_sock)
        log.info("cluster DNS listening", address=self.address, port=self.port,
                 domain=self.view.domain.to_text(omit_final_dot=True),
                 upstream=[f"{h}:{p}" for h, p in self.forwarder.upstreams] or None)
        return self

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp.wait_closed(), 2)
            self._tcp = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._informers is not None and self._own_informers:
            await self._informers.stop()

    async def __aenter__(self) -> DnsServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def chase(self, chase: Chase) -> bytes:
        """Complete an ExternalName CNAME answer with the target's records from the upstream."""
        upstream = await self.forwarder.resolve(chase.target, chase.rdtype)
        if upstream.rcode() == dns.rcode.NOERROR:
            chase.response.answer.extend(upstream.answer)
        return self.resolver.render(chase.response, chase.query, chase.udp)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- sockets ---------------------------------------------------------------------

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        attempts = 20 if self.port == 0 else 1
        last: OSError | None = None
        for _ in range(attempts):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            tcp = socket.socket(family, socket.SOCK_STREAM)
            try:
                udp.bind((self.address, self.port))
                port = udp.getsockname()[1]
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((self.address, port))
                tcp.listen(128)
            except OSError as err:
                udp.close()
                tcp.close()
                last = err
                if err.errno == errno.EADDRINUSE and self.port == 0:
                    continue  # the UDP port we got is taken for TCP: try another
                break
            udp.setblocking(False)
            tcp.setblocking(False)
            self.port = port
            return udp, tcp
        assert last is not None
        where = f"{self.address}:{self.port}"
        if last.errno == errno.EADDRINUSE:
            raise DnsStartError(f"cannot listen for DNS on {where}: the address is already in use "
                                "(set [dns] port to another port)") from last
        if last.errno == errno.EACCES:
            raise DnsStartError(f"cannot listen for DNS on {where}: permission denied (ports below 1024 "
                                "need root; set [dns] port to 1024 or above)") from last
        raise DnsStartError(f"cannot listen for DNS on {where}: {last.strerror or last}") from last

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    header = await reader.readexactly(2)
                    data = await reader.readexactly(struct.unpack("!H", header)[0])
                result = self.resolver.answer(data, udp=False)
                if result is None:
                    break
                if result is FORWARD:
                    response = await self.forwarder.forward(data)
                    result = response.to_wire(max_size=65535)
                elif isinstance(result, Chase):
                    result = await self.chase(result)
                assert isinstance(result, bytes)
                writer.write(struct.pack("!H", len(result)) + result)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def watch_cluster(informers: InformerFactory, view: ClusterView) -> None:
    """Feed ``view`` from the Service and EndpointSlice informers of ``informers``."""
    services = informers.informer("v1", "Service")
    services.add_handler(on_add=view.on_service, on_update=lambda _old, new: view.on_service(new),
                         on_delete=view.on_service_deleted)
    slices = informers.informer("discovery.k8s.io/v1", "EndpointSlice")
    slices.add_handler(on_add=view.on_slice, on_update=lambda _old, new: view.on_slice(new),
                       on_delete=view.on_slice_deleted)
