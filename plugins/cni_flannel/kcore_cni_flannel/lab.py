"""A throw-away multi-host network made of namespaces, for tests and benchmarks.

Why: the overlay is only proven by packets crossing hosts, and the rule is that no
test touches the host's own network. So an "underlay" namespace holds a bridge, and
every "host" is a namespace with one veth into it (``eth0``, 192.168.77.<n>/24).
Everything is created under one random prefix (``kcore-<purpose>-<hex>``) and
:meth:`Lab.close` deletes every namespace it made, which removes every interface,
route, neighbour, FDB entry and iptables rule inside them.

    with Lab("overlay") as lab:        # or try/finally lab.close()
        h1 = await lab.add_host(1)
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from types import TracebackType

from kcore_cni_flannel.datapath import run_cmd

UNDERLAY_NET = "192.168.77"

# A tiny HTTP server: answers every GET with "hello from <label>".
HTTP_SERVER = r"""
import http.server, sys
label = sys.argv[3].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", str(len(label))); self.end_headers()
        self.wfile.write(label)
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""

# Fetch a URL, retrying until a deadline (the server may still be starting); prints the body.
HTTP_GET = r"""
import sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode()); break
    except Exception as exc:
        if time.monotonic() > deadline: print("error:", exc); sys.exit(1)
        time.sleep(0.1)
"""


@dataclass
class Host:
    name: str
    netns: str
    ip: str


@dataclass
class Lab:
    purpose: str
    prefix: str = ""
    namespaces: list[str] = field(default_factory=list)
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    underlay: str | None = None

    def __post_init__(self) -> None:
        self.prefix = self.prefix or f"kcore-{self.purpose}-{secrets.token_hex(3)}"

    async def add_netns(self, suffix: str) -> str:
        name = f"{self.prefix}-{suffix}"
        self.namespaces.append(name)  # before creating: close() tolerates a missing one
        await run_cmd("ip", "netns", "add", name)
        await run_cmd("ip", "link", "set", "lo", "up", netns=name)
        return name

    async def add_host(self, index: int, mtu: int = 1500) -> Host:
        """Namespace ``h<index>`` with ``eth0`` = 192.168.77.<index>/24 on the underlay bridge."""
        if self.underlay is None:
            self.underlay = await self.add_netns("ul")
            await run_cmd("ip", "link", "add", "br0", "type", "bridge", netns=self.underlay)
            await run_cmd("ip", "link", "set", "br0", "up", netns=self.underlay)
        netns = await self.add_netns(f"h{index}")
        await run_cmd("ip", "link", "add", f"ul{index}", "mtu", str(mtu), "type", "veth", "peer", "name",
                      "eth0", "mtu", str(mtu), "netns", netns, netns=self.underlay)
        await run_cmd("ip", "link", "set", f"ul{index}", "master", "br0", "up", netns=self.underlay)
        ip = f"{UNDERLAY_NET}.{index}"
        await run_cmd("ip", "addr", "add", f"{ip}/24", "dev", "eth0", netns=netns)
        await run_cmd("ip", "link", "set", "eth0", "up", netns=netns)
        return Host(f"h{index}", netns, ip)

    async def spawn(self, netns: str, script: str, *args: str) -> asyncio.subprocess.Process:
        """Start ``python -c script args`` inside ``netns``; stopped by :meth:`close`."""
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, sys.executable, "-c", script, *args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self.processes.append(proc)
        return proc

    async def serve_http(self, netns: str, address: str, port: int = 8080) -> None:
        await self.spawn(netns, HTTP_SERVER, address, str(port), f"hello from {netns}")

    async def http_get(self, netns: str, url: str, timeout: float = 10.0) -> str:
        proc = await self.spawn(netns, HTTP_GET, url, str(timeout))
        out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
        return out.decode().strip()

    async def aclose(self) -> None:
        """Like :meth:`close`, also reaping the processes it stops."""
        procs = list(self.processes)
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        for proc in procs:
            try:
                await asyncio.wait_for(proc.communicate(), 5)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        self.close()

    def close(self) -> None:
        """Stop every process started here and delete every namespace (idempotent)."""
        for proc in self.processes:
            if proc.returncode is None:
                proc.kill()
        self.processes.clear()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        self.namespaces.clear()

    def leftovers(self) -> list[str]:
        """Namespaces with this lab's prefix that still exist (empty after :meth:`close`)."""
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.prefix)]

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.close()
