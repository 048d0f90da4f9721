"""The userspace proxy mode over real sockets on loopback (127.0.0.1, 127.96.0.0/16).

Backends are asyncio servers started by each test on free ports; the proxy is
driven through the plugin host exactly as the node's proxy drives it.
Every wait is on a condition, bounded by ``WAIT`` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from kcore.plugins import PluginHost
from kcore.proxy.state import Endpoint, ProxyState, ServicePort
from kcore.proxy.userspace import Settings, UserspaceProxy
from kcore.testing import plugin_host_for

WAIT = 10.0
GROUP = "kcore.proxy"


def free_port(ip: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip, 0))
        return s.getsockname()[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


# -- backends ---------------------------------------------------------------


class Backend:
    """A TCP server on 127.0.0.1:<free port>; ``mode`` picks its behaviour."""

    def __init__(self, name: str, mode: str = "http") -> None:
        self.name = name
        self.mode = mode
        self.hits = 0
        self.open = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> Backend:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.hits += 1
        self.open += 1
        try:
            if self.mode == "http":
                await reader.readuntil(b"\r\n\r\n")
                body = self.name.encode()
                writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
            elif self.mode == "echo":  # echo until EOF, then half-close back
                writer.write(f"{self.name}\n".encode())
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.write_eof()
            elif self.mode == "digest":  # read all, reply only after EOF
                h = hashlib.sha256()
                n = 0
                while data := await reader.read(65536):
                    h.update(data)
                    n += len(data)
                writer.write(f"{self.name} {n} {h.hexdigest()}".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.clients: Counter[tuple[str, int]] = Counter()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.clients[addr] += 1
        self.transport.sendto(self.name.encode() + b":" + data, addr)  # type: ignore[attr-defined]


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


# -- helpers ----------------------------------------------------------------


def svc(
    name: str,
    cluster_ip: str,
    port: int,
    endpoints: list[Endpoint],
    *,
    protocol: str = "TCP",
    node_port: int | None = None,
    affinity: bool = False,
    affinity_timeout: int = 10800,
) -> ServicePort:
    return ServicePort(
        namespace="default",
        name=name,
        port_name="p",
        protocol=protocol,  # type: ignore[arg-type]
        cluster_ip=cluster_ip,
        port=port,
        node_port=node_port,
        session_affinity=affinity,
        affinity_timeout_seconds=affinity_timeout,
        endpoints=tuple(endpoints),
    )


async def http_get(ip: str, port: int, local_ip: str | None = None) -> str:
    async def go() -> str:
        reader, writer = await asyncio.open_connection(
            ip, port, local_addr=(local_ip, 0) if local_ip else None
        )
        try:
            writer.write(b"GET / HTTP/1.0\r\nHost: svc\r\n\r\n")
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.0 200"), data
        return body.decode()

    return await asyncio.wait_for(go(), WAIT)


async def wait_until(predicate, timeout: float = WAIT) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def assert_refused(ip: str, port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        _, w = await asyncio.wait_for(asyncio.open_connection(ip, port), WAIT)
        w.close()


class Harness:
    def __init__(self, host: PluginHost, proxy: UserspaceProxy) -> None:
        self.host = host
        self.proxy = proxy

    async def start(self, **settings: object) -> None:
        await self.host.acall_driver(GROUP, "userspace", "kcore_proxy_start", settings=settings, context=None)

    async def sync(self, *services: ServicePort, node_ips: tuple[str, ...] = ("127.0.0.1",)) -> None:
        state = ProxyState(services=tuple(services), node_name="n1", node_ips=node_ips)
        await self.host.acall_driver(GROUP, "userspace", "kcore_proxy_sync", state=state)

    async def cleanup(self) -> None:
        await self.host.acall_driver(GROUP, "userspace", "kcore_proxy_cleanup")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def proxy(clock: FakeClock) -> AsyncIterator[Harness]:
    mode = UserspaceProxy(clock=clock)
    host = plugin_host_for(named={f"{GROUP}:userspace": mode})
    harness = Harness(host, mode)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.cleanup()


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    started: list[Backend] = []
    yield started
    for b in started:
        await b.stop()


async def start_backends(registry: list[Backend], n: int, mode: str = "http") -> list[Backend]:
    new = [await Backend(f"b{len(registry) + i}", mode).start() for i in range(n)]
    registry.extend(new)
    return new


# -- TCP --------------------------------------------------------------------


async def test_round_robin_is_even_across_three_backends(proxy: Harness, backends: list[Backend]):
    bs = await start_backends(backends, 3)
    ip, port = "127.96.0.10", free_port("127.96.0.10")
    await proxy.sync(svc("web", ip, port, [b.endpoint for b in bs]))
    answers = Counter([await http_get(ip, port) for _ in range(30)])
    assert answers == {"b0": 10, "b1": 10, "b2": 10}
    assert [b.hits for b in bs] == [10, 10, 10]


async def test_client_ip_affinity_sticks_and_expires(proxy: Harness, backends: list[Backend], clock: FakeClock):
    bs = await start_backends(backends, 3)
    ip, port = "127.96.0.11", free_port("127.96.0.11")
    await proxy.sync(svc("sticky", ip, port, [b.endpoint for b in bs], affinity=True, affinity_timeout=30))
    first = {await http_get(ip, port, local_ip="127.0.0.1") for _ in range(5)}
    assert first == {"b0"}
    # Another client IP gets the next endpoint and sticks to it too.
    second = {await http_get(ip, port, local_ip="127.0.0.2") for _ in range(5)}
    assert second == {"b1"}
    clock.now += 29  # within the timeout (each use refreshes it)
    assert await http_get(ip, port, local_ip="127.0.0.1") == "b0"
    clock.now += 31  # expired: the client is balanced again (rotation is at b2)
    after = {await http_get(ip, port, local_ip="127.0.0.1") for _ in range(3)}
    assert after == {"b2"}


async def test_refused_endpoint_is_skipped(proxy: Harness, backends: list[Backend]):
    bs = await start_backends(backends, 2)
    dead = Endpoint("127.0.0.1", free_port())  # nothing listens there
    ip, port = "127.96.0.12", free_port("127.96.0.12")
    await proxy.sync(svc("web", ip, port, [dead, bs[0].endpoint, bs[1].endpoint]))
    answers = Counter([await http_get(ip, port) for _ in range(9)])
    assert set(answers) == {"b0", "b1"} and sum(answers.values()) == 9


async def test_no_ready_endpoints_closes_the_client(proxy: Harness):
    ip, port = "127.96.0.13", free_port("127.96.0.13")
    await proxy.sync(svc("empty", ip, port, [Endpoint("127.0.0.1", 1, ready=False)]))
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), WAIT)
    try:
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
    except ConnectionResetError:
        pass
    finally:
        writer.close()


async def test_removed_endpoint_gets_no_new_connections_and_its_connections_end(
    proxy: Harness, backends: list[Backend]
):
    a, b = await start_backends(backends, 2, mode="echo")
    other = (await start_backends(backends, 1, mode="echo"))[0]
    ip, port = "127.96.0.14", free_port("127.96.0.14")
    ip2, port2 = "127.96.0.15", free_port("127.96.0.15")
    await proxy.sync(svc("web", ip, port, [a.endpoint, b.endpoint]), svc("other", ip2, port2, [other.endpoint]))

    async def connect(host: str, p: int, name: str):  # type: ignore[no-untyped-def]
        r, w = await asyncio.wait_for(asyncio.open_connection(host, p), WAIT)
        assert await asyncio.wait_for(r.readline(), WAIT) == f"{name}\n".encode()
        return r, w

    ra, wa = await connect(ip, port, a.name)
    rb, wb = await connect(ip, port, b.name)
    ro, wo = await connect(ip2, port2, other.name)

    await proxy.sync(svc("web", ip, port, [b.endpoint]), svc("other", ip2, port2, [other.endpoint]))
    # The connection to the removed endpoint ends ...
    try:
        assert await asyncio.wait_for(ra.read(), WAIT) == b""
    except ConnectionResetError:
        pass
    await wait_until(lambda: a.open == 0)
    # ... the others keep working ...
    for r, w in ((rb, wb), (ro, wo)):
        w.write(b"still here\n")
        await w.drain()
        assert await asyncio.wait_for(r.readline(), WAIT) == b"still here\n"
    # ... and new connections only go to what is left.
    for _ in range(4):
        r, w = await connect(ip, port, b.name)
        w.close()
    assert a.hits == 1
    for w in (wa, wb, wo):
        w.close()


async def test_half_close_forwards_eof_and_keeps_the_reply(proxy: Harness, backends: list[Backend]):
    (d,) = await start_backends(backends, 1, mode="digest")
    ip, port = "127.96.0.16", free_port("127.96.0.16")
    await proxy.sync(svc("digest", ip, port, [d.endpoint]))
    payload = b"hello, half-closed world\n" * 1000
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), WAIT)
    writer.write(payload)
    await writer.drain()
    writer.write_eof()  # the backend answers only after it sees EOF
    reply = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    assert reply.decode() == f"b0 {len(payload)} {hashlib.sha256(payload).hexdigest()}"


async def test_large_transfer_both_ways_is_intact(proxy: Harness, backends: list[Backend]):
    (e,) = await start_backends(backends, 1, mode="echo")
    ip, port = "127.96.0.17", free_port("127.96.0.17")
    await proxy.sync(svc("bulk", ip, port, [e.endpoint]))
    payload = random.Random(7).randbytes(20 * 1024 * 1024)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), WAIT)

    async def send() -> None:
        view = memoryview(payload)
        for i in range(0, len(payload), 1 << 20):
            writer.write(view[i : i + (1 << 20)])
            await writer.drain()
        writer.write_eof()

    async def receive() -> bytes:
        h = hashlib.sha256()
        n = 0
        assert await reader.readline() == b"b0\n"
        while data := await reader.read(1 << 20):
            h.update(data)
            n += len(data)
        assert n == len(payload)
        return h.digest()

    _, digest = await asyncio.wait_for(asyncio.gather(send(), receive()), 30)
    writer.close()
    assert digest == hashlib.sha256(payload).digest()


async def test_fifty_concurrent_connections(proxy: Harness, backends: list[Backend]):
    bs = await start_backends(backends, 3, mode="echo")
    ip, port = "127.96.0.18", free_port("127.96.0.18")
    await proxy.sync(svc("many", ip, port, [b.endpoint for b in bs]))
    opened = asyncio.Event()
    ready = 0

    async def client(i: int) -> str:
        nonlocal ready
        reader, writer = await asyncio.open_connection(ip, port)
        name = (await reader.readline()).decode().strip()
        ready += 1
        if ready == 50:
            opened.set()
        await opened.wait()  # all 50 are open at the same time
        msg = f"client {i} ".encode() * 2000
        writer.write(msg)
        await writer.drain()
        writer.write_eof()
        assert await reader.read() == msg
        writer.close()
        return name

    names = await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(50))), 20)
    assert sorted(Counter(names).values()) == [16, 17, 17]
    await wait_until(lambda: not proxy.proxy.status()["connections"])


async def test_idle_connections_are_closed(clock: FakeClock, backends: list[Backend]):
    mode = UserspaceProxy(clock=clock)
    h = Harness(plugin_host_for(named={f"{GROUP}:userspace": mode}), mode)
    await h.start(idle_timeout_seconds=0.2)
    try:
        (e,) = await start_backends(backends, 1, mode="echo")
        ip, port = "127.96.0.19", free_port("127.96.0.19")
        await h.sync(svc("idle", ip, port, [e.endpoint]))
        reader, writer = await asyncio.wait_for(asyncio.open_connection(ip, port), WAIT)
        assert await asyncio.wait_for(reader.readline(), WAIT) == b"b0\n"
        try:
            assert await asyncio.wait_for(reader.read(), WAIT) == b""
        except ConnectionResetError:
            pass
        writer.close()
        await wait_until(lambda: e.open == 0)
    finally:
        await h.cleanup()


async def test_node_port_listens_on_node_addresses(proxy: Harness, backends: list[Backend]):
    bs = await start_backends(backends, 2)
    ip, port = "127.96.0.20", free_port("127.96.0.20")
    node_port = free_port("127.0.0.1")
    await proxy.sync(svc("np", ip, port, [b.endpoint for b in bs], node_port=node_port), node_ips=("127.0.0.1",))
    answers = Counter([await http_get("127.0.0.1", node_port) for _ in range(4)])
    assert answers == {"b0": 2, "b1": 2}
    assert await http_get(ip, port) in ("b0", "b1")
    assert f"127.0.0.1:{node_port}" in " ".join(a for a, _ in proxy.proxy.status()["listeners"])


async def test_sync_is_incremental_and_cleanup_closes_everything(proxy: Harness, backends: list[Backend]):
    (a,) = await start_backends(backends, 1, mode="echo")
    (h,) = await start_backends(backends, 1)
    ip1, port1 = "127.96.0.21", free_port("127.96.0.21")
    ip2, port2 = "127.96.0.22", free_port("127.96.0.22")
    node_port = free_port("127.0.0.1")
    s1 = svc("one", ip1, port1, [a.endpoint])
    s2 = svc("two", ip2, port2, [h.endpoint], node_port=node_port)
    await proxy.sync(s1, s2)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(ip1, port1), WAIT)
    assert await asyncio.wait_for(reader.readline(), WAIT) == b"b0\n"

    # Removing service two closes its listeners, not service one's connection.
    await proxy.sync(s1)
    await assert_refused(ip2, port2)
    await assert_refused("127.0.0.1", node_port)
    writer.write(b"ping\n")
    assert await asyncio.wait_for(reader.readline(), WAIT) == b"ping\n"
    # Re-adding it opens them again; syncing the same state twice is a no-op.
    await proxy.sync(s1, s2)
    await proxy.sync(s1, s2)
    assert await http_get(ip2, port2) == "b1"

    await proxy.cleanup()
    try:
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
    except ConnectionResetError:
        pass
    writer.close()
    for host, p in ((ip1, port1), (ip2, port2), ("127.0.0.1", node_port)):
        await assert_refused(host, p)
    assert proxy.proxy.status() == {"listeners": [], "errors": {}, "connections": {}}
    await wait_until(lambda: a.open == 0)


async def test_unbindable_address_is_reported_and_others_still_work(proxy: Harness, backends: list[Backend]):
    (b,) = await start_backends(backends, 1)
    ip, port = "127.96.0.23", free_port("127.96.0.23")
    # 192.0.2.0/24 is TEST-NET-1: never an address of this host; nothing is sent.
    await proxy.sync(svc("bad", "192.0.2.1", 8080, [b.endpoint]), svc("good", ip, port, [b.endpoint]))
    errors = proxy.proxy.status()["errors"]
    assert list(errors) == ["TCP 192.0.2.1:8080"]
    assert "not an address of this host" in errors["TCP 192.0.2.1:8080"]
    assert await http_get(ip, port) == "b0"
    await proxy.sync(svc("good", ip, port, [b.endpoint]))
    assert proxy.proxy.status()["errors"] == {}


# -- UDP --------------------------------------------------------------------


async def test_udp_echo_through_the_proxy(proxy: Harness):
    loop = asyncio.get_running_loop()
    echoes = []
    for name in ("u0", "u1"):
        transport, echo = await loop.create_datagram_endpoint(lambda n=name: UdpEcho(n), local_addr=("127.0.0.1", 0))
        echoes.append((transport, echo))
    eps = [Endpoint("127.0.0.1", t.get_extra_info("sockname")[1]) for t, _ in echoes]
    ip, port = "127.96.0.30", free_port("127.96.0.30", socket.SOCK_DGRAM)
    clients = []
    try:
        await proxy.sync(svc("dns", ip, port, eps, protocol="UDP"))
        seen = []
        for _ in range(2):
            transport, client = await loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0))
            clients.append(transport)
            replies = set()
            for i in range(3):
                transport.sendto(f"q{i}".encode(), (ip, port))
                data, addr = await asyncio.wait_for(client.queue.get(), WAIT)
                assert addr == (ip, port)  # the reply comes from the service address
                name, _, body = data.partition(b":")
                assert body == f"q{i}".encode()
                replies.add(name)
            assert len(replies) == 1  # one flow, one backend
            seen.append(replies.pop())
        assert sorted(seen) == [b"u0", b"u1"]  # flows are balanced
        render = await proxy.host.acall_driver(
            GROUP, "userspace", "kcore_proxy_render_rules",
            state=ProxyState(services=(svc("dns", ip, port, eps, protocol="UDP"),)),
        )
        assert f"UDP    {ip}:{port}" in render
        # Removing the service closes the flows' sockets too.
        await proxy.sync()
        assert proxy.proxy.status()["listeners"] == []
    finally:
        for t in clients:
            t.close()
        for t, _ in echoes:
            t.close()


async def test_udp_flow_idle_timeout_rebalances(clock: FakeClock):
    loop = asyncio.get_running_loop()
    mode = UserspaceProxy(clock=clock)
    h = Harness(plugin_host_for(named={f"{GROUP}:userspace": mode}), mode)
    await h.start(udp_idle_timeout_seconds=0.2)
    echoes = []
    try:
        for name in ("u0", "u1"):
            transport, _ = await loop.create_datagram_endpoint(lambda n=name: UdpEcho(n), local_addr=("127.0.0.1", 0))
            echoes.append(transport)
        eps = [Endpoint("127.0.0.1", t.get_extra_info("sockname")[1]) for t in echoes]
        ip, port = "127.96.0.31", free_port("127.96.0.31", socket.SOCK_DGRAM)
        await h.sync(svc("dns", ip, port, eps, protocol="UDP"))
        transport, client = await loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0))
        echoes.append(transport)
        transport.sendto(b"a", (ip, port))
        assert (await asyncio.wait_for(client.queue.get(), WAIT))[0] == b"u0:a"
        listener = next(iter(next(iter(mode._services.values())).listeners.values()))
        await wait_until(lambda: not listener.flows)  # type: ignore[union-attr]
        transport.sendto(b"b", (ip, port))
        assert (await asyncio.wait_for(client.queue.get(), WAIT))[0] == b"u1:b"
    finally:
        await h.cleanup()
        for t in echoes:
            t.close()


# -- rendering and settings -------------------------------------------------


def test_render_rules_is_a_readable_table():
    mode = UserspaceProxy()
    host = plugin_host_for(named={f"{GROUP}:userspace": mode})
    state = ProxyState(
        services=(
            svc("web", "127.96.0.40", 80, [Endpoint("10.0.0.1", 8080), Endpoint("10.0.0.2", 8080, ready=False)],
                node_port=30080, affinity=True, affinity_timeout=60),
            svc("empty", "127.96.0.41", 53, [], protocol="UDP"),
            ServicePort("default", "headless", "", "TCP", None, 80),
        ),
        node_ips=("127.0.0.1",),
    )
    text = host.call_driver(GROUP, "userspace", "kcore_proxy_render_rules", state=state)
    lines = text.splitlines()
    assert lines[0].split() == ["PROTO", "LISTEN", "KIND", "SERVICE", "AFFINITY", "ENDPOINTS"]
    assert len(lines) == 4  # header, web cluster IP, web node port, empty; headless skipped
    web = [line for line in lines if "default/web:p" in line]
    assert "127.96.0.40:80" in web[0] and "127.0.0.1:30080" in web[1]
    assert "ClientIP 60s" in web[0] and "10.0.0.1:8080 (+1 not ready)" in web[0]
    assert "none: connections are refused" in [line for line in lines if "empty" in line][0]
    assert mode.render(ProxyState()) == "# userspace proxy: no listeners\n"


def test_settings_are_validated_with_the_key_path():
    assert Settings.parse({"idle_timeout_seconds": 5}).idle_timeout_seconds == 5.0
    assert Settings.parse(None) == Settings()
    with pytest.raises(ValueError, match=r"proxy\.userspace\.idle_timeout_secs: unknown setting"):
        Settings.parse({"idle_timeout_secs": 5})
    with pytest.raises(ValueError, match=r"proxy\.userspace\.idle_timeout_seconds: must be a positive"):
        Settings.parse({"idle_timeout_seconds": 0})
    with pytest.raises(ValueError, match=r"nodeport_addresses: not an IP"):
        Settings.parse({"nodeport_addresses": ["nope"]})
