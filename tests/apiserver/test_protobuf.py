"""Kubernetes protobuf request bodies: wire primitives, schema, decoder, and real kubectl.

The decoder must turn what kubectl's typed clients send (``application/vnd.kubernetes
.protobuf``) into exactly the JSON form. Three kinds of evidence: round trips through
kcore's own encoder, bodies captured from the real kubectl 1.32 (kept as fixtures under
data/protobuf/ so those checks also run where kubectl is absent), and a live capture
against a tiny discovery-only server when kubectl is installed.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import random
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from aiohttp import web

from kcore.api.registry import KindRegistry, builtin_registry
from kcore.apiserver import discovery
from kcore.apiserver.protobuf import (
    CONTENT_TYPE,
    MAGIC,
    ProtobufDecodeError,
    decode_kubernetes_protobuf,
    decode_message,
    encode_kubernetes_protobuf,
    encode_message,
    message_for,
    proto_package,
)
from kcore.apiserver.protobuf.decode import format_duration
from kcore.apiserver.protobuf.encode import parse_duration
from kcore.apiserver.protobuf.schema import load_messages
from kcore.apiserver.protobuf.wire import (
    WireError,
    encode_length_delimited,
    encode_tag,
    encode_varint,
    iter_fields,
    read_varint,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).with_name("data") / "protobuf"
KUBECTL = "/usr/bin/kubectl"
REFRESH = os.environ.get("KCORE_REFRESH_PROTO_FIXTURES") == "1"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ---------------------------------------------------------------- wire primitives

@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31 - 1, 2**63 - 1, 2**64 - 1])
def test_varint_round_trip(value: int) -> None:
    raw = encode_varint(value)
    assert read_varint(raw, 0) == (value, len(raw))


def test_negative_numbers_are_ten_byte_varints() -> None:
    raw = encode_varint(-1)
    assert len(raw) == 10
    assert read_varint(raw, 0)[0] == 2**64 - 1


def test_iter_fields_reads_every_wire_type() -> None:
    raw = (encode_tag(1, 0) + encode_varint(150) + encode_length_delimited(2, b"hi")
           + encode_tag(3, 1) + (7).to_bytes(8, "little") + encode_tag(4, 5) + (9).to_bytes(4, "little"))
    assert list(iter_fields(raw)) == [(1, 0, 150), (2, 2, b"hi"), (3, 1, 7), (4, 5, 9)]


@pytest.mark.parametrize("raw", [b"\x08", b"\x12\x05ab", b"\x0b", b"\xff" * 11, b"\x19\x00"])
def test_iter_fields_rejects_malformed_bytes(raw: bytes) -> None:
    with pytest.raises(WireError):
        list(iter_fields(raw))


# ---------------------------------------------------------------- schema

def test_schema_knows_the_wire_contract() -> None:
    msgs = load_messages()
    meta = {f.name: f for f in msgs["k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"]}
    assert (meta["name"].number, meta["labels"].number, meta["managedFields"].number) == (1, 11, 17)
    assert meta["labels"].label == "map" and meta["labels"].type == "string"
    assert meta["deletionGracePeriodSeconds"].label == "optional"  # a pointer: zero is kept
    assert meta["generation"].label == "value"  # a Go value: zero is omitted
    pod_spec = {f.name: f for f in msgs["k8s.io.api.core.v1.PodSpec"]}
    assert pod_spec["restartPolicy"].number == 3
    assert pod_spec["containers"].type == "k8s.io.api.core.v1.Container"
    secret = {f.name: f for f in msgs["k8s.io.api.core.v1.Secret"]}
    assert (secret["data"].number, secret["data"].type, secret["data"].label) == (2, "bytes", "map")
    volume = {f.name: f for f in msgs["k8s.io.api.core.v1.Volume"]}
    assert volume["volumeSource"].label == "inline"
    every_type = {f.type for fields in msgs.values() for f in fields}
    assert {t for t in every_type if "." in t} <= set(msgs)  # no dangling references


@pytest.mark.parametrize(("api_version", "kind", "message"), [
    ("v1", "Pod", "k8s.io.api.core.v1.Pod"),
    ("apps/v1", "Deployment", "k8s.io.api.apps.v1.Deployment"),
    ("batch/v1", "CronJob", "k8s.io.api.batch.v1.CronJob"),
    ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "k8s.io.api.autoscaling.v2.HorizontalPodAutoscaler"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "k8s.io.api.rbac.v1.ClusterRole"),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", "k8s.io.api.authorization.v1.SelfSubjectAccessReview"),
    ("policy/v1", "Eviction", "k8s.io.api.policy.v1.Eviction"),
    ("storage.k8s.io/v1", "StorageClass", "k8s.io.api.storage.v1.StorageClass"),
    ("coordination.k8s.io/v1", "Lease", "k8s.io.api.coordination.v1.Lease"),
    ("discovery.k8s.io/v1", "EndpointSlice", "k8s.io.api.discovery.v1.EndpointSlice"),
    ("meta.k8s.io/v1", "DeleteOptions", "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
    ("v1", "DeleteOptions", "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
    ("apps/v1", "DeleteOptions", "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
])
def test_message_lookup(api_version: str, kind: str, message: str) -> None:
    assert message_for(api_version, kind) == message


def test_message_lookup_unknown() -> None:
    assert message_for("example.com/v1", "Widget") is None
    assert message_for("v1", "NoSuchKind") is None
    assert proto_package("rbac.authorization.k8s.io/v1") == "k8s.io.api.rbac.v1"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_proto_schema", ROOT / "scripts/gen_proto_schema.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shape(label: str) -> str:
    return label if label in ("repeated", "map", "inline") else "single"


def test_proto_text_parser_agrees_with_committed_schema() -> None:
    """.proto text (read from the Kubernetes repository) gives the same wire facts.

    The excerpts may be older than kubectl 1.32, so the schema may have more fields;
    every field number they share must agree on name, type and shape.
    """
    gen = _load_generator()
    committed = load_messages()
    shared = 0
    for path in sorted(DATA.glob("*.proto")):
        package, messages = gen.parse_proto_text(path.read_text())
        assert messages, path
        for name, rows in messages.items():
            assert name.startswith(package + "."), name
            known = {f.number: (f.name, f.type, _shape(f.label)) for f in committed[name]}
            for number, json_name, typ, label in rows:
                assert known[number] == (json_name, typ, _shape(label)), f"{name} field {number}"
                shared += 1
    assert shared >= 60


def test_proto_text_parser_handles_maps_comments_and_references() -> None:
    gen = _load_generator()
    package, messages = gen.parse_proto_text("""
        syntax = "proto2";
        // a comment with message Fake { optional string x = 9; }
        package k8s.io.api.demo.v1;
        import "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto";
        message Thing {
          /* block */ optional k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta metadata = 1;
          map<string, bytes> data = 2;
          repeated Part parts = 3;
          optional int32 count = 4;
        }
        message Part { optional string name = 1; }
    """)
    assert package == "k8s.io.api.demo.v1"
    assert messages["k8s.io.api.demo.v1.Thing"] == [
        [1, "metadata", "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", "optional"],
        [2, "data", "bytes", "map"],
        [3, "parts", "k8s.io.api.demo.v1.Part", "repeated"],
        [4, "count", "int32", "optional"],
    ]
    assert "k8s.io.api.demo.v1.Fake" not in messages


# ---------------------------------------------------------------- round trips

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web", "namespace": "prod", "labels": {"app": "web", "tier": "front"},
        "annotations": {"deployment.kubernetes.io/revision": "3"},
        "creationTimestamp": "2024-05-01T12:30:45Z", "generation": 4, "uid": "5f1c",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Thing", "name": "o", "uid": "u", "controller": True}],
    },
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}]},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
        "revisionHistoryLimit": 10,
        "template": {
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
            "spec": {
                "containers": [{
                    "name": "nginx", "image": "nginx:1.27", "command": ["nginx"], "args": ["-g", "daemon off;"],
                    "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
                    "env": [{"name": "MODE", "value": "prod"},
                            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "s", "key": "p", "optional": True}}}],
                    "envFrom": [{"configMapRef": {"name": "cm"}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                                       "initialDelaySeconds": 5, "periodSeconds": 10},
                    "livenessProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 3},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                    "securityContext": {"runAsUser": 0, "runAsNonRoot": False,
                                        "capabilities": {"add": ["NET_ADMIN"]}},
                }],
                "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "pvc"}},
                    {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "a.txt"}],
                                                  "defaultMode": 420}},
                    {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                    "weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                                       "topologyKey": "kubernetes.io/hostname"}}]}},
            },
        },
    },
    "status": {"replicas": 3, "readyReplicas": 2,
               "conditions": [{"type": "Available", "status": "True",
                               "lastUpdateTime": "2024-05-01T12:31:00Z", "lastTransitionTime": "2024-05-01T12:31:00Z",
                               "reason": "MinimumReplicasAvailable", "message": "ok"}]},
}

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "default", "creationTimestamp": "2023-12-31T23:59:59Z",
                 "deletionTimestamp": "2024-01-01T00:00:30Z", "deletionGracePeriodSeconds": 0,
                 "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                                    "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                                    "fieldsV1": {"f:spec": {"f:containers": {}}}}]},
    "spec": {
        "containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi", "nvidia.com/gpu": "1"},
                                      "limits": {"memory": "1.5Gi"}},
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
                        "startupProbe": {"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 0}}],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
        "activeDeadlineSeconds": 600,
        "dnsPolicy": "ClusterFirst",
        "priority": -5,
        "securityContext": {"fsGroup": 2000, "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
        "overhead": {"cpu": "10m"},
        "volumes": [{"name": "proj", "projected": {"sources": [
            {"secret": {"name": "s", "items": [{"key": "k", "path": "k"}]}},
            {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}}],
    },
    "status": {"phase": "Running", "startTime": "2024-01-01T00:00:01Z", "podIP": "10.0.0.5",
               "podIPs": [{"ip": "10.0.0.5"}],
               "containerStatuses": [{"name": "c", "ready": True, "restartCount": 2, "image": "busybox",
                                      "imageID": "sha", "started": True,
                                      "state": {"running": {"startedAt": "2024-01-01T00:00:02Z"}},
                                      "lastState": {"terminated": {"exitCode": -1, "reason": "Error",
                                                                   "finishedAt": "2024-01-01T00:00:01Z"}}}]},
}

SERVICE = {
    "apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "svc", "labels": {"app": "web"}},
    "spec": {"type": "NodePort", "selector": {"app": "web"}, "sessionAffinity": "None",
             "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
                       {"name": "admin", "port": 9000, "targetPort": "admin"}],
             "clusterIPs": ["10.96.0.10"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
}

SECRET = {
    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
    "metadata": {"name": "s", "namespace": "default"},
    "data": {"password": _b64("s3cr3t"), "empty": "", "bin": base64.b64encode(bytes(range(256))).decode()},
    "stringData": {"extra": "plain"},
    "immutable": True,
}

CONFIGMAP = {
    "apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "cm", "namespace": "default"},
    "data": {"a": "b", "config.yaml": "x: 1\ny: [2, 3]\n", "unicode": "héllo ✓"},
    "binaryData": {"blob": _b64("\x00\x01")},
}

SSAR = {
    "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
    "metadata": {"creationTimestamp": None},
    "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods",
                                    "fieldSelector": {"requirements": [{"key": "spec.nodeName", "operator": "In",
                                                                        "values": ["n1"]}]}}},
    "status": {"allowed": True, "reason": "rbac"},
}

OTHERS: list[dict[str, Any]] = [
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
     "spec": {"schedule": "*/5 * * * *", "suspend": False, "successfulJobsHistoryLimit": 0,
              "jobTemplate": {"metadata": {"creationTimestamp": None}, "spec": {
                  "backoffLimit": 6, "completions": 1, "parallelism": 1, "ttlSecondsAfterFinished": 100,
                  "template": {"metadata": {"creationTimestamp": None},
                               "spec": {"restartPolicy": "OnFailure",
                                        "containers": [{"name": "j", "image": "busybox"}]}}}}}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
     "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"},
                  {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]},
    {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p", "namespace": "default"},
     "deleteOptions": {"gracePeriodSeconds": 0, "propagationPolicy": "Background", "dryRun": ["All"],
                       "preconditions": {"uid": "abc"}}},
    {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 30, "propagationPolicy": "Foreground"},
    {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
     "spec": {"replicas": 5}, "status": {"replicas": 3, "selector": "app=web"}},
    {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
     "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
              "renewTime": "2024-02-03T04:05:06.123456Z", "acquireTime": "2024-02-03T04:05:00.000001Z"}},
    {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
     "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
              "minReplicas": 1, "maxReplicas": 5,
              "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                  "type": "Utilization", "averageUtilization": 80}}}]}},
    {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "es"},
     "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True},
                                           "nodeName": "n1"}],
     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
    {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast"},
     "provisioner": "kcore.io/hostpath", "parameters": {"type": "ssd"}, "reclaimPolicy": "Delete",
     "allowVolumeExpansion": True, "volumeBindingMode": "WaitForFirstConsumer"},
    {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "count": 2, "type": "Normal",
     "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Pulled",
     "eventTime": "2024-01-01T00:00:00.500000Z", "firstTimestamp": "2024-01-01T00:00:00Z"},
]


@pytest.mark.parametrize("obj", [DEPLOYMENT, POD, SERVICE, SECRET, CONFIGMAP, SSAR, *OTHERS],
                         ids=lambda o: o["kind"])
def test_round_trip(obj: dict[str, Any]) -> None:
    body = encode_kubernetes_protobuf(obj)
    assert body.startswith(MAGIC)
    assert decode_kubernetes_protobuf(body) == obj


def test_special_types_decode_to_their_json_forms() -> None:
    out = decode_kubernetes_protobuf(encode_kubernetes_protobuf(POD))
    assert out["metadata"]["creationTimestamp"] == "2023-12-31T23:59:59Z"
    assert out["metadata"]["deletionGracePeriodSeconds"] == 0  # pointer: zero kept
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:containers": {}}}
    assert out["spec"]["containers"][0]["resources"]["limits"] == {"memory": "1.5Gi"}
    assert out["spec"]["priority"] == -5
    assert out["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == -1
    svc = decode_kubernetes_protobuf(encode_kubernetes_protobuf(SERVICE))
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == [8080, "admin"]
    lease = decode_kubernetes_protobuf(encode_kubernetes_protobuf(OTHERS[5]))
    assert lease["spec"]["renewTime"] == "2024-02-03T04:05:06.123456Z"


def test_inline_structs_flatten_into_parent() -> None:
    out = decode_kubernetes_protobuf(encode_kubernetes_protobuf(DEPLOYMENT))
    spec = out["spec"]["template"]["spec"]
    assert spec["volumes"][1] == {"name": "cfg", "configMap": {"name": "cm", "items": [{"key": "a", "path": "a.txt"}],
                                                               "defaultMode": 420}}
    container = spec["containers"][0]
    assert container["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "s"
    assert container["readinessProbe"]["httpGet"]["port"] == "http"


def test_value_fields_at_zero_are_omitted_but_pointers_kept() -> None:
    msg = "k8s.io.api.core.v1.ContainerPort"
    raw = encode_message({"name": "", "containerPort": 80, "hostPort": 0}, msg)
    assert decode_message(raw, msg) == {"containerPort": 80}
    raw = encode_message({"replicas": 0, "paused": False, "minReadySeconds": 0}, "k8s.io.api.apps.v1.DeploymentSpec")
    assert decode_message(raw, "k8s.io.api.apps.v1.DeploymentSpec") == {"replicas": 0}


def test_secret_bytes_are_base64() -> None:
    out = decode_kubernetes_protobuf(encode_kubernetes_protobuf(SECRET))
    assert out["data"]["password"] == _b64("s3cr3t")
    assert base64.b64decode(out["data"]["bin"]) == bytes(range(256))
    assert out["data"]["empty"] == ""


def test_unknown_fields_are_skipped_and_packed_scalars_read() -> None:
    msg = "k8s.io.api.core.v1.ContainerPort"
    raw = (encode_length_delimited(1, b"http") + encode_tag(99, 0) + encode_varint(7)
           + encode_length_delimited(98, b"junk") + encode_tag(3, 0) + encode_varint(8080))
    assert decode_message(raw, msg) == {"name": "http", "containerPort": 8080}
    # a packed repeated int64 (proto3 style) still decodes
    packed = encode_length_delimited(1, encode_varint(1) + encode_varint(2) + encode_varint(2**64 - 3))
    field_msg = "k8s.io.api.core.v1.PodSecurityContext"
    numbers = {f.name: f.number for f in load_messages()[field_msg]}
    assert numbers["supplementalGroups"] == 4
    raw = encode_tag(4, 2) + packed[1:]
    assert decode_message(raw, field_msg) == {"supplementalGroups": [1, 2, -3]}


def test_nested_raw_extension_json_and_protobuf() -> None:
    msg = "k8s.io.apimachinery.pkg.runtime.RawExtension"
    assert decode_message(encode_message({"a": [1, "x"]}, msg), msg) == {"a": [1, "x"]}
    pod = encode_kubernetes_protobuf({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "in"}})
    raw = encode_length_delimited(1, pod)
    assert decode_message(raw, msg) == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "in"}}


@pytest.mark.parametrize(("nanos", "text"), [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (300_000_000, "300ms"), (1_500_000_000, "1.5s"),
    (90 * 60 * 10**9, "1h30m0s"), (3_723_000_000_000, "1h2m3s"), (-2 * 60 * 10**9, "-2m0s"),
])
def test_duration_strings_match_go(nanos: int, text: str) -> None:
    assert format_duration(nanos) == text
    assert parse_duration(text) == nanos


@pytest.mark.parametrize(("body", "needle"), [
    (b"", "magic"),
    (b'{"kind":"Pod"}', "magic"),
    (MAGIC + b"\xff\xff", "malformed"),
    (MAGIC + encode_length_delimited(2, b"\x08\x01"), "no kind"),
    (MAGIC + encode_length_delimited(1, encode_length_delimited(1, b"example.com/v1")
                                     + encode_length_delimited(2, b"Widget")), "no protobuf schema"),
    (MAGIC + encode_length_delimited(1, encode_length_delimited(1, b"v1") + encode_length_delimited(2, b"Pod"))
     + encode_length_delimited(2, b"\x0a\x05abc"), "malformed"),
    (MAGIC + encode_length_delimited(1, encode_length_delimited(1, b"v1") + encode_length_delimited(2, b"Pod"))
     + encode_length_delimited(2, b"\x08\x01"), "expected a length-delimited"),
    (MAGIC + encode_length_delimited(1, encode_length_delimited(1, b"v1") + encode_length_delimited(2, b"Pod"))
     + encode_length_delimited(2, b"") + encode_length_delimited(3, b"gzip"), "contentEncoding"),
])
def test_garbage_is_a_decode_error(body: bytes, needle: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=needle):
        decode_kubernetes_protobuf(body)


def test_decode_error_is_a_value_error_with_message() -> None:
    with pytest.raises(ValueError) as info:
        decode_kubernetes_protobuf(b"nope")
    assert str(info.value)


def test_deeply_nested_raw_extensions_are_rejected() -> None:
    """ControllerRevision.data may hold another protobuf object; nesting is bounded."""
    obj: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "revision": 1}
    body = encode_kubernetes_protobuf(obj)
    inner = decode_kubernetes_protobuf(encode_kubernetes_protobuf({**obj, "data": {"x": 1}}))
    assert inner["data"] == {"x": 1}
    revision = {f.name: f.number for f in load_messages()["k8s.io.api.apps.v1.ControllerRevision"]}
    for _ in range(100):
        wrapped = encode_length_delimited(revision["data"], encode_length_delimited(1, body))
        envelope = encode_length_delimited(1, encode_length_delimited(1, b"apps/v1")
                                           + encode_length_delimited(2, b"ControllerRevision"))
        body = MAGIC + envelope + encode_length_delimited(2, wrapped)
    with pytest.raises(ProtobufDecodeError, match="nested too deeply"):
        decode_kubernetes_protobuf(body)


def test_mutated_bodies_fail_only_with_decode_errors() -> None:
    """Corrupted bodies (bit flips, cuts, insertions) never escape as other exceptions."""
    rng = random.Random(20240501)
    seeds = [encode_kubernetes_protobuf(DEPLOYMENT), encode_kubernetes_protobuf(POD),
             *(p.read_bytes() for p in sorted(DATA.glob("*.pb")))]
    for _ in range(3000):
        body = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(MAGIC), len(body))
            roll = rng.random()
            if roll < 0.5:
                body[at] = rng.randrange(256)
            elif roll < 0.8:
                del body[at:at + rng.randint(1, 5)]
            else:
                body[at:at] = rng.randbytes(3)
        try:
            decode_kubernetes_protobuf(bytes(body))
        except ProtobufDecodeError:
            pass


# ---------------------------------------------------------------- real kubectl bodies

@dataclass(frozen=True)
class Capture:
    """A kubectl command, the fixture its body is stored in, and what the body must decode to."""

    name: str
    args: tuple[str, ...]
    path: str
    expected: dict[str, Any]
    dry_run: bool = True  # kubectl can print the same object as JSON with --dry-run=client


CAPTURES = [
    Capture("deployment", ("create", "deployment", "web", "--image=nginx", "--replicas=2"),
            "/apis/apps/v1/namespaces/default/deployments",
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                            "resources": {}}]}},
                      "strategy": {}},
             "status": {}}),
    Capture("configmap", ("create", "configmap", "cm", "--from-literal=a=b"),
            "/api/v1/namespaces/default/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "creationTimestamp": None},
             "data": {"a": "b"}}),
    Capture("secret", ("create", "secret", "generic", "s", "--from-literal=k=v"),
            "/api/v1/namespaces/default/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "creationTimestamp": None},
             "data": {"k": _b64("v")}}),
    Capture("namespace", ("create", "namespace", "ns1"), "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns1", "creationTimestamp": None},
             "spec": {}, "status": {}}),
    Capture("selfsubjectaccessreview", ("auth", "can-i", "list", "pods"),
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
             "metadata": {"creationTimestamp": None},
             "spec": {"resourceAttributes": {"namespace": "default", "verb": "list", "resource": "pods"}},
             "status": {}},
            dry_run=False),
    Capture("service", ("create", "service", "clusterip", "my-svc", "--tcp=80:8080"),
            "/api/v1/namespaces/default/services",
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": "my-svc", "creationTimestamp": None, "labels": {"app": "my-svc"}},
             "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                      "selector": {"app": "my-svc"}, "type": "ClusterIP"},
             "status": {"loadBalancer": {}}}),
    Capture("job", ("create", "job", "j", "--image=busybox", "--", "echo", "hi"),
            "/apis/batch/v1/namespaces/default/jobs",
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "creationTimestamp": None},
             "spec": {"template": {"metadata": {"creationTimestamp": None},
                                   "spec": {"containers": [{"name": "j", "image": "busybox",
                                                            "command": ["echo", "hi"], "resources": {}}],
                                            "restartPolicy": "Never"}}},
             "status": {}}),
    Capture("cronjob", ("create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *"),
            "/apis/batch/v1/namespaces/default/cronjobs",
            {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "creationTimestamp": None},
             "spec": {"schedule": "*/5 * * * *", "jobTemplate": {
                 "metadata": {"name": "cj", "creationTimestamp": None},
                 "spec": {"template": {"metadata": {"creationTimestamp": None},
                                       "spec": {"containers": [{"name": "cj", "image": "busybox", "resources": {}}],
                                                "restartPolicy": "OnFailure"}}}}},
             "status": {}}),
    Capture("role", ("create", "role", "r", "--verb=get,list", "--resource=pods,deployments.apps"),
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
             "metadata": {"name": "r", "creationTimestamp": None},
             "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
                       {"verbs": ["get", "list"], "apiGroups": ["apps"], "resources": ["deployments"]}]}),
    Capture("serviceaccount", ("create", "serviceaccount", "sa"), "/api/v1/namespaces/default/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "creationTimestamp": None}}),
    Capture("tokenrequest", ("create", "token", "sa", "--duration=10m", "--audience=api"),
            "/api/v1/namespaces/default/serviceaccounts/sa/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "metadata": {"creationTimestamp": None},
             "spec": {"audiences": ["api"], "expirationSeconds": 600}, "status": {"expirationTimestamp": None}},
            dry_run=False),
    Capture("poddisruptionbudget", ("create", "pdb", "pdb", "--selector=app=x", "--min-available=50%"),
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
             "metadata": {"name": "pdb", "creationTimestamp": None},
             "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "x"}}}, "status": {}}),
    Capture("quota", ("create", "quota", "q", "--hard=cpu=1,memory=1G,pods=2"),
            "/api/v1/namespaces/default/resourcequotas",
            {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "creationTimestamp": None},
             "spec": {"hard": {"cpu": "1", "memory": "1G", "pods": "2"}}, "status": {}}),
    Capture("rolebinding", ("create", "rolebinding", "rb", "--clusterrole=view", "--user=alice"),
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": "rb", "creationTimestamp": None},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
             "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]}),
]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: c.name)
def test_kubectl_fixture_decodes(capture: Capture) -> None:
    """Bodies kubectl 1.32 really sent (captured once, see test_kubectl_live_capture)."""
    body = (DATA / f"{capture.name}.pb").read_bytes()
    assert body.startswith(MAGIC)
    assert decode_kubernetes_protobuf(body) == capture.expected


@dataclass
class CaptureServer:
    registry: KindRegistry
    bodies: list[tuple[str, str, bytes]] = field(default_factory=list)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers={"Content-Type": "application/json"})


def _capture_app(state: CaptureServer) -> web.Application:
    reg = state.registry

    async def handle(request: web.Request) -> web.Response:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if request.method == "POST":
            raw = await request.read()
            state.bodies.append((path, request.headers.get("Content-Type", ""), raw))
            try:
                obj = decode_kubernetes_protobuf(raw)
            except ProtobufDecodeError:
                obj = orjson.loads(raw) if raw[:1] == b"{" else {"metadata": {}}
            if obj.get("kind") == "SelfSubjectAccessReview":
                obj["status"] = {"allowed": True}
            if obj.get("kind") == "TokenRequest":
                obj["status"] = {"token": "t0k3n", "expirationTimestamp": "2030-01-01T00:00:00Z"}
            obj.setdefault("metadata", {})["namespace"] = obj.get("metadata", {}).get("namespace") or "default"
            return _json(obj, 201)
        if path == "/version":
            return _json(discovery.version_info())
        if path == "/api":
            return _json(discovery.api_versions(request.host))
        if path == "/apis":
            return _json(discovery.api_group_list(reg))
        if parts[:1] == ["api"] and len(parts) == 2:
            body = discovery.api_resource_list(reg, "", parts[1])
            return _json(body) if body else _json({"kind": "Status", "code": 404}, 404)
        if parts[:1] == ["apis"] and len(parts) == 3:
            body = discovery.api_resource_list(reg, parts[1], parts[2])
            return _json(body) if body else _json({"kind": "Status", "code": 404}, 404)
        return _json({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                      "code": 404, "message": "not found"}, 404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture(scope="module")
def capture_server() -> Iterator[tuple[CaptureServer, str]]:
    with serve_capture() as served:
        yield served


@contextmanager
def serve_capture() -> Iterator[tuple[CaptureServer, str]]:
    """A discovery-only server on 127.0.0.1 that records POST bodies (plain http, loopback)."""
    state = CaptureServer(builtin_registry())
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_capture_app(state), access_log=None)
    started = threading.Event()
    ports: list[int] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield state, f"http://127.0.0.1:{ports[0]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _run_kubectl(url: str, tmp_path: Path, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: t\n  cluster:\n    server: {url}\n"
        "contexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n    namespace: default\n"
        "current-context: t\nusers:\n- name: u\n  user: {}\n"
    )
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"), *args],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda c: c.name)
def test_kubectl_live_capture(capture_server: tuple[CaptureServer, str], tmp_path: Path, capture: Capture) -> None:
    """Run the real kubectl against the capture server and decode the body it POSTs."""
    state, url = capture_server
    state.bodies.clear()
    proc = _run_kubectl(url, tmp_path, capture.args)
    assert proc.returncode == 0, f"kubectl {' '.join(capture.args)}:\n{proc.stdout}\n{proc.stderr}"
    posts = [b for b in state.bodies if b[0] == capture.path]
    assert len(posts) == 1, state.bodies
    _, content_type, raw = posts[0]
    assert content_type.split(";")[0] == CONTENT_TYPE
    assert decode_kubernetes_protobuf(raw) == capture.expected
    if capture.name == "selfsubjectaccessreview":
        assert proc.stdout.strip() == "yes"
    if capture.name == "tokenrequest":
        assert proc.stdout.strip() == "t0k3n"
    if REFRESH:
        (DATA / f"{capture.name}.pb").write_bytes(raw)


@pytest.mark.parametrize("capture", [c for c in CAPTURES if c.dry_run], ids=lambda c: c.name)
def test_decoded_body_equals_kubectls_own_json(capture_server: tuple[CaptureServer, str], tmp_path: Path,
                                               capture: Capture) -> None:
    """kubectl's ``--dry-run=client -o json`` is the JSON form of the very object it sends.

    The one permitted difference: Go value fields without ``omitempty`` (such as a
    PodDisruptionBudget's status counters) print as 0 in JSON but are omitted by the
    decoder, which cannot tell them from ``omitempty`` ones.
    """
    _, url = capture_server
    args = list(capture.args)
    cut = args.index("--") if "--" in args else len(args)
    args[cut:cut] = ["--dry-run=client", "-o", "json"]
    proc = _run_kubectl(url, tmp_path, tuple(args))
    assert proc.returncode == 0, proc.stderr
    printed = orjson.loads(proc.stdout)
    decoded = decode_kubernetes_protobuf((DATA / f"{capture.name}.pb").read_bytes())
    if capture.name == "poddisruptionbudget":
        assert printed != decoded
        printed = _omit_zero_scalars(printed)
    assert decoded == printed


def _omit_zero_scalars(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _omit_zero_scalars(v) for k, v in obj.items()
                if not (isinstance(v, (int, str)) and v in (0, "", False))}
    if isinstance(obj, list):
        return [_omit_zero_scalars(v) for v in obj]
    return obj
