"""Endpoint choice for the userspace proxy: round-robin with ClientIP affinity.

Pure logic, no sockets: a ``Balancer`` holds one service port's endpoints, a
round-robin cursor and a table of client IP -> (endpoint, last used). The
clock is injectable so affinity expiry is tested without waiting.

``candidates(client_ip)`` returns every endpoint in the order to try: the
client's sticky endpoint (affinity on and not expired) or the next one in
rotation first, then the others in rotation order, so a caller that finds the
first refusing connections falls through to the rest. ``connected()`` records
which one answered (that is what the client sticks to); ``failed()`` drops a
sticky entry that points at an endpoint which refused; ``released()`` (a
connection ended) is a no-op here: round-robin does not count connections,
but other choosers behind the same interface do (the ipvs mode's ``lc``).

This mirrors kube-proxy's userspace ``LoadBalancerRR``: affinity is refreshed
on every use and expires ``timeout`` seconds after the last one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)

DEFAULT_AFFINITY_TIMEOUT = 10800.0  # Kubernetes' default (3 hours)


@dataclass(slots=True)
class _Sticky(Generic[T]):
    endpoint: T
    last_used: float


class Balancer(Generic[T]):
    """Round-robin over endpoints, optionally sticky per client IP."""

    def __init__(
        self,
        endpoints: Iterable[T] = (),
        *,
        affinity: bool = False,
        affinity_timeout: float = DEFAULT_AFFINITY_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._endpoints: tuple[T, ...] = ()
        self._next = 0
        self._sticky: dict[str, _Sticky[T]] = {}
        self._last_prune = clock()
        self.affinity = affinity
        self.affinity_timeout = float(affinity_timeout)
        self.update(endpoints, affinity=affinity, affinity_timeout=affinity_timeout)

    # -- configuration -----------------------------------------------------

    @property
    def endpoints(self) -> tuple[T, ...]:
        return self._endpoints

    def update(
        self,
        endpoints: Iterable[T],
        *,
        affinity: bool | None = None,
        affinity_timeout: float | None = None,
    ) -> None:
        """Replace the endpoint list in place, keeping what still applies.

        The rotation keeps its position when the list is unchanged; sticky
        entries for endpoints that are gone are dropped; turning affinity off
        forgets every client.
        """
        new = tuple(dict.fromkeys(endpoints))  # dedupe, keep order
        if new != self._endpoints:
            kept = set(new)
            self._sticky = {c: s for c, s in self._sticky.items() if s.endpoint in kept}
            self._next = self._next % len(new) if new else 0
            self._endpoints = new
        if affinity is not None:
            if not affinity:
                self._sticky.clear()
            self.affinity = affinity
        if affinity_timeout is not None:
            self.affinity_timeout = float(affinity_timeout)

    # -- choosing ----------------------------------------------------------

    def candidates(self, client_ip: str | None = None) -> list[T]:
        """All endpoints, in the order a new connection from ``client_ip`` tries them."""
        eps = self._endpoints
        if not eps:
            return []
        now = self._clock()
        self._maybe_prune(now)
        start: int | None = None
        if self.affinity and client_ip is not None:
            sticky = self._sticky.get(client_ip)
            if sticky is not None:
                if now - sticky.last_used <= self.affinity_timeout:
                    try:
                        start = eps.index(sticky.endpoint)
                    except ValueError:  # pragma: no cover - update() prunes these
                        start = None
                    else:
                        sticky.last_used = now
                if start is None:
                    del self._sticky[client_ip]
        if start is None:
            start = self._next % len(eps)
            self._next = (start + 1) % len(eps)
        return list(eps[start:] + eps[:start])

    def pick(self, client_ip: str | None = None) -> T | None:
        """The first candidate, recorded as connected (for callers that cannot retry)."""
        order = self.candidates(client_ip)
        if not order:
            return None
        self.connected(client_ip, order[0])
        return order[0]

    def connected(self, client_ip: str | None, endpoint: T) -> None:
        """``client_ip`` reached ``endpoint``: stick to it (when affinity is on)."""
        if self.affinity and client_ip is not None and endpoint in self._endpoints:
            self._sticky[client_ip] = _Sticky(endpoint, self._clock())

    def failed(self, client_ip: str | None, endpoint: T) -> None:
        """``endpoint`` refused ``client_ip``: forget a sticky entry pointing at it."""
        if client_ip is None:
            return
        sticky = self._sticky.get(client_ip)
        if sticky is not None and sticky.endpoint == endpoint:
            del self._sticky[client_ip]

    def released(self, endpoint: T) -> None:
        """A connection to ``endpoint`` ended (round-robin keeps no counts)."""

    def sticky_endpoint(self, client_ip: str) -> T | None:
        """The endpoint ``client_ip`` currently sticks to, if not expired (no side effects)."""
        sticky = self._sticky.get(client_ip)
        if sticky is None or self._clock() - sticky.last_used > self.affinity_timeout:
            return None
        return sticky.endpoint

    def _maybe_prune(self, now: float) -> None:
        # Expired entries are dropped lazily, at most once per timeout period
        # (and at least once a minute), so the table cannot grow without bound.
        if not self._sticky or now - self._last_prune < min(self.affinity_timeout, 60.0):
            return
        self._last_prune = now
        limit = self.affinity_timeout
        self._sticky = {c: s for c, s in self._sticky.items() if now - s.last_used <= limit}
