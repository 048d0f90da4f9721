#!/usr/bin/env python3
"""Derive kcore/apiserver/protobuf/schema.json from the Kubernetes protobuf IDL.

Two sources give the same table (message full name -> [number, json_name, type, label]):

* ``--kubectl BINARY`` (preferred): kubectl embeds every ``generated.proto`` as a
  gzipped ``FileDescriptorProto`` (gogo-protobuf registration). Those descriptors are
  the exact wire contract of that client build and also carry the gogo options that
  say which Go fields are values rather than pointers (``nullable=false``) and which
  are embedded -- facts the .proto text does not show, needed to reproduce the JSON
  form (``omitempty`` drops zero values only of value fields; inline structs such as
  ``Volume.volumeSource`` flatten into their parent).
* ``--proto FILE...``: ``generated.proto`` text from k8s.io/api and
  k8s.io/apimachinery. Field numbers, names and types come out identical; value-ness
  is approximated (strings are values, other scalars pointers) and inline fields come
  from :data:`KNOWN_INLINE`.

Labels: ``optional`` (pointer: a zero value is kept), ``value`` (Go value field: zero
is omitted as JSON ``omitempty`` would), ``repeated``, ``map`` (type is the value
type; keys are always strings), ``inline`` (embedded struct, fields merge into parent).

Usage::

    python scripts/gen_proto_schema.py --kubectl /usr/lib/google-cloud-sdk/bin/kubectl.1.32
    python scripts/gen_proto_schema.py --proto /tmp/k8s-proto/*.proto --out /tmp/schema.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kcore.apiserver.protobuf.wire import iter_fields  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "kcore/apiserver/protobuf/schema.json"

# Proto packages kcore decodes (request bodies kubectl's typed clients send).
PACKAGES = (
    "k8s.io.api.core.v1",
    "k8s.io.api.apps.v1",
    "k8s.io.api.batch.v1",
    "k8s.io.api.autoscaling.v1",
    "k8s.io.api.autoscaling.v2",
    "k8s.io.api.storage.v1",
    "k8s.io.api.coordination.v1",
    "k8s.io.api.discovery.v1",
    "k8s.io.api.rbac.v1",
    "k8s.io.api.authorization.v1",
    "k8s.io.api.authentication.v1",
    "k8s.io.api.policy.v1",
    "k8s.io.api.networking.v1",
    "k8s.io.api.events.v1",
    "k8s.io.api.scheduling.v1",
    "k8s.io.api.node.v1",
    "k8s.io.api.certificates.v1",
    "k8s.io.api.admissionregistration.v1",
    "k8s.io.apimachinery.pkg.apis.meta.v1",
    "k8s.io.apimachinery.pkg.runtime",
    "k8s.io.apimachinery.pkg.runtime.schema",
    "k8s.io.apimachinery.pkg.api.resource",
    "k8s.io.apimachinery.pkg.util.intstr",
)

# Embedded Go structs tagged json:",inline": their fields appear in the parent's JSON.
# Neither the .proto text nor the descriptors mark them (gogo's customname only says
# "embedded", and ObjectMeta or Affinity look the same), so they are listed here and the
# descriptor path checks each is indeed an embedded field of that type.
KNOWN_INLINE = frozenset({
    ("k8s.io.api.core.v1.Volume", "volumeSource"),
    ("k8s.io.api.core.v1.PersistentVolumeSpec", "persistentVolumeSource"),
    ("k8s.io.api.core.v1.Probe", "handler"),
    ("k8s.io.api.core.v1.EphemeralContainer", "ephemeralContainerCommon"),
    ("k8s.io.api.core.v1.ConfigMapEnvSource", "localObjectReference"),
    ("k8s.io.api.core.v1.ConfigMapKeySelector", "localObjectReference"),
    ("k8s.io.api.core.v1.ConfigMapProjection", "localObjectReference"),
    ("k8s.io.api.core.v1.ConfigMapVolumeSource", "localObjectReference"),
    ("k8s.io.api.core.v1.SecretEnvSource", "localObjectReference"),
    ("k8s.io.api.core.v1.SecretKeySelector", "localObjectReference"),
    ("k8s.io.api.core.v1.SecretProjection", "localObjectReference"),
    ("k8s.io.api.admissionregistration.v1.NamedRuleWithOperations", "ruleWithOperations"),
    ("k8s.io.api.admissionregistration.v1.RuleWithOperations", "rule"),
    ("k8s.io.api.networking.v1.IngressRule", "ingressRuleValue"),
    ("k8s.io.apimachinery.pkg.runtime.Unknown", "typeMeta"),
})

# FieldDescriptorProto.Type numbers -> proto scalar names (11 is a message).
_SCALARS = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64",
    7: "fixed32", 8: "bool", 9: "string", 12: "bytes", 13: "uint32",
    15: "sfixed32", 16: "sfixed64", 17: "sint32", 18: "sint64",
}
SCALAR_NAMES = frozenset(_SCALARS.values())
_GOGO_NULLABLE = 65001
_GOGO_CUSTOMNAME = 65004
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"


# ---------------------------------------------------------------- descriptors

def _one(fields: list[tuple[int, int, Any]], number: int, default: Any = None) -> Any:
    for num, _, value in fields:
        if num == number:
            return value
    return default


def _all(fields: list[tuple[int, int, Any]], number: int) -> list[Any]:
    return [value for num, _, value in fields if num == number]


def descriptors_in_binary(blob: bytes) -> list[bytes]:
    """Every gzipped FileDescriptorProto for a ``generated.proto`` found in a Go binary."""
    found: list[bytes] = []
    pos = blob.find(_GZIP_HEADER)
    while pos >= 0:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(blob[pos:pos + 4_000_000])
        except zlib.error:
            raw = b""
        if raw[:1] == b"\n" and b"generated.proto" in raw[:120]:
            found.append(raw)
        pos = blob.find(_GZIP_HEADER, pos + 1)
    return found


def schema_from_descriptor(raw: bytes) -> tuple[str, dict[str, list[list[Any]]]]:
    """(package, messages) of one FileDescriptorProto, with exact nullability and inlining."""
    fd = list(iter_fields(raw))
    package = _one(fd, 2, b"").decode()
    messages: dict[str, list[list[Any]]] = {}
    for msg_raw in _all(fd, 4):
        msg = list(iter_fields(msg_raw))
        full = f"{package}.{_one(msg, 1).decode()}"
        entries = {}
        for nested_raw in _all(msg, 3):
            nested = list(iter_fields(nested_raw))
            opts = list(iter_fields(_one(nested, 7, b"")))
            if _one(opts, 7, 0):
                kv = {}
                for entry_field in _all(nested, 2):
                    parsed = list(iter_fields(entry_field))
                    kv[_one(parsed, 3)] = parsed
                entries[f"{full}.{_one(nested, 1).decode()}"] = (kv[1], kv[2])
        rows = []
        for field_raw in _all(msg, 2):
            f = list(iter_fields(field_raw))
            name = _one(f, 10, _one(f, 1)).decode()
            number = _one(f, 3)
            repeated = _one(f, 4) == 3
            ftype, type_name = _one(f, 5), _one(f, 6, b"").decode().lstrip(".")
            opts = list(iter_fields(_one(f, 8, b"")))
            nullable = _one(opts, _GOGO_NULLABLE, 1) != 0
            customname = _one(opts, _GOGO_CUSTOMNAME, b"").decode()
            if type_name in entries:
                key, value = entries[type_name]
                if _one(key, 5) != 9:
                    raise ValueError(f"{full}.{name}: map key is not a string")
                vtype = _one(value, 6, b"").decode().lstrip(".") or _SCALARS[_one(value, 5)]
                rows.append([number, name, vtype, "map"])
                continue
            typ = type_name if ftype == 11 else _SCALARS[ftype]
            if repeated:
                label = "repeated"
            elif (full, name) in KNOWN_INLINE:
                if customname != type_name.rsplit(".", 1)[-1]:
                    raise ValueError(f"{full}.{name} is listed as inline but is not embedded")
                label = "inline"
            else:
                label = "optional" if nullable else "value"
            rows.append([number, name, typ, label])
        messages[full] = sorted(rows)
    return package, messages


# ---------------------------------------------------------------- .proto text

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_TOKEN = re.compile(r"map\s*<\s*[\w.]+\s*,\s*[\w.]+\s*>|[\w.]+|[{}=;<>,\[\]()\"']")
_FIELD = re.compile(
    r"^(?:(optional|repeated|required)\s+([\w.]+)|map\s*<\s*([\w.]+)\s*,\s*([\w.]+)\s*>)"
    r"\s+(\w+)\s*=\s*(\d+)"
)


def parse_proto_text(text: str) -> tuple[str, dict[str, list[list[Any]]]]:
    """(package, messages) of a Kubernetes ``generated.proto`` (proto2, flat messages).

    Type references are resolved to full names: a dotted name is already qualified
    (``k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta``), a bare one is in this package.
    """
    body = _COMMENT.sub("", text)
    pkg = re.search(r"^\s*package\s+([\w.]+)\s*;", body, re.M)
    package = pkg.group(1) if pkg else ""
    messages: dict[str, list[list[Any]]] = {}
    stack: list[str] = []
    depth = 0
    for statement in re.split(r"(?<=[;{}])", body):
        line = " ".join(statement.split())
        if not line:
            continue
        head = re.match(r"^(message|enum|oneof|service)\s+(\w+)\s*\{", line)
        if head:
            depth += 1
            if head.group(1) == "message":
                parent = stack[-1] if stack else package
                stack.append(f"{parent}.{head.group(2)}")
                messages[stack[-1]] = []
            else:
                stack.append("")
            continue
        if line.endswith("}"):
            if depth:
                depth -= 1
                stack.pop()
            continue
        if not stack or not stack[-1]:
            continue
        m = _FIELD.match(line)
        if not m:
            continue
        label, typ, key, value, name, number = m.groups()
        owner = stack[-1]
        if key is not None:
            if key != "string":
                raise ValueError(f"{owner}.{name}: map key {key} is not a string")
            rows_type, rows_label = _qualify(value, package), "map"
        else:
            rows_type = _qualify(typ, package)
            if label == "repeated":
                rows_label = "repeated"
            elif (owner, name) in KNOWN_INLINE:
                rows_label = "inline"
            elif rows_type == "string":
                rows_label = "value"
            else:
                rows_label = "optional"
        messages[owner].append([int(number), name, rows_type, rows_label])
    return package, {k: sorted(v) for k, v in messages.items()}


def _qualify(typ: str, package: str) -> str:
    if typ in SCALAR_NAMES or "." in typ:
        return typ
    return f"{package}.{typ}"


# ---------------------------------------------------------------- assembly

def build_schema(per_file: list[tuple[str, dict[str, list[list[Any]]]]],
                 packages: tuple[str, ...] = PACKAGES) -> dict[str, list[list[Any]]]:
    """Merge the wanted packages and check every referenced message is present."""
    messages: dict[str, list[list[Any]]] = {}
    for package, msgs in per_file:
        if package in packages:
            messages.update(msgs)
    missing = sorted({row[2] for rows in messages.values() for row in rows
                      if row[2] not in SCALAR_NAMES and row[2] not in messages})
    if missing:
        raise ValueError(f"referenced messages not in the schema: {missing}")
    return dict(sorted(messages.items()))


def dump_schema(messages: dict[str, list[list[Any]]], source: str) -> str:
    """One message per line, so regenerations diff readably."""
    lines = ['{"source": ' + json.dumps(source) + ',', ' "messages": {']
    items = list(messages.items())
    for i, (name, rows) in enumerate(items):
        sep = "," if i < len(items) - 1 else ""
        lines.append(f"  {json.dumps(name)}: {json.dumps(rows, separators=(',', ':'))}{sep}")
    lines.append(" }}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--kubectl", type=Path, help="a kubectl binary with embedded descriptors")
    src.add_argument("--proto", type=Path, nargs="+", help="generated.proto files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.kubectl:
        per_file = [schema_from_descriptor(raw) for raw in descriptors_in_binary(args.kubectl.read_bytes())]
        source = (f"Kubernetes generated.proto IDL (Apache-2.0), from the descriptors embedded "
                  f"in {args.kubectl.name}")
    else:
        per_file = [parse_proto_text(p.read_text()) for p in args.proto]
        source = "Kubernetes generated.proto IDL (Apache-2.0), parsed from .proto text"
    try:
        messages = build_schema(per_file)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(dump_schema(messages, source))
    print(f"wrote {len(messages)} messages to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
