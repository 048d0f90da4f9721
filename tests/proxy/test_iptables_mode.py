"""The ``iptables`` proxy mode: the minimal restore input (pure), the commands it
runs (a recording runner, no root), and real traffic through real rules inside
network namespaces this module creates and deletes (root).

Topology of the root tests, all inside throw-away namespaces::

    node netns (the mode runs here)           endpoint netns epN (N = 1..3)
    vethN 10.0.N.1/24  <----- veth ----->     eth0 10.0.N.2/24, HTTP :8080 answering "epN"
    10.96.0.0/12 dev veth1 (a route for cluster IPs to leave by; DNAT re-routes)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import structlog

from kcore.proxy.iptables import endpoint_chain, render_chains, render_iptables, service_chain
from kcore.proxy.iptables_mode import (
    JUMPS,
    CommandResult,
    IptablesProxy,
    Settings,
    TOP_CHAINS,
    needs_route_localnet,
    removal_batches,
    restore_batches,
    restore_input,
)
from kcore.proxy.state import Endpoint, ProxyState, ServicePort
from kcore.testing import plugin_host_for, proxy_sync_once

CLUSTER_IP = "10.96.0.50"
NODE_PORT = 30080
EPS = tuple(Endpoint(f"10.0.{i}.2", 8080, pod=f"default/ep{i}") for i in (1, 2, 3))


def web(*eps: Endpoint, **kw: Any) -> ServicePort:
    fields: dict[str, Any] = dict(namespace="default", name="web", port_name="http", protocol="TCP",
                                  cluster_ip=CLUSTER_IP, port=80, node_port=NODE_PORT, endpoints=eps)
    fields.update(kw)
    return ServicePort(**fields)


def other(n: int) -> ServicePort:
    return ServicePort("default", f"svc{n}", "http", "TCP", f"10.96.1.{n}", 80,
                       endpoints=(Endpoint(f"10.244.{n}.2", 80),))


def state(*services: ServicePort, node_ips: tuple[str, ...] = ("10.0.1.1", "127.0.0.1")) -> ProxyState:
    return ProxyState(services=services, node_ips=node_ips, cluster_cidr="10.244.0.0/16")


def declared(text: str) -> list[str]:
    return [line[1:].split()[0] for line in text.splitlines() if line.startswith(":")]


# ---------------------------------------------------------------------------
# restore_input: the minimal iptables-restore input (pure)
# ---------------------------------------------------------------------------


def test_nothing_changed_means_no_input() -> None:
    chains = render_chains(state(web(*EPS), other(1)))
    assert restore_input(chains, chains) == ""
    assert restore_input(chains, dict(chains)) == ""


def test_endpoint_leaving_rewrites_its_service_chain_and_deletes_its_sep() -> None:
    before = render_chains(state(web(*EPS), other(1)))
    after = render_chains(state(web(*EPS[:2], replace(EPS[2], ready=False)), other(1)))
    text = restore_input(after, before)
    svc, gone = service_chain(web()), endpoint_chain(web(), EPS[2])
    assert text == "\n".join([
        "*nat",
        f":{svc} - [0:0]",
        f":{gone} - [0:0]",
        *after[("nat", svc)],
        f"-X {gone}",
        "COMMIT",
    ]) + "\n"
    assert "KUBE-SERVICES" not in text and "*filter" not in text  # untouched chains are not sent
    assert after[("nat", svc)][-1].endswith(f"-j {endpoint_chain(web(), EPS[1])}")


def test_new_service_writes_its_chains_and_the_services_chain_only() -> None:
    before = render_chains(state(web(*EPS)))
    after = render_chains(state(web(*EPS), other(7)))
    text = restore_input(after, before)
    new = other(7)
    assert declared(text) == ["KUBE-SERVICES", service_chain(new), endpoint_chain(new, new.endpoints[0])]
    assert text.startswith("*nat\n") and "-X" not in text
    # And back: its chains are deleted, KUBE-SERVICES rewritten without it.
    back = restore_input(before, after)
    assert declared(back) == ["KUBE-SERVICES", endpoint_chain(new, new.endpoints[0]), service_chain(new)]
    assert f"-X {service_chain(new)}" in back and "10.96.1.7" not in back


def test_last_endpoint_leaving_moves_the_service_to_the_filter_reject() -> None:
    before = render_chains(state(web(*EPS)))
    after = render_chains(state(web()))
    text = restore_input(after, before)
    assert text.startswith("*filter\n:KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n")
    assert "has no endpoints" in text and text.count("-X KUBE-SEP-") == 3 and f"-X {service_chain(web())}" in text


def test_full_input_writes_everything_and_deletes_only_stale_owned_chains() -> None:
    desired = render_chains(state(web(*EPS)))
    existing = [("nat", "KUBE-SVC-STALESTALESTALE1"), ("nat", "KUBE-SEP-STALESTALESTALE1"), ("nat", "KUBE-SERVICES"),
                ("nat", "PREROUTING"), ("nat", "DOCKER"), ("nat", "KUBE-KUBELET-CANARY"), ("filter", "KUBE-FIREWALL"),
                ("mangle", "KUBE-SVC-IN-ANOTHER-TABLE")]
    text = restore_input(desired, None, existing)
    stale = ["KUBE-SEP-STALESTALESTALE1", "KUBE-SVC-STALESTALESTALE1"]
    assert declared(text) == [chain for _, chain in desired] + stale
    assert text.endswith("-X KUBE-SEP-STALESTALESTALE1\n-X KUBE-SVC-STALESTALESTALE1\nCOMMIT\n")
    for foreign in ("DOCKER", "KUBE-KUBELET-CANARY", "KUBE-FIREWALL", "PREROUTING", "KUBE-SVC-IN-ANOTHER-TABLE"):
        assert foreign not in text
    # Every desired rule is in it, filter first.
    assert [line for line in text.splitlines() if line.startswith("-A")] == [
        rule for rules in desired.values() for rule in rules]
    assert restore_input({}, None, [("nat", "KUBE-SERVICES"), ("filter", "KUBE-FORWARD")]) == (
        "*filter\n:KUBE-FORWARD - [0:0]\n-X KUBE-FORWARD\nCOMMIT\n"
        "*nat\n:KUBE-SERVICES - [0:0]\n-X KUBE-SERVICES\nCOMMIT\n")


class Kernel:
    """Just enough of iptables-restore --noflush to check that batches are valid in order."""

    def __init__(self, chains: dict[tuple[str, str], list[str]] | None = None) -> None:
        self.chains = chains if chains is not None else {}

    def restore(self, text: str) -> None:
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":"):
                self.chains[(table, line[1:].split()[0])] = []  # create or flush
            elif line.startswith("-A "):
                words = line.split()
                target = words[words.index("-j") + 1]
                assert not target.startswith("KUBE-") or (table, target) in self.chains, f"{target} missing: {line}"
                self.chains[(table, words[1])].append(line)
            elif line.startswith("-X "):
                chain = line.split()[1]
                users = [r for rules in self.chains.values() for r in rules if r.endswith(f"-j {chain}")]
                assert not users, f"{chain} still jumped to: {users[:1]}"
                del self.chains[(table, chain)]


def test_big_syncs_are_split_in_dependency_order_and_stay_valid_between_calls() -> None:
    many = state(web(*EPS), *(other(i) for i in range(1, 60)))
    desired = render_chains(many)
    assert restore_batches(desired, None, (), 0) == [restore_input(desired, None)]
    assert restore_batches(desired, None, (), 10_000) == [restore_input(desired, None)]
    assert restore_batches(desired, desired, (), 5) == []

    kernel = Kernel({("nat", "KUBE-SVC-STALESTALESTALE1"):
                     ["-A KUBE-SVC-STALESTALESTALE1 -j KUBE-SEP-STALESTALESTALE1"],
                     ("nat", "KUBE-SEP-STALESTALESTALE1"): []})
    kernel.chains[("nat", "KUBE-SERVICES")] = ["-A KUBE-SERVICES -d 10.96.9.9 -j KUBE-SVC-STALESTALESTALE1"]
    batches = restore_batches(desired, None, list(kernel.chains), 20)
    assert len(batches) > 5
    for batch in batches[:-1]:
        assert "\n-X " not in batch and not any(chain in declared(batch) for _, chain in TOP_CHAINS)
        assert sum(line.startswith("-A") for line in batch.splitlines()) < 20 + 5
        kernel.restore(batch)
    kernel.restore(batches[-1])
    assert {k: tuple(v) for k, v in kernel.chains.items()} == desired  # stale chains gone, everything in place

    # Incremental and big: the same order; small: one call.
    fewer = render_chains(state(web(*EPS[:2]), *(other(i) for i in range(30, 90))))
    for batch in restore_batches(fewer, desired, (), 20):
        kernel.restore(batch)
    assert {k: tuple(v) for k, v in kernel.chains.items()} == fewer
    one = render_chains(state(web(*EPS[:1]), *(other(i) for i in range(30, 90))))
    assert restore_batches(one, fewer, (), 20) == [restore_input(one, fewer)]

    # Cleanup in batches: entry chains first, nothing left.
    removal = removal_batches([*kernel.chains, ("nat", "DOCKER")], 7)
    assert len(removal) > 3 and "KUBE-SERVICES" in declared(removal[0])
    for batch in removal:
        kernel.restore(batch)
    assert kernel.chains == {}
    assert removal_batches([("nat", "DOCKER")], 7) == []


def test_route_localnet_only_for_node_ports_on_loopback() -> None:
    assert needs_route_localnet(state(web(*EPS)))
    assert not needs_route_localnet(state(web(*EPS), node_ips=("10.0.1.1",)))
    assert not needs_route_localnet(state(web(*EPS, node_port=None)))


def test_settings_are_validated_by_key_path() -> None:
    parsed = Settings.parse({"netns": "kcore-x", "full_sync_every": 5, "max_restore_rules": 0})
    assert parsed == Settings("kcore-x", 5, 0)
    assert Settings.parse({}, netns="dflt").netns == "dflt"
    with pytest.raises(ValueError, match=r"proxy\.iptables\.netns: not a network namespace name"):
        Settings.parse({"netns": "../etc"})
    with pytest.raises(ValueError, match=r"proxy\.iptables\.full_sync_every: must be a positive integer"):
        Settings.parse({"full_sync_every": 0})
    with pytest.raises(ValueError, match=r"proxy\.iptables\.net_ns: unknown setting"):
        Settings.parse({"net_ns": "x"})


# ---------------------------------------------------------------------------
# The commands the mode runs (recording runner, no root)
# ---------------------------------------------------------------------------


@dataclass
class Recorder:
    """Answers commands like a namespace with empty tables would, and records them."""

    calls: list[tuple[list[str], str | None]] = field(default_factory=list)
    fail_restore: bool = False
    saved: str = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"

    async def __call__(self, argv: Sequence[str], stdin: str | None) -> CommandResult:
        argv = list(argv)
        self.calls.append((argv, stdin))
        command = argv[4:] if argv[:3] == ["ip", "netns", "exec"] else argv
        if command[0] == "iptables-save":
            return CommandResult(0, self.saved, "")
        if command[0] == "iptables-restore" and self.fail_restore:
            return CommandResult(1, "", "iptables-restore: line 3 failed\n")
        if command[0] == "iptables" and "-C" in command:
            return CommandResult(1, "", "Bad rule (does a matching rule exist in that chain?).\n")
        return CommandResult(0, "", "")

    def commands(self) -> list[str]:
        return [argv[4] if argv[:3] == ["ip", "netns", "exec"] else argv[0] for argv, _ in self.calls]

    def restores(self) -> list[str]:
        return [stdin or "" for argv, stdin in self.calls if "iptables-restore" in argv]


async def started(recorder: Recorder, settings: dict[str, Any] | None = None, euid: int = 0) -> IptablesProxy:
    mode = IptablesProxy(run=recorder, geteuid=lambda: euid)
    await mode.kcore_proxy_start(settings={"netns": "kcore-fake", **(settings or {})}, context=None)
    return mode


async def test_first_sync_is_full_then_unchanged_syncs_run_nothing() -> None:
    rec = Recorder()
    mode = await started(rec)
    s = state(web(*EPS))
    await mode.kcore_proxy_sync(s)
    assert all(argv[:4] == ["ip", "netns", "exec", "kcore-fake"] for argv, _ in rec.calls)
    assert rec.commands() == ["iptables-save", "iptables-save", "iptables-restore",
                              *["iptables"] * (2 * len(JUMPS)), "sh", "sh"]
    assert rec.restores() == [render_iptables(s)]
    restore_argv = next(argv for argv, _ in rec.calls if "iptables-restore" in argv)
    assert "--noflush" in restore_argv
    inserted = [argv[4:] for argv, _ in rec.calls if "-I" in argv]
    assert [(a[a.index("-t") + 1], a[a.index("-I") + 1], a[-1]) for a in inserted] == [
        (t, c, spec[-1]) for t, c, spec in JUMPS]
    sysctls = [argv[-2:] for argv, _ in rec.calls if "sh" in argv]
    assert sysctls == [["net/ipv4/ip_forward", "1"], ["net/ipv4/conf/all/route_localnet", "1"]]

    rec.calls.clear()
    await mode.kcore_proxy_sync(s)
    await mode.kcore_proxy_sync(replace(s, generation=7))
    assert rec.calls == []  # nothing changed: no command at all

    changed = state(web(*EPS[:2]))
    await mode.kcore_proxy_sync(changed)
    assert rec.commands() == ["iptables-restore"]
    assert rec.restores() == [restore_input(render_chains(changed), render_chains(s))]
    assert mode.last_restore == rec.restores()[0] and mode.status()["restores"] == 2


async def test_failed_restore_raises_and_the_next_sync_is_full() -> None:
    rec = Recorder()
    mode = await started(rec)
    s1, s2 = state(web(*EPS)), state(web(*EPS[:1]))
    await mode.kcore_proxy_sync(s1)
    rec.fail_restore = True
    with pytest.raises(RuntimeError, match=r"^iptables-restore failed in network namespace kcore-fake \(exit 1\): "
                       r"iptables-restore: line 3 failed$"):
        await mode.kcore_proxy_sync(s2)
    rec.fail_restore = False
    rec.calls.clear()
    await mode.kcore_proxy_sync(s2)
    assert rec.commands()[:2] == ["iptables-save", "iptables-restore"]
    assert rec.restores() == [render_iptables(s2)]


async def test_full_sync_every_n_syncs() -> None:
    rec = Recorder()
    mode = await started(rec, {"full_sync_every": 3})
    sizes = []
    for n in range(1, 7):
        rec.calls.clear()
        await mode.kcore_proxy_sync(state(web(*EPS), *(other(i) for i in range(n))))
        sizes.append("iptables-save" in rec.commands())
    assert sizes == [True, False, False, True, False, False]


async def test_without_root_it_warns_once_and_keeps_rendering() -> None:
    rec = Recorder()
    mode = await started(rec, euid=1000)
    with structlog.testing.capture_logs() as logs:
        await mode.kcore_proxy_sync(state(web(*EPS)))
        await mode.kcore_proxy_sync(state(web(*EPS[:1])))
        await mode.kcore_proxy_cleanup()
    assert rec.calls == []
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [w["event"] for w in warnings] == [
        "iptables mode cannot install rules: not running as root (euid 1000); "
        "`kcore proxy rules` shows what it would install"]
    assert mode.status()["installing"] is False
    assert mode.kcore_proxy_render_rules(state(web(*EPS))) == render_iptables(state(web(*EPS)))


async def test_missing_namespace_is_named_in_the_warning() -> None:
    async def broken(argv: Sequence[str], stdin: str | None) -> CommandResult:
        return CommandResult(1, "", 'Cannot open network namespace "kcore-fake": No such file or directory\n')

    mode = IptablesProxy(run=broken, geteuid=lambda: 0)
    await mode.kcore_proxy_start(settings={"netns": "kcore-fake"}, context=None)
    with structlog.testing.capture_logs() as logs:
        await mode.kcore_proxy_sync(state(web(*EPS)))
    assert any('Cannot open network namespace "kcore-fake"' in e["event"] for e in logs)


async def test_cleanup_deletes_jumps_and_owned_chains_found_by_save() -> None:
    rec = Recorder(saved="*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FORWARD - [0:0]\n:KUBE-FIREWALL - [0:0]\nCOMMIT\n"
                         "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n:DOCKER - [0:0]\nCOMMIT\n")
    mode = IptablesProxy(netns="kcore-fake", run=rec, geteuid=lambda: 0)  # never started: as after a restart
    await mode.kcore_proxy_cleanup()
    assert [argv[4:7] for argv, _ in rec.calls][:3] == [["iptables-save", "-t", "nat"],
                                                       ["iptables", "-w", "5"], ["iptables", "-w", "5"]]
    checks = [argv for argv, _ in rec.calls if "-C" in argv]
    assert len(checks) == len(JUMPS)  # every jump looked for (none present here)
    assert rec.restores() == ["*filter\n:KUBE-FORWARD - [0:0]\n-X KUBE-FORWARD\nCOMMIT\n"
                              "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n"
                              "-X KUBE-SERVICES\n-X KUBE-SVC-AAAAAAAAAAAAAAAA\nCOMMIT\n"]


def test_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (ep,) = [ep for ep in entry_points(group="kcore.proxy") if ep.name == "iptables"]
    assert ep.value == "kcore.proxy.iptables_mode:IptablesProxy"
    host = plugin_host_for(named={"kcore.proxy:iptables": ep.load()})
    from kcore.proxy.runner import render_rules

    assert render_rules(host, "iptables", state(web(*EPS))) == render_iptables(state(web(*EPS)))


# ---------------------------------------------------------------------------
# Real rules, real traffic (root, inside namespaces created here)
# ---------------------------------------------------------------------------

SERVER = r"""
import http.server, sys
name = sys.argv[1].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(name)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(name)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    request_queue_size = 128
S(("0.0.0.0", 8080), H).serve_forever()
"""

# N GETs, each on a new connection; prints {"answer": count}, "ERR:<type>" for failures
# (stops after 3 failures in a row).
CLIENT = r"""
import collections, http.client, json, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
counts, failed = collections.Counter(), 0
for _ in range(n):
    try:
        c = http.client.HTTPConnection(host, port, timeout=3)
        c.request("GET", "/")
        counts[c.getresponse().read().decode()] += 1
        c.close()
        failed = 0
    except Exception as exc:
        counts["ERR:" + type(exc).__name__] += 1
        failed += 1
        if failed == 3:
            break  # broken: fail fast rather than time out n times
print(json.dumps(counts))
"""


def sh(*argv: str, netns: str | None = None, check: bool = True) -> str:
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    result = subprocess.run(full, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(full)}: {result.stderr.strip()}")
    return result.stdout


@dataclass
class Net:
    node: str
    endpoints: list[str]
    created: list[str]
    servers: list[subprocess.Popen[bytes]]

    def get(self, host: str, port: int, n: int) -> Counter[str]:
        """``n`` requests from inside the node namespace, each a new connection."""
        out = sh(sys.executable, "-c", CLIENT, host, str(port), str(n), netns=self.node)
        return Counter(json.loads(out))

    def save(self, *args: str) -> str:
        return sh("iptables-save", *args, netns=self.node)

    def sysctl(self, key: str) -> str:
        return sh("cat", f"/proc/sys/{key}", netns=self.node).strip()


root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    prefix = f"kcore-iptm-{secrets.token_hex(4)}"
    made = Net(f"{prefix}-node", [], [], [])
    try:
        for name in [made.node, *(f"{prefix}-ep{i}" for i in (1, 2, 3))]:
            sh("ip", "netns", "add", name)
            made.created.append(name)
            sh("ip", "link", "set", "lo", "up", netns=name)
        for i in (1, 2, 3):
            ep = f"{prefix}-ep{i}"
            made.endpoints.append(ep)
            sh("ip", "link", "add", f"veth{i}", "type", "veth", "peer", "name", "eth0", "netns", ep, netns=made.node)
            sh("ip", "addr", "add", f"10.0.{i}.1/24", "dev", f"veth{i}", netns=made.node)
            sh("ip", "link", "set", f"veth{i}", "up", netns=made.node)
            sh("ip", "addr", "add", f"10.0.{i}.2/24", "dev", "eth0", netns=ep)
            sh("ip", "link", "set", "eth0", "up", netns=ep)
            sh("ip", "route", "add", "default", "via", f"10.0.{i}.1", netns=ep)
            made.servers.append(subprocess.Popen(["ip", "netns", "exec", ep, sys.executable, "-c", SERVER, f"ep{i}"]))
        sh("ip", "route", "add", "10.96.0.0/12", "dev", "veth1", netns=made.node)
        deadline = time.monotonic() + 15
        for i in (1, 2, 3):
            while made.get(f"10.0.{i}.2", 8080, 1) != Counter({f"ep{i}": 1}):
                assert time.monotonic() < deadline, f"endpoint ep{i} did not come up"
                time.sleep(0.1)
        yield made
    finally:
        for server in made.servers:
            server.terminate()
        for server in made.servers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(5)
        for name in reversed(made.created):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextlib.asynccontextmanager
async def iptables_mode(net: Net, **settings: Any) -> AsyncIterator[IptablesProxy]:
    mode = IptablesProxy()
    await mode.kcore_proxy_start(settings={"netns": net.node, **settings}, context=None)
    try:
        yield mode
    finally:
        await mode.kcore_proxy_cleanup()


def no_kube_chains(saved: str) -> bool:
    return "KUBE-" not in saved


@pytest.mark.root
@root
async def test_cluster_ip_spreads_over_all_endpoints_and_node_ports_answer(net: Net) -> None:
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    s = state(web(*EPS), ServicePort("default", "empty", "http", "TCP", "10.96.0.51", 80))
    mode = IptablesProxy()
    rules = await proxy_sync_once(mode, s, name="iptables", settings={"netns": net.node}, cleanup=False)
    try:
        assert rules == render_iptables(s)
        counts = net.get(CLUSTER_IP, 80, 300)
        assert set(counts) == {"ep1", "ep2", "ep3"}, counts
        assert all(counts[f"ep{i}"] >= 45 for i in (1, 2, 3)), counts  # each >= 15%, expected 33%

        by_node_ip = net.get("10.0.1.1", NODE_PORT, 60)
        by_loopback = net.get("127.0.0.1", NODE_PORT, 60)
        assert set(by_node_ip) <= {"ep1", "ep2", "ep3"} and sum(by_node_ip.values()) == 60, by_node_ip
        assert set(by_loopback) <= {"ep1", "ep2", "ep3"} and len(by_loopback) >= 2, by_loopback
        assert net.get("10.96.0.51", 80, 1) == Counter({"ERR:ConnectionRefusedError": 1})  # filter REJECT

        saved = net.save()
        svc = service_chain(web())
        assert f":{svc} - [0:0]" in saved
        for ep in EPS:
            assert f"-j DNAT --to-destination {ep.ip}:{ep.port}" in saved
            assert f"-A {svc} " in saved and endpoint_chain(web(), ep) in saved
        assert "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES" in saved
        assert "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING" in saved
        assert net.sysctl("net/ipv4/ip_forward") == "1"
        assert net.sysctl("net/ipv4/conf/all/route_localnet") == "1"

        # Syncing again is idempotent: no command, no duplicate jump.
        restores = mode.restores
        await mode.kcore_proxy_sync(s)
        assert mode.restores == restores
        assert net.save("-t", "nat").count("-j KUBE-SERVICES") == 2  # PREROUTING, OUTPUT
    finally:
        await mode.kcore_proxy_cleanup()
    assert no_kube_chains(net.save("-t", "nat")) and no_kube_chains(net.save("-t", "filter"))
    await mode.kcore_proxy_cleanup()  # idempotent
    assert no_kube_chains(net.save())
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward  # the host's sysctl is untouched


@pytest.mark.root
@root
async def test_unready_endpoint_stops_getting_traffic_after_an_incremental_sync(net: Net) -> None:
    async with iptables_mode(net) as mode:
        await mode.kcore_proxy_sync(state(web(*EPS)))
        assert set(net.get(CLUSTER_IP, 80, 60)) == {"ep1", "ep2", "ep3"}

        unready = state(web(EPS[0], EPS[1], replace(EPS[2], ready=False)))
        await mode.kcore_proxy_sync(unready)
        gone = endpoint_chain(web(), EPS[2])
        assert declared(mode.last_restore) == [service_chain(web()), gone]  # only what changed
        assert f"-X {gone}" in mode.last_restore
        counts = net.get(CLUSTER_IP, 80, 200)
        assert "ep3" not in counts and counts["ep1"] >= 50 and counts["ep2"] >= 50, counts
        assert gone not in net.save("-t", "nat")

        # Ready again: it is back in the rotation.
        await mode.kcore_proxy_sync(state(web(*EPS)))
        assert set(net.get(CLUSTER_IP, 80, 90)) == {"ep1", "ep2", "ep3"}


@pytest.mark.root
@root
async def test_client_ip_affinity_pins_each_client_to_one_endpoint(net: Net) -> None:
    async with iptables_mode(net, max_restore_rules=3) as mode:  # also: a sync split into several calls
        await mode.kcore_proxy_sync(state(web(*EPS, session_affinity=True, affinity_timeout_seconds=60)))
        assert mode.restores > 3
        counts = net.get(CLUSTER_IP, 80, 60)
        assert len(counts) == 1 and sum(counts.values()) == 60 and next(iter(counts)).startswith("ep"), counts
        assert "-m recent --rcheck --seconds 60 --reap" in net.save("-t", "nat")
    assert no_kube_chains(net.save("-t", "nat"))


# ---------------------------------------------------------------------------
# Switching from iptables to userspace through the ProxyRunner (root)
# ---------------------------------------------------------------------------


@pytest.mark.root
@root
async def test_switching_to_userspace_through_the_runner_removes_the_rules(net: Net, tmp_path: Path) -> None:
    from kcore.apiserver.server import ApiServer
    from kcore.client import ApiClient
    from kcore.config import ApiServerConfig, parse_config
    from kcore.proxy.runner import ProxyRunner
    from kcore.proxy.userspace import UserspaceProxy
    from kcore.store.memory import MemoryStore

    cidr = "127.96.0.0/16"
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True),
                       service_cidr=cidr)
    await server.start()
    client = ApiClient(server.url)
    try:
        await client.resource("v1", "Service").create(
            {"metadata": {"name": "web", "namespace": "default"},
             "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}, namespace="default")
        await client.resource("discovery.k8s.io/v1", "EndpointSlice").create(
            {"metadata": {"name": "web-a", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
             "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.1.2"]}],
             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}, namespace="default")

        def runner(mode: str, iptables: IptablesProxy) -> ProxyRunner:
            config = parse_config({"proxy": {"mode": mode, "service_cidr": cidr, "iptables": {"netns": net.node}}})
            userspace = UserspaceProxy(manage_addresses=False)  # 127.96/16 is local already: no host change
            host = plugin_host_for(named={"kcore.proxy:iptables": iptables, "kcore.proxy:userspace": userspace})
            return ProxyRunner(client, host, config, node_name="node-1", node_ips=("127.0.0.1",), data_dir=tmp_path)

        first = runner("iptables", IptablesProxy())
        await first.start()
        await first.factory.wait_synced()
        assert await first.sync_once(), first.last_error
        assert (first.last_state is not None and
                any(s.key == "default/web:http" and s.endpoints for s in first.last_state.services))
        assert "DNAT --to-destination 10.0.1.2:8080" in net.save("-t", "nat")
        await first.factory.stop()  # the process "dies": no cleanup of its own

        # Restarted with mode = "userspace": a fresh iptables instance cleans up the old rules.
        second = runner("userspace", IptablesProxy(netns=net.node))
        await second.start()
        try:
            assert no_kube_chains(net.save("-t", "nat")) and no_kube_chains(net.save("-t", "filter"))
            assert (tmp_path / "proxy-mode").read_text().strip() == "userspace"
        finally:
            await second.stop()
    finally:
        await client.close()
        await server.stop()
        await store.close()
