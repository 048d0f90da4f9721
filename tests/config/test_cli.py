"""The command line: one-line errors, config show, plugins listing, port in use."""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from pathlib import Path

from support.cluster import free_port


def kcore(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kcore.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_config_show_prints_effective_toml(tmp_path: Path) -> None:
    config = tmp_path / "kcore.toml"
    config.write_text('[proxy]\nmode = "ipvs"\n[proxy.ipvs]\nscheduler = "lc"\n')
    result = kcore("config", "show", "--config", str(config))
    assert result.returncode == 0, result.stderr
    shown = tomllib.loads(result.stdout)
    assert shown["proxy"] == {"enabled": True, "mode": "ipvs",
                              "node_port_range": "30000-32767", "ipvs": {"scheduler": "lc"}}
    assert shown["network"]["service_cidr"] == "10.96.0.0/12"
    assert shown["apiserver"]["port"] == 6443


def test_bad_config_is_one_line_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "kcore.toml"
    config.write_text('[kubelet]\nruntme = "fake"\n')
    result = kcore("up", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "kubelet.runtme: unknown key (value: 'fake')" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_store_backend_lists_available(tmp_path: Path) -> None:
    config = tmp_path / "kcore.toml"
    config.write_text('[store]\nbackend = "etcd3"\n')
    result = kcore("up", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "etcd3" in last and "memory" in last and "sqlite" in last
    assert "Traceback" not in result.stderr


def test_plugins_lists_builtin_and_installed(tmp_path: Path) -> None:
    result = kcore("plugins")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["GROUP", "NAME", "DISTRIBUTION", "VERSION", "STATUS"]
    rows = {tuple(line.split()[:3]) for line in lines[1:]}
    assert ("kcore.store", "sqlite", "kcore") in rows
    assert ("kcore.scheduler", "round-robin", "kcore-scheduler-rr") in rows


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        config = tmp_path / "kcore.toml"
        config.write_text(f'[apiserver]\nbind_address = "127.0.0.1"\nport = {port}\n[store]\nbackend = "memory"\n')
        result = kcore("up", "--config", str(config), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"kcore: error: cannot listen on 127.0.0.1:{port}: the port is already in use"


def test_version() -> None:
    result = kcore("version")
    assert result.returncode == 0 and result.stdout.startswith("kcore ")


def _up_with(tmp_path: Path, extra: str) -> subprocess.CompletedProcess[str]:
    from support.cluster import host_safe_config

    config = tmp_path / "kcore.toml"
    config.write_text(host_safe_config(extra, apiserver={"bind_address": "127.0.0.1", "port": free_port()},
                                       store={"backend": "memory"}))
    return kcore("up", "--config", str(config), "--data-dir", str(tmp_path / "d"), timeout=60)


def test_an_unknown_proxy_mode_stops_kcore_up_naming_the_installed_ones(tmp_path: Path) -> None:
    result = _up_with(tmp_path, '[proxy]\nmode = "nftables"\n')
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kcore: error: proxy.mode: no proxy mode 'nftables' is installed (installed: ")
    assert "ipvs" in last and "userspace" in last


def test_an_unknown_ipvs_scheduler_stops_kcore_up_naming_the_known_ones(tmp_path: Path) -> None:
    result = _up_with(tmp_path, '[proxy]\nmode = "ipvs"\n[proxy.ipvs]\nscheduler = "fastest"\n')
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kcore: error: ") and "fastest" in last
    for known in ("rr", "wrr", "lc", "wlc", "sh", "dh", "sed", "nq"):
        assert known in last


def test_an_unknown_dns_plugin_stops_kcore_up(tmp_path: Path) -> None:
    result = _up_with(tmp_path, '[dns]\nplugin = "bind9"\n')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == \
        "kcore: error: dns.plugin: no DNS plugin 'bind9' is installed (installed: coredns)"
