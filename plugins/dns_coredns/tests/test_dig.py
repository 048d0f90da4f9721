"""The DNS server as ``dig`` (BIND's client) sees it, over real UDP and TCP on 127.0.0.1.

The server is fed straight through its view (no API server), with a TTL of 30 so
the ``ttl`` setting is checked end to end. ``dig`` runs as a subprocess while the
server answers on this test's event loop.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kcore_dns_coredns import DnsServer, build_server

DIG = shutil.which("dig")
pytestmark = pytest.mark.skipif(DIG is None, reason="dig is not installed (scripts/system-packages.sh "
                                                    "installs Debian's dnsutils as root)")

TTL = 30
SOA = f"cluster.local. {TTL} IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 {TTL}"


@dataclass
class Dig:
    """What dig printed: status, header flags, and the sections as ``name ttl class type rdata`` lines."""

    status: str = ""
    flags: set[str] = field(default_factory=set)
    sections: dict[str, list[str]] = field(default_factory=dict)
    footer: str = ""

    @property
    def answer(self) -> list[str]:
        return self.sections.get("ANSWER", [])

    @property
    def authority(self) -> list[str]:
        return self.sections.get("AUTHORITY", [])


def parse_dig(text: str) -> Dig:
    out = Dig()
    section = ""
    for line in text.splitlines():
        if "->>HEADER<<-" in line:
            out.status = line.split("status:")[1].split(",")[0].strip()
        elif line.startswith(";; flags:"):
            out.flags = set(line.split(";")[2].split(":", 1)[1].split())
        elif line.startswith(";; ") and line.endswith(" SECTION:"):
            section = line[3:-len(" SECTION:")]
        elif line.startswith(";; SERVER:"):
            out.footer = line
        elif line.strip() and not line.startswith(";"):
            out.sections.setdefault(section, []).append(" ".join(line.split()))
    return out


async def dig(server: DnsServer, *args: str) -> Dig:
    """Run ``dig @127.0.0.1 -p PORT +noall +comments +answer +authority ARGS`` and parse it."""
    assert DIG is not None
    proc = await asyncio.create_subprocess_exec(
        DIG, "@127.0.0.1", "-p", str(server.port), "+tries=1", "+time=3", "+nocookie",
        "+noall", "+comments", "+answer", "+authority", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, (stdout + stderr).decode()
    return parse_dig(stdout.decode())


async def dig_short(server: DnsServer, *args: str) -> list[str]:
    assert DIG is not None
    proc = await asyncio.create_subprocess_exec(
        DIG, "@127.0.0.1", "-p", str(server.port), "+tries=1", "+time=3", "+short", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, (stdout + stderr).decode()
    return sorted(stdout.decode().split())


def service(name: str, cluster_ip: str | None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    return {"metadata": {"name": name, "namespace": "default"}, "spec": body}


def endpoint_slice(name: str, service_name: str, *addresses: str,
                   hostnames: dict[str, str] | None = None) -> dict[str, Any]:
    endpoints = [{"addresses": [a], "conditions": {"ready": True},
                  **({"hostname": hostnames[a]} if hostnames and a in hostnames else {})} for a in addresses]
    return {"metadata": {"name": name, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}


@pytest.fixture
async def server() -> AsyncIterator[DnsServer]:
    """The server on 127.0.0.1 and a free port, no upstream, fed a few services."""
    dns_server = await build_server({"bind_address": "127.0.0.1", "port": 0, "ttl": TTL,
                                     "service_ip": "10.96.0.10"}).start()
    view = dns_server.view
    view.on_service(service("web", "10.96.0.20"))
    view.on_slice(endpoint_slice("web-a", "web", "10.244.1.7"))
    view.on_service(service("db", "None"))
    view.on_slice(endpoint_slice("db-a", "db", "10.244.2.5", "10.244.2.6", "10.244.2.7",
                                 hostnames={"10.244.2.5": "db-0"}))
    view.on_service({"metadata": {"name": "ext", "namespace": "default"},
                     "spec": {"type": "ExternalName", "externalName": "db.example.test"}})
    view.on_service({"metadata": {"name": "alias", "namespace": "default"},
                     "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}})
    try:
        yield dns_server
    finally:
        await dns_server.stop()


async def test_dig_a_of_a_service(server: DnsServer) -> None:
    out = await dig(server, "web.default.svc.cluster.local", "A")
    assert out.status == "NOERROR"
    assert {"qr", "aa"} <= out.flags and "ra" not in out.flags
    assert out.answer == [f"web.default.svc.cluster.local. {TTL} IN A 10.96.0.20"]


async def test_dig_aaaa_of_an_ipv4_service_is_noerror_and_empty(server: DnsServer) -> None:
    out = await dig(server, "web.default.svc.cluster.local", "AAAA")
    assert (out.status, out.answer, out.authority) == ("NOERROR", [], [SOA])


async def test_dig_srv_of_a_named_port(server: DnsServer) -> None:
    out = await dig(server, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert out.status == "NOERROR"
    assert out.answer == [f"_http._tcp.web.default.svc.cluster.local. {TTL} IN SRV 0 100 80 "
                          "web.default.svc.cluster.local."]
    headless = await dig_short(server, "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert headless == sorted(["0", "33", "5432", "db-0.db.default.svc.cluster.local.",
                               "0", "33", "5432", "10-244-2-6.db.default.svc.cluster.local.",
                               "0", "33", "5432", "10-244-2-7.db.default.svc.cluster.local."])


async def test_dig_ptr_of_a_cluster_ip_and_a_pod_ip(server: DnsServer) -> None:
    out = await dig(server, "-x", "10.96.0.20")
    assert out.status == "NOERROR" and "aa" in out.flags
    assert out.answer == [f"20.0.96.10.in-addr.arpa. {TTL} IN PTR web.default.svc.cluster.local."]
    # A pod IP behind a service points at the endpoint's name, which resolves back.
    assert await dig_short(server, "-x", "10.244.1.7") == ["10-244-1-7.web.default.svc.cluster.local."]
    assert await dig_short(server, "10-244-1-7.web.default.svc.cluster.local") == ["10.244.1.7"]
    assert await dig_short(server, "-x", "10.244.2.5") == ["db-0.db.default.svc.cluster.local."]


async def test_dig_headless_service_gives_every_ready_pod(server: DnsServer) -> None:
    out = await dig(server, "db.default.svc.cluster.local")
    assert out.status == "NOERROR"
    assert sorted(out.answer) == [f"db.default.svc.cluster.local. {TTL} IN A 10.244.2.{i}" for i in (5, 6, 7)]
    assert await dig_short(server, "db-0.db.default.svc.cluster.local") == ["10.244.2.5"]


async def test_dig_nxdomain_has_the_soa_in_authority(server: DnsServer) -> None:
    out = await dig(server, "nope.default.svc.cluster.local")
    assert (out.status, out.answer, out.authority) == ("NXDOMAIN", [], [SOA])
    assert "aa" in out.flags


async def test_dig_over_tcp(server: DnsServer) -> None:
    out = await dig(server, "+tcp", "+stats", "web.default.svc.cluster.local")
    assert out.status == "NOERROR"
    assert out.answer == [f"web.default.svc.cluster.local. {TTL} IN A 10.96.0.20"]
    assert out.footer.endswith("(TCP)"), out.footer


async def test_dig_pod_a_record(server: DnsServer) -> None:
    out = await dig(server, "10-244-3-9.default.pod.cluster.local")
    assert out.status == "NOERROR"
    assert out.answer == [f"10-244-3-9.default.pod.cluster.local. {TTL} IN A 10.244.3.9"]


async def test_dig_external_name_is_a_cname(server: DnsServer) -> None:
    out = await dig(server, "ext.default.svc.cluster.local")
    assert out.status == "NOERROR"
    # No upstream to follow it: the CNAME alone (the client resolves the target).
    assert out.answer == [f"ext.default.svc.cluster.local. {TTL} IN CNAME db.example.test."]
    # A target inside the cluster is followed from the view.
    alias = await dig(server, "alias.default.svc.cluster.local")
    assert alias.answer == [f"alias.default.svc.cluster.local. {TTL} IN CNAME web.default.svc.cluster.local.",
                            f"web.default.svc.cluster.local. {TTL} IN A 10.96.0.20"]
