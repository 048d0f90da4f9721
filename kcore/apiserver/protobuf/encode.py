"""Encode a JSON-form object as a Kubernetes protobuf body (the decoder's inverse).

Used by the tests to build bodies the way client-go does (fields in number order,
map keys sorted, proto2 unpacked repeated scalars) and available should kcore ever
answer in protobuf. Only keys present in the dict are written.
"""

from __future__ import annotations

import base64
import re
import struct
from datetime import datetime, timezone
from typing import Any

import orjson

from kcore.apiserver.protobuf.decode import MAGIC
from kcore.apiserver.protobuf.schema import (
    DURATION,
    FIELDS_V1,
    INT_OR_STRING,
    MICRO_TIME,
    QUANTITY,
    RAW_EXTENSION,
    TIME,
    list_wrappers,
    load_messages,
    message_for,
)
from kcore.apiserver.protobuf.wire import (
    FIXED32,
    FIXED64,
    VARINT,
    encode_length_delimited,
    encode_tag,
    encode_varint,
)

__all__ = ["ProtobufEncodeError", "encode_kubernetes_protobuf", "encode_message", "parse_duration"]


class ProtobufEncodeError(ValueError):
    """The object cannot be expressed with kcore's protobuf schema."""


def encode_kubernetes_protobuf(obj: dict[str, Any]) -> bytes:
    """``k8s\\0`` + runtime.Unknown{typeMeta, raw} for an object with apiVersion and kind."""
    api_version = obj.get("apiVersion", "")
    kind = obj.get("kind", "")
    message = message_for(api_version, kind)
    if message is None:
        raise ProtobufEncodeError(f"no protobuf schema for {api_version}/{kind}")
    type_meta = encode_length_delimited(1, api_version.encode()) + encode_length_delimited(2, kind.encode())
    envelope = (
        encode_length_delimited(1, type_meta)
        + encode_length_delimited(2, encode_message(obj, message))
        + encode_length_delimited(3, b"")
        + encode_length_delimited(4, b"")
    )
    return MAGIC + envelope


def encode_message(obj: Any, message: str) -> bytes:
    """The bytes of one message (no envelope) from its JSON form."""
    special = _SPECIAL.get(message)
    if special is not None:
        return special(obj)
    if message in list_wrappers():
        return b"".join(encode_length_delimited(1, str(item).encode()) for item in obj)
    fields = load_messages().get(message)
    if fields is None:
        raise ProtobufEncodeError(f"no schema for message {message}")
    if not isinstance(obj, dict):
        raise ProtobufEncodeError(f"{message} needs an object, got {type(obj).__name__}")
    out = bytearray()
    for field in fields:
        if field.label == "inline":
            out += encode_length_delimited(field.number, encode_message(obj, field.type))
            continue
        if field.name not in obj:
            continue
        value = obj[field.name]
        if field.label == "repeated":
            for item in value or ():
                out += _encode_value(field.number, field.type, item)
        elif field.label == "map":
            for key in sorted(value or {}):
                entry = encode_length_delimited(1, key.encode()) + _encode_value(2, field.type, value[key])
                out += encode_length_delimited(field.number, entry)
        else:
            out += _encode_value(field.number, field.type, value)
    return bytes(out)


def _encode_value(number: int, typ: str, value: Any) -> bytes:
    if "." in typ:
        return encode_length_delimited(number, encode_message(value, typ))
    if typ == "string":
        return encode_length_delimited(number, str(value).encode("utf-8"))
    if typ == "bytes":
        return encode_length_delimited(number, base64.b64decode(value))
    if typ == "double":
        return encode_tag(number, FIXED64) + struct.pack("<d", float(value))
    if typ == "float":
        return encode_tag(number, FIXED32) + struct.pack("<f", float(value))
    if typ in ("sint32", "sint64"):
        v = int(value)
        return encode_tag(number, VARINT) + encode_varint((v << 1) ^ (v >> 63))
    return encode_tag(number, VARINT) + encode_varint(int(value))


# ---------------------------------------------------------------- special messages

def _timestamp(value: Any, micro: bool) -> bytes:
    if value is None:
        return b""
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    whole = int(stamp.replace(microsecond=0).timestamp())
    out = encode_tag(1, VARINT) + encode_varint(whole)
    if micro and stamp.microsecond:
        out += encode_tag(2, VARINT) + encode_varint(stamp.microsecond * 1000)
    return out


def _quantity(value: Any) -> bytes:
    return encode_length_delimited(1, str(value).encode())


def _int_or_string(value: Any) -> bytes:
    if isinstance(value, str):
        return encode_tag(1, VARINT) + encode_varint(1) + encode_tag(2, VARINT) + encode_varint(0) \
            + encode_length_delimited(3, value.encode())
    return encode_tag(1, VARINT) + encode_varint(0) + encode_tag(2, VARINT) + encode_varint(int(value)) \
        + encode_length_delimited(3, b"")


def _raw_json(value: Any) -> bytes:
    if value is None:
        return b""
    return encode_length_delimited(1, orjson.dumps(value))


def _duration(value: Any) -> bytes:
    return encode_tag(1, VARINT) + encode_varint(parse_duration(str(value)))


_UNITS = {"h": 3_600_000_000_000, "m": 60_000_000_000, "s": 1_000_000_000, "ms": 1_000_000,
          "us": 1_000, "µs": 1_000, "ns": 1}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|ns)")


def parse_duration(text: str) -> int:
    """Go duration string (``1h30m``, ``1.5s``, ``-2m``) -> nanoseconds."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return 0
    pos, total = 0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            raise ProtobufEncodeError(f"invalid duration {text!r}")
        number, unit = match.groups()
        whole, _, frac = number.partition(".")
        size = _UNITS[unit]
        total += int(whole or 0) * size + (int(frac) * size // 10 ** len(frac) if frac else 0)
        pos = match.end()
    if pos != len(body) or not body:
        raise ProtobufEncodeError(f"invalid duration {text!r}")
    return sign * total


_SPECIAL = {
    TIME: lambda v: _timestamp(v, micro=False),
    MICRO_TIME: lambda v: _timestamp(v, micro=True),
    DURATION: _duration,
    QUANTITY: _quantity,
    INT_OR_STRING: _int_or_string,
    RAW_EXTENSION: _raw_json,
    FIELDS_V1: _raw_json,
}
