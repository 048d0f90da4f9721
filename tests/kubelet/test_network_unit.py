"""The kubelet's pod-network glue as pure pieces: CNI results, hosts files, and when
pods cannot get a namespace of their own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kcore.config import KcoreConfig
from kcore.kubelet.network import PodNetwork, PodNetworkError, cluster_dns_ip, hosts_file, ip_from_result, netns_name


class FakeHost:
    def __init__(self, names: list[str]) -> None:
        self._names = names

    def names(self, group: str) -> list[str]:
        assert group == "kcore.cni"
        return self._names


def network(plugin: str, installed: list[str]) -> PodNetwork:
    config = KcoreConfig.model_validate({"network": {"plugin": plugin}})
    return PodNetwork(FakeHost(installed), config, client=None, node_name="n1", data_dir=Path("/tmp/x"))


def test_the_pod_ip_is_the_first_address_of_the_cni_result() -> None:
    result = {"ips": [{"address": "10.244.1.7/24", "gateway": "10.244.1.1"}, {"address": "fd00::7/64"}]}
    assert ip_from_result(result) == "10.244.1.7"
    with pytest.raises(PodNetworkError, match="no IP address"):
        ip_from_result({"ips": []})
    with pytest.raises(PodNetworkError, match="invalid address"):
        ip_from_result({"ips": [{"address": "banana"}]})


def test_netns_names_are_stable_per_pod() -> None:
    assert netns_name("8d3f") == "kcore-8d3f"


def test_hosts_file_names_the_pod_and_its_aliases() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "web-0", "namespace": "shop"},
                           "spec": {"hostname": "web-0", "subdomain": "web",
                                    "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["db", "db.local"]}]}}
    text = hosts_file(pod, "10.244.1.7")
    assert "127.0.0.1\tlocalhost" in text
    assert "10.244.1.7\tweb-0.web.shop.svc\tweb-0" in text
    assert "10.1.2.3\tdb db.local" in text
    assert "10.244.1.7\tplain" in hosts_file({"metadata": {"name": "plain"}, "spec": {}}, "10.244.1.7")


def test_why_pods_stay_on_the_host_network(monkeypatch: pytest.MonkeyPatch) -> None:
    assert network("none", ["flannel"]).unavailable_reason() == '[network] plugin = "none"'
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert "need root" in str(network("flannel", ["flannel"]).unavailable_reason())
    monkeypatch.setattr("os.geteuid", lambda: 0)
    reason = network("calico", ["flannel"]).unavailable_reason()
    assert reason == "network plugin 'calico' is not installed (installed: flannel)"
    assert network("flannel", ["flannel"]).unavailable_reason() is None


def test_host_network_pods_get_no_namespace() -> None:
    net = network("flannel", ["flannel"])
    net.enabled = True
    assert net.wants_namespace({"spec": {}})
    assert not net.wants_namespace({"spec": {"hostNetwork": True}})
    net.enabled = False
    assert not net.wants_namespace({"spec": {}})


def test_cluster_dns_is_the_tenth_service_address_unless_set() -> None:
    assert cluster_dns_ip(KcoreConfig()) == "10.96.0.10"
    assert cluster_dns_ip(KcoreConfig.model_validate({"network": {"service_cidr": "10.43.0.0/16"}})) == "10.43.0.10"
    assert cluster_dns_ip(KcoreConfig.model_validate({"dns": {"service_ip": "10.43.0.53"}})) == "10.43.0.53"
