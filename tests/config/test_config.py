"""The TOML configuration: defaults, plugin tables, and errors that name the key path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from kcore.config import ConfigError, KcoreConfig, load_config, parse_config, render_config


def test_defaults_follow_kubernetes() -> None:
    config = KcoreConfig()
    assert config.store.backend == "sqlite"
    assert config.apiserver.port == 6443
    assert config.network.service_cidr == "10.96.0.0/12"
    assert config.proxy.node_port_range == "30000-32767"
    assert config.network.cluster_cidr == "10.244.0.0/16"
    assert config.network.subnet_length == 24
    assert config.network.vni == 1 and config.network.port == 8472
    assert config.dns.cluster_domain == "cluster.local"
    assert config.kubelet.runtime == "process"
    assert config.kubelet.max_pods == 110
    assert config.controllers.node_lifecycle.grace_period_seconds == 40
    assert [p.name for p in config.scheduler.profiles] == ["default-scheduler"]


def test_every_required_section_exists() -> None:
    for section in ("store", "apiserver", "scheduler", "proxy", "network", "dns",
                    "logging", "storage", "kubelet", "plugins"):
        assert section in KcoreConfig.model_fields


def test_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "kcore.toml"
    path.write_text(
        """
[apiserver]
port = 7443

[proxy]
mode = "ipvs"

[proxy.ipvs]
scheduler = "lc"

[[scheduler.profiles]]
name = "default-scheduler"

[[scheduler.profiles]]
name = "rr"
algorithm = "round-robin"

[plugins.my-thing]
answer = 42
"""
    )
    config = load_config(path)
    assert config.apiserver.port == 7443
    assert config.proxy.mode == "ipvs"
    assert config.proxy.plugin_settings("ipvs") == {"scheduler": "lc"}
    assert config.proxy.plugin_settings("iptables") == {}
    assert [(p.name, p.algorithm) for p in config.scheduler.profiles] == [
        ("default-scheduler", None), ("rr", "round-robin")]
    assert config.plugins == {"my-thing": {"answer": 42}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"proxy": {"modee": "ipvs"}}, "proxy.modee: unknown key (value: 'ipvs')"),
        ({"apiserver": {"port": "https"}}, "apiserver.port: Input should be a valid integer"),
        ({"apiserver": {"port": 70000}}, "apiserver.port: Input should be less than or equal to 65535 (value: 70000)"),
        ({"kubelet": {"runtim": "fake"}}, "kubelet.runtim: unknown key"),
        ({"nonsense": True}, "nonsense: unknown key (value: True)"),
        ({"scheduler": {"profiles": [{"name": "a"}, {"name": "a"}]}}, "scheduler.profiles: duplicate profile names: a"),
        ({"scheduler": {"profiles": [{"nam": "a"}]}}, "scheduler.profiles[0].nam: unknown key (value: 'a')"),
        ({"network": {"cluster_cidr": "10.244.0.1/16"}}, "network.cluster_cidr: not a valid CIDR"),
        ({"proxy": {"node_port_range": "32767-30000"}}, "proxy.node_port_range: not a valid port range"),
        ({"controllers": {"node_lifecycle": {"grace_period_seconds": "soon"}}},
         "controllers.node_lifecycle.grace_period_seconds: Input should be a valid number"),
        ({"logging": {"format": "xml"}}, "logging.format: Input should be 'auto', 'console' or 'json' (value: 'xml')"),
    ],
)
def test_errors_name_the_key_path_and_value(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert expected in str(info.value)


def test_a_scalar_where_a_plugin_table_could_be_is_still_an_error() -> None:
    with pytest.raises(ConfigError, match=r"proxy\.ipvs: unknown key \(value: 'lc'\)"):
        parse_config({"proxy": {"ipvs": "lc"}})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration .*nope.toml"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[apiserver\nport = 1\n")
    with pytest.raises(ConfigError, match="bad.toml is not valid TOML"):
        load_config(bad)


def test_render_round_trips_through_toml() -> None:
    config = parse_config({"proxy": {"mode": "ipvs", "ipvs": {"scheduler": "sh"}},
                           "kubelet": {"images": {"nginx": {"command": ["python3", "-m", "http.server"]}}}})
    text = render_config(config)
    reparsed = tomllib.loads(text)
    assert reparsed["proxy"]["ipvs"] == {"scheduler": "sh"}
    assert parse_config(reparsed) == config
