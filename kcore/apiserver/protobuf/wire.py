"""Protocol-buffer wire format primitives (varints, tags, length-delimited records).

Kept separate from the schema-driven decoder so the schema generator can read
protobuf ``FileDescriptorProto`` blobs with the same few functions.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = [
    "WireError",
    "VARINT",
    "FIXED64",
    "LENGTH",
    "FIXED32",
    "read_varint",
    "iter_fields",
    "double_from_bits",
    "float_from_bits",
    "encode_varint",
    "encode_tag",
    "encode_length_delimited",
]

VARINT = 0
FIXED64 = 1
LENGTH = 2
FIXED32 = 5

_MASK64 = (1 << 64) - 1


class WireError(ValueError):
    """Malformed protobuf bytes (truncated data, bad wire type, overlong varint)."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Return (unsigned value, next position); at most 10 bytes as the format allows."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value): ints for varint/fixed, bytes for length-delimited.

    Groups (wire types 3/4) never appear in Kubernetes messages, so they are an error.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number = key >> 3
        wtype = key & 7
        if number == 0:
            raise WireError("field number 0")
        if wtype == VARINT:
            value, pos = read_varint(buf, pos)
            yield number, wtype, value
        elif wtype == LENGTH:
            size, pos = read_varint(buf, pos)
            stop = pos + size
            if stop > end:
                raise WireError("truncated length-delimited field")
            yield number, wtype, buf[pos:stop]
            pos = stop
        elif wtype == FIXED64:
            if pos + 8 > end:
                raise WireError("truncated fixed64")
            yield number, wtype, int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
        elif wtype == FIXED32:
            if pos + 4 > end:
                raise WireError("truncated fixed32")
            yield number, wtype, int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
        else:
            raise WireError(f"unsupported wire type {wtype}")


def double_from_bits(bits: int) -> float:
    return struct.unpack("<d", bits.to_bytes(8, "little"))[0]


def float_from_bits(bits: int) -> float:
    return struct.unpack("<f", bits.to_bytes(4, "little"))[0]


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128; negative numbers become their 64-bit two's complement (10 bytes)."""
    value &= _MASK64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_tag(number: int, wire_type: int) -> bytes:
    return encode_varint((number << 3) | wire_type)


def encode_length_delimited(number: int, payload: bytes) -> bytes:
    return encode_tag(number, LENGTH) + encode_varint(len(payload)) + payload
