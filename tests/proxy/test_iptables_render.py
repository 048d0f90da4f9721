"""kcore.proxy.iptables: golden text in kube-proxy's shape, hashes, diffs."""

from __future__ import annotations

from kcore.proxy.iptables import (
    diff_rules,
    endpoint_chain,
    parse_chains,
    probability,
    render_iptables,
    service_chain,
)
from kcore.proxy.state import Endpoint, ProxyState, ServicePort

EPS = tuple(Endpoint(f"10.244.{i}.5", 8080) for i in (3, 1, 2))  # out of order on purpose
SVC = "KUBE-SVC-CDGGSHYLG3RE2FKL"
SEP1, SEP2, SEP3 = "KUBE-SEP-AFGSLHOD2HFNCBX4", "KUBE-SEP-OAIGUPJHOE4YU7HS", "KUBE-SEP-HQQLGVWC5OFWA4VC"


def web(*eps: Endpoint, **kw: object) -> ServicePort:
    fields: dict[str, object] = dict(
        namespace="default", name="web", port_name="http", protocol="TCP", cluster_ip="10.96.0.10", port=80,
        endpoints=eps,
    )
    fields.update(kw)
    return ServicePort(**fields)  # type: ignore[arg-type]


def state(*services: ServicePort) -> ProxyState:
    return ProxyState(services=services, cluster_cidr="10.244.0.0/16")


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_hashes_match_kube_proxy() -> None:
    # The names kube-proxy's own tests expect for ns1/svc1:p80 (tcp) -> 10.180.0.1:80.
    svc = ServicePort("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80)
    assert service_chain(svc) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert endpoint_chain(svc, Endpoint("10.180.0.1", 80)) == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def test_hashes_are_stable_and_distinct() -> None:
    assert service_chain(web()) == SVC == service_chain(web(*EPS, port=8080))
    assert service_chain(web(protocol="UDP")) != SVC
    assert service_chain(web(port_name="https")) != SVC
    assert [endpoint_chain(web(), Endpoint(f"10.244.{i}.5", 8080)) for i in (1, 2, 3)] == [SEP1, SEP2, SEP3]
    assert len({*map(len, (SVC, SEP1))}) == 1 and len(SVC) == len("KUBE-SVC-") + 16


def test_probabilities_as_iptables_save_prints_them() -> None:
    assert [probability(n) for n in (3, 2, 4, 1)] == ["0.33333333349", "0.50000000000", "0.25000000000", "1.00000000000"]


def test_one_service_three_endpoints_golden() -> None:
    got = render_iptables(state(web(*EPS))).splitlines()
    want = [
        "*filter",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-EXTERNAL-SERVICES - [0:0]",
        ":KUBE-FORWARD - [0:0]",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule"'
        " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        "COMMIT",
        "*nat",
        ":KUBE-SERVICES - [0:0]",
        ":KUBE-NODEPORTS - [0:0]",
        ":KUBE-POSTROUTING - [0:0]",
        ":KUBE-MARK-MASQ - [0:0]",
        f":{SVC} - [0:0]",
        f":{SEP1} - [0:0]",
        f":{SEP2} - [0:0]",
        f":{SEP3} - [0:0]",
        '-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp'
        f" -d 10.96.0.10 --dport 80 -j {SVC}",
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule'
        ' in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"'
        " -j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
        f'-A {SVC} -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.10 --dport 80'
        " ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        f'-A {SVC} -m comment --comment "default/web:http -> 10.244.1.5:8080"'
        f" -m statistic --mode random --probability 0.33333333349 -j {SEP1}",
        f'-A {SVC} -m comment --comment "default/web:http -> 10.244.2.5:8080"'
        f" -m statistic --mode random --probability 0.50000000000 -j {SEP2}",
        f'-A {SVC} -m comment --comment "default/web:http -> 10.244.3.5:8080" -j {SEP3}',
        f"-A {SEP1} -m comment --comment default/web:http -s 10.244.1.5 -j KUBE-MARK-MASQ",
        f"-A {SEP1} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080",
        f"-A {SEP2} -m comment --comment default/web:http -s 10.244.2.5 -j KUBE-MARK-MASQ",
        f"-A {SEP2} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.2.5:8080",
        f"-A {SEP3} -m comment --comment default/web:http -s 10.244.3.5 -j KUBE-MARK-MASQ",
        f"-A {SEP3} -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.3.5:8080",
        "COMMIT",
    ]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"line {i + 1}"


def test_no_cluster_cidr_means_no_masquerade_rule_in_the_service_chain() -> None:
    text = render_iptables(ProxyState(services=(web(*EPS),)))
    assert not [line for line in lines(text, f"-A {SVC} ") if "KUBE-MARK-MASQ" in line]


def test_client_ip_affinity() -> None:
    text = render_iptables(state(web(*EPS[:2], session_affinity=True, affinity_timeout_seconds=600)))
    svc_rules = lines(text, f"-A {SVC} ")[1:]
    assert svc_rules == [
        f'-A {SVC} -m comment --comment "default/web:http -> 10.244.1.5:8080"'
        f" -m recent --name {SEP1} --rcheck --seconds 600 --reap -j {SEP1}",
        f'-A {SVC} -m comment --comment "default/web:http -> 10.244.3.5:8080"'
        f" -m recent --name {SEP3} --rcheck --seconds 600 --reap -j {SEP3}",
        f'-A {SVC} -m comment --comment "default/web:http -> 10.244.1.5:8080"'
        f" -m statistic --mode random --probability 0.50000000000 -j {SEP1}",
        f'-A {SVC} -m comment --comment "default/web:http -> 10.244.3.5:8080" -j {SEP3}',
    ]
    assert lines(text, f"-A {SEP1} ")[1] == (
        f"-A {SEP1} -m comment --comment default/web:http -m recent --name {SEP1} --set"
        " -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080"
    )
    default = render_iptables(state(web(EPS[0], session_affinity=True)))
    assert "--rcheck --seconds 10800 --reap" in default


def test_node_port_rules() -> None:
    text = render_iptables(state(web(*EPS, node_port=30080)))
    assert lines(text, "-A KUBE-NODEPORTS ") == [
        "-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j KUBE-MARK-MASQ",
        f"-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j {SVC}",
    ]
    # The jump to KUBE-NODEPORTS stays the last rule of KUBE-SERVICES.
    assert lines(text, "-A KUBE-SERVICES ")[-1].endswith("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")


def test_external_ips_mark_and_jump() -> None:
    text = render_iptables(state(web(*EPS, external_ips=("203.0.113.7",))))
    assert [line for line in lines(text, "-A KUBE-SERVICES ") if "203.0.113.7" in line] == [
        '-A KUBE-SERVICES -m comment --comment "default/web:http external IP" -m tcp -p tcp'
        " -d 203.0.113.7 --dport 80 -j KUBE-MARK-MASQ",
        '-A KUBE-SERVICES -m comment --comment "default/web:http external IP" -m tcp -p tcp'
        f" -d 203.0.113.7 --dport 80 -j {SVC}",
    ]


def test_service_without_endpoints_is_rejected_in_filter() -> None:
    not_ready = Endpoint("10.244.9.9", 8080, ready=False, serving=False)
    text = render_iptables(state(web(not_ready, node_port=30080, protocol="UDP")))
    filt = text.split("*nat")[0]
    assert lines(filt, "-A KUBE-SERVICES ") == [
        '-A KUBE-SERVICES -m comment --comment "default/web:http has no endpoints" -m udp -p udp'
        " -d 10.96.0.10 --dport 80 -j REJECT",
    ]
    assert lines(filt, "-A KUBE-EXTERNAL-SERVICES ") == [
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/web:http has no endpoints"'
        " -m addrtype --dst-type LOCAL -m udp -p udp --dport 30080 -j REJECT",
    ]
    nat = text.split("*nat")[1]
    assert "KUBE-SVC-" not in nat and "KUBE-SEP-" not in nat and "KUBE-NODEPORTS -m" not in nat


def test_headless_services_are_skipped() -> None:
    assert render_iptables(state(web(*EPS, cluster_ip=None))) == render_iptables(state())


def test_ipv6_family_and_unnamed_port() -> None:
    svc = ServicePort("default", "v6", "", "TCP", "fd00::10", 443, endpoints=(Endpoint("fd01::5", 8443),))
    both = state(web(*EPS), svc)
    v4, v6 = render_iptables(both), render_iptables(both, family=6)
    assert "fd00::10" not in v4 and "10.96.0.10" not in v6
    assert "--comment default/v6 -m tcp -p tcp -j DNAT --to-destination [fd01::5]:8443" in v6
    assert "! -s" not in v6  # the cluster CIDR is IPv4: no masquerade rule for IPv6


def test_parse_chains_round_trips() -> None:
    chains = parse_chains(render_iptables(state(web(*EPS))))
    assert ("nat", SVC) in chains and len(chains[("nat", SVC)]) == 4
    assert chains[("filter", "KUBE-SERVICES")] == ()


def test_diff_rules_names_changed_chains() -> None:
    old = state(web(*EPS))
    assert diff_rules(old, old).empty
    # One endpoint goes: its SEP chain is removed, the SVC chain changes.
    d = diff_rules(old, state(web(*EPS[1:])))
    assert d.removed == (("nat", SEP3),) and d.changed == (("nat", SVC),) and d.added == ()
    # Add a node port: only KUBE-NODEPORTS changes.
    d = diff_rules(old, state(web(*EPS, node_port=30080)))
    assert d.changed == (("nat", "KUBE-NODEPORTS"),) and not d.added and not d.removed
    # All endpoints go: nat chains removed, the filter reject appears.
    d = diff_rules(old, state(web()))
    assert set(d.removed) == {("nat", c) for c in (SVC, SEP1, SEP2, SEP3)}
    assert set(d.changed) == {("filter", "KUBE-SERVICES"), ("nat", "KUBE-SERVICES")}
