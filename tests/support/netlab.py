"""Network namespaces that one test creates, wires and removes: the only place where
tests change networking (DESIGN.md). A "host" is a namespace with an ``eth0`` on a
shared underlay bridge that lives in a namespace of its own; kcore runs inside a
host through ``ip netns exec``, so its bridges, VXLAN devices, routes and rules are
made there. Traffic goes only to these namespaces' addresses.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

NETNS_DIR = Path("/run/netns")


def require_root() -> str | None:
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not Path("/usr/sbin/ip").exists() and not Path("/sbin/ip").exists() and not Path("/bin/ip").exists():
        return "iproute2 is not installed"
    return None


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"`{' '.join(argv)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result


def namespaces() -> set[str]:
    """Every named network namespace on the machine."""
    return {p.name for p in NETNS_DIR.iterdir()} if NETNS_DIR.exists() else set()


POD_NETNS = re.compile(r"^kcore-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def pod_namespaces() -> set[str]:
    """The namespaces kcore's kubelets made for pods (``kcore-<pod uid>``)."""
    return {n for n in namespaces() if POD_NETNS.match(n)}


@dataclass
class NetLab:
    """Namespaces made for one test; ``close()`` deletes them all (and reports leftovers
    of pod namespaces that kcore made and should have removed itself)."""

    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    created: list[str] = field(default_factory=list)
    hosts: dict[str, str] = field(default_factory=dict)
    """host name -> underlay address"""
    before: set[str] = field(default_factory=pod_namespaces)

    def ns(self, name: str) -> str:
        """Create ``kcore-t<tag>-<name>`` with its loopback up."""
        full = f"kcore-t{self.tag}-{name}"
        sh("ip", "netns", "add", full)
        self.created.append(full)
        sh("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def underlay(self, names: Sequence[str], subnet: str = "192.168.77.0/24") -> dict[str, str]:
        """Hosts on one L2 segment: each gets ``eth0`` with the next address of ``subnet``."""
        net = ipaddress.ip_network(subnet)
        switch = self.ns("underlay")
        sh("ip", "-n", switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", switch, "link", "set", "br0", "up")
        for index, name in enumerate(names, start=1):
            host = self.ns(name)
            address = str(net.network_address + index)
            port = f"p{index}"
            sh("ip", "-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host)
            sh("ip", "-n", switch, "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", host, "addr", "add", f"{address}/{net.prefixlen}", "dev", "eth0")
            sh("ip", "-n", host, "link", "set", "eth0", "up")
            self.hosts[name] = address
        return {name: self.full(name) for name in names}

    def full(self, name: str) -> str:
        return f"kcore-t{self.tag}-{name}"

    def run(self, ns: str, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command inside ``ns``."""
        return sh("ip", "netns", "exec", ns, *argv, check=check, timeout=timeout)

    def run_in_pod(self, kcore_pid: int, pod_netns: str, *argv: str,
                   check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in a pod's namespace. A kcore inside ``ip netns exec`` has a mount
        namespace of its own, where the pods' /run/netns entries are mounted: enter it."""
        return sh("nsenter", "-t", str(kcore_pid), "-m", "--", "ip", "netns", "exec", pod_netns, *argv,
                  check=check)

    def http_get(self, ns: str, url: str, timeout: float = 5) -> str:
        """GET ``url`` from inside ``ns`` (curl); the body."""
        return self.run(ns, "curl", "-sS", "--max-time", str(timeout), url, timeout=timeout + 5).stdout

    def close(self) -> list[str]:
        """Delete every namespace made here; returns pod namespaces kcore left behind."""
        leftovers = sorted(pod_namespaces() - self.before)
        for name in leftovers:
            sh("ip", "netns", "delete", name, check=False)
        for name in reversed(self.created):
            sh("ip", "netns", "delete", name, check=False)
        self.created.clear()
        return leftovers


def wait_until(predicate, timeout: float = 30, interval: float = 0.2, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
