"""Non-local service addresses put on ``lo`` (``kcore.proxy.local_addresses``).

The first tests drive ``LocalAddresses`` with a fake ``ip``; the root ones make
a network namespace of their own (``kcore-laddr-<random>``), change addresses
only inside it, and delete it at the end. The last one runs the userspace and
ipvs modes inside such a namespace (``ip netns exec``) for a 10.96.x.y
ClusterIP and fetches through it with curl.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kcore.proxy.local_addresses import LocalAddresses, needs_setup


class FakeIp:
    """Just enough of ``ip addr`` over a set of addresses."""

    def __init__(self, *present: str) -> None:
        self.present = {ip: "eth0" for ip in present}
        self.calls: list[list[str]] = []
        self.refuse: set[str] = set()

    def __call__(self, cmd: Sequence[str], stdin: str | None = None) -> str:
        cmd = list(cmd)
        if cmd[1] == "-n":
            cmd = [cmd[0], *cmd[3:]]
        if cmd[1:] == ["-o", "addr", "show"]:
            self.calls.append(list(cmd))
            return "".join(f"1: {dev}    inet {ip}/32 scope host {dev}\n" for ip, dev in self.present.items())
        assert cmd[1:] == ["-force", "-batch", "-"] and stdin is not None
        for line in stdin.splitlines():  # one call per batch line, as `ip addr ...` would be
            _addr, verb, prefix, _dev, dev = line.split()
            self.calls.append(["ip", "addr", verb, prefix, "dev", dev])
            ip = prefix.split("/")[0]
            if verb == "add" and ip not in self.refuse:
                self.present[ip] = dev
            elif ip in self.present:
                del self.present[ip]
        return ""


def test_only_non_local_addresses_are_added_and_only_ours_removed(tmp_path: Path) -> None:
    fake = FakeIp("192.168.1.10")
    state = tmp_path / "userspace-local-addresses.json"
    addrs = LocalAddresses(state, runner=fake)
    assert addrs.ensure(["10.96.0.1", "10.96.0.10", "127.96.0.5", "192.168.1.10", "fd00::1"]) == {}
    assert fake.present == {"192.168.1.10": "eth0", "10.96.0.1": "lo", "10.96.0.10": "lo", "fd00::1": "lo"}
    assert ["ip", "addr", "add", "fd00::1/128", "dev", "lo"] in fake.calls
    assert json.loads(state.read_text())["addresses"] == ["10.96.0.1", "10.96.0.10", "fd00::1"]

    # Idempotent: nothing is added twice.
    before = len(fake.calls)
    addrs.ensure(["10.96.0.1", "10.96.0.10", "fd00::1"])
    assert [c for c in fake.calls[before:] if "add" in c] == []

    # An address no service uses any more goes; the host's own never does.
    addrs.ensure(["10.96.0.10"])
    assert set(fake.present) == {"192.168.1.10", "10.96.0.10"}

    # A proxy restarted after a crash removes what the last run left behind.
    again = LocalAddresses(state, runner=fake)
    assert again.owned == {"10.96.0.10"}
    again.cleanup()
    assert set(fake.present) == {"192.168.1.10"}
    assert not state.exists()


def test_nothing_to_do_runs_nothing() -> None:
    fake = FakeIp()
    LocalAddresses(None, runner=fake).ensure(["127.0.0.1", "127.96.3.4", "::1", "not-an-ip"])
    assert fake.calls == []
    assert not needs_setup("127.1.2.3") and needs_setup("10.96.0.1")


def test_netns_prefixes_every_command() -> None:
    fake = FakeIp()
    seen: list[list[str]] = []

    def recording(cmd: Sequence[str], stdin: str | None = None) -> str:
        seen.append(list(cmd))
        return fake(cmd, stdin)
    LocalAddresses(None, netns="kcore-x", runner=recording).ensure(["10.96.0.1"])
    assert seen and all(call[:3] == ["ip", "-n", "kcore-x"] for call in seen)


# -- inside a network namespace (root) --------------------------------------------


def _root_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None or subprocess.run(["ip", "netns", "list"], capture_output=True).returncode:
        return "needs iproute2 with netns support"
    return None




@pytest.fixture
def netns() -> Iterator[str]:
    name = f"kcore-laddr-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def lo_addresses(ns: str) -> set[str]:
    out = subprocess.run(["ip", "-n", ns, "-o", "addr", "show", "dev", "lo"], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[3] for line in out.splitlines()}


@pytest.mark.root
@pytest.mark.skipif(_root_problem() is not None, reason=str(_root_problem()))
def test_addresses_appear_on_lo_in_the_namespace_and_go(netns: str, tmp_path: Path) -> None:
    subprocess.run(["ip", "-n", netns, "addr", "add", "10.96.0.3/32", "dev", "lo"], check=True)  # not ours
    addrs = LocalAddresses(tmp_path / "addrs.json", netns=netns)
    assert addrs.ensure(["10.96.0.1", "10.96.0.2", "10.96.0.3", "127.0.0.1"]) == {}
    assert {"10.96.0.1/32", "10.96.0.2/32", "10.96.0.3/32"} <= lo_addresses(netns)
    assert addrs.owned == {"10.96.0.1", "10.96.0.2"}

    addrs.ensure(["10.96.0.2"])
    assert "10.96.0.1/32" not in lo_addresses(netns)

    # Someone removed ours behind our back: the next sync puts it back.
    subprocess.run(["ip", "-n", netns, "addr", "del", "10.96.0.2/32", "dev", "lo"], check=True)
    addrs.ensure(["10.96.0.2"])
    assert "10.96.0.2/32" in lo_addresses(netns)

    assert addrs.cleanup() == {}
    left = lo_addresses(netns)
    assert "10.96.0.2/32" not in left and "10.96.0.3/32" in left  # only ours went
    assert not (tmp_path / "addrs.json").exists()


SCRIPT = textwrap.dedent("""
    import asyncio, sys, types
    from pathlib import Path
    from kcore.proxy.state import Endpoint, ProxyState, ServicePort

    async def main(mode, data_dir, cluster_ip):
        async def greet(reader, writer):
            await reader.readuntil(b"\\r\\n\\r\\n")
            writer.write(b"HTTP/1.0 200 OK\\r\\nContent-Length: 7\\r\\n\\r\\nbackend")
            await writer.drain()
            writer.close()
        backend = await asyncio.start_server(greet, "127.0.0.1", 0)
        port = backend.sockets[0].getsockname()[1]
        if mode == "userspace":
            from kcore.proxy.userspace import UserspaceProxy
            proxy = UserspaceProxy()
            settings = {}
        else:
            from kcore_proxy_ipvs.plugin import IpvsProxy
            proxy = IpvsProxy()
            settings = {"scheduler": "rr", "datapath": "userspace"}
        context = types.SimpleNamespace(node_name="n", node_ips=("127.0.0.1",), data_dir=Path(data_dir))
        await proxy.kcore_proxy_start(settings=settings, context=context)
        sp = ServicePort("default", "web", "http", "TCP", cluster_ip, 80,
                         endpoints=(Endpoint("127.0.0.1", port),))
        await proxy.kcore_proxy_sync(state=ProxyState(services=(sp,)))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await proxy.kcore_proxy_cleanup()
        print("clean", flush=True)

    asyncio.run(main(*sys.argv[1:]))
""")


class Child:
    """A process whose stdout lines arrive on a queue, so every wait is bounded."""

    def __init__(self, cmd: list[str], log: Path) -> None:
        self._log = log.open("w")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                     text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log = log
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def wait_for(self, marker: str, timeout: float = 20) -> None:
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                line = None
            if line == marker:
                return
            if line is None:
                raise AssertionError(f"no {marker!r} from the child; stdout: {seen}; stderr: {self.log.read_text()}")
            seen.append(line)

    def say(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.mark.root
@pytest.mark.skipif(_root_problem() is not None, reason=str(_root_problem()))
@pytest.mark.parametrize("mode", ["userspace", "ipvs"])
def test_proxy_serves_a_non_local_cluster_ip_inside_a_namespace(netns: str, tmp_path: Path, mode: str) -> None:
    cluster_ip = f"10.96.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
    script = tmp_path / "proxy.py"
    script.write_text(SCRIPT)
    child = Child(["ip", "netns", "exec", netns, sys.executable, str(script), mode, str(tmp_path), cluster_ip],
                  tmp_path / "child.log")
    try:
        child.wait_for("ready")
        assert f"{cluster_ip}/32" in lo_addresses(netns)
        assert json.loads((tmp_path / f"{mode}-local-addresses.json").read_text())["addresses"] == [cluster_ip]
        got = subprocess.run(["ip", "netns", "exec", netns, "curl", "-sS", "-m", "5", f"http://{cluster_ip}/"],
                             capture_output=True, text=True, timeout=20)
        assert got.stdout == "backend", got.stderr
        child.say("\n")
        child.wait_for("clean")
        assert child.proc.wait(timeout=20) == 0
        assert f"{cluster_ip}/32" not in lo_addresses(netns)
        assert not (tmp_path / f"{mode}-local-addresses.json").exists()
    finally:
        child.stop()


def test_many_addresses_are_one_batch_and_a_refused_one_is_reported(tmp_path: Path) -> None:
    fake = FakeIp()
    fake.refuse = {"10.96.0.7"}
    batches: list[str] = []

    def recording(cmd: Sequence[str], stdin: str | None = None) -> str:
        if stdin is not None:
            batches.append(stdin)
        return fake(cmd, stdin)
    addrs = LocalAddresses(tmp_path / "state.json", runner=recording)
    wanted = [f"10.96.0.{i}" for i in range(1, 201)]
    errors = addrs.ensure(wanted)
    assert len(batches) == 1 and batches[0].count("\n") == 200
    assert errors == {"10.96.0.7": "could not add 10.96.0.7 to lo"}
    assert addrs.owned == set(wanted) - {"10.96.0.7"}
    fake.refuse.clear()
    assert addrs.ensure(wanted) == {}  # retried at the next sync
    assert addrs.owned == set(wanted)
