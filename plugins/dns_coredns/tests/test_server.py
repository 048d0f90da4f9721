"""The DNS server over real UDP/TCP sockets on 127.0.0.1, fed from a real API server.

Queries use dnspython's async client, so the server (on the same event loop) keeps
answering while a test waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from kcore import hookimpl
from kcore.client.rest import ApiClient
from kcore.testing import plugin_host_for
from kcore_dns_coredns import CoreDns, DnsServer, DnsStartError, build_server

DOMAIN = "cluster.local"


# ---- objects ---------------------------------------------------------------------------

def service(name: str, namespace: str = "default", *, headless: bool = False,
            ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app": name},
                            "ports": ports or [{"name": "http", "port": 80, "protocol": "TCP"}]}
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def endpoint_slice(name: str, service_name: str, endpoints: list[dict[str, Any]], namespace: str = "default",
                   ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def ready(address: str, hostname: str | None = None, is_ready: bool = True) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"addresses": [address], "conditions": {"ready": is_ready}}
    if hostname:
        endpoint["hostname"] = hostname
    return endpoint


async def create_service(client: ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    return await client.resource("v1", "Service").create(obj)


async def create_slice(client: ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    return await client.resource("discovery.k8s.io/v1", "EndpointSlice").create(obj)


# ---- queries ---------------------------------------------------------------------------

async def udp(server: DnsServer, name: str, rdtype: str = "A", **kw: Any) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=2)


async def tcp(server: DnsServer, name: str, rdtype: str = "A") -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=2)


def values(response: dns.message.Message, rdtype: str = "A") -> set[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return {rd.to_text() for rrset in response.answer if rrset.rdtype == wanted for rd in rrset}


async def until(server: DnsServer, name: str, rdtype: str, check: Callable[[dns.message.Message], bool],
                deadline: float = 5.0) -> tuple[dns.message.Message, float]:
    """Query every 20 ms until ``check(response)``; the response and how long it took."""
    start = time.monotonic()
    async with asyncio.timeout(deadline):
        while True:
            response = await udp(server, name, rdtype)
            if check(response):
                return response, time.monotonic() - start
            await asyncio.sleep(0.02)


def fqdn(name: str, namespace: str = "default") -> str:
    return f"{name}.{namespace}.svc.{DOMAIN}"


# ---- services ------------------------------------------------------------------------------

async def test_cluster_ip_service_answers_its_cluster_ip(client: ApiClient, dns_server: DnsServer) -> None:
    svc = await create_service(client, service("web"))
    cluster_ip = svc["spec"]["clusterIP"]
    response, _ = await until(dns_server, fqdn("web"), "A", lambda r: bool(r.answer))
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.AA
    assert values(response) == {cluster_ip}
    assert response.answer[0].ttl == 5
    # Names are case-insensitive; the answer keeps the question's spelling.
    mixed = await udp(dns_server, "Web.Default.SVC.cluster.local")
    assert values(mixed) == {cluster_ip}
    assert mixed.answer[0].name.to_text() == "Web.Default.SVC.cluster.local."


async def test_headless_service_answers_ready_endpoints(client: ApiClient, dns_server: DnsServer) -> None:
    await create_service(client, service("db", headless=True))
    await create_slice(client, endpoint_slice("db-a", "db", [
        ready("10.1.0.5", "db-0"), ready("10.1.0.6", "db-1"), ready("10.1.0.7", is_ready=False)]))
    await create_slice(client, endpoint_slice("db-b", "db", [ready("10.1.0.8")]))
    response, _ = await until(dns_server, fqdn("db"), "A", lambda r: len(values(r)) == 3)
    assert values(response) == {"10.1.0.5", "10.1.0.6", "10.1.0.8"}  # not the unready one
    # StatefulSet-style per-pod names, and the dashed address for endpoints without one.
    assert values(await udp(dns_server, f"db-0.{fqdn('db')}")) == {"10.1.0.5"}
    assert values(await udp(dns_server, f"10-1-0-8.{fqdn('db')}")) == {"10.1.0.8"}
    missing = await udp(dns_server, f"db-9.{fqdn('db')}")
    assert missing.rcode() == dns.rcode.NXDOMAIN


async def test_srv_records_for_named_ports(client: ApiClient, dns_server: DnsServer) -> None:
    await create_service(client, service("api", ports=[{"name": "grpc", "port": 9000, "protocol": "TCP"},
                                                       {"name": "dns", "port": 53, "protocol": "UDP"}]))
    await create_service(client, service("db", headless=True))
    await create_slice(client, endpoint_slice("db-a", "db", [ready("10.1.0.5", "db-0"), ready("10.1.0.6", "db-1")],
                                              ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]))
    response, _ = await until(dns_server, f"_grpc._tcp.{fqdn('api')}", "SRV", lambda r: bool(r.answer))
    assert values(response, "SRV") == {f"0 100 9000 {fqdn('api')}."}
    udp_port = await udp(dns_server, f"_dns._udp.{fqdn('api')}", "SRV")
    assert values(udp_port, "SRV") == {f"0 100 53 {fqdn('api')}."}
    # Headless: one SRV per endpoint, with the targets' addresses in the additional section.
    response, _ = await until(dns_server, f"_pg._tcp.{fqdn('db')}", "SRV", lambda r: len(values(r, "SRV")) == 2)
    assert values(response, "SRV") == {f"0 50 5432 db-0.{fqdn('db')}.", f"0 50 5432 db-1.{fqdn('db')}."}
    glue = {rd.to_text() for rrset in response.additional for rd in rrset}
    assert glue == {"10.1.0.5", "10.1.0.6"}
    # The port exists with another protocol only: the name does not exist.
    assert (await udp(dns_server, f"_grpc._udp.{fqdn('api')}", "SRV")).rcode() == dns.rcode.NXDOMAIN


async def test_ptr_for_cluster_ip_and_pod_records(client: ApiClient, dns_server: DnsServer) -> None:
    svc = await create_service(client, service("web"))
    octets = svc["spec"]["clusterIP"].split(".")
    reverse = ".".join(reversed(octets)) + ".in-addr.arpa"
    response, _ = await until(dns_server, reverse, "PTR", lambda r: bool(r.answer))
    assert values(response, "PTR") == {fqdn("web") + "."}
    # Pod records (CoreDNS "pods insecure"): the name spells the address.
    pod = await udp(dns_server, f"10-244-1-7.default.pod.{DOMAIN}")
    assert values(pod) == {"10.244.1.7"}
    bad = await udp(dns_server, f"not-an-ip.default.pod.{DOMAIN}")
    assert bad.rcode() == dns.rcode.NXDOMAIN


async def test_nxdomain_and_nodata_carry_the_soa(client: ApiClient, dns_server: DnsServer) -> None:
    await create_service(client, service("web"))
    await until(dns_server, fqdn("web"), "A", lambda r: bool(r.answer))
    nx = await udp(dns_server, fqdn("nope"))
    assert nx.rcode() == dns.rcode.NXDOMAIN
    assert nx.flags & dns.flags.AA
    assert [r.rdtype for r in nx.authority] == [dns.rdatatype.SOA]
    assert nx.authority[0].name.to_text() == f"{DOMAIN}."
    # The name exists, the type does not: NOERROR, no answer, SOA (NODATA).
    for name, rdtype in ((fqdn("web"), "AAAA"), (fqdn("web"), "MX"), (f"default.svc.{DOMAIN}", "A")):
        nodata = await udp(dns_server, name, rdtype)
        assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, []), (name, rdtype)
        assert [r.rdtype for r in nodata.authority] == [dns.rdatatype.SOA]
    apex = await udp(dns_server, DOMAIN, "SOA")
    assert values(apex, "SOA") and apex.rcode() == dns.rcode.NOERROR


async def test_new_service_answered_quickly_and_deletion_gives_nxdomain(
        client: ApiClient, dns_server: DnsServer) -> None:
    assert (await udp(dns_server, fqdn("late"))).rcode() == dns.rcode.NXDOMAIN
    svc = await create_service(client, service("late"))
    response, took = await until(dns_server, fqdn("late"), "A", lambda r: bool(r.answer))
    assert values(response) == {svc["spec"]["clusterIP"]}
    assert took < 5.0
    await client.resource("v1", "Service").delete("late", namespace="default")
    gone, _ = await until(dns_server, fqdn("late"), "A", lambda r: r.rcode() == dns.rcode.NXDOMAIN)
    assert [r.rdtype for r in gone.authority] == [dns.rdatatype.SOA]


async def test_endpoint_changes_follow_the_slice(client: ApiClient, dns_server: DnsServer) -> None:
    await create_service(client, service("db", headless=True))
    created = await create_slice(client, endpoint_slice("db-a", "db", [ready("10.1.0.5")]))
    await until(dns_server, fqdn("db"), "A", lambda r: values(r) == {"10.1.0.5"})
    created["endpoints"] = [ready("10.1.0.5", is_ready=False), ready("10.1.0.9")]
    await client.resource("discovery.k8s.io/v1", "EndpointSlice").update(created)
    await until(dns_server, fqdn("db"), "A", lambda r: values(r) == {"10.1.0.9"})
    await client.resource("discovery.k8s.io/v1", "EndpointSlice").delete("db-a", namespace="default")
    # A headless service without ready endpoints has no name, as in CoreDNS: NXDOMAIN.
    empty, _ = await until(dns_server, fqdn("db"), "A", lambda r: not r.answer)
    assert empty.rcode() == dns.rcode.NXDOMAIN


async def test_big_answer_truncated_over_udp_complete_over_tcp(client: ApiClient, dns_server: DnsServer) -> None:
    await create_service(client, service("big", headless=True))
    addresses = {f"10.2.{i // 250}.{i % 250 + 1}" for i in range(100)}
    await create_slice(client, endpoint_slice("big-a", "big", [ready(a) for a in sorted(addresses)]))
    truncated, _ = await until(dns_server, fqdn("big"), "A", lambda r: bool(r.flags & dns.flags.TC))
    assert truncated.answer == []
    full = await tcp(dns_server, fqdn("big"))
    assert not full.flags & dns.flags.TC
    assert values(full) == addresses
    # A client advertising a bigger EDNS buffer still gets no more than 1232 bytes: truncated too.
    edns = await udp(dns_server, fqdn("big"), use_edns=0, payload=4096)
    assert edns.flags & dns.flags.TC


async def test_malformed_packet_gets_formerr_and_server_keeps_going(dns_server: DnsServer) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", dns_server.port))
        await loop.sock_sendall(sock, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff")
        async with asyncio.timeout(2):
            reply = await loop.sock_recv(sock, 512)
    assert reply[:2] == b"\x12\x34"
    assert reply[3] & 0x0F == dns.rcode.FORMERR
    assert (await udp(dns_server, fqdn("nothing"))).rcode() == dns.rcode.NXDOMAIN


# ---- outside the cluster domain ----------------------------------------------------------

class _Upstream(asyncio.DatagramProtocol):
    """A tiny authoritative server for ``example.test`` on 127.0.0.1 (UDP), standing in for a resolver."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.seen: list[str] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        query = dns.message.from_wire(data)
        question = query.question[0]
        self.seen.append(question.name.to_text())
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if question.name.to_text().lower() == "www.example.test." and question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", "192.0.2.1"))
        else:
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def upstream_server() -> AsyncIterator[tuple[_Upstream, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Upstream, local_addr=("127.0.0.1", 0))
    try:
        yield protocol, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


async def test_names_outside_the_domain_go_to_the_upstream(client: ApiClient) -> None:
    async with upstream_server() as (upstream, port):
        server = await build_server({"bind_address": "127.0.0.1", "port": 0, "upstream": [f"127.0.0.1:{port}"]},
                                    {"client": client}).start()
        try:
            response = await udp(server, "www.example.test")
            assert values(response) == {"192.0.2.1"}
            assert response.answer[0].ttl == 60  # the upstream's answer, as given
            over_tcp = await tcp(server, "www.example.test")
            assert values(over_tcp) == {"192.0.2.1"}
            assert (await udp(server, "nope.example.test")).rcode() == dns.rcode.NXDOMAIN
            # The cluster domain is never forwarded.
            assert (await udp(server, fqdn("nope"))).rcode() == dns.rcode.NXDOMAIN
            # The TCP question was answered from the cache; the NXDOMAIN without SOA is not cached.
            assert upstream.seen == ["www.example.test.", "nope.example.test."]
        finally:
            await server.stop()


async def test_without_upstream_refused_and_dead_upstream_servfail(client: ApiClient,
                                                                   dns_server: DnsServer) -> None:
    assert (await udp(dns_server, "www.example.test")).rcode() == dns.rcode.REFUSED
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    server = await build_server({"bind_address": "127.0.0.1", "port": 0, "upstream": [f"127.0.0.1:{dead_port}"]},
                                {"client": client}).start()
    server.forwarder.timeout = 0.3
    try:
        assert (await udp(server, "www.example.test")).rcode() == dns.rcode.SERVFAIL
    finally:
        await server.stop()


# ---- the plugin seam ----------------------------------------------------------------------

class ExtraRecords:
    """A ``kcore_dns_records`` plugin adding a name and an extra address to every A answer."""

    @hookimpl
    def kcore_dns_records(self, name: str, qtype: str, view: Any) -> list[Any] | None:
        if name == f"registry.{DOMAIN}." and qtype == "A":
            return [f"registry.{DOMAIN}. A 10.0.0.99"]
        if name == f"web.default.svc.{DOMAIN}." and qtype == "A":
            return [dns.rrset.from_text(name, 5, "IN", "A", "10.0.0.100")]
        return None


async def test_started_through_the_hook_with_extra_records(client: ApiClient) -> None:
    host = plugin_host_for(ExtraRecords(), named={"kcore.dns:coredns": CoreDns})
    server = await host.acall_driver("kcore.dns", "coredns", "kcore_dns_start",
                                     settings={"bind_address": "127.0.0.1", "port": 0},
                                     context={"client": client, "plugins": host})
    try:
        assert isinstance(server, DnsServer)
        registry = await udp(server, f"registry.{DOMAIN}")
        assert (registry.rcode(), values(registry)) == (dns.rcode.NOERROR, {"10.0.0.99"})
        svc = await create_service(client, service("web"))
        await until(server, fqdn("web"), "A", lambda r: len(values(r)) == 2)
        assert values(await udp(server, fqdn("web"))) == {svc["spec"]["clusterIP"], "10.0.0.100"}
    finally:
        await server.stop()


async def test_port_in_use_is_a_clear_error(dns_server: DnsServer) -> None:
    with pytest.raises(DnsStartError, match=r"127\.0\.0\.1:\d+: the address is already in use"):
        await build_server({"bind_address": "127.0.0.1", "port": dns_server.port}).start()
