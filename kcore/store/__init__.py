"""kcore.store: the revisioned key-value store contract.

Backends (``memory``, ``sqlite``, third-party ones) are entry points in group
``kcore.store`` and are imported only when selected, so this package exports the
contract alone.
"""

from kcore.store.contract import (
    CompactedError,
    ConflictError,
    EventType,
    FutureRevisionError,
    InvalidContinueError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    Store,
    StoreError,
    WatchEvent,
    decode_continue,
    encode_continue,
)

__all__ = [
    "CompactedError",
    "ConflictError",
    "EventType",
    "FutureRevisionError",
    "InvalidContinueError",
    "KeyExistsError",
    "KeyNotFoundError",
    "KeyValue",
    "ListResult",
    "Store",
    "StoreError",
    "WatchEvent",
    "decode_continue",
    "encode_continue",
]
