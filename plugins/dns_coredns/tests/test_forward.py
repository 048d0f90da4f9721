"""Names outside the cluster: forwarding to an upstream with a timeout, and the answer cache.

The upstream is a small dnspython server on 127.0.0.1 that counts what reaches it,
or a silent socket that never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from kcore_dns_coredns import AnswerCache, DnsServer, DnsStartError, build_server
from kcore_dns_coredns.cache import MAX_SUCCESS_TTL, cacheable_ttl

ZONE = {  # name -> (ttl, address)
    "www.example.test.": (60, "192.0.2.1"),
    "short.example.test.": (1, "192.0.2.2"),
    "db.example.test.": (60, "192.0.2.7"),
}
NEGATIVE_SOA = dns.rrset.from_text("example.test.", 300, "IN", "SOA",
                                   "ns.example.test. admin.example.test. 1 7200 1800 86400 30")


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers ZONE's A records (NXDOMAIN with an SOA otherwise); ``silent`` drops everything."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.seen: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        self.seen.append(f"{question.name.to_text().lower()} {dns.rdatatype.to_text(question.rdtype)}")
        if self.silent:
            return
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        entry = ZONE.get(question.name.to_text().lower())
        if entry is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(NEGATIVE_SOA)
        elif question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, entry[0], "IN", "A", entry[1]))
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def upstream(silent: bool = False) -> AsyncIterator[tuple[FakeUpstream, str]]:
    """A fake upstream on 127.0.0.1; yields it and its ``ip:port``."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: FakeUpstream(silent),
                                                              local_addr=("127.0.0.1", 0))
    try:
        yield protocol, f"127.0.0.1:{transport.get_extra_info('sockname')[1]}"
    finally:
        transport.close()


@contextlib.asynccontextmanager
async def dns_server(*upstreams: str, **settings: Any) -> AsyncIterator[DnsServer]:
    server = await build_server({"bind_address": "127.0.0.1", "port": 0, "upstream": list(upstreams),
                                 **settings}).start()
    try:
        yield server
    finally:
        await server.stop()


async def ask(server: DnsServer, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=5)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=5)


def records(response: dns.message.Message) -> list[str]:
    return [f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} {rd}" for rrset in response.answer for rd in rrset]


async def test_forwarded_answer_is_cached_within_its_ttl() -> None:
    async with upstream() as (fake, address), dns_server(address) as server:
        first = await ask(server, "www.example.test")
        assert (first.rcode(), records(first)) == (dns.rcode.NOERROR, ["www.example.test. A 192.0.2.1"])
        assert first.answer[0].ttl == 60
        second = await ask(server, "WWW.example.test")  # names are case-insensitive
        over_tcp = await ask(server, "www.example.test", tcp=True)
        assert records(second) == records(over_tcp) == ["www.example.test. A 192.0.2.1"]
        assert 0 < second.answer[0].ttl <= 60
        assert fake.seen == ["www.example.test. A"]  # the second and third came from the cache
        # Another type of the same name is another question.
        assert (await ask(server, "www.example.test", "AAAA")).rcode() == dns.rcode.NOERROR
        assert fake.seen == ["www.example.test. A", "www.example.test. AAAA"]
        assert server.forwarder.cache is not None and server.forwarder.cache.hits == 2


async def test_cached_answer_expires_with_its_ttl() -> None:
    async with upstream() as (fake, address), dns_server(address) as server:
        await ask(server, "short.example.test")
        await ask(server, "short.example.test")
        assert fake.seen == ["short.example.test. A"]
        await asyncio.sleep(1.1)
        assert records(await ask(server, "short.example.test")) == ["short.example.test. A 192.0.2.2"]
        assert fake.seen == ["short.example.test. A"] * 2


async def test_nxdomain_is_cached_for_the_soa_minimum() -> None:
    async with upstream() as (fake, address), dns_server(address) as server:
        for _ in range(3):
            response = await ask(server, "missing.example.test")
            assert response.rcode() == dns.rcode.NXDOMAIN
            assert [r.rdtype for r in response.authority] == [dns.rdatatype.SOA]
        assert fake.seen == ["missing.example.test. A"]


async def test_without_cache_every_question_goes_upstream() -> None:
    async with upstream() as (fake, address), dns_server(address, cache=False) as server:
        await ask(server, "www.example.test")
        await ask(server, "www.example.test")
        assert fake.seen == ["www.example.test. A"] * 2
        assert server.forwarder.cache is None


async def test_silent_upstream_times_out_with_servfail() -> None:
    async with upstream(silent=True) as (fake, address), dns_server(address, forward_timeout=0.3) as server:
        start = time.monotonic()
        response = await ask(server, "www.example.test")
        took = time.monotonic() - start
        assert response.rcode() == dns.rcode.SERVFAIL
        assert 0.25 <= took < 2.0, took
        assert fake.seen == ["www.example.test. A"]  # it was asked, it did not answer
        # SERVFAIL is not cached: the next question is forwarded again.
        assert (await ask(server, "www.example.test", tcp=True)).rcode() == dns.rcode.SERVFAIL
        assert fake.seen == ["www.example.test. A"] * 2


async def test_next_upstream_answers_after_the_first_times_out() -> None:
    async with upstream(silent=True) as (silent, dead), upstream() as (alive, good), \
            dns_server(dead, good, forward_timeout=0.2) as server:
        response = await ask(server, "www.example.test")
        assert records(response) == ["www.example.test. A 192.0.2.1"]
        assert silent.seen == alive.seen == ["www.example.test. A"]


async def test_external_name_target_resolved_upstream() -> None:
    async with upstream() as (fake, address), dns_server(address) as server:
        server.view.on_service({"metadata": {"name": "ext", "namespace": "default"},
                                "spec": {"type": "ExternalName", "externalName": "db.example.test"}})
        for tcp in (False, True):
            response = await ask(server, "ext.default.svc.cluster.local", tcp=tcp)
            assert response.rcode() == dns.rcode.NOERROR
            assert records(response) == ["ext.default.svc.cluster.local. CNAME db.example.test.",
                                         "db.example.test. A 192.0.2.7"]
        assert fake.seen == ["db.example.test. A"]  # the target's answer came from the cache the second time
        # Asked for the CNAME itself, the target is not chased.
        cname = await ask(server, "ext.default.svc.cluster.local", "CNAME")
        assert records(cname) == ["ext.default.svc.cluster.local. CNAME db.example.test."]


async def test_forward_timeout_must_be_positive() -> None:
    with pytest.raises(DnsStartError, match="forward_timeout"):
        build_server({"bind_address": "127.0.0.1", "port": 0, "forward_timeout": 0})


# ---- the cache alone, on a fake clock --------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answered(name: str, ttl: int, rcode: int = dns.rcode.NOERROR) -> tuple[dns.message.Message, dns.message.Message]:
    query = dns.message.make_query(name, "A")
    response = dns.message.make_response(query)
    response.set_rcode(rcode)
    if rcode == dns.rcode.NOERROR:
        response.answer.append(dns.rrset.from_text(name, ttl, "IN", "A", "192.0.2.1"))
    return query, response


def test_cache_counts_ttls_down_and_expires() -> None:
    clock = Clock()
    cache = AnswerCache(clock=clock)
    query, response = answered("a.example.", 10)
    cache.put(query, response)
    clock.now += 4
    again = dns.message.make_query("A.example.", "A")
    hit = cache.get(again)
    assert hit is not None and hit.id == again.id and hit.answer[0].ttl == 6
    clock.now += 6
    assert cache.get(again) is None and len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_keeps_only_what_may_be_kept() -> None:
    assert cacheable_ttl(answered("a.example.", 0)[1]) == 0
    assert cacheable_ttl(answered("a.example.", 10**6)[1]) == MAX_SUCCESS_TTL
    assert cacheable_ttl(answered("a.example.", 10, dns.rcode.SERVFAIL)[1]) == 0
    assert cacheable_ttl(answered("a.example.", 10, dns.rcode.NXDOMAIN)[1]) == 0  # no SOA: no negative TTL
    truncated = answered("a.example.", 10)[1]
    truncated.flags |= dns.flags.TC
    assert cacheable_ttl(truncated) == 0


def test_cache_capacity_drops_the_oldest() -> None:
    cache = AnswerCache(capacity=2, clock=Clock())
    for name in ("a.example.", "b.example.", "c.example."):
        cache.put(*answered(name, 10))
    assert len(cache) == 2
    assert cache.get(dns.message.make_query("a.example.", "A")) is None
    assert cache.get(dns.message.make_query("c.example.", "A")) is not None


def test_an_upstream_that_is_this_server_is_dropped() -> None:
    from kcore_dns_coredns.plugin import without_self

    upstreams = [("127.0.0.1", 5300), ("10.96.0.10", 53), ("192.0.2.53", 53), ("127.0.0.53", 53)]
    assert without_self(upstreams, "127.0.0.1", 5300, "10.96.0.10") == [("192.0.2.53", 53), ("127.0.0.53", 53)]
    assert without_self([("127.0.0.53", 53)], "0.0.0.0", 53, None) == []  # every local address is us
    assert without_self([("127.0.0.53", 53)], "192.168.1.5", 53, None) == [("127.0.0.53", 53)]
