"""Decode ``application/vnd.kubernetes.protobuf`` request bodies into JSON-form dicts.

kubectl's typed clients (``create deployment``, ``run``, ``auth can-i``, eviction...)
send built-in objects as protobuf. The rest of the API server works on the JSON form,
so the decoder reproduces exactly what the same object would look like as JSON:

* absent fields stay absent; zero values of Go value (non-pointer) scalars are dropped
  like ``omitempty`` does, while pointer fields keep an explicit zero (``replicas: 0``);
* maps become dicts, repeated fields lists, ``bytes`` base64 strings (``Secret.data``);
* Time -> ``"2006-01-02T15:04:05Z"`` (a zero Time -> None, JSON ``null``), MicroTime
  with microseconds, Duration -> Go duration string, Quantity -> its string,
  IntOrString -> int or str, RawExtension / FieldsV1 -> parsed JSON;
* embedded ``json:",inline"`` structs merge into the parent; unknown fields are skipped.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from kcore.apiserver.protobuf.schema import (
    DURATION,
    FIELDS_V1,
    INT_OR_STRING,
    MICRO_TIME,
    QUANTITY,
    RAW_EXTENSION,
    TIME,
    compiled,
    list_wrappers,
    message_for,
)
from kcore.apiserver.protobuf.wire import (
    FIXED32,
    FIXED64,
    LENGTH,
    VARINT,
    WireError,
    double_from_bits,
    float_from_bits,
    iter_fields,
    read_varint,
)

__all__ = [
    "MAGIC",
    "CONTENT_TYPE",
    "ProtobufDecodeError",
    "decode_kubernetes_protobuf",
    "decode_message",
    "read_envelope",
    "format_duration",
]

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
_MAX_DEPTH = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Scalar types a repeated field may carry packed (all but string and bytes).
_PACKABLE = frozenset({"int64", "int32", "uint64", "uint32", "sint32", "sint64", "bool",
                       "fixed32", "fixed64", "sfixed32", "sfixed64", "double", "float"})
_ZERO_VALUES = ("", 0, False)


class ProtobufDecodeError(ValueError):
    """The body is not a Kubernetes protobuf object kcore can decode (message says why)."""


def decode_kubernetes_protobuf(body: bytes) -> dict[str, Any]:
    """Decode a whole request body (magic + runtime.Unknown) into the object's JSON form.

    The result carries ``apiVersion`` and ``kind`` from the envelope. Raises
    :class:`ProtobufDecodeError` for garbage, truncated data or a kind without a schema.
    """
    return _decode_object(body, 0)


def _decode_object(body: bytes, depth: int) -> dict[str, Any]:
    api_version, kind, raw = read_envelope(body)
    message = message_for(api_version, kind)
    if message is None:
        raise ProtobufDecodeError(f"no protobuf schema for {api_version or '<none>'}/{kind or '<none>'}")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj.update(decode_message(raw, message, _depth=depth))
    return obj


def read_envelope(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw object bytes) of the ``k8s\\0`` + runtime.Unknown envelope."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise ProtobufDecodeError("protobuf body must be bytes")
    body = bytes(body)
    if not body.startswith(MAGIC):
        raise ProtobufDecodeError("protobuf body does not start with the Kubernetes magic 'k8s\\x00'")
    api_version = kind = encoding = content_type = ""
    raw = b""
    try:
        for number, wtype, value in iter_fields(body[len(MAGIC):]):
            if wtype != LENGTH:
                continue
            if number == 1:
                for tnum, twt, tval in iter_fields(value):
                    if twt == LENGTH and tnum == 1:
                        api_version = tval.decode()
                    elif twt == LENGTH and tnum == 2:
                        kind = tval.decode()
            elif number == 2:
                raw = value
            elif number == 3:
                encoding = value.decode()
            elif number == 4:
                content_type = value.decode()
    except (WireError, UnicodeDecodeError) as exc:
        raise ProtobufDecodeError(f"malformed protobuf envelope: {exc}") from None
    if encoding:
        raise ProtobufDecodeError(f"unsupported protobuf contentEncoding {encoding!r}")
    if content_type not in ("", CONTENT_TYPE):
        raise ProtobufDecodeError(f"unsupported protobuf contentType {content_type!r}")
    if not kind:
        raise ProtobufDecodeError("protobuf envelope has no kind")
    return api_version, kind, raw


def decode_message(buf: bytes, message: str, *, _depth: int = 0) -> dict[str, Any]:
    """Decode one message (no envelope) of the given full proto name into a dict."""
    try:
        value = _decode(buf, message, _depth)
    except ProtobufDecodeError:
        raise
    except (WireError, UnicodeDecodeError, orjson.JSONDecodeError, ValueError, OverflowError) as exc:
        raise ProtobufDecodeError(f"malformed {message.rsplit('.', 1)[-1]}: {exc}") from None
    if not isinstance(value, dict):
        raise ProtobufDecodeError(f"{message} does not decode to an object")
    return value


def _decode(buf: bytes, message: str, depth: int) -> Any:
    """A message as its JSON form: a dict, or a string/int/list for the special types."""
    if depth > _MAX_DEPTH:
        raise ProtobufDecodeError("protobuf message nested too deeply")
    special = _SPECIAL.get(message)
    if special is not None:
        return special(buf, depth)
    if message in list_wrappers():
        return [_scalar(v, w, "string") for _, w, v in iter_fields(buf)]
    table = compiled().get(message)
    if table is None:
        raise ProtobufDecodeError(f"no schema for message {message}")
    out: dict[str, Any] = {}
    for number, wtype, value in iter_fields(buf):
        field = table.get(number)
        if field is None:
            continue  # a field newer than the schema: skipped, as proto readers do
        name, typ, label = field.name, field.type, field.label
        is_message = "." in typ
        if label == "repeated":
            items = out.get(name)
            if items is None:
                items = out[name] = []
            if is_message:
                items.append(_decode(_need_bytes(value, wtype, name), typ, depth + 1))
            elif wtype == LENGTH and typ in _PACKABLE:
                items.extend(_packed(value, typ))
            else:
                items.append(_scalar(value, wtype, typ))
        elif label == "map":
            key, item = _map_entry(_need_bytes(value, wtype, name), typ, depth)
            entries = out.get(name)
            if entries is None:
                entries = out[name] = {}
            entries[key] = item
        elif label == "inline":
            inner = _decode(_need_bytes(value, wtype, name), typ, depth + 1)
            out.update(inner)
        elif is_message:
            out[name] = _decode(_need_bytes(value, wtype, name), typ, depth + 1)
        else:
            decoded = _scalar(value, wtype, typ)
            if label == "value" and decoded in _ZERO_VALUES:
                out.pop(name, None)
            else:
                out[name] = decoded
    return out


def _need_bytes(value: int | bytes, wtype: int, name: str) -> bytes:
    if wtype != LENGTH:
        raise ProtobufDecodeError(f"field {name}: expected a length-delimited value, got wire type {wtype}")
    return value  # type: ignore[return-value]


def _scalar(value: int | bytes, wtype: int, typ: str) -> Any:
    """One scalar in its JSON form (bytes as base64, as encoding/json does)."""
    if typ == "string":
        if wtype != LENGTH:
            raise ProtobufDecodeError(f"string with wire type {wtype}")
        return value.decode("utf-8")  # type: ignore[union-attr]
    if typ == "bytes":
        if wtype != LENGTH:
            raise ProtobufDecodeError(f"bytes with wire type {wtype}")
        return base64.b64encode(value).decode("ascii")  # type: ignore[arg-type]
    if wtype == LENGTH:
        raise ProtobufDecodeError(f"{typ} with a length-delimited value")
    v: int = value  # type: ignore[assignment]
    if typ == "bool":
        return v != 0
    if typ in ("int64", "sfixed64"):
        return v - (1 << 64) if v >= (1 << 63) else v
    if typ in ("int32", "sfixed32"):
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v >= (1 << 31) else v
    if typ == "double":
        return double_from_bits(v)
    if typ == "float":
        return float_from_bits(v)
    if typ in ("sint32", "sint64"):
        return (v >> 1) ^ -(v & 1)
    return v  # uint32, uint64, fixed32, fixed64


def _packed(buf: bytes, typ: str) -> list[Any]:
    """Elements of a packed repeated scalar field."""
    out: list[Any] = []
    pos, end = 0, len(buf)
    while pos < end:
        if typ in ("double", "fixed64", "sfixed64"):
            out.append(_scalar(int.from_bytes(buf[pos:pos + 8], "little"), FIXED64, typ))
            pos += 8
        elif typ in ("float", "fixed32", "sfixed32"):
            out.append(_scalar(int.from_bytes(buf[pos:pos + 4], "little"), FIXED32, typ))
            pos += 4
        else:
            value, pos = read_varint(buf, pos)
            out.append(_scalar(value, VARINT, typ))
    if pos != end:
        raise WireError("truncated packed field")
    return out


def _map_entry(buf: bytes, value_type: str, depth: int) -> tuple[str, Any]:
    """(key, value) of a map<string, X> entry; a missing value is X's zero JSON form."""
    key = ""
    raw_value: int | bytes | None = None
    value_wtype = LENGTH
    for number, wtype, value in iter_fields(buf):
        if number == 1:
            key = _scalar(value, wtype, "string")
        elif number == 2:
            raw_value, value_wtype = value, wtype
    if "." in value_type:
        data = b"" if raw_value is None else _need_bytes(raw_value, value_wtype, key)
        return key, _decode(data, value_type, depth + 1)
    if raw_value is None:
        return key, "" if value_type in ("string", "bytes") else 0
    return key, _scalar(raw_value, value_wtype, value_type)


# ---------------------------------------------------------------- special messages

def _sub(buf: bytes) -> dict[int, int | bytes]:
    return {number: value for number, _, value in iter_fields(buf)}


def _seconds_nanos(buf: bytes) -> tuple[int, int]:
    f = _sub(buf)
    seconds = f.get(1, 0)
    nanos = f.get(2, 0)
    if not isinstance(seconds, int) or not isinstance(nanos, int):
        raise ProtobufDecodeError("malformed timestamp")
    return (seconds - (1 << 64) if seconds >= (1 << 63) else seconds), (nanos & 0xFFFFFFFF)


def _time(buf: bytes, depth: int) -> str | None:
    """metav1.Time: a zero Time travels as an empty message and is JSON null."""
    if not buf:
        return None
    seconds, _ = _seconds_nanos(buf)
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_time(buf: bytes, depth: int) -> str | None:
    if not buf:
        return None
    seconds, nanos = _seconds_nanos(buf)
    stamp = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _duration(buf: bytes, depth: int) -> str:
    nanos = _sub(buf).get(1, 0)
    if not isinstance(nanos, int):
        raise ProtobufDecodeError("malformed duration")
    return format_duration(nanos - (1 << 64) if nanos >= (1 << 63) else nanos)


def _quantity(buf: bytes, depth: int) -> str:
    value = _sub(buf).get(1, b"0")
    if not isinstance(value, bytes):
        raise ProtobufDecodeError("malformed quantity")
    return value.decode("utf-8") or "0"


def _int_or_string(buf: bytes, depth: int) -> int | str:
    f = _sub(buf)
    if f.get(1, 0) == 1:
        value = f.get(3, b"")
        if not isinstance(value, bytes):
            raise ProtobufDecodeError("malformed IntOrString")
        return value.decode("utf-8")
    number = f.get(2, 0)
    if not isinstance(number, int):
        raise ProtobufDecodeError("malformed IntOrString")
    number &= 0xFFFFFFFF
    return number - (1 << 32) if number >= (1 << 31) else number


def _raw_json(buf: bytes, depth: int) -> Any:
    """RawExtension / FieldsV1: the raw bytes are JSON (or, nested, a protobuf object)."""
    raw = _sub(buf).get(1, b"")
    if not isinstance(raw, bytes):
        raise ProtobufDecodeError("malformed raw extension")
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return _decode_object(raw, depth + 1)
    return orjson.loads(raw)


_SPECIAL = {
    TIME: _time,
    MICRO_TIME: _micro_time,
    DURATION: _duration,
    QUANTITY: _quantity,
    INT_OR_STRING: _int_or_string,
    RAW_EXTENSION: _raw_json,
    FIELDS_V1: _raw_json,
}


def format_duration(nanos: int) -> str:
    """Go's ``time.Duration.String()``: ``1h30m0s``, ``1.5s``, ``300ms``, ``0s``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _frac(n, size) + unit
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _frac(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _frac(value: int, size: int) -> str:
    whole, frac = divmod(value, size)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
