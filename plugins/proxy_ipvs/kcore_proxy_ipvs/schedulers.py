"""The eight IPVS schedulers, as the Linux kernel defines them, in pure Python.

Each scheduler is a small class with one method, ``schedule(servers, ...)``,
that picks one ``RealServer`` from a list (or returns None when none can take
a connection). The list carries the live numbers a scheduler looks at: the
weight and the active and inactive connection counts. Nothing here touches
the network, so every algorithm is unit-tested against its definition.

The algorithms follow ``net/netfilter/ipvs/ip_vs_<name>.c``:

``rr``   round robin: the next server after the last one picked, skipping
         servers of weight 0 (quiesced).
``wrr``  weighted round robin: LVS's gcd-based sequence; weights 4, 3, 2 give
         ``A A B A B C A B C`` and repeat.
``lc``   least connections: the smallest ``active * 256 + inactive``.
``wlc``  weighted least connections: the smallest ``overhead / weight``
         (``overhead = active * 256 + inactive``); the kernel's default.
``sh``   source hashing: a 256-bucket table, each server holding ``weight``
         consecutive buckets, indexed by a hash of the client address; the
         same client always lands on the same server while the set of servers
         is unchanged. Servers of weight 0 are left out of the table.
``dh``   destination hashing: the same idea keyed by the destination address
         (one bucket per server in turn); a bucket whose server has weight 0
         gives no server, as in the kernel.
``sed``  shortest expected delay: the smallest ``(active + 1) / weight``.
``nq``   never queue: an idle server (no active connection) at once, else as
         ``sed``.

Ties go to the first server in list order, as the kernel's strict ``>``
comparisons do. Comparisons are made in integers (``a/b < c/d`` as
``a*d < c*b``), never floats.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Protocol


@dataclass(slots=True)
class RealServer:
    """One backend of a virtual service, with the numbers schedulers read."""

    ip: str
    port: int
    weight: int = 1
    active: int = 0  # ActiveConn: established connections
    inactive: int = 0  # InActConn: connections in any other state

    @property
    def key(self) -> tuple[str, int]:
        return (self.ip, self.port)

    @property
    def available(self) -> bool:
        """Whether new connections may go here (weight 0 means quiesced)."""
        return self.weight > 0

    @property
    def overhead(self) -> int:
        """The kernel's ``ip_vs_dest_conn_overhead``: active * 256 + inactive."""
        return self.active * 256 + self.inactive


class Scheduler(Protocol):
    """What every IPVS scheduler offers."""

    name: str

    def schedule(
        self,
        servers: Sequence[RealServer],
        *,
        client_ip: str | None = None,
        dest_ip: str | None = None,
    ) -> RealServer | None:
        """Pick the server for one new connection, or None if none is available."""
        ...


def _fold(ip: str | None) -> int:
    """The address as the kernel folds it into 32 bits (IPv6: XOR of its words)."""
    if not ip:
        return 0
    addr = ipaddress.ip_address(ip)
    if addr.version == 4:
        return int(addr)
    packed = addr.packed
    return reduce(lambda acc, i: acc ^ int.from_bytes(packed[i : i + 4], "big"), range(0, 16, 4), 0)


def _hash_32(value: int, bits: int) -> int:
    """Linux's ``hash_32``: multiply by the 32-bit golden ratio, keep the top bits."""
    return ((value * 0x61C88647) & 0xFFFFFFFF) >> (32 - bits)


# ---------------------------------------------------------------------------
# Rotating schedulers (state: a cursor)
# ---------------------------------------------------------------------------


class RoundRobin:
    """``rr``: each available server in list order, in turn."""

    name = "rr"

    def __init__(self) -> None:
        self._last_key: tuple[str, int] | None = None
        self._last_index = -1
        self._lock = threading.Lock()

    def schedule(
        self,
        servers: Sequence[RealServer],
        *,
        client_ip: str | None = None,
        dest_ip: str | None = None,
    ) -> RealServer | None:
        n = len(servers)
        if not n:
            return None
        with self._lock:
            start = -1  # before the head
            if self._last_key is not None:
                for i, server in enumerate(servers):
                    if server.key == self._last_key:
                        start = i
                        break
                else:
                    # The last server left: its successor, now at its index, goes next.
                    start = min(self._last_index, n) - 1
            for step in range(1, n + 1):
                i = (start + step) % n
                if servers[i].available:
                    self._last_key, self._last_index = servers[i].key, i
                    return servers[i]
        return None


class WeightedRoundRobin:
    """``wrr``: the LVS sequence driven by the current weight ``cw``.

    ``cw`` starts at the largest weight (less gcd - 1); a pass over the list
    picks every server whose weight is at least ``cw``; after each pass ``cw``
    drops by the gcd of the weights, and wraps to the start value at 0.
    """

    name = "wrr"

    def __init__(self) -> None:
        self._signature: tuple[tuple[tuple[str, int], int], ...] | None = None
        self._index = -1  # the server picked last (-1: before the head)
        self._cw = 0
        self._mw = 0
        self._di = 1
        self._lock = threading.Lock()

    def _refresh(self, servers: Sequence[RealServer]) -> None:
        signature = tuple((s.key, s.weight) for s in servers)
        if signature == self._signature:
            return
        weights = [s.weight for s in servers if s.weight > 0]
        self._di = reduce(math.gcd, weights) if weights else 1
        self._mw = (max(weights) if weights else 0) - (self._di - 1)
        # ip_vs_wrr_dest_changed: keep the position, bring cw back into range.
        if self._signature is None or self._cw > self._mw or self._cw <= 0:
            self._cw = self._mw
        elif self._di > 1:
            self._cw = (self._cw // self._di) * self._di + 1
        if self._index >= len(servers):
            self._index = -1
        self._signature = signature

    def schedule(
        self,
        servers: Sequence[RealServer],
        *,
        client_ip: str | None = None,
        dest_ip: str | None = None,
    ) -> RealServer | None:
        n = len(servers)
        if not n:
            return None
        with self._lock:
            self._refresh(servers)
            if self._mw <= 0:
                return None
            i = self._index
            while True:
                i += 1
                if i == n:  # end of a pass: lower the bar
                    i = -1
                    self._cw -= self._di
                    if self._cw <= 0:
                        self._cw = self._mw
                    continue
                if servers[i].weight >= self._cw:
                    self._index = i
                    return servers[i]


# ---------------------------------------------------------------------------
# Least-connection family (stateless: the live counts decide)
# ---------------------------------------------------------------------------


def _least(
    servers: Sequence[RealServer],
    overhead: Callable[[RealServer], int],
    *,
    weighted: bool,
    idle_first: bool = False,
) -> RealServer | None:
    least: RealServer | None = None
    loh = 0
    for server in servers:
        if not server.available:
            continue
        doh = overhead(server)
        if idle_first and server.active == 0:
            return server
        if least is None:
            least, loh = server, doh
        elif weighted:
            # loh / least.weight > doh / server.weight, without division.
            if loh * server.weight > doh * least.weight:
                least, loh = server, doh
        elif doh < loh:
            least, loh = server, doh
    return least


def _conn_overhead(server: RealServer) -> int:
    return server.overhead


def _expected_delay(server: RealServer) -> int:
    return server.active + 1


class LeastConnection:
    """``lc``: the server with the smallest ``active * 256 + inactive``."""

    name = "lc"

    def schedule(self, servers: Sequence[RealServer], *, client_ip: str | None = None,
                 dest_ip: str | None = None) -> RealServer | None:
        return _least(servers, _conn_overhead, weighted=False)


class WeightedLeastConnection:
    """``wlc``: the server with the smallest ``(active * 256 + inactive) / weight``."""

    name = "wlc"

    def schedule(self, servers: Sequence[RealServer], *, client_ip: str | None = None,
                 dest_ip: str | None = None) -> RealServer | None:
        return _least(servers, _conn_overhead, weighted=True)


class ShortestExpectedDelay:
    """``sed``: the server with the smallest ``(active + 1) / weight``."""

    name = "sed"

    def schedule(self, servers: Sequence[RealServer], *, client_ip: str | None = None,
                 dest_ip: str | None = None) -> RealServer | None:
        return _least(servers, _expected_delay, weighted=True)


class NeverQueue:
    """``nq``: the first idle server (no active connection), else as ``sed``."""

    name = "nq"

    def schedule(self, servers: Sequence[RealServer], *, client_ip: str | None = None,
                 dest_ip: str | None = None) -> RealServer | None:
        return _least(servers, _expected_delay, weighted=True, idle_first=True)


# ---------------------------------------------------------------------------
# Hashing schedulers (state: a 256-bucket table rebuilt when servers change)
# ---------------------------------------------------------------------------

TABLE_BITS = 8
TABLE_SIZE = 1 << TABLE_BITS


class _HashTable:
    def __init__(self) -> None:
        self._signature: tuple[tuple[tuple[str, int], int], ...] | None = None
        self._buckets: list[int | None] = [None] * TABLE_SIZE  # indexes into servers
        self._lock = threading.Lock()

    def _assign(self, servers: Sequence[RealServer]) -> list[int | None]:
        raise NotImplementedError

    def buckets(self, servers: Sequence[RealServer]) -> list[int | None]:
        signature = tuple((s.key, s.weight) for s in servers)
        with self._lock:
            if signature != self._signature:
                self._buckets = self._assign(servers)
                self._signature = signature
            return self._buckets


class SourceHashing(_HashTable):
    """``sh``: a stable hash of the client address picks the bucket.

    Buckets are dealt out like ``ip_vs_sh_reassign``: each available server in
    list order takes ``weight`` consecutive buckets, round and round until all
    256 are taken, so a server of weight 2 gets twice the clients of weight 1.
    """

    name = "sh"

    def _assign(self, servers: Sequence[RealServer]) -> list[int | None]:
        usable = [i for i, s in enumerate(servers) if s.available]
        if not usable:
            return [None] * TABLE_SIZE
        table: list[int | None] = []
        pos = count = 0
        for _ in range(TABLE_SIZE):
            index = usable[pos]
            table.append(index)
            count += 1
            if count >= servers[index].weight:
                pos, count = (pos + 1) % len(usable), 0
        return table

    @staticmethod
    def bucket_of(client_ip: str | None, port: int = 0) -> int:
        """``ip_vs_sh_hashkey``: hash_32(port + folded address, 8)."""
        return _hash_32((port + _fold(client_ip)) & 0xFFFFFFFF, TABLE_BITS) % TABLE_SIZE

    def schedule(
        self,
        servers: Sequence[RealServer],
        *,
        client_ip: str | None = None,
        dest_ip: str | None = None,
    ) -> RealServer | None:
        index = self.buckets(servers)[self.bucket_of(client_ip)]
        return None if index is None else servers[index]


class DestinationHashing(_HashTable):
    """``dh``: a hash of the destination address picks the bucket.

    Buckets go to the servers in list order, one each, round and round
    (``ip_vs_dh_reassign``); a bucket whose server has weight 0 yields None.
    """

    name = "dh"

    def _assign(self, servers: Sequence[RealServer]) -> list[int | None]:
        if not servers:
            return [None] * TABLE_SIZE
        return [i % len(servers) for i in range(TABLE_SIZE)]

    @staticmethod
    def bucket_of(dest_ip: str | None) -> int:
        """``ip_vs_dh_hashkey``: (folded address * 2654435761) & 255."""
        return (_fold(dest_ip) * 2654435761) & (TABLE_SIZE - 1)

    def schedule(
        self,
        servers: Sequence[RealServer],
        *,
        client_ip: str | None = None,
        dest_ip: str | None = None,
    ) -> RealServer | None:
        index = self.buckets(servers)[self.bucket_of(dest_ip)]
        if index is None or not servers[index].available:
            return None
        return servers[index]


SCHEDULERS: dict[str, Callable[[], Scheduler]] = {
    "rr": RoundRobin,
    "wrr": WeightedRoundRobin,
    "lc": LeastConnection,
    "wlc": WeightedLeastConnection,
    "sh": SourceHashing,
    "dh": DestinationHashing,
    "sed": ShortestExpectedDelay,
    "nq": NeverQueue,
}


class UnknownSchedulerError(ValueError):
    """A scheduler name that is not one of the eight IPVS schedulers."""


def check_scheduler_name(name: object) -> str:
    """Return ``name`` if it names an IPVS scheduler, else raise with the choices."""
    if not isinstance(name, str) or name not in SCHEDULERS:
        raise UnknownSchedulerError(
            f"unknown IPVS scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}"
        )
    return name


def make_scheduler(name: str) -> Scheduler:
    """A fresh scheduler (with its own cursor or table) for one virtual service."""
    return SCHEDULERS[check_scheduler_name(name)]()
