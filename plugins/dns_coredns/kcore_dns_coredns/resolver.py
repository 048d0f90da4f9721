"""Answering one query: authoritative for the cluster domain and the reverse zones, else forward.

:class:`Resolver` turns a query's wire bytes into a response's wire bytes without
any I/O, so it can be tested and benchmarked without sockets. A query it cannot
answer from the cluster view (a name outside the cluster domain, an unknown
reverse address) comes back as :data:`FORWARD`, and the server sends it upstream.

What a client sees, like CoreDNS's ``kubernetes`` plugin:

* a known name and type: NOERROR, the records, AA set, the configured TTL (5);
* a known name, another type: NODATA (NOERROR, no answer, the zone's SOA in
  authority), also for empty non-terminals such as ``<ns>.svc.<domain>``;
* an unknown name in the domain: NXDOMAIN with the SOA in authority;
* ``a-b-c-d.<ns>.pod.<domain>``: A ``a.b.c.d`` (CoreDNS ``pods insecure``), unless
  pod records are disabled;
* an ExternalName service: its CNAME, followed by the target's records (from the
  view for a target in the cluster, from the upstream otherwise, see :class:`Chase`);
* over UDP, a response bigger than the client's limit (512 bytes, or its EDNS
  payload size) is sent empty with TC set; the client retries over TCP.

Answers are cached by the query's bytes (minus the ID) for the view's current
generation, so a repeated question costs a dict lookup until the next
Service/EndpointSlice change.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from kcore.log import get_logger
from kcore_dns_coredns.view import ClusterView

log = get_logger("dns.coredns")

FORWARD = object()
"""Returned by :meth:`Resolver.answer` for a query that must go to the upstream."""

_MAX_CNAME_HOPS = 8


@dataclass
class Chase:
    """Returned by :meth:`Resolver.answer` for a CNAME (an ExternalName service) whose
    target lies outside the cluster: the server asks the upstream for ``target``,
    adds its records to ``response`` and renders it (CoreDNS resolves the target too,
    since stub resolvers such as glibc's do not follow a CNAME themselves)."""

    query: dns.message.Message
    response: dns.message.Message
    target: dns.name.Name
    rdtype: int
    udp: bool

UDP_DEFAULT_LIMIT = 512
OUR_EDNS_PAYLOAD = 1232  # the DNS flag day 2020 recommendation
_CACHE_MAX = 20_000

RecordsHook = Callable[[str, str, ClusterView], list[Any]]

_IN_ADDR = dns.name.from_text("in-addr.arpa.")
_IP6 = dns.name.from_text("ip6.arpa.")


class Resolver:
    """The cluster's authoritative answers, from a :class:`ClusterView`.

    ``records_hook(name, qtype, view)`` returns a list of contributions (the
    ``kcore_dns_records`` results of every plugin); each contribution is a list of
    ``dns.rrset.RRset`` or zone-file lines (``"name [ttl] [IN] TYPE rdata"``).
    """

    def __init__(self, view: ClusterView, *, pods: str = "insecure", service_ip: str | None = None,
                 has_upstream: bool = False, records_hook: RecordsHook | None = None,
                 cache: bool = True) -> None:
        if pods not in ("insecure", "disabled"):
            raise ValueError(f"dns pods mode must be 'insecure' or 'disabled', got {pods!r}")
        self.view = view
        self.domain = view.domain
        self.ttl = view.ttl
        self.pods = pods
        self.has_upstream = has_upstream
        self.records_hook = records_hook
        self.cache_enabled = cache
        self._cache: dict[tuple[bool, bytes], tuple[int, float, bytes]] = {}
        self._pod_zone = dns.name.Name(("pod",)).concatenate(self.domain)
        self._nameserver = dns.name.Name(("ns", "dns")).concatenate(self.domain)
        self._soa = dns.rrset.from_text(
            self.domain, self.ttl, "IN", "SOA",
            f"{self._nameserver} hostmaster.{self.domain} 1 7200 1800 86400 {self.ttl}")
        self._apex: dict[int, dns.rrset.RRset] = {
            dns.rdatatype.SOA: self._soa,
            dns.rdatatype.NS: dns.rrset.from_text(self.domain, self.ttl, "IN", "NS", self._nameserver.to_text()),
        }
        self._ns_glue: dict[int, dns.rrset.RRset] = {}
        if service_ip:
            rdtype = "A" if ipaddress.ip_address(service_ip).version == 4 else "AAAA"
            self._ns_glue[dns.rdatatype.from_text(rdtype)] = dns.rrset.from_text(
                self._nameserver, self.ttl, "IN", rdtype, service_ip)

    # ---- the entry point -------------------------------------------------------------

    def answer(self, wire: bytes, *, udp: bool) -> bytes | Chase | object | None:
        """The response bytes for ``wire``, :data:`FORWARD`, a :class:`Chase`, or None to drop it."""
        key = (udp, wire[2:])
        if self.cache_enabled:
            hit = self._cache.get(key)
            if hit is not None:
                generation, expires, response = hit
                if generation == self.view.generation and expires > time.monotonic():
                    return wire[:2] + response[2:]
        try:
            query = dns.message.from_wire(wire)
        except dns.message.ShortHeader:
            return None
        except Exception:  # noqa: BLE001 - any malformed packet: FORMERR if we can say so
            return _formerr(wire)
        response, cacheable, chase = self._respond(query)
        if response is FORWARD:
            return FORWARD
        assert isinstance(response, dns.message.Message)
        if chase is not None:
            return Chase(query, response, chase, query.question[0].rdtype, udp)
        out = self.render(response, query, udp)
        if cacheable and self.cache_enabled:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            # With record plugins present their answers may change without a view
            # change: keep those for a TTL only.
            lifetime = self.ttl if self.records_hook is not None else 3600.0
            self._cache[key] = (self.view.generation, time.monotonic() + lifetime, out)
        return out

    # ---- building the response ---------------------------------------------------------

    def _respond(self, query: dns.message.Message
                 ) -> tuple[dns.message.Message | object, bool, dns.name.Name | None]:
        """The response (or FORWARD), whether it may be cached, and a CNAME target to chase."""
        response = dns.message.make_response(query, our_payload=OUR_EDNS_PAYLOAD)
        response.flags &= ~dns.flags.RA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response, False, None
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response, False, None
        question = query.question[0]
        if question.rdclass not in (dns.rdataclass.IN, dns.rdataclass.ANY):
            return (FORWARD if self.has_upstream else _refused(response)), False, None
        qname = question.name.canonicalize()  # lower case
        qtype = question.rdtype
        if qname.is_subdomain(self.domain):
            chase = self._authoritative(response, qname, qtype)
            return response, chase is None, chase
        if qname.is_subdomain(_IN_ADDR) or qname.is_subdomain(_IP6):
            found = self.view.lookup(qname)
            extra = self._extra(qname, qtype)
            if found or extra or self.view.exists(qname):
                response.flags |= dns.flags.AA
                self._fill(response, qname, qtype, found or {}, extra)
                return response, True, None
            # Not ours: fall through to the upstream (CoreDNS "fallthrough in-addr.arpa ip6.arpa").
        return (FORWARD if self.has_upstream else _refused(response)), False, None

    def _authoritative(self, response: dns.message.Message, qname: dns.name.Name,
                       qtype: int) -> dns.name.Name | None:
        response.flags |= dns.flags.AA
        extra = self._extra(qname, qtype)
        if qname == self.domain:
            self._fill(response, qname, qtype, self._apex, extra)
            if qtype in (dns.rdatatype.NS, dns.rdatatype.ANY):
                response.additional.extend(self._ns_glue.values())
            return None
        found = self.view.lookup(qname)
        if found is None and qname == self._nameserver and self._ns_glue:
            found = self._ns_glue
        if found is None and self.pods == "insecure":
            found = self._pod_record(qname)
        if found is not None or extra:
            return self._fill(response, qname, qtype, found or {}, extra)
        if self.view.exists(qname) or qname == self._pod_zone or (
                self.pods == "insecure" and qname.parent() == self._pod_zone):
            response.authority.append(self._soa)  # NODATA
            return None
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(self._soa)
        return None

    def _fill(self, response: dns.message.Message, qname: dns.name.Name, qtype: int,
              found: dict[int, dns.rrset.RRset], extra: list[dns.rrset.RRset]) -> dns.name.Name | None:
        """Put the answer in ``response``; returns a CNAME target outside the cluster to chase."""
        question_name = response.question[0].name
        if qtype == dns.rdatatype.ANY:
            answer = list(found.values())
        elif qtype in found:
            answer = [found[qtype]]
        elif dns.rdatatype.CNAME in found:
            answer = [found[dns.rdatatype.CNAME]]
        else:
            answer = []
        answer += [r for r in extra if qtype in (dns.rdatatype.ANY, r.rdtype)]
        if not answer:
            if qname.is_subdomain(self.domain):
                response.authority.append(self._soa)
            return None
        for rrset in answer:
            # Echo the question's spelling (clients using 0x20 case randomization check it).
            if rrset.name == qname and question_name != qname:
                copy = dns.rrset.RRset(question_name, rrset.rdclass, rrset.rdtype)
                copy.update(rrset)
                rrset = copy
            response.answer.append(rrset)
        chase = None
        if answer[-1].rdtype == dns.rdatatype.CNAME and qtype not in (dns.rdatatype.CNAME, dns.rdatatype.ANY):
            chase = self._follow_cname(response, answer[-1][0].target.canonicalize(), qtype)
        if qtype == dns.rdatatype.SRV:
            for rrset in answer:
                if rrset.rdtype != dns.rdatatype.SRV:
                    continue
                for srv in rrset:
                    glue = self.view.lookup(srv.target.canonicalize()) or {}
                    for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                        if rdtype in glue and glue[rdtype] not in response.additional:
                            response.additional.append(glue[rdtype])
        return chase

    def _follow_cname(self, response: dns.message.Message, target: dns.name.Name,
                      qtype: int) -> dns.name.Name | None:
        """Add the records of a CNAME's target from the view inside the cluster domain;
        a target outside it is returned for the server to ask the upstream (:class:`Chase`)."""
        for _ in range(_MAX_CNAME_HOPS):
            if not target.is_subdomain(self.domain):
                return target if self.has_upstream else None
            found = self.view.lookup(target) or {}
            if qtype in found:
                response.answer.append(found[qtype])
                return None
            cname = found.get(dns.rdatatype.CNAME)
            if cname is None or cname in response.answer:
                return None
            response.answer.append(cname)
            target = cname[0].target.canonicalize()
        return None

    def _pod_record(self, qname: dns.name.Name) -> dict[int, dns.rrset.RRset] | None:
        # a-b-c-d.<ns>.pod.<domain>
        if len(qname) != len(self._pod_zone) + 2 or not qname.is_subdomain(self._pod_zone):
            return None
        label = qname.labels[0].decode("ascii", "replace")
        dotted = label.replace("-", ".")
        try:
            ip = ipaddress.ip_address(dotted)
        except ValueError:
            try:
                ip = ipaddress.ip_address(label.replace("-", ":"))
            except ValueError:
                return None
        rdtype = dns.rdatatype.A if ip.version == 4 else dns.rdatatype.AAAA
        return {rdtype: dns.rrset.from_text(qname, self.ttl, "IN", rdtype, str(ip))}

    def _extra(self, qname: dns.name.Name, qtype: int) -> list[dns.rrset.RRset]:
        """Records from ``kcore_dns_records`` implementations for this question."""
        if self.records_hook is None:
            return []
        try:
            results = self.records_hook(qname.to_text(), dns.rdatatype.to_text(qtype), self.view)
        except Exception:  # noqa: BLE001 - a broken record plugin must not break DNS
            log.exception("kcore_dns_records failed", name=qname.to_text())
            return []
        out: list[dns.rrset.RRset] = []
        for contribution in results or []:
            for record in contribution or []:
                try:
                    out.append(_as_rrset(record, self.ttl))
                except Exception:  # noqa: BLE001
                    log.warning("ignoring a malformed extra DNS record", record=repr(record)[:200])
        return out

    # ---- wire ------------------------------------------------------------------------

    def render(self, response: dns.message.Message, query: dns.message.Message, udp: bool) -> bytes:
        """Wire bytes of ``response``; over UDP cut to the client's limit (empty with TC)."""
        if not udp:
            return response.to_wire(max_size=65535)
        limit = UDP_DEFAULT_LIMIT
        if query.edns >= 0:
            limit = max(UDP_DEFAULT_LIMIT, min(query.payload, OUR_EDNS_PAYLOAD))
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer.clear()
            response.authority.clear()
            response.additional.clear()
            response.flags |= dns.flags.TC
            return response.to_wire(max_size=limit)


def _as_rrset(record: Any, ttl: int) -> dns.rrset.RRset:
    if isinstance(record, dns.rrset.RRset):
        return record
    if isinstance(record, str):
        fields = record.split()
        name = fields.pop(0)
        record_ttl = int(fields.pop(0)) if fields and fields[0].isdigit() else ttl
        if fields and fields[0].upper() == "IN":
            fields.pop(0)
        rdtype = fields.pop(0)
        return dns.rrset.from_text(name if name.endswith(".") else name + ".", record_ttl, "IN", rdtype,
                                   " ".join(fields))
    raise TypeError(f"not a DNS record: {record!r}")


def _refused(response: dns.message.Message) -> dns.message.Message:
    response.set_rcode(dns.rcode.REFUSED)
    return response


def _formerr(wire: bytes) -> bytes:
    """A bare FORMERR header echoing the ID (what a server can say about garbage)."""
    flags = dns.flags.QR | (int.from_bytes(wire[2:4], "big") & dns.flags.RD)
    return wire[:2] + (flags | dns.rcode.FORMERR).to_bytes(2, "big") + bytes(8)
