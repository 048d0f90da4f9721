"""Kubernetes protobuf (``application/vnd.kubernetes.protobuf``) request bodies.

kubectl's typed clients send built-in objects as protobuf; :func:`decode_kubernetes_protobuf`
turns such a body into the same dict its JSON form would parse to.
"""

from kcore.apiserver.protobuf.decode import (
    CONTENT_TYPE,
    MAGIC,
    ProtobufDecodeError,
    decode_kubernetes_protobuf,
    decode_message,
)
from kcore.apiserver.protobuf.encode import (
    ProtobufEncodeError,
    encode_kubernetes_protobuf,
    encode_message,
)
from kcore.apiserver.protobuf.schema import message_for, proto_package

__all__ = [
    "CONTENT_TYPE",
    "MAGIC",
    "ProtobufDecodeError",
    "ProtobufEncodeError",
    "decode_kubernetes_protobuf",
    "decode_message",
    "encode_kubernetes_protobuf",
    "encode_message",
    "message_for",
    "proto_package",
]
