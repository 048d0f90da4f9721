"""The node-local data path: a Linux bridge and one veth pair per pod (iproute2).

Every command runs through ``ip`` as an asyncio subprocess. With ``node_netns`` set,
node-side commands run in that network namespace (``ip -n <ns>``), so tests build a
whole "node" inside a namespace they own; pod-side commands always run in the pod's
namespace (``ip -n <pod netns>``, a name under /run/netns or a path).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from kcore.log import get_logger

log = get_logger("cni.flannel.datapath")

DEFAULT_BRIDGE = "cni0"
POD_IFNAME = "eth0"


class IpCommandError(RuntimeError):
    """An ``ip`` (or other network) command failed; the message carries it and its stderr."""

    def __init__(self, argv: list[str], code: int, stderr: str) -> None:
        self.argv, self.code, self.stderr = argv, code, stderr
        super().__init__(f"`{' '.join(argv)}` failed (exit {code}): {stderr.strip()}")


async def run_ip(*args: str, netns: str | None = None, check: bool = True) -> tuple[int, str, str]:
    """Run ``ip [-n netns] args...``; returns (exit code, stdout, stderr)."""
    return await run_cmd("ip", *args, netns=netns, check=check)


async def run_cmd(*argv: str, netns: str | None = None, check: bool = True) -> tuple[int, str, str]:
    """Run a command in ``netns`` (or the current namespace); returns (exit code, stdout, stderr).

    ``ip`` and ``bridge`` take ``-n <netns>`` themselves; anything else (iptables,
    sysctl) runs under ``ip netns exec``.
    """
    if netns and argv[0] in ("ip", "bridge"):
        argv = (argv[0], "-n", netns, *argv[1:])
    elif netns:
        argv = ("ip", "netns", "exec", netns, *argv)
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    code = proc.returncode or 0
    if check and code != 0:
        raise IpCommandError(list(argv), code, err.decode(errors="replace"))
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def pod_mac(address: str) -> str:
    """A MAC derived from the pod's IPv4 address (``0a:58:`` + the address, as OVN-Kubernetes).

    A re-created interface keeps its MAC, so peers' ARP caches never go stale.
    """
    return "0a:58:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(address).packed)


def host_veth_name(owner: str) -> str:
    """A stable, unique-enough host-side interface name for a pod (<= 15 chars)."""
    return "veth" + hashlib.sha256(owner.encode()).hexdigest()[:11]


@dataclass
class BridgeDatapath:
    """A bridge holding the subnet's gateway address, and veth pairs into pod namespaces."""

    subnet: str
    node_netns: str | None = None
    bridge: str = DEFAULT_BRIDGE
    mtu: int = 1450

    @property
    def gateway(self) -> str:
        return str(ipaddress.ip_network(self.subnet).network_address + 1)

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    async def _node(self, *args: str, check: bool = True) -> tuple[int, str, str]:
        return await run_ip(*args, netns=self.node_netns, check=check)

    async def _exists(self, ifname: str, netns: str | None) -> bool:
        code, _, _ = await run_ip("link", "show", "dev", ifname, netns=netns, check=False)
        return code == 0

    async def setup(self) -> None:
        """Create the bridge with the gateway address (idempotent)."""
        if not await self._exists(self.bridge, self.node_netns):
            await self._node("link", "add", self.bridge, "mtu", str(self.mtu), "type", "bridge")
        await self._node("addr", "replace", f"{self.gateway}/{self.prefixlen}", "dev", self.bridge)
        await self._node("link", "set", self.bridge, "up")
        log.info("bridge ready", bridge=self.bridge, gateway=self.gateway, netns=self.node_netns)

    async def teardown(self) -> None:
        """Remove the bridge (pods' veths stay until their DEL; idempotent)."""
        await self._node("link", "del", self.bridge, check=False)

    async def add(self, owner: str, netns: str, address: str, ifname: str = POD_IFNAME) -> dict[str, Any]:
        """Wire the pod namespace ``netns`` to the bridge with ``address``; a CNI result.

        Re-running for the same pod keeps a healthy veth pair and replaces a broken one
        (ADD is retried by kubelets); the pod's MAC follows its address either way.
        """
        host_if = host_veth_name(owner)
        if await self.check(owner, netns, address, ifname):
            return await self._result(host_if, netns, address, ifname)
        await self._node("link", "del", host_if, check=False)
        await run_ip("link", "del", ifname, netns=netns, check=False)
        await self._node("link", "add", host_if, "mtu", str(self.mtu), "type", "veth",
                         "peer", "name", ifname, "mtu", str(self.mtu), "address", pod_mac(address),
                         "netns", netns)
        await self._node("link", "set", host_if, "master", self.bridge, "up")
        await run_ip("link", "set", "lo", "up", netns=netns)
        await run_ip("addr", "replace", f"{address}/{self.prefixlen}", "dev", ifname, netns=netns)
        await run_ip("link", "set", ifname, "up", netns=netns)
        await run_ip("route", "replace", "default", "via", self.gateway, "dev", ifname, netns=netns)
        return await self._result(host_if, netns, address, ifname)

    async def _result(self, host_if: str, netns: str, address: str, ifname: str) -> dict[str, Any]:
        _, out, _ = await run_ip("-o", "link", "show", "dev", ifname, netns=netns)
        mac = out.split("link/ether", 1)[1].split()[0] if "link/ether" in out else ""
        return {
            "cniVersion": "1.0.0",
            "interfaces": [{"name": host_if}, {"name": ifname, "mac": mac, "sandbox": netns}],
            "ips": [{"address": f"{address}/{self.prefixlen}", "gateway": self.gateway, "interface": 1}],
            "routes": [{"dst": "0.0.0.0/0", "gw": self.gateway}],
            "dns": {},
        }

    async def delete(self, owner: str) -> None:
        """Remove the pod's veth pair (deleting the host end removes both; idempotent)."""
        await self._node("link", "del", host_veth_name(owner), check=False)

    async def check(self, owner: str, netns: str, address: str, ifname: str = POD_IFNAME) -> bool:
        """Whether the pod still has its address and its host end is on the bridge."""
        code, out, _ = await run_ip("-o", "addr", "show", "dev", ifname, netns=netns, check=False)
        if code != 0 or f" {address}/{self.prefixlen} " not in out:
            return False
        code, out, _ = await self._node("-o", "link", "show", "dev", host_veth_name(owner), check=False)
        return code == 0 and f"master {self.bridge} " in out
