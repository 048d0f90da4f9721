"""Serve ``pods/portforward``: the three ways clients speak it, over one aiohttp request.

- **SPDY tunnelled in WebSocket** (kubectl 1.31+ by default): a WebSocket
  upgrade with subprotocol ``SPDY/3.1+portforward.k8s.io``; the binary messages
  carry a SPDY/3.1 byte stream (frames may be split across messages).
- **SPDY** (kubectl's fallback when the WebSocket upgrade is refused, or with
  ``KUBECTL_PORT_FORWARD_WEBSOCKETS=false``): ``Upgrade: SPDY/3.1`` and
  ``X-Stream-Protocol-Version: portforward.k8s.io``; after ``101`` the
  connection itself is the SPDY byte stream.
- **WebSocket channels** (the official Python client's
  ``kubernetes.stream.portforward``): ``?ports=8080,...`` and subprotocol
  ``v4.channel.k8s.io``; per port i a data channel 2i and an error channel 2i+1,
  each message prefixed with its channel byte, and each channel's first message
  from the server carrying the port as 2 little-endian bytes.

With SPDY, the ``portforward.k8s.io`` protocol gives every forwarded connection
two client-opened streams sharing a ``requestid`` header: ``streamtype: error``
and ``streamtype: data``, both with ``port``. The server replies to each
SYN_STREAM, connects to the port (``connect``, see kcore/kubelet/portforward.py)
once both have arrived, copies bytes both ways on the data stream, writes a
failure's text on the error stream, and FINs both when the pod side ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from kcore.kubelet import spdy
from kcore.kubelet.portforward import PortForwardError
from kcore.kubelet.tasks import until_first_done
from kcore.log import get_logger

log = get_logger("kubelet.portforward")

SPDY_PROTOCOL = "portforward.k8s.io"
TUNNEL_PROTOCOL = "SPDY/3.1+" + SPDY_PROTOCOL
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "channel.k8s.io")
CHUNK = 32 * 1024
PAIR_TIMEOUT = 30.0
"""How long a stream waits for its partner (Kubernetes' stream creation timeout)."""
_INBOX = 64  # chunks buffered per connection toward the pod before reading the client pauses
_RAW_BUFFER = 1 << 20

Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


class BadPortForwardRequest(ValueError):
    """The request cannot be upgraded (answered with 400 before any stream starts)."""


# -- byte channels: what a SPDY session reads and writes ------------------------------------------


class ByteChannel(Protocol):
    async def read(self) -> bytes:
        """The next bytes from the peer; b"" at the end."""

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class WebSocketBytes:
    """A byte stream over WebSocket binary messages (server or client side)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            msg = await self.ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return bytes(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return b""

    async def write(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


class _Feed:
    """Stands in for aiohttp's payload parser after a raw upgrade: bytes go to the channel."""

    def __init__(self, channel: UpgradedBytes) -> None:
        self.channel = channel

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.channel.push(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.channel.push(b"")


class UpgradedBytes:
    """The raw connection of a request answered with ``101 Switching Protocols``."""

    def __init__(self, request: web.Request, response: web.StreamResponse, writer: Any) -> None:
        self.response = response
        """The 101 answer (already sent): what the request handler returns."""
        self._transport = request.transport
        self._writer = writer
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._buffered = 0
        self._paused = False
        self._eof = False

    def push(self, data: bytes) -> None:
        self._queue.put_nowait(data)
        self._buffered += len(data)
        if self._buffered > _RAW_BUFFER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    async def read(self) -> bytes:
        if self._eof:
            return b""
        data = await self._queue.get()
        self._buffered -= len(data)
        if self._paused and self._buffered < _RAW_BUFFER // 2 and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        if not data:
            self._eof = True
        return data

    async def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("the client connection is closed")
        self._transport.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def accept_raw_spdy(request: web.Request) -> UpgradedBytes:
    """Answer ``Upgrade: SPDY/3.1`` with 101 and take the connection over."""
    response = web.StreamResponse(status=101, headers={
        "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": SPDY_PROTOCOL})
    response.force_close()
    writer = await response.prepare(request)
    assert writer is not None
    send_headers = getattr(writer, "send_headers", None)
    if send_headers is not None:
        send_headers()
    await writer.drain()
    channel = UpgradedBytes(request, response, writer)
    # aiohttp does not know SPDY as an upgrade; a payload parser of ours gets every byte from now on.
    request.protocol.set_parser(_Feed(channel))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    return channel


async def accept_tunnel(request: web.Request) -> tuple[web.WebSocketResponse, WebSocketBytes]:
    ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,), max_msg_size=0, autoping=True)
    await ws.prepare(request)
    return ws, WebSocketBytes(ws)


async def splice(a: ByteChannel, b: ByteChannel) -> None:
    """Copy bytes both ways until either side ends (relaying a SPDY stream unchanged)."""

    async def copy(source: ByteChannel, sink: ByteChannel) -> None:
        while data := await source.read():
            await sink.write(data)

    await until_first_done(copy(a, b), copy(b, a))


# -- negotiation --------------------------------------------------------------------------------


def offered_protocols(request: web.Request) -> list[str]:
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


def parse_ports(query: Any) -> list[int]:
    """``?ports=8080,9090`` (or repeated ``ports``) as numbers; BadPortForwardRequest if invalid."""
    ports: list[int] = []
    for value in query.getall("ports", []):
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            if not item.isdigit() or not 0 < int(item) < 65536:
                raise BadPortForwardRequest(f"invalid port {item!r}: ports must be numbers from 1 to 65535")
            ports.append(int(item))
    return ports


def negotiate(request: web.Request) -> str:
    """Which protocol the client speaks: ``tunnel``, ``channels`` or ``spdy``."""
    upgrade = request.headers.get("Upgrade", "").strip().lower()
    if upgrade == "websocket":
        if TUNNEL_PROTOCOL in offered_protocols(request):
            return "tunnel"
        if not parse_ports(request.query):
            raise BadPortForwardRequest("query parameter \"ports\" is required for a WebSocket port-forward")
        return "channels"
    if upgrade.startswith("spdy/3.1"):
        versions = [v.strip() for v in request.headers.get("X-Stream-Protocol-Version", SPDY_PROTOCOL).split(",")]
        if SPDY_PROTOCOL not in versions:
            raise BadPortForwardRequest(f"unable to upgrade: none of the protocols {versions} is supported "
                                        f"(the server speaks {SPDY_PROTOCOL})")
        return "spdy"
    raise BadPortForwardRequest("port-forward needs a connection upgrade: WebSocket "
                                f"({TUNNEL_PROTOCOL} or v4.channel.k8s.io) or SPDY/3.1")


async def serve_portforward(request: web.Request, connect: Connect) -> web.StreamResponse:
    """Upgrade ``request`` in whichever protocol it asks for and forward until the client leaves."""
    mode = negotiate(request)
    if mode == "channels":
        return await serve_channels(request, connect, parse_ports(request.query))
    if mode == "tunnel":
        ws, channel = await accept_tunnel(request)
        await SpdyPortForward(channel, connect).run()
        return ws
    raw = await accept_raw_spdy(request)
    await SpdyPortForward(raw, connect).run()
    return raw.response


# -- portforward.k8s.io over SPDY ---------------------------------------------------------------


@dataclass
class _Stream:
    stream_id: int
    kind: str  # "data" or "error"
    port: int
    inbox: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(_INBOX))
    closed: bool = False  # we sent FIN or RST: nothing more goes out on it


@dataclass
class _Pair:
    request_id: str
    data: _Stream | None = None
    error: _Stream | None = None
    task: asyncio.Task[None] | None = None
    timer: asyncio.TimerHandle | None = None


def _header(headers: spdy.Headers, name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


class SpdyPortForward:
    """One SPDY connection of the portforward.k8s.io protocol, the server side."""

    def __init__(self, channel: ByteChannel, connect: Connect) -> None:
        self.channel = channel
        self.connect = connect
        self.decoder = spdy.FrameDecoder()
        self.encoder = spdy.FrameEncoder()
        self.streams: dict[int, _Stream] = {}
        self.pairs: dict[str, _Pair] = {}
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    async def run(self) -> None:
        """Read frames until the client goes away; then end every forwarded connection."""
        try:
            while data := await self.channel.read():
                for frame in self.decoder.feed(data):
                    if not await self._handle(frame):
                        return
        except spdy.SpdyError as exc:
            log.warning("bad SPDY from port-forward client", error=str(exc))
            with contextlib.suppress(Exception):
                await self._send(spdy.goaway(0, spdy.PROTOCOL_ERROR))
        except ConnectionResetError:
            pass
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        tasks = [p.task for p in self.pairs.values() if p.task is not None] + list(self._background)
        for pair in self.pairs.values():
            if pair.timer is not None:
                pair.timer.cancel()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await self.channel.close()

    # -- writing --------------------------------------------------------------------------------

    async def _send(self, frame: bytes) -> None:
        async with self._lock:
            await self.channel.write(frame)

    async def _reply(self, stream_id: int, *, fin: bool = False) -> None:
        async with self._lock:  # compress and write in one step: the zlib context is ordered
            await self.channel.write(self.encoder.syn_reply(stream_id, {}, fin=fin))

    async def _data(self, stream: _Stream, data: bytes) -> None:
        if stream.closed:
            raise ConnectionResetError(f"stream {stream.stream_id} was reset")
        for start in range(0, len(data), CHUNK):
            await self._send(spdy.data_frame(stream.stream_id, data[start:start + CHUNK]))

    async def _finish(self, stream: _Stream) -> None:
        if stream.closed:
            return
        stream.closed = True
        with contextlib.suppress(Exception):
            await self._send(spdy.data_frame(stream.stream_id, b"", fin=True))

    async def _reset(self, stream: _Stream, status: int) -> None:
        if stream.closed:
            return
        stream.closed = True
        with contextlib.suppress(Exception):
            await self._send(spdy.rst_stream(stream.stream_id, status))

    # -- reading --------------------------------------------------------------------------------

    async def _handle(self, frame: spdy.Frame) -> bool:
        """Act on one frame; False when the client said GOAWAY."""
        if isinstance(frame, spdy.SynStream):
            await self._open(frame)
        elif isinstance(frame, spdy.DataFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None and stream.kind == "data":
                if frame.data:
                    await stream.inbox.put(frame.data)
                if frame.fin:
                    await stream.inbox.put(None)
        elif isinstance(frame, spdy.RstStream):
            self._on_reset(frame.stream_id)
        elif isinstance(frame, spdy.Ping):
            await self._send(spdy.ping(frame.ping_id))
        elif isinstance(frame, spdy.GoAway):
            return False
        # SETTINGS, WINDOW_UPDATE (spdystream does no flow control), HEADERS, unknown: nothing to do.
        return True

    async def _open(self, frame: spdy.SynStream) -> None:
        headers = frame.headers
        kind = _header(headers, "streamtype")
        port_text = _header(headers, "port") or ""
        if kind not in ("data", "error") or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            log.info("port-forward stream refused", stream=frame.stream_id, streamtype=kind, port=port_text)
            await self._reply(frame.stream_id, fin=True)
            return
        await self._reply(frame.stream_id)
        stream = _Stream(frame.stream_id, kind, int(port_text))
        self.streams[frame.stream_id] = stream
        # Clients before requestid paired an error stream with the data stream opened right after it.
        request_id = _header(headers, "requestid") or \
            str(frame.stream_id if kind == "error" else frame.stream_id - 2)
        pair = self.pairs.setdefault(request_id, _Pair(request_id))
        if getattr(pair, kind) is not None or pair.task is not None:
            await self._reset(stream, spdy.PROTOCOL_ERROR)
            return
        setattr(pair, kind, stream)
        if pair.data is not None and pair.error is not None:
            if pair.timer is not None:
                pair.timer.cancel()
            pair.task = asyncio.create_task(self._forward(pair), name=f"portforward-{request_id}")
        else:
            pair.timer = asyncio.get_running_loop().call_later(PAIR_TIMEOUT, self._expire, request_id)

    def _expire(self, request_id: str) -> None:
        pair = self.pairs.get(request_id)
        if pair is None or pair.task is not None:
            return
        log.info("port-forward stream pair incomplete; resetting", requestid=request_id)
        self.pairs.pop(request_id, None)
        for stream in (pair.data, pair.error):
            if stream is not None:
                self.streams.pop(stream.stream_id, None)
                task = asyncio.ensure_future(self._reset(stream, spdy.CANCEL))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    def _on_reset(self, stream_id: int) -> None:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            return
        stream.closed = True
        for pair in self.pairs.values():
            if stream in (pair.data, pair.error) and pair.task is not None and stream.kind == "data":
                pair.task.cancel()  # the client dropped the connection: drop ours to the pod

    # -- one forwarded connection ---------------------------------------------------------------

    async def _forward(self, pair: _Pair) -> None:
        data, error = pair.data, pair.error
        assert data is not None and error is not None
        try:
            try:
                reader, writer = await self.connect(data.port)
            except PortForwardError as exc:
                with contextlib.suppress(Exception):
                    await self._data(error, str(exc).encode())
                return
            upload = asyncio.ensure_future(_to_pod(data.inbox, writer))
            try:
                while chunk := await reader.read(CHUNK):
                    await self._data(data, chunk)
            except (ConnectionResetError, BrokenPipeError) as exc:
                if not data.closed:
                    with contextlib.suppress(Exception):
                        await self._data(error, f"error forwarding port {data.port}: {exc}".encode())
            finally:
                await _stop_upload(upload, data.inbox, writer)
        finally:
            await self._finish(data)
            await self._finish(error)
            self.streams.pop(data.stream_id, None)
            self.streams.pop(error.stream_id, None)
            self.pairs.pop(pair.request_id, None)


async def _to_pod(inbox: asyncio.Queue[bytes | None], writer: asyncio.StreamWriter) -> None:
    """Client bytes to the pod; the client's FIN becomes a half-close."""
    with contextlib.suppress(ConnectionError, OSError):
        while (chunk := await inbox.get()) is not None:
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _stop_upload(upload: asyncio.Future[None], inbox: asyncio.Queue[bytes | None],
                       writer: asyncio.StreamWriter) -> None:
    """End a connection's upload and close the pod side; empty the inbox so a reader
    blocked on a full one goes on (what arrives later for the connection is dropped)."""
    upload.cancel()
    with contextlib.suppress(BaseException):
        await upload
    while not inbox.empty():
        inbox.get_nowait()
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


# -- WebSocket channels (v4.channel.k8s.io) ------------------------------------------------------


async def serve_channels(request: web.Request, connect: Connect, ports: list[int]) -> web.WebSocketResponse:
    """One connection per requested port, on channels 2i (data) and 2i+1 (error)."""
    ws = web.WebSocketResponse(protocols=CHANNEL_PROTOCOLS, max_msg_size=0, autoping=True)
    await ws.prepare(request)
    lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        async with lock:
            await ws.send_bytes(bytes([channel]) + data)

    inboxes: list[asyncio.Queue[bytes | None]] = [asyncio.Queue(_INBOX) for _ in ports]
    finished: set[int] = set()  # ports whose connection ended: later client data is dropped

    async def forward(index: int, port: int) -> None:
        try:
            reader, writer = await connect(port)
        except PortForwardError as exc:
            await send(2 * index + 1, str(exc).encode())
            return
        upload = asyncio.ensure_future(_to_pod(inboxes[index], writer))
        try:
            while chunk := await reader.read(CHUNK):
                await send(2 * index, chunk)
        finally:
            finished.add(index)
            await _stop_upload(upload, inboxes[index], writer)

    async def read_client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
                continue
            channel, payload = msg.data[0], bytes(msg.data[1:])
            item: bytes | None = payload
            if channel == 255 and payload:  # v5 "close stream": the client is done sending
                channel, item = payload[0], None
            index = channel // 2
            if channel % 2 == 0 and index < len(ports) and index not in finished and item != b"":
                await inboxes[index].put(item)

    reader_task: asyncio.Task[None] | None = None
    workers: list[asyncio.Task[None]] = []
    try:
        for index, port in enumerate(ports):
            prefix = struct.pack("<H", port)
            await send(2 * index, prefix)
            await send(2 * index + 1, prefix)
        reader_task = asyncio.ensure_future(read_client())
        workers = [asyncio.ensure_future(forward(i, p)) for i, p in enumerate(ports)]
        everything = asyncio.ensure_future(asyncio.gather(*workers, return_exceptions=True))
        await asyncio.wait({everything, reader_task}, return_when=asyncio.FIRST_COMPLETED)
    except ConnectionResetError:
        pass
    finally:
        for task in [*workers, *([reader_task] if reader_task else [])]:
            task.cancel()
        for task in [*workers, *([reader_task] if reader_task else [])]:
            with contextlib.suppress(BaseException):
                await task
        with contextlib.suppress(Exception):
            await ws.close()
    return ws
