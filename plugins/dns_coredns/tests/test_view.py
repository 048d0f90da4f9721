"""The cluster view, the resolver without sockets, and the pure helpers."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from kcore.config import KcoreConfig
from kcore_dns_coredns import ClusterView, Resolver, settings_from_config
from kcore_dns_coredns.resolver import FORWARD, Chase
from kcore_dns_coredns.server import DnsStartError, parse_upstreams


def svc(name: str, cluster_ip: str = "10.96.0.20", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": cluster_ip, "ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}}


def eps(name: str, service: str, *addresses: str, namespace: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addresses]}


def ask(resolver: Resolver, name: str, rdtype: str = "A", udp: bool = True) -> dns.message.Message:
    out = resolver.answer(dns.message.make_query(name, rdtype).to_wire(), udp=udp)
    assert isinstance(out, bytes)
    return dns.message.from_wire(out)


def addresses(response: dns.message.Message) -> set[str]:
    return {rd.to_text() for rrset in response.answer for rd in rrset}


def name(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


def test_slice_before_its_service_and_everything_gone_after_deletion() -> None:
    view = ClusterView()
    view.on_slice(eps("db-a", "db", "10.1.0.5"))
    assert not view.exists(name("db.default.svc.cluster.local."))
    view.on_service(svc("db", cluster_ip="None"))
    found = view.lookup(name("db.default.svc.cluster.local."))
    assert found is not None and {rd.to_text() for rd in found[dns.rdatatype.A]} == {"10.1.0.5"}
    assert view.exists(name("default.svc.cluster.local."))  # an empty non-terminal
    view.on_service_deleted(svc("db", cluster_ip="None"))
    view.on_slice_deleted(eps("db-a", "db"))
    assert len(view) == 0
    assert not view.exists(name("default.svc.cluster.local."))
    assert not view.exists(name("svc.cluster.local."))


def test_relabelled_slice_moves_to_the_other_service() -> None:
    view = ClusterView()
    view.on_service(svc("a", cluster_ip="None"))
    view.on_service(svc("b", cluster_ip="None"))
    view.on_slice(eps("s", "a", "10.1.0.5"))
    assert view.lookup(name("a.default.svc.cluster.local."))
    view.on_slice(eps("s", "b", "10.1.0.5"))
    assert view.lookup(name("a.default.svc.cluster.local.")) is None
    assert view.lookup(name("b.default.svc.cluster.local."))


def test_cached_answers_follow_view_changes() -> None:
    view = ClusterView()
    resolver = Resolver(view)
    view.on_service(svc("web", cluster_ip="10.96.0.20"))
    assert addresses(ask(resolver, "web.default.svc.cluster.local")) == {"10.96.0.20"}
    assert addresses(ask(resolver, "web.default.svc.cluster.local")) == {"10.96.0.20"}  # from the cache
    view.on_service(svc("web", cluster_ip="10.96.0.21"))
    assert addresses(ask(resolver, "web.default.svc.cluster.local")) == {"10.96.0.21"}
    view.on_service_deleted(svc("web"))
    assert ask(resolver, "web.default.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN


def test_external_name_service_is_a_cname() -> None:
    view = ClusterView()
    view.on_service({"metadata": {"name": "ext", "namespace": "default"},
                     "spec": {"type": "ExternalName", "externalName": "db.example.test"}})
    response = ask(Resolver(view), "ext.default.svc.cluster.local")
    assert [(r.rdtype, r[0].to_text()) for r in response.answer] == [(dns.rdatatype.CNAME, "db.example.test.")]


def test_external_name_target_followed_in_the_cluster_or_chased_upstream() -> None:
    view = ClusterView()
    view.on_service(svc("web", cluster_ip="10.96.0.20"))
    view.on_service({"metadata": {"name": "alias", "namespace": "default"},
                     "spec": {"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}})
    view.on_service({"metadata": {"name": "ext", "namespace": "default"},
                     "spec": {"type": "ExternalName", "externalName": "db.example.test"}})
    alias = ask(Resolver(view), "alias.default.svc.cluster.local")
    assert [(r.rdtype, r[0].to_text()) for r in alias.answer] == [
        (dns.rdatatype.CNAME, "web.default.svc.cluster.local."), (dns.rdatatype.A, "10.96.0.20")]
    # Outside the cluster: the server is told to ask the upstream for the target (not cached).
    wire = dns.message.make_query("ext.default.svc.cluster.local", "A").to_wire()
    chase = Resolver(view, has_upstream=True).answer(wire, udp=True)
    assert isinstance(chase, Chase) and chase.target == name("db.example.test.")
    assert chase.rdtype == dns.rdatatype.A and len(chase.response.answer) == 1
    # AAAA of an IPv4-only service: NOERROR, nothing, the SOA.
    nodata = ask(Resolver(view), "web.default.svc.cluster.local", "AAAA")
    assert (nodata.rcode(), nodata.answer, [r.rdtype for r in nodata.authority]) == (
        dns.rcode.NOERROR, [], [dns.rdatatype.SOA])


def test_endpoints_of_every_service_get_names_and_ptrs() -> None:
    view = ClusterView()
    view.on_service(svc("web", cluster_ip="10.96.0.20"))
    view.on_slice(eps("web-a", "web", "10.244.1.7"))
    resolver = Resolver(view)
    ptr = ask(resolver, "7.1.244.10.in-addr.arpa", "PTR")
    assert addresses(ptr) == {"10-244-1-7.web.default.svc.cluster.local."}
    assert addresses(ask(resolver, "10-244-1-7.web.default.svc.cluster.local")) == {"10.244.1.7"}
    # The service name stays the ClusterIP.
    assert addresses(ask(resolver, "web.default.svc.cluster.local")) == {"10.96.0.20"}


def test_publish_not_ready_addresses_counts_every_endpoint() -> None:
    view = ClusterView()
    unready = eps("db-a", "db", "10.1.0.5")
    unready["endpoints"][0]["conditions"]["ready"] = False
    view.on_slice(unready)
    view.on_service(svc("db", cluster_ip="None"))
    assert view.lookup(name("db.default.svc.cluster.local.")) is None
    view.on_service(svc("db", cluster_ip="None", publishNotReadyAddresses=True))
    assert addresses(ask(Resolver(view), "db.default.svc.cluster.local")) == {"10.1.0.5"}


def test_ttl_is_configurable() -> None:
    view = ClusterView(ttl=30)
    view.on_service(svc("web", cluster_ip="10.96.0.20"))
    resolver = Resolver(view)
    assert ask(resolver, "web.default.svc.cluster.local").answer[0].ttl == 30
    nx = ask(resolver, "nope.default.svc.cluster.local")
    assert nx.authority[0].ttl == 30 and nx.authority[0][0].minimum == 30


def test_outside_names_forward_only_with_an_upstream() -> None:
    view = ClusterView()
    wire = dns.message.make_query("www.example.test", "A").to_wire()
    assert Resolver(view, has_upstream=True).answer(wire, udp=True) is FORWARD
    refused = Resolver(view).answer(wire, udp=True)
    assert isinstance(refused, bytes) and dns.message.from_wire(refused).rcode() == dns.rcode.REFUSED
    # An unknown reverse address falls through to the upstream, as CoreDNS's fallthrough does.
    ptr = dns.message.make_query("9.9.9.10.in-addr.arpa", "PTR").to_wire()
    assert Resolver(view, has_upstream=True).answer(ptr, udp=True) is FORWARD


def test_apex_ns_with_the_service_ip_as_glue() -> None:
    response = ask(Resolver(ClusterView(), service_ip="10.96.0.10"), "cluster.local", "NS")
    assert addresses(response) == {"ns.dns.cluster.local."}
    assert {rd.to_text() for rrset in response.additional for rd in rrset} == {"10.96.0.10"}
    assert response.flags & dns.flags.AA


def test_pod_records_can_be_disabled() -> None:
    response = ask(Resolver(ClusterView(), pods="disabled"), "10-244-0-5.default.pod.cluster.local")
    assert response.rcode() == dns.rcode.NXDOMAIN


def test_settings_from_config_merges_the_plugin_table() -> None:
    config = KcoreConfig.model_validate({"dns": {"cluster_domain": "example.internal", "upstream": ["10.0.0.2"],
                                                 "coredns": {"bind_address": "127.0.0.1", "ttl": 10}}})
    settings = settings_from_config(config.dns)
    assert settings["cluster_domain"] == "example.internal"
    assert settings["upstream"] == ["10.0.0.2"]
    assert (settings["bind_address"], settings["ttl"]) == ("127.0.0.1", 10)


def test_parse_upstreams(tmp_path: Any) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# comment\nnameserver 10.0.0.53\nsearch example.test\nnameserver ::1\n")
    assert parse_upstreams(["10.0.0.2", "127.0.0.1:5353", "[::1]:5300", str(resolv)]) == [
        ("10.0.0.2", 53), ("127.0.0.1", 5353), ("::1", 5300), ("10.0.0.53", 53), ("::1", 53)]
    with pytest.raises(DnsStartError, match="not an IP address"):
        parse_upstreams(["dns.example.test"])


def test_entry_point_is_registered() -> None:
    (entry,) = [ep for ep in importlib.metadata.entry_points(group="kcore.dns") if ep.name == "coredns"]
    assert entry.value == "kcore_dns_coredns.plugin:CoreDns"
