"""Where Services and the cluster DNS live, with and without root."""

from __future__ import annotations

from kcore.cluster import LOOPBACK_SERVICE_CIDR, effective_config
from kcore.cluster_dns import dns_placement, kube_dns_objects
from kcore.config import KcoreConfig


def test_without_root_services_move_to_a_loopback_range_unless_chosen() -> None:
    assert effective_config(KcoreConfig(), privileged=False).network.service_cidr == LOOPBACK_SERVICE_CIDR
    assert effective_config(KcoreConfig(), privileged=True).network.service_cidr == "10.96.0.0/12"
    chosen = KcoreConfig.model_validate({"network": {"service_cidr": "10.43.0.0/16"}})
    assert effective_config(chosen, privileged=False).network.service_cidr == "10.43.0.0/16"


def test_dns_as_root_listens_on_the_node_behind_the_kube_dns_service() -> None:
    config = KcoreConfig.model_validate({"kubelet": {"node_ip": "192.168.1.5"}})
    placement = dns_placement(config, privileged=True)
    assert (placement.service_ip, placement.bind_address, placement.port, placement.via_service) == \
        ("10.96.0.10", "192.168.1.5", 53, True)
    service, endpoints, slice_ = kube_dns_objects(placement)
    assert service["metadata"] == {"name": "kube-dns", "namespace": "kube-system",
                                   "labels": service["metadata"]["labels"]}
    assert service["spec"]["clusterIP"] == "10.96.0.10"
    assert [(p["name"], p["port"], p["protocol"], p["targetPort"]) for p in service["spec"]["ports"]] == \
        [("dns", 53, "UDP", 53), ("dns-tcp", 53, "TCP", 53)]
    assert "selector" not in service["spec"]
    assert endpoints["subsets"][0]["addresses"] == [{"ip": "192.168.1.5"}]
    assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert slice_["endpoints"][0]["addresses"] == ["192.168.1.5"]


def test_dns_without_root_listens_on_the_loopback_service_address_and_a_high_port() -> None:
    config = effective_config(KcoreConfig(), privileged=False)
    placement = dns_placement(config, privileged=False)
    assert (placement.bind_address, placement.port, placement.via_service) == ("127.96.0.10", 10053, False)
    explicit = KcoreConfig.model_validate({"dns": {"address": "127.0.0.1", "port": 5353}})
    placement = dns_placement(explicit, privileged=True)
    assert (placement.bind_address, placement.port) == ("127.0.0.1", 5353)


def test_service_cidr_lives_in_network_and_the_older_proxy_key_still_works() -> None:
    assert KcoreConfig().network.service_cidr == "10.96.0.0/12"
    older = KcoreConfig.model_validate({"proxy": {"service_cidr": "10.43.0.0/16"}})
    assert older.network.service_cidr == "10.43.0.0/16"
    assert effective_config(older, privileged=False).network.service_cidr == "10.43.0.0/16"  # chosen on purpose
    same = KcoreConfig.model_validate({"proxy": {"service_cidr": "10.43.0.0/16"},
                                       "network": {"service_cidr": "10.43.0.0/16"}})
    assert same.network.service_cidr == "10.43.0.0/16"


def test_two_different_service_cidrs_are_an_error_naming_both() -> None:
    import pytest

    from kcore.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"network.service_cidr \(10.44.0.0/16\) and proxy.service_cidr"):
        parse_config({"proxy": {"service_cidr": "10.43.0.0/16"}, "network": {"service_cidr": "10.44.0.0/16"}})


def test_dns_forwards_to_the_hosts_resolvers_unless_told_otherwise(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kcore.cluster_dns import default_upstream

    resolv = tmp_path / "resolv.conf"
    assert default_upstream(KcoreConfig(), resolv) == []  # no such file: nothing to forward to
    resolv.write_text("nameserver 192.0.2.53\n")
    assert default_upstream(KcoreConfig(), resolv) == [str(resolv)]
    assert default_upstream(KcoreConfig.model_validate({"dns": {"upstream": []}}), resolv) == []
    chosen = KcoreConfig.model_validate({"dns": {"upstream": ["10.0.0.2:5353"]}})
    assert default_upstream(chosen, resolv) == ["10.0.0.2:5353"]
