"""Port-forward on the node: connecting into a pod's network, and the SPDY portforward protocol.

The protocol tests drive :class:`SpdyPortForward` through an in-memory byte
channel as kubectl would (two streams per connection, paired by ``requestid``);
the namespace tests (root) make a real network namespace with ``ip netns``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from kcore.kubelet import spdy
from kcore.kubelet.portforward import DialError, PortForwardError, PortForwardTarget, connect_in_netns
from kcore.kubelet.portforward_http import SpdyPortForward


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    """A TCP echo server on 127.0.0.1 that closes after the client's EOF."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


def host_target() -> PortForwardTarget:
    return PortForwardTarget("default", "web", "uid-1", None)


# -- connecting ---------------------------------------------------------------------------------


async def test_connect_on_the_host_network(echo_port: int) -> None:
    reader, writer = await host_target().connect(echo_port)
    writer.write(b"ping")
    writer.write_eof()
    assert await reader.read() == b"ping"
    writer.close()


async def test_refused_port_gives_kubernetes_style_error() -> None:
    port = free_port()
    with pytest.raises(PortForwardError) as info:
        await host_target().connect(port)
    message = str(info.value)
    assert message.startswith(f"error forwarding port {port} to pod default/web, uid uid-1: "
                              f"failed to connect to localhost:{port} inside the host network namespace")
    assert "refused" in message.lower()


async def test_missing_namespace_is_an_error() -> None:
    target = PortForwardTarget("default", "web", "uid-1", f"kcore-missing-{uuid.uuid4().hex[:8]}")
    with pytest.raises(PortForwardError, match="cannot enter the network namespace"):
        await target.connect(80)


# -- a real network namespace (root) ------------------------------------------------------------


def _root_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "needs iproute2 with netns support"
    return None


@pytest.fixture
def netns_http() -> Iterator[tuple[str, int]]:
    """A fresh network namespace with lo up and an HTTP server on 127.0.0.1:port inside it."""
    name = f"kcore-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    subprocess.run(["ip", "netns", "add", name], check=True)
    server = None
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        server = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-m", "http.server", str(port),
                                   "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:  # ready when a connection inside the namespace succeeds
            with contextlib.suppress(OSError, DialError):
                connect_in_netns(name, port, timeout=1).close()
                break
            assert time.monotonic() < deadline, "the HTTP server in the namespace did not start"
            time.sleep(0.1)
        yield name, port
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _thread_netns() -> str:
    return os.readlink(f"/proc/self/task/{threading.get_native_id()}/ns/net")


@pytest.mark.root
@pytest.mark.skipif(_root_problem() is not None, reason=str(_root_problem()))
async def test_connect_inside_a_pod_network_namespace(netns_http: tuple[str, int]) -> None:
    name, port = netns_http
    before = _thread_netns()
    # The server listens only inside the namespace: from the host the port is closed.
    with pytest.raises(PortForwardError):
        await host_target().connect(port)
    target = PortForwardTarget("default", "web", "uid-1", name)
    for _ in range(3):  # several connections: each made in its own throwaway thread
        reader, writer = await target.connect(port)
        writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.0 200"), answer[:100]
    # Neither this thread nor the default executor's threads moved to the pod's namespace.
    assert _thread_netns() == before
    assert await asyncio.to_thread(_thread_netns) == before
    # A refused port inside the namespace names it.
    closed = free_port()
    with pytest.raises(PortForwardError, match=f'inside namespace "{name}".*refused'):
        await target.connect(closed)


# -- the SPDY portforward.k8s.io protocol over an in-memory channel -----------------------------


class MemoryChannel:
    """The server's side of a connection; the test plays kubectl on the other."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[bytes] = asyncio.Queue()
        self.decoder = spdy.FrameDecoder()
        self.frames: asyncio.Queue[spdy.Frame] = asyncio.Queue()
        self.closed = False

    async def read(self) -> bytes:
        return await self.incoming.get()

    async def write(self, data: bytes) -> None:
        for frame in self.decoder.feed(data):
            self.frames.put_nowait(frame)

    async def close(self) -> None:
        self.closed = True


class FakeKubectl:
    def __init__(self, channel: MemoryChannel) -> None:
        self.channel = channel
        self.encoder = spdy.FrameEncoder()
        self.next_id = 1

    def send(self, wire: bytes, split: bool = True) -> None:
        if split and len(wire) > 3:  # frames arrive split across messages, as over WebSocket
            self.channel.incoming.put_nowait(wire[:3])
            wire = wire[3:]
        self.channel.incoming.put_nowait(wire)

    def open_pair(self, port: int, request_id: str) -> tuple[int, int]:
        error_id, data_id = self.next_id, self.next_id + 2
        self.next_id += 4
        for stream_id, kind in ((error_id, "error"), (data_id, "data")):
            self.send(self.encoder.syn_stream(stream_id, {"streamtype": [kind], "port": [str(port)],
                                                          "requestid": [request_id]}))
        self.send(spdy.data_frame(error_id, b"", fin=True))  # kubectl never writes on the error stream
        return error_id, data_id

    async def frame(self) -> spdy.Frame:
        return await asyncio.wait_for(self.channel.frames.get(), 10)

    async def collect(self, stream_ids: set[int]) -> dict[int, bytes]:
        """Data per stream until every one of ``stream_ids`` has FINed."""
        data = {sid: b"" for sid in stream_ids}
        open_ids = set(stream_ids)
        while open_ids:
            frame = await self.frame()
            if isinstance(frame, spdy.DataFrame) and frame.stream_id in data:
                data[frame.stream_id] += frame.data
                if frame.fin:
                    open_ids.discard(frame.stream_id)
        return data


@pytest.fixture
async def session() -> AsyncIterator[tuple[FakeKubectl, asyncio.Task[None]]]:
    channel = MemoryChannel()
    task = asyncio.create_task(SpdyPortForward(channel, host_target().connect).run())
    yield FakeKubectl(channel), task
    channel.incoming.put_nowait(b"")
    await asyncio.wait_for(task, 10)
    assert channel.closed


async def test_spdy_forward_roundtrip(session: tuple[FakeKubectl, asyncio.Task[None]], echo_port: int) -> None:
    kubectl, _ = session
    error_id, data_id = kubectl.open_pair(echo_port, "0")
    replies = [await kubectl.frame(), await kubectl.frame()]
    assert replies == [spdy.SynReply(error_id, {}, 0), spdy.SynReply(data_id, {}, 0)]
    kubectl.send(spdy.data_frame(data_id, b"hello "))
    kubectl.send(spdy.data_frame(data_id, b"world", fin=True))  # half-close: the echo server then ends
    got = await kubectl.collect({error_id, data_id})
    assert got == {data_id: b"hello world", error_id: b""}


async def test_spdy_concurrent_connections_and_large_data(session: tuple[FakeKubectl, asyncio.Task[None]],
                                                          echo_port: int) -> None:
    kubectl, _ = session
    payloads = {str(i): os.urandom(200_000 + i) for i in range(4)}
    ids = {rid: kubectl.open_pair(echo_port, rid) for rid in payloads}
    for rid, payload in payloads.items():
        data_id = ids[rid][1]
        for start in range(0, len(payload), 50_000):
            kubectl.send(spdy.data_frame(data_id, payload[start:start + 50_000]), split=False)
        kubectl.send(spdy.data_frame(data_id, b"", fin=True))
    got = await kubectl.collect({sid for pair in ids.values() for sid in pair})
    for rid, payload in payloads.items():
        assert got[ids[rid][1]] == payload
        assert got[ids[rid][0]] == b""


async def test_spdy_refused_port_reports_on_the_error_stream(
        session: tuple[FakeKubectl, asyncio.Task[None]]) -> None:
    kubectl, _ = session
    port = free_port()
    error_id, data_id = kubectl.open_pair(port, "7")
    got = await kubectl.collect({error_id, data_id})
    assert got[data_id] == b""
    assert got[error_id].decode().startswith(f"error forwarding port {port} to pod default/web")
    assert b"failed to connect to localhost" in got[error_id]


async def test_spdy_ping_is_echoed_and_bad_streams_refused(session: tuple[FakeKubectl, asyncio.Task[None]]) -> None:
    kubectl, _ = session
    kubectl.send(spdy.ping(1))
    assert await kubectl.frame() == spdy.Ping(1)
    kubectl.send(kubectl.encoder.syn_stream(1, {"streamtype": ["bogus"], "port": ["80"]}))
    assert await kubectl.frame() == spdy.SynReply(1, {}, spdy.FLAG_FIN)
    kubectl.send(kubectl.encoder.syn_stream(3, {"streamtype": ["data"], "port": ["notaport"]}))
    assert await kubectl.frame() == spdy.SynReply(3, {}, spdy.FLAG_FIN)


async def test_spdy_goaway_ends_the_session(session: tuple[FakeKubectl, asyncio.Task[None]], echo_port: int) -> None:
    kubectl, task = session
    kubectl.open_pair(echo_port, "0")
    await kubectl.frame()
    await kubectl.frame()
    kubectl.send(spdy.goaway(0))
    await asyncio.wait_for(task, 10)  # forwarded connections are dropped, not left hanging


async def test_spdy_garbage_ends_the_session(session: tuple[FakeKubectl, asyncio.Task[None]]) -> None:
    kubectl, task = session
    kubectl.send(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01", split=False)  # SPDY/2: not ours
    await asyncio.wait_for(task, 10)
