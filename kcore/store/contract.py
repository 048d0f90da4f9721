"""The store contract: what every backend (memory, sqlite, later etcd) promises.

The API server is the only component that talks to a store. Everything it needs
from one is here: a single global revision, compare-and-swap writes, consistent
paginated lists and ordered, gap-free, resumable watches. Values are opaque bytes
(the API server stores validated JSON) so a backend never parses objects.

The conformance suite in ``tests/store/`` runs every promise below against every
installed backend.
"""

from __future__ import annotations

import abc
import base64
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson


class StoreError(Exception):
    """Base class of every error a store raises on purpose."""


class KeyExistsError(StoreError):
    """``create`` found the key already present."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} already exists")
        self.key = key


class KeyNotFoundError(StoreError):
    """``update`` or ``delete`` found no such key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} not found")
        self.key = key


class ConflictError(StoreError):
    """The key's modification revision is not the one the caller expected.

    ``current`` holds the key's present value (or None when it was deleted), so a
    caller can retry without another read.
    """

    def __init__(self, key: str, expected: int, current: KeyValue | None) -> None:
        actual = current.mod_revision if current else None
        super().__init__(f"key {key!r}: expected revision {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.current = current


class CompactedError(StoreError):
    """The requested revision is older than the compaction point.

    The API server turns this into 410 Gone (``Expired``).
    """

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted (oldest available is {compacted})"
        )
        self.requested = requested
        self.compacted = compacted


class FutureRevisionError(StoreError):
    """A list or watch asked for a revision the store has not reached yet."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than the current revision {current}")
        self.requested = requested
        self.current = current


class InvalidContinueError(StoreError):
    """A continue token that this store did not produce (or that was tampered with)."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One version of one key."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int


class EventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change, in global revision order.

    ``kv`` is the new version (for DELETED: the deleted value, with
    ``mod_revision`` set to the deletion's revision); ``prev_kv`` the version
    before the change (None for ADDED).
    """

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None
    revision: int


@dataclass(frozen=True, slots=True)
class ListResult:
    """One page of a list, all read at ``revision``.

    ``continue_token`` is None on the last page; otherwise passing it back to
    ``Store.list`` returns the next page at the same revision.
    ``remaining`` counts the keys after this page (at ``revision``), if known.
    """

    items: list[KeyValue]
    revision: int
    continue_token: str | None = None
    remaining: int | None = None


def encode_continue(revision: int, last_key: str) -> str:
    """Opaque, URL-safe token: the list's revision and the last key returned."""
    raw = orjson.dumps({"rv": revision, "start": last_key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    """Inverse of :func:`encode_continue`; raises InvalidContinueError on garbage."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        revision, last_key = data["rv"], data["start"]
        if not isinstance(revision, int) or not isinstance(last_key, str) or revision < 0:
            raise ValueError("bad fields")
        return revision, last_key
    except Exception as exc:  # noqa: BLE001 - any decoding problem means the same thing
        raise InvalidContinueError(f"invalid continue token: {exc}") from exc


class Store(abc.ABC):
    """A revisioned key-value store with watch.

    Keys are ``/``-separated strings (e.g. ``/registry/pods/default/web-1``).
    Every successful write (create, update, delete) advances the single global
    revision by exactly one and returns it. A write is acknowledged (the
    coroutine returns) only once it is durable for durable backends.
    """

    @abc.abstractmethod
    async def create(self, key: str, value: bytes) -> int:
        """Store ``value`` under ``key`` if absent; return the new revision.

        Raises KeyExistsError if the key is present.
        """

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> int:
        """Replace ``key``'s value if its mod revision is ``expected_mod_revision``.

        Returns the new revision. Raises KeyNotFoundError if absent, ConflictError
        if the revision differs.
        """

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int | None = None) -> int:
        """Delete ``key`` (guarded by ``expected_mod_revision`` when given).

        Returns the revision of the deletion. Raises KeyNotFoundError or
        ConflictError.
        """

    @abc.abstractmethod
    async def get(self, key: str) -> KeyValue | None:
        """The current version of ``key``, or None."""

    @abc.abstractmethod
    async def list(
        self,
        prefix: str,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        revision: int = 0,
    ) -> ListResult:
        """Keys under ``prefix`` in key order, as of one revision.

        ``revision`` 0 means the current revision; otherwise the list is read at
        that revision (CompactedError if it was compacted, FutureRevisionError if
        it is ahead). ``limit`` 0 means no limit. With ``continue_token`` the list
        resumes after the token's last key at the token's revision (``revision``
        is then ignored).
        """

    @abc.abstractmethod
    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[WatchEvent]:
        """Every change under ``prefix`` with revision > ``from_revision``, in order.

        Historic events still in the store are replayed first, then live ones
        follow, with no gap and no duplicate. Raises CompactedError (when the
        iteration starts) if ``from_revision`` is older than the compaction point.
        The iterator ends only when the consumer stops it or the store closes.
        """

    @abc.abstractmethod
    async def current_revision(self) -> int:
        """The revision of the latest write (0 for an empty store)."""

    @abc.abstractmethod
    async def compacted_revision(self) -> int:
        """The oldest revision that lists and watches may still ask for."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget history at or below ``revision`` (current values are kept)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release resources; pending watches end."""

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
