"""A cache of upstream answers, like CoreDNS's ``cache`` plugin in front of ``forward``.

Pods ask for the same outside names over and over (every search-path miss of
``ndots:5`` included), so answers from the upstream are kept for their TTL:
positive answers for the smallest TTL of their records (at most
:data:`MAX_SUCCESS_TTL`), NXDOMAIN and NODATA for the SOA's negative TTL (at most
:data:`MAX_DENIAL_TTL`, RFC 2308). A hit is served with the TTLs counted down by
the time spent in the cache, as CoreDNS does. SERVFAIL, REFUSED, truncated and
TTL-0 answers are not kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

MAX_SUCCESS_TTL = 3600
MAX_DENIAL_TTL = 1800
DEFAULT_CAPACITY = 10_000

# (lower-case name, type, class, DNSSEC OK, checking disabled)
Key = tuple[str, int, int, bool, bool]


def cache_key(query: dns.message.Message) -> Key | None:
    """What makes two questions the same for the cache, or None if it has no single question."""
    if len(query.question) != 1:
        return None
    question = query.question[0]
    return (question.name.to_text().lower(), question.rdtype, question.rdclass,
            bool(query.ednsflags & dns.flags.DO), bool(query.flags & dns.flags.CD))


def cacheable_ttl(response: dns.message.Message) -> int:
    """How many seconds ``response`` may be kept (0: not at all)."""
    if response.flags & dns.flags.TC:
        return 0
    rcode = response.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return 0
    if rcode == dns.rcode.NOERROR and response.answer:
        ttls = [rrset.ttl for rrset in (*response.answer, *response.authority)]
        return min(min(ttls), MAX_SUCCESS_TTL)
    # NXDOMAIN or NODATA: the SOA in authority says for how long (RFC 2308 section 5).
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return min(rrset.ttl, rrset[0].minimum, MAX_DENIAL_TTL)
    return 0


class AnswerCache:
    """Upstream responses by question, bounded, oldest first out."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Key, tuple[float, float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: dns.message.Message) -> dns.message.Message | None:
        """The cached response for ``query`` (its ID, TTLs counted down), or None."""
        key = cache_key(query)
        entry = self._entries.get(key) if key is not None else None
        now = self.clock()
        if entry is None or entry[1] <= now:
            if entry is not None:
                del self._entries[key]  # type: ignore[arg-type]
            self.misses += 1
            return None
        stored_at, _expires, wire = entry
        self.hits += 1
        response = dns.message.from_wire(wire)
        response.id = query.id
        age = int(now - stored_at)
        if age:
            for section in (response.answer, response.authority, response.additional):
                for rrset in section:
                    rrset.ttl = max(0, rrset.ttl - age)
        return response

    def put(self, query: dns.message.Message, response: dns.message.Message) -> None:
        """Keep ``response`` for as long as :func:`cacheable_ttl` allows."""
        key = cache_key(query)
        ttl = cacheable_ttl(response)
        if key is None or ttl <= 0:
            return
        if key not in self._entries and len(self._entries) >= self.capacity:
            self._entries.popitem(last=False)
        now = self.clock()
        self._entries[key] = (now, now + ttl, response.to_wire())
        self._entries.move_to_end(key)
