"""The ipvs mode: table, diff, ipvsadm rendering and data paths, through a plugin host."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kcore.proxy.state import Endpoint, ProxyState, ServicePort
from kcore.testing import plugin_host_for
from kcore_proxy_ipvs.datapath import (
    IpvsadmDataPath,
    RecordingDataPath,
    UserspaceDataPath,
    ipvsadm_commands,
    render_commands,
)
from kcore_proxy_ipvs.kernel import IpvsSupport, detect_ipvs
from kcore_proxy_ipvs.plugin import IpvsProxy, IpvsSettingsError
from kcore_proxy_ipvs.table import VirtualServiceKey, build_table, diff_tables

GROUP, NAME = "kcore.proxy", "ipvs"


def web(*eps: Endpoint, **kw: Any) -> ServicePort:
    fields: dict[str, Any] = dict(
        namespace="default", name="web", port_name="http", protocol="TCP", cluster_ip="10.96.0.10", port=80,
        endpoints=eps,
    )
    fields.update(kw)
    return ServicePort(**fields)


EP1 = Endpoint("10.244.1.5", 8080)
EP2 = Endpoint("10.244.2.7", 8080)


def call(host: Any, hook: str, **kw: Any) -> Any:
    return asyncio.run(host.acall_driver(GROUP, NAME, hook, **kw))


def start(proxy: IpvsProxy, settings: dict[str, Any]) -> None:
    asyncio.run(proxy.kcore_proxy_start(settings=settings, context=None))


@pytest.fixture
def recorder() -> RecordingDataPath:
    return RecordingDataPath()


@pytest.fixture
def host(recorder: RecordingDataPath) -> Any:
    return plugin_host_for(named={f"{GROUP}:{NAME}": IpvsProxy(datapath=recorder)})


def test_render_matches_ipvsadm_ln(host: Any) -> None:
    state = ProxyState(services=(web(EP1),))
    call(host, "kcore_proxy_start", settings={}, context=None)
    assert call(host, "kcore_proxy_render_rules", state=state) == (
        "IP Virtual Server version 1.2.1 (size=4096)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  10.96.0.10:80 rr\n"
        "  -> 10.244.1.5:8080              Masq    1      0          0\n"
    )


def test_render_nodeport_udp_ipv6_affinity_weights_and_headless() -> None:
    state = ProxyState(
        node_ips=("192.168.1.10",),
        services=(
            web(EP1, Endpoint("10.244.2.7", 8080, weight=3), node_port=30080, session_affinity=True),
            ServicePort("kube-system", "dns", "dns", "UDP", "10.96.0.53", 53, endpoints=(Endpoint("10.244.1.9", 53),)),
            ServicePort("default", "v6", "", "TCP", "fd00::10", 443, endpoints=(Endpoint("fd01::5", 8443),)),
            ServicePort("default", "headless", "", "TCP", None, 80, endpoints=(EP1,)),
        ),
    )
    proxy = IpvsProxy(datapath=RecordingDataPath())
    start(proxy, {"scheduler": "wlc"})
    lines = proxy.kcore_proxy_render_rules(state).splitlines()[3:]
    assert lines == [
        "TCP  10.96.0.10:80 wlc persistent 10800",
        "  -> 10.244.1.5:8080              Masq    1      0          0",
        "  -> 10.244.2.7:8080              Masq    3      0          0",
        "TCP  192.168.1.10:30080 wlc persistent 10800",
        "  -> 10.244.1.5:8080              Masq    1      0          0",
        "  -> 10.244.2.7:8080              Masq    3      0          0",
        "TCP  [fd00::10]:443 wlc",
        "  -> [fd01::5]:8443               Masq    1      0          0",
        "UDP  10.96.0.53:53 wlc",
        "  -> 10.244.1.9:53                Masq    1      0          0",
    ]


def test_unready_endpoints_are_not_real_servers() -> None:
    state = ProxyState(services=(web(EP1, Endpoint("10.244.3.3", 8080, ready=False)),))
    (vs,) = build_table(state, "rr").values()
    assert [rs.ip for rs in vs.real_servers] == ["10.244.1.5"]


def test_sync_applies_the_diff(host: Any, recorder: RecordingDataPath) -> None:
    call(host, "kcore_proxy_start", settings={"scheduler": "sed"}, context=None)
    call(host, "kcore_proxy_sync", state=ProxyState(services=(web(EP1),)))
    (first,) = recorder.diffs
    assert [vs.key for vs in first.added_services] == [VirtualServiceKey("TCP", "10.96.0.10", 80)]
    assert first.added_services[0].scheduler == "sed"

    call(host, "kcore_proxy_sync", state=ProxyState(services=(web(EP2),)))
    second = recorder.diffs[-1]
    assert second.summary() == {
        "services_added": 0, "services_removed": 0, "services_updated": 0,
        "servers_added": 1, "servers_removed": 1, "servers_updated": 0,
    }
    assert second.added_servers[0].server.ip == "10.244.2.7"
    assert second.removed_servers[0].server.ip == "10.244.1.5"

    # Idempotent: the same state changes nothing and the data path is not called.
    call(host, "kcore_proxy_sync", state=ProxyState(services=(web(EP2),)))
    assert len(recorder.diffs) == 2
    proxy = host.driver(GROUP, NAME)
    assert proxy.last_diff.empty

    call(host, "kcore_proxy_cleanup")
    assert [vs.key.address for vs in recorder.diffs[-1].removed_services] == ["10.96.0.10"]
    assert recorder.table == {} and proxy.table == {}


def test_diff_reports_updated_services_and_weights() -> None:
    old = build_table(ProxyState(services=(web(EP1, EP2),)), "rr")
    new = build_table(
        ProxyState(services=(web(EP1, Endpoint("10.244.2.7", 8080, weight=5), session_affinity=True),)), "rr"
    )
    diff = diff_tables(old, new)
    assert [vs.persistence_seconds for vs in diff.updated_services] == [10800]
    assert [(c.server.ip, c.server.weight) for c in diff.updated_servers] == [("10.244.2.7", 5)]
    assert not diff.added_servers and not diff.removed_servers
    assert diff_tables(new, new).empty


def test_ipvsadm_commands_are_rendered_not_run() -> None:
    ran: list[list[str]] = []
    datapath = IpvsadmDataPath(runner=lambda cmd: ran.append(list(cmd)))
    proxy = IpvsProxy(datapath=datapath)
    start(proxy, {"scheduler": "wrr"})
    proxy.apply(ProxyState(services=(web(EP1, session_affinity=True),
                                                ServicePort("ns", "dns", "", "UDP", "10.96.0.53", 53)),))
    proxy.apply(ProxyState(services=(web(EP2),)))
    assert render_commands(ran) == (
        "ipvsadm -A -t 10.96.0.10:80 -s wrr -p 10800\n"
        "ipvsadm -a -t 10.96.0.10:80 -r 10.244.1.5:8080 -m -w 1\n"
        "ipvsadm -A -u 10.96.0.53:53 -s wrr\n"
        "ipvsadm -d -t 10.96.0.10:80 -r 10.244.1.5:8080\n"
        "ipvsadm -D -u 10.96.0.53:53\n"
        "ipvsadm -E -t 10.96.0.10:80 -s wrr\n"
        "ipvsadm -a -t 10.96.0.10:80 -r 10.244.2.7:8080 -m -w 1\n"
    )
    sctp = build_table(ProxyState(services=(web(EP1, protocol="SCTP", cluster_ip="fd00::1"),)), "rr")
    assert ipvsadm_commands(diff_tables({}, sctp))[0] == ["ipvsadm", "-A", "--sctp-service", "[fd00::1]:80", "-s", "rr"]


def test_userspace_datapath_schedules_and_counts_connections() -> None:
    datapath = UserspaceDataPath()
    proxy = IpvsProxy(datapath=datapath, forward=False)
    start(proxy, {"scheduler": "lc"})
    proxy.apply(ProxyState(services=(web(EP1, EP2),)))
    first = datapath.pick("TCP", "10.96.0.10", 80)
    second = datapath.pick("TCP", "10.96.0.10", 80)
    assert {first.ip, second.ip} == {"10.244.1.5", "10.244.2.7"}  # type: ignore[union-attr]
    datapath.closed("TCP", "10.96.0.10", 80, first)  # type: ignore[arg-type]
    assert datapath.pick("TCP", "10.96.0.10", 80).ip == first.ip  # type: ignore[union-attr]
    assert datapath.pick("TCP", "10.96.0.99", 80) is None
    text = proxy.kcore_proxy_render_rules(ProxyState(services=(web(EP1, EP2),)))
    assert "  -> 10.244.1.5:8080              Masq    1      1          0" in text.splitlines()
    # A weight change keeps the live counts.
    proxy.apply(ProxyState(services=(web(EP1, Endpoint("10.244.2.7", 8080, weight=2)),)))
    assert datapath.stats(VirtualServiceKey("TCP", "10.96.0.10", 80), build_table(
        ProxyState(services=(web(EP2),)), "lc")[VirtualServiceKey("TCP", "10.96.0.10", 80)].real_servers[0]) == (1, 0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"scheduler": "fifo"}, "proxy.ipvs.scheduler: unknown IPVS scheduler 'fifo'; choose one of: "
                                "rr, wrr, lc, wlc, sh, dh, sed, nq"),
        ({"datapath": "ebpf"}, "proxy.ipvs.datapath: unknown data path 'ebpf'; choose one of: auto, ipvsadm, userspace"),
        ({"schedular": "rr"}, "proxy.ipvs: unknown setting(s) schedular; known: scheduler, datapath"),
    ],
)
def test_bad_settings_name_the_key(settings: dict[str, str], message: str) -> None:
    with pytest.raises(IpvsSettingsError) as err:
        start(IpvsProxy(), settings)
    assert str(err.value) == message


def probed(available: bool, binary: str | None = "/usr/sbin/ipvsadm", root: bool = True) -> IpvsProxy:
    return IpvsProxy(
        probe=lambda: IpvsSupport(available, "test"), ipvsadm=lambda: binary, is_root=lambda: root
    )


def test_auto_uses_userspace_without_kernel_ipvs() -> None:
    proxy = probed(False)
    start(proxy, {})
    assert isinstance(proxy.datapath, UserspaceDataPath)
    for proxy in (probed(True, binary=None), probed(True, root=False)):
        start(proxy, {"datapath": "auto"})
        assert isinstance(proxy.datapath, UserspaceDataPath)


def test_auto_uses_ipvsadm_only_with_kernel_binary_and_root() -> None:
    proxy = probed(True)
    start(proxy, {})
    assert isinstance(proxy.datapath, IpvsadmDataPath)
    assert proxy.datapath.binary == "/usr/sbin/ipvsadm"


def test_explicit_ipvsadm_without_kernel_support_is_a_clear_error() -> None:
    with pytest.raises(IpvsSettingsError, match=r"ipvsadm cannot be used: the kernel has no IPVS \(test\)"):
        start(probed(False), {"datapath": "ipvsadm"})


def test_detect_ipvs(tmp_path: Any) -> None:
    present = tmp_path / "ip_vs"
    present.write_text("")
    assert detect_ipvs(present, modprobe=lambda: None).available
    missing = tmp_path / "nope"
    assert detect_ipvs(missing, modprobe=lambda: True).available
    assert not detect_ipvs(missing, modprobe=lambda: False).available
    assert "modprobe is not installed" in detect_ipvs(missing, modprobe=lambda: None).reason


def test_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group=GROUP) if ep.name == NAME]
    assert ep.load() is IpvsProxy
