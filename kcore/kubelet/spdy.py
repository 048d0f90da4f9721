"""SPDY/3.1 framing: the wire format ``kubectl port-forward`` multiplexes its streams in.

Pure functions and two small stateful codecs, no I/O, so the framing can be
tested on its own. Facts of the format (draft-mbelshe-httpbis-spdy, as spoken
by moby/spdystream, which kubectl uses):

- every frame has an 8-byte header. A control frame starts with the control
  bit and version 3 (``0x8003``), then a 16-bit type, 8-bit flags and a 24-bit
  length; a data frame starts with a 31-bit stream id, then flags (``FIN``) and
  length.
- header blocks (in SYN_STREAM, SYN_REPLY, HEADERS) are a 32-bit count of
  name/value pairs, each a 32-bit length and bytes (several values of one name
  joined by NUL), compressed with zlib primed with the SPDY/3 dictionary —
  *one* compression context per direction for the whole connection, each block
  ended with a sync flush. So header blocks must be encoded and decoded in
  wire order, which is why :class:`FrameEncoder` and :class:`FrameDecoder`
  each own their zlib object.
- spdystream does no flow control (it never sends WINDOW_UPDATE), so neither
  may we wait for windows.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes.
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6

MAX_LENGTH = 0xFFFFFF
"""The largest payload a 24-bit length can describe."""


def _dictionary() -> bytes:
    """The SPDY/3 header compression dictionary (1423 bytes, from the SPDY/3 draft, section 2.6.10.1).

    It is a list of length-prefixed common header words followed by a run of
    status codes, dates and media types; built here from those two parts.
    """
    words = (
        "options head post put delete trace accept accept-charset accept-encoding accept-language "
        "accept-ranges age allow authorization cache-control connection content-base content-encoding "
        "content-language content-length content-location content-md5 content-range content-type date "
        "etag expect expires from host if-match if-modified-since if-none-match if-range "
        "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
        "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
        "user-agent vary via warning www-authenticate method get status"
    ).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
    prefixed = b"".join(struct.pack(">I", len(w)) + w.encode() for w in words)
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
        "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
        "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
        "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
        "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
        "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
    )
    return prefixed + tail.encode()


DICTIONARY = _dictionary()
assert len(DICTIONARY) == 1423, len(DICTIONARY)

Headers = dict[str, list[str]]


class SpdyError(Exception):
    """The peer sent something that is not SPDY/3 (the connection cannot go on)."""


# -- frames -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataFrame:
    stream_id: int
    data: bytes
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    flags: int = 0
    associated_id: int = 0
    priority: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)
    flags: int = 0


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_stream_id: int
    status: int = 0


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass(frozen=True)
class UnknownControl:
    """A control frame type we do not know; SPDY says to ignore it."""

    frame_type: int
    flags: int
    payload: bytes


Frame = (DataFrame | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame
         | WindowUpdate | UnknownControl)


# -- header blocks ------------------------------------------------------------------------------


def pack_headers(headers: Headers) -> bytes:
    """The uncompressed name/value block (names lower-cased, as SPDY requires)."""
    out = [struct.pack(">I", len(headers))]
    for name, values in headers.items():
        raw_name, raw_value = name.lower().encode(), "\x00".join(values).encode()
        out.append(struct.pack(">I", len(raw_name)) + raw_name + struct.pack(">I", len(raw_value)) + raw_value)
    return b"".join(out)


def unpack_headers(block: bytes) -> Headers:
    """Parse an uncompressed name/value block; SpdyError when it is malformed."""
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        offset = 4
        headers: Headers = {}
        for _ in range(count):
            (size,) = struct.unpack_from(">I", block, offset)
            name = block[offset + 4:offset + 4 + size]
            offset += 4 + size
            (size,) = struct.unpack_from(">I", block, offset)
            value = block[offset + 4:offset + 4 + size]
            offset += 4 + size
            if offset > len(block):
                raise SpdyError("truncated header block")
            headers.setdefault(name.decode("latin-1").lower(), []).extend(value.decode("latin-1").split("\x00"))
    except struct.error:
        raise SpdyError("truncated header block") from None
    return headers


class HeaderCompressor:
    """One direction's zlib context: every block continues the same stream."""

    def __init__(self) -> None:
        self._zlib = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                      zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)

    def compress(self, headers: Headers) -> bytes:
        return self._zlib.compress(pack_headers(headers)) + self._zlib.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The peer's zlib context, fed every compressed block in wire order."""

    def __init__(self) -> None:
        self._zlib = zlib.decompressobj(zdict=DICTIONARY)

    def decompress(self, block: bytes) -> Headers:
        try:
            raw = self._zlib.decompress(block)
        except zlib.error as exc:
            raise SpdyError(f"cannot decompress a header block: {exc}") from None
        return unpack_headers(raw)


# -- encoding -----------------------------------------------------------------------------------


def control_frame(frame_type: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ValueError("control frame payload too large")
    return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, data: bytes, *, fin: bool = False) -> bytes:
    """One DATA frame; callers keep ``data`` under :data:`MAX_LENGTH`."""
    if len(data) > MAX_LENGTH:
        raise ValueError("data frame payload too large")
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def rst_stream(stream_id: int, status: int) -> bytes:
    return control_frame(RST_STREAM, 0, struct.pack(">II", stream_id & 0x7FFFFFFF, status))


def ping(ping_id: int) -> bytes:
    return control_frame(PING, 0, struct.pack(">I", ping_id))


def goaway(last_stream_id: int, status: int = 0) -> bytes:
    return control_frame(GOAWAY, 0, struct.pack(">II", last_stream_id & 0x7FFFFFFF, status))


def window_update(stream_id: int, delta: int) -> bytes:
    return control_frame(WINDOW_UPDATE, 0, struct.pack(">II", stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF))


def settings(entries: list[tuple[int, int, int]], flags: int = 0) -> bytes:
    body = struct.pack(">I", len(entries)) + b"".join(
        struct.pack(">II", (f << 24) | (i & 0xFFFFFF), v) for f, i, v in entries)
    return control_frame(SETTINGS, flags, body)


class FrameEncoder:
    """Frames one side sends; owns that side's header compression context."""

    def __init__(self) -> None:
        self.compressor = HeaderCompressor()

    def syn_stream(self, stream_id: int, headers: Headers, *, fin: bool = False, associated_id: int = 0,
                   priority: int = 0) -> bytes:
        body = struct.pack(">IIBB", stream_id & 0x7FFFFFFF, associated_id & 0x7FFFFFFF, (priority & 7) << 5, 0)
        return control_frame(SYN_STREAM, FLAG_FIN if fin else 0, body + self.compressor.compress(headers))

    def syn_reply(self, stream_id: int, headers: Headers | None = None, *, fin: bool = False) -> bytes:
        body = struct.pack(">I", stream_id & 0x7FFFFFFF) + self.compressor.compress(headers or {})
        return control_frame(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def headers(self, stream_id: int, headers: Headers, *, fin: bool = False) -> bytes:
        body = struct.pack(">I", stream_id & 0x7FFFFFFF) + self.compressor.compress(headers)
        return control_frame(HEADERS, FLAG_FIN if fin else 0, body)


# -- decoding -----------------------------------------------------------------------------------


class FrameDecoder:
    """Bytes in (split anywhere), whole frames out; owns the peer's header context."""

    def __init__(self, max_frame: int = MAX_LENGTH) -> None:
        self.decompressor = HeaderDecompressor()
        self.max_frame = max_frame
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes buffered that do not make a whole frame yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer, 0)
            length = second & 0xFFFFFF
            if length > self.max_frame:
                raise SpdyError(f"frame of {length} bytes is larger than allowed ({self.max_frame})")
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = second >> 24
            if first & 0x80000000:
                version, frame_type = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise SpdyError(f"unsupported SPDY version {version}")
                frames.append(self._control(frame_type, flags, payload))
            else:
                frames.append(DataFrame(first & 0x7FFFFFFF, payload, flags))
        return frames

    def _control(self, frame_type: int, flags: int, payload: bytes) -> Frame:
        try:
            if frame_type == SYN_STREAM:
                stream_id, assoc, prio = struct.unpack_from(">IIB", payload, 0)
                headers = self.decompressor.decompress(payload[10:])
                return SynStream(stream_id & 0x7FFFFFFF, headers, flags, assoc & 0x7FFFFFFF, prio >> 5)
            if frame_type == SYN_REPLY:
                (stream_id,) = struct.unpack_from(">I", payload, 0)
                return SynReply(stream_id & 0x7FFFFFFF, self.decompressor.decompress(payload[4:]), flags)
            if frame_type == HEADERS:
                (stream_id,) = struct.unpack_from(">I", payload, 0)
                return HeadersFrame(stream_id & 0x7FFFFFFF, self.decompressor.decompress(payload[4:]), flags)
            if frame_type == RST_STREAM:
                stream_id, status = struct.unpack_from(">II", payload, 0)
                return RstStream(stream_id & 0x7FFFFFFF, status)
            if frame_type == SETTINGS:
                (count,) = struct.unpack_from(">I", payload, 0)
                entries = []
                for i in range(count):
                    key, value = struct.unpack_from(">II", payload, 4 + 8 * i)
                    entries.append((key >> 24, key & 0xFFFFFF, value))
                return Settings(entries, flags)
            if frame_type == PING:
                return Ping(struct.unpack_from(">I", payload, 0)[0])
            if frame_type == GOAWAY:
                last, status = struct.unpack_from(">II", payload, 0) if len(payload) >= 8 else \
                    (struct.unpack_from(">I", payload, 0)[0], 0)
                return GoAway(last & 0x7FFFFFFF, status)
            if frame_type == WINDOW_UPDATE:
                stream_id, delta = struct.unpack_from(">II", payload, 0)
                return WindowUpdate(stream_id & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error:
            raise SpdyError(f"control frame of type {frame_type} is too short") from None
        return UnknownControl(frame_type, flags, payload)
