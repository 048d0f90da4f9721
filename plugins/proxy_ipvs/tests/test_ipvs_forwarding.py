"""The ipvs mode without kernel IPVS really forwards: real TCP on loopback.

The mode is started through a plugin host as a node's proxy starts it, on a
"kernel" without IPVS, so it picks the userspace data path and forwards with
kcore's userspace sockets; the IPVS schedulers choose each backend. Backends
greet every connection with their name, then echo until EOF.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from kcore.proxy.state import Endpoint, ProxyState, ServicePort
from kcore.testing import plugin_host_for
from kcore_proxy_ipvs.datapath import UserspaceDataPath
from kcore_proxy_ipvs.kernel import IpvsSupport
from kcore_proxy_ipvs.plugin import IpvsProxy
from kcore_proxy_ipvs.table import RealServerSpec, VirtualServiceKey

GROUP, NAME = "kcore.proxy", "ipvs"
WAIT = 10.0


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


class Backend:
    """A TCP server on 127.0.0.1 that says its name, then echoes until EOF."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.open = 0
        self.port = 0
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> Backend:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            writer.write(f"{self.name}\n".encode())
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            writer.close()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


class Held:
    """One client connection through the service, kept open."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: str) -> None:
        self.reader, self.writer, self.server = reader, writer, server

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def connect(ip: str, port: int, local_ip: str | None = None) -> Held:
    async with asyncio.timeout(WAIT):
        reader, writer = await asyncio.open_connection(
            ip, port, local_addr=(local_ip, 0) if local_ip else None
        )
        name = (await reader.readline()).decode().strip()
    return Held(reader, writer, name)


async def ask(ip: str, port: int, local_ip: str | None = None) -> str:
    """Connect, read the backend's name, echo a line through it, close."""
    held = await connect(ip, port, local_ip)
    held.writer.write(b"ping\n")
    async with asyncio.timeout(WAIT):
        assert await held.reader.readline() == b"ping\n"
    await held.close()
    return held.server


async def eventually(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            result = check()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)
    raise AssertionError(what)  # pragma: no cover


class Mode:
    """The ipvs mode on a kernel without IPVS, driven through a plugin host."""

    def __init__(self, scheduler: str) -> None:
        self.proxy = IpvsProxy(probe=lambda: IpvsSupport(False, "test kernel"), ipvsadm=lambda: None)
        self.host = plugin_host_for(named={f"{GROUP}:{NAME}": self.proxy})
        self.scheduler = scheduler

    async def call(self, hook: str, **kw: Any) -> Any:
        return await self.host.acall_driver(GROUP, NAME, hook, **kw)

    async def sync(self, *services: ServicePort) -> ProxyState:
        state = ProxyState(services=services)
        await self.call("kcore_proxy_sync", state=state)
        return state

    @property
    def datapath(self) -> UserspaceDataPath:
        assert isinstance(self.proxy.datapath, UserspaceDataPath)
        return self.proxy.datapath

    def active(self, ip: str, port: int, backend: Backend) -> int:
        return self.datapath.stats(VirtualServiceKey("TCP", ip, port), RealServerSpec("127.0.0.1", backend.port))[0]


def service(ip: str, port: int, backends: list[Backend], **kw: Any) -> ServicePort:
    return ServicePort("default", "web", "http", "TCP", ip, port,
                       endpoints=tuple(b.endpoint for b in backends), **kw)


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    started = [await Backend(name).start() for name in ("a", "b", "c")]
    # Real servers are ordered by (ip, port): name them in that order.
    started.sort(key=lambda b: b.port)
    for backend, name in zip(started, ("a", "b", "c")):
        backend.name = name
    yield started
    for backend in started:
        await backend.stop()


async def start_mode(scheduler: str) -> Mode:
    mode = Mode(scheduler)
    await mode.call("kcore_proxy_start", settings={"scheduler": scheduler}, context=None)
    assert mode.proxy.forwarder is not None, "no kernel IPVS: the mode must forward in userspace"
    return mode


async def test_rr_spreads_connections_evenly(backends: list[Backend]) -> None:
    mode = await start_mode("rr")
    ip = "127.96.1.10"
    port = free_port(ip)
    try:
        await mode.sync(service(ip, port, backends))
        order = [await ask(ip, port) for _ in range(30)]
        assert Counter(order) == {"a": 10, "b": 10, "c": 10}
        assert order[:6] == ["a", "b", "c", "a", "b", "c"]
    finally:
        await mode.call("kcore_proxy_cleanup")


async def test_sh_keeps_each_client_on_one_server(backends: list[Backend]) -> None:
    mode = await start_mode("sh")
    ip = "127.96.1.11"
    port = free_port(ip)
    try:
        await mode.sync(service(ip, port, backends))
        chosen: dict[str, str] = {}
        for client in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"):
            seen = {await ask(ip, port, local_ip=client) for _ in range(5)}
            assert len(seen) == 1, f"{client} went to {seen}"
            chosen[client] = seen.pop()
            # The one the source-hash table names for this client.
            expected = mode.datapath.choose("TCP", ip, port, client_ip=client)
            assert expected is not None and {b.port: b.name for b in backends}[expected.port] == chosen[client]
        assert len(set(chosen.values())) > 1, "six clients all hashed to one of three servers"
    finally:
        await mode.call("kcore_proxy_cleanup")


async def test_lc_sends_new_connections_to_the_least_loaded_server(backends: list[Backend]) -> None:
    mode = await start_mode("lc")
    ip = "127.96.1.12"
    port = free_port(ip)
    a, b, c = backends
    held: list[Held] = []
    try:
        await mode.sync(service(ip, port, backends))
        # Ties go to the first server: a, then b (a busy), then c.
        for expected in ("a", "b", "c", "a", "b"):
            conn = await connect(ip, port)
            held.append(conn)
            assert conn.server == expected
        assert [mode.active(ip, port, s) for s in backends] == [2, 2, 1]
        # c has the fewest: it gets the next one.
        conn = await connect(ip, port)
        held.append(conn)
        assert conn.server == "c"
        # Closing both connections to b makes it the least loaded.
        for conn in [h for h in held if h.server == "b"]:
            await conn.close()
            held.remove(conn)
        await eventually(lambda: mode.active(ip, port, b) == 0, "b's connections to be released")
        assert [await ask(ip, port) for _ in range(3)] == ["b", "b", "b"]  # short ones leave it least loaded
        await eventually(lambda: mode.active(ip, port, b) == 0, "the short connections to be released")
        text = await mode.call("kcore_proxy_render_rules", state=ProxyState(services=(service(ip, port, backends),)))
        rows = [line.split() for line in text.splitlines() if line.startswith("  -> 127.0.0.1")]
        assert [(row[1], row[4]) for row in rows] == [
            (f"127.0.0.1:{a.port}", "2"), (f"127.0.0.1:{b.port}", "0"), (f"127.0.0.1:{c.port}", "2")
        ]
    finally:
        for conn in held:
            await conn.close()
        await mode.call("kcore_proxy_cleanup")


async def test_refusing_server_falls_through_and_unready_gets_nothing(backends: list[Backend]) -> None:
    mode = await start_mode("rr")
    ip = "127.96.1.13"
    port = free_port(ip)
    dead = Endpoint("127.0.0.1", free_port("127.0.0.1"))  # nothing listens there
    try:
        eps = (*(b.endpoint for b in backends), dead)
        await mode.sync(ServicePort("default", "web", "http", "TCP", ip, port, endpoints=eps))
        answers = [await ask(ip, port) for _ in range(12)]
        assert set(answers) == {"a", "b", "c"}
        # a goes unready: no new connection reaches it.
        eps = (backends[0].endpoint.__class__("127.0.0.1", backends[0].port, ready=False),
               backends[1].endpoint, backends[2].endpoint)
        await mode.sync(ServicePort("default", "web", "http", "TCP", ip, port, endpoints=eps))
        assert Counter([await ask(ip, port) for _ in range(10)]) == {"b": 5, "c": 5}
    finally:
        await mode.call("kcore_proxy_cleanup")


async def test_cleanup_closes_listeners_and_counts(backends: list[Backend]) -> None:
    mode = await start_mode("wlc")
    ip = "127.96.1.14"
    port = free_port(ip)
    await mode.sync(service(ip, port, backends))
    held = await connect(ip, port)
    assert mode.active(ip, port, backends[0]) == 1
    await mode.call("kcore_proxy_cleanup")
    async with asyncio.timeout(WAIT):
        assert await held.reader.read() == b""  # the relayed connection was closed
    with pytest.raises(OSError):
        await asyncio.open_connection(ip, port)
    assert mode.proxy.table == {}


class _UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name.encode() + b":" + data, addr)


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.replies.put_nowait(data)


async def test_udp_flows_are_scheduled_and_counted_as_inactive() -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpEcho("u"), local_addr=("127.0.0.1", 0))
    backend_port = transport.get_extra_info("sockname")[1]
    mode = await start_mode("rr")
    ip = "127.96.1.15"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((ip, 0))
        port = s.getsockname()[1]
    client_transport = None
    try:
        await mode.sync(ServicePort("kube-system", "dns", "dns", "UDP", ip, port,
                                    endpoints=(Endpoint("127.0.0.1", backend_port),)))
        client_transport, client = await loop.create_datagram_endpoint(_UdpClient, remote_addr=(ip, port))
        client_transport.sendto(b"hello")
        async with asyncio.timeout(WAIT):
            assert await client.replies.get() == b"u:hello"
        stats = mode.datapath.stats(VirtualServiceKey("UDP", ip, port), RealServerSpec("127.0.0.1", backend_port))
        assert stats == (0, 1)  # a UDP flow shows as InActConn, as in the kernel
    finally:
        if client_transport is not None:
            client_transport.close()
        await mode.call("kcore_proxy_cleanup")
        transport.close()
    assert mode.datapath.stats(VirtualServiceKey("UDP", ip, port), RealServerSpec("127.0.0.1", backend_port)) == (0, 0)
