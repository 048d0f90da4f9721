"""SPDY/3.1 framing (kcore/kubelet/spdy.py) without any server: encode, decode, split reads."""

from __future__ import annotations

import struct
import zlib

import pytest

from kcore.kubelet import spdy


def test_dictionary_is_the_spdy3_one() -> None:
    d = spdy.DICTIONARY
    assert len(d) == 1423
    assert d.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version" in d
    assert d.endswith(b",*,enq=0.")
    # Peers check the dictionary by its Adler-32 (zlib's DICTID); this is the SPDY/3 value.
    assert zlib.adler32(d) == 0xE3C6A7C2


def test_header_block_roundtrip_with_multiple_values() -> None:
    headers = {"streamtype": ["data"], "port": ["8080"], "x-multi": ["a", "b"]}
    assert spdy.unpack_headers(spdy.pack_headers(headers)) == headers
    assert spdy.unpack_headers(spdy.pack_headers({"Port": ["1"]})) == {"port": ["1"]}
    with pytest.raises(spdy.SpdyError):
        spdy.unpack_headers(spdy.pack_headers(headers)[:-3])


def test_syn_stream_and_reply_roundtrip() -> None:
    client, server = spdy.FrameEncoder(), spdy.FrameDecoder()
    wire = client.syn_stream(1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}, priority=3)
    (frame,) = server.feed(wire)
    assert frame == spdy.SynStream(1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]},
                                   flags=0, associated_id=0, priority=3)
    (reply,) = spdy.FrameDecoder().feed(spdy.FrameEncoder().syn_reply(1, fin=True))
    assert reply == spdy.SynReply(1, {}, spdy.FLAG_FIN)


def test_control_frame_header_layout() -> None:
    wire = spdy.ping(7)
    assert wire[:2] == b"\x80\x03"  # control bit + version 3
    assert struct.unpack(">H", wire[2:4])[0] == spdy.PING
    assert wire[4] == 0 and int.from_bytes(wire[5:8], "big") == 4
    data = spdy.data_frame(5, b"abc", fin=True)
    assert data == struct.pack(">II", 5, (spdy.FLAG_FIN << 24) | 3) + b"abc"


def test_shared_compression_context_across_frames() -> None:
    """Each side has one zlib stream for the whole connection: later blocks depend on earlier ones."""
    encoder, decoder = spdy.FrameEncoder(), spdy.FrameDecoder()
    headers = [{"streamtype": [kind], "port": ["8080"], "requestid": [str(i)]}
               for i in range(5) for kind in ("error", "data")]
    wires = [encoder.syn_stream(2 * i + 1, h) for i, h in enumerate(headers)]
    # The second identical-ish block is much smaller than the first: it reuses the context.
    assert len(wires[2]) < len(wires[0])
    frames = [f for w in wires for f in decoder.feed(w)]
    assert [f.headers for f in frames] == headers  # type: ignore[union-attr]
    # A fresh decoder cannot read a later block on its own: the context is shared.
    with pytest.raises(spdy.SpdyError):
        spdy.FrameDecoder().feed(wires[3])


def test_frames_split_across_reads_and_coalesced() -> None:
    encoder = spdy.FrameEncoder()
    wire = (encoder.syn_stream(1, {"port": ["80"]}) + spdy.data_frame(1, b"x" * 5000)
            + spdy.ping(3) + spdy.data_frame(1, b"", fin=True) + spdy.rst_stream(1, spdy.CANCEL)
            + spdy.goaway(1) + spdy.window_update(1, 1000) + spdy.settings([(0, 4, 100)]))
    decoder = spdy.FrameDecoder()
    frames = []
    for i in range(0, len(wire), 7):  # seven bytes at a time: headers and bodies split anywhere
        frames += decoder.feed(wire[i:i + 7])
    assert decoder.pending == 0
    assert frames[1:] == [
        spdy.DataFrame(1, b"x" * 5000), spdy.Ping(3), spdy.DataFrame(1, b"", spdy.FLAG_FIN),
        spdy.RstStream(1, spdy.CANCEL), spdy.GoAway(1, 0), spdy.WindowUpdate(1, 1000),
        spdy.Settings([(0, 4, 100)]),
    ]
    assert frames[3].fin  # type: ignore[union-attr]
    # All at once gives the same frames.
    again = spdy.FrameDecoder().feed(wire)
    assert again[1:] == frames[1:]


def test_partial_frame_waits_for_more() -> None:
    decoder = spdy.FrameDecoder()
    wire = spdy.data_frame(3, b"hello")
    assert decoder.feed(wire[:10]) == []
    assert decoder.pending == 10
    assert decoder.feed(wire[10:]) == [spdy.DataFrame(3, b"hello")]


def test_bad_input_is_an_error() -> None:
    with pytest.raises(spdy.SpdyError, match="version"):
        spdy.FrameDecoder().feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1")
    with pytest.raises(spdy.SpdyError, match="larger"):
        spdy.FrameDecoder(max_frame=10).feed(spdy.data_frame(1, b"x" * 11))
    with pytest.raises(spdy.SpdyError, match="too short"):
        spdy.FrameDecoder().feed(spdy.control_frame(spdy.RST_STREAM, 0, b"\0\0"))
    unknown = spdy.FrameDecoder().feed(spdy.control_frame(42, 1, b"zz"))
    assert unknown == [spdy.UnknownControl(42, 1, b"zz")]
