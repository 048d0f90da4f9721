"""Service proxy: data-path throughput and connection rate per mode versus direct, and rule sync time.

Data path (one run, every available mode, each against its own direct baseline):

* ``userspace`` and ``ipvs`` (the plugin's userspace data path: no IPVS on this
  kernel, and ``datapath = "userspace"`` is forced so the host's IPVS table is
  never touched) run in a child process each, listening on a 127.96.x.y
  ClusterIP on ``lo``; the backend is a child process on 127.0.0.1 and the
  client a third process. ``direct`` is the client to the backend itself.
* ``iptables`` (root only) runs inside a network namespace the benchmark
  creates (``kcore-pbench-<random>-node``), with the backend in a second one
  behind a veth pair; the client runs in the node namespace, so ``direct`` there
  is the client to the endpoint address over the same veth. Both namespaces
  are deleted at the end, also on failure.

Per path: ``MB/s`` for one large transfer (``--mb``) and ``conn/s`` for
sequential small request/response connections (``--seconds`` per round). One
client process measures the paths of a group in turn, ``--rounds`` times (5),
so load from elsewhere on a shared machine hits them alike; the table gives
medians, and ``ratio`` = mode / direct of the same group (the median of the
per-round ratios).

Sync time, for 1,000 and 10,000 services with 2-3 endpoints each (``--services``):

* ``iptables``: render time, the first (full) sync and its ``iptables-restore``
  time, an incremental sync after one service loses an endpoint (and the lines
  it sent), a sync with nothing changed, and cleanup - inside a namespace of
  its own (root only);
* ``userspace`` / ``ipvs``: the first sync (one listener per service on a
  127.97.x.y address), the same one-service change, a no-op sync, and cleanup.

Prints two tables and writes benchmarks/results/proxy_bench.json.

    .venv/bin/python benchmarks/proxy_bench.py [--mb 512] [--seconds 3] [--services 1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pathlib
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from kcore.log import configure_logging
from kcore.proxy.iptables import render_chains, render_iptables
from kcore.proxy.iptables_mode import CommandResult, IptablesProxy, run_command
from kcore.proxy.state import Endpoint, ProxyState, ServicePort

RESULTS = pathlib.Path(__file__).parent / "results" / "proxy_bench.json"
VIP_PORT = 80

# The backend: "BULK <n>\n" -> n bytes then close; "PING\n" -> "PONG\n" then close.
SERVER = r"""
import socket, socketserver, sys
BLOCK = memoryview(bytes(1 << 20))
class H(socketserver.BaseRequestHandler):
    def handle(self):
        line = b""
        while not line.endswith(b"\n"):
            data = self.request.recv(64)
            if not data:
                return
            line += data
        if line.startswith(b"BULK"):
            left = int(line.split()[1])
            while left > 0:
                left -= self.request.send(BLOCK[: min(left, len(BLOCK))])
        else:
            self.request.sendall(b"PONG\n")
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""

# The client, for all the paths of a group in one process: argv is MB SECONDS ROUNDS HOST:PORT...
# Each round makes one large transfer per path, then SECONDS of sequential small connections per
# path, in turn, so load from elsewhere hits the paths alike; prints, per path, the list of
# {"mbps", "conns_per_s"} per round. MB = 0 only checks that each path answers one PING.
# Each small connection ends with a reset (SO_LINGER 0) once the answer is in: at thousands of
# connections/s a TIME_WAIT socket left on the server would otherwise meet a later connection's
# reused (or, behind MASQUERADE --random-fully, randomly picked) port and stall it 1 s.
CLIENT = r"""
import json, socket, struct, sys, time
mb, seconds, rounds = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
targets = [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in sys.argv[4:]]
RESET = struct.pack("ii", 1, 0)
def ping(addr):
    s = socket.create_connection(addr, timeout=5)
    s.sendall(b"PING\n")
    data = b""
    while True:
        chunk = s.recv(64)
        if not chunk:
            break
        data += chunk
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)  # close with RST: no TIME_WAIT left behind
    s.close()
    if data != b"PONG\n":
        raise SystemExit(f"bad answer {data!r} from {addr}")
def bulk(addr, n):
    s = socket.create_connection(addr, timeout=10)
    buf = memoryview(bytearray(1 << 20))
    start = time.perf_counter()
    s.sendall(b"BULK %d\n" % n)
    got = 0
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        got += k
    elapsed = time.perf_counter() - start
    s.close()
    if got != n:
        raise SystemExit(f"short transfer from {addr}: {got} of {n}")
    return n / elapsed / 1e6
def rate(addr):
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        ping(addr)
        count += 1
    return count / (time.perf_counter() - start)
for addr in targets:
    ping(addr)
if mb == 0:
    raise SystemExit(0)
for addr in targets:
    bulk(addr, 16 << 20)
    for _ in range(50):
        ping(addr)
out = [[] for _ in targets]
for _ in range(rounds):
    mbps = [bulk(addr, mb << 20) for addr in targets]
    conns = [rate(addr) for addr in targets]
    for i in range(len(targets)):
        out[i].append({"mbps": round(mbps[i], 1), "conns_per_s": round(conns[i], 1)})
print(json.dumps(out))
"""

# A userspace-socket mode in its own process: sync once, serve until stdin closes.
PROXY = r"""
import asyncio, json, sys
from kcore.log import configure_logging
from kcore.proxy.state import Endpoint, ProxyState, ServicePort
configure_logging(level="warning")
spec = json.loads(sys.argv[1])
async def main():
    if spec["mode"] == "userspace":
        from kcore.proxy.userspace import UserspaceProxy
        mode, settings = UserspaceProxy(manage_addresses=False), {}
    else:
        from kcore_proxy_ipvs import IpvsProxy
        mode, settings = IpvsProxy(forwarder_options={"manage_addresses": False}), {"datapath": "userspace"}
    svc = ServicePort("bench", "echo", "tcp", "TCP", spec["vip"], spec["port"],
                      endpoints=(Endpoint(spec["ep_ip"], spec["ep_port"]),))
    await mode.kcore_proxy_start(settings=settings, context=None)
    await mode.kcore_proxy_sync(ProxyState(services=(svc,)))
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await mode.kcore_proxy_cleanup()
asyncio.run(main())
"""


# ---------------------------------------------------------------------------
# Processes and namespaces
# ---------------------------------------------------------------------------


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def sh(*argv: str, netns: str | None = None) -> str:
    result = subprocess.run(in_netns(netns, argv), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(in_netns(netns, argv))}: {result.stderr.strip()}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(targets: Sequence[tuple[str, int]], mb: int, seconds: float, rounds: int,
           netns: str | None = None) -> list[list[dict[str, float]]]:
    argv = [sys.executable, "-c", CLIENT, str(mb), str(seconds), str(rounds), *(f"{h}:{p}" for h, p in targets)]
    out = subprocess.run(in_netns(netns, argv), capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"client to {targets} failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def wait_answering(host: str, port: int, netns: str | None = None, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        probe = subprocess.run(in_netns(netns, [sys.executable, "-c", CLIENT, "0", "0", "0", f"{host}:{port}"]),
                               capture_output=True, text=True)
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host}:{port} does not answer: {probe.stderr.strip()[-300:]}")
        time.sleep(0.1)


@contextlib.contextmanager
def process(argv: Sequence[str], **kw: Any) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(list(argv), text=True, **kw)
    try:
        yield proc
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


@contextlib.contextmanager
def namespaces(purpose: str, *suffixes: str) -> Iterator[list[str]]:
    """Named network namespaces ``kcore-<purpose>-<random>-<suffix>``, deleted on exit."""
    prefix = f"kcore-{purpose}-{secrets.token_hex(4)}"
    made: list[str] = []
    try:
        for suffix in suffixes:
            sh("ip", "netns", "add", f"{prefix}-{suffix}")
            made.append(f"{prefix}-{suffix}")
            sh("ip", "link", "set", "lo", "up", netns=made[-1])
        yield made
    finally:
        for name in reversed(made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


# ---------------------------------------------------------------------------
# Data path
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One way for the client to reach the backend."""

    path: str  # "direct" or the mode's name
    where: str
    host: str
    port: int
    netns: str | None = None


@contextlib.contextmanager
def loopback_targets() -> Iterator[list[Target]]:
    """The backend on 127.0.0.1, and the userspace and ipvs modes in front of it, all running."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        stack.enter_context(process([sys.executable, "-c", SERVER, "127.0.0.1", str(port)], stdin=subprocess.DEVNULL))
        wait_answering("127.0.0.1", port)
        targets = [Target("direct", "loopback", "127.0.0.1", port)]
        for mode, vip in (("userspace", "127.96.201.10"), ("ipvs", "127.96.201.11")):
            spec = {"mode": mode, "vip": vip, "port": VIP_PORT, "ep_ip": "127.0.0.1", "ep_port": port}
            proxy = stack.enter_context(process([sys.executable, "-c", PROXY, json.dumps(spec)],
                                                stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            assert proxy.stdout is not None
            if proxy.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {mode} proxy did not start (exit {proxy.poll()})")
            wait_answering(vip, VIP_PORT)
            targets.append(Target(mode, f"loopback {vip}:{VIP_PORT}", vip, VIP_PORT))
        yield targets


@contextlib.contextmanager
def iptables_targets() -> Iterator[list[Target]]:
    """A node namespace with the iptables mode and a backend namespace behind a veth pair."""
    vip = "10.96.201.10"
    with namespaces("pbench", "node", "ep") as (node, ep):
        sh("ip", "link", "add", "veth0", "type", "veth", "peer", "name", "eth0", "netns", ep, netns=node)
        sh("ip", "addr", "add", "10.1.0.1/24", "dev", "veth0", netns=node)
        sh("ip", "link", "set", "veth0", "up", netns=node)
        sh("ip", "addr", "add", "10.1.0.2/24", "dev", "eth0", netns=ep)
        sh("ip", "link", "set", "eth0", "up", netns=ep)
        sh("ip", "route", "add", "default", "via", "10.1.0.1", netns=ep)
        sh("ip", "route", "add", "10.96.0.0/12", "dev", "veth0", netns=node)
        with process(in_netns(ep, [sys.executable, "-c", SERVER, "0.0.0.0", "8080"]), stdin=subprocess.DEVNULL):
            wait_answering("10.1.0.2", 8080, node)
            state = ProxyState(services=(ServicePort("bench", "echo", "tcp", "TCP", vip, VIP_PORT,
                                                     endpoints=(Endpoint("10.1.0.2", 8080),)),),
                               node_ips=("10.1.0.1",), cluster_cidr="10.244.0.0/16")
            mode = IptablesProxy()

            async def install() -> None:
                await mode.kcore_proxy_start(settings={"netns": node}, context=None)
                await mode.kcore_proxy_sync(state)

            try:
                asyncio.run(install())
                wait_answering(vip, VIP_PORT, node)
                yield [Target("direct", "netns veth", "10.1.0.2", 8080, node),
                       Target("iptables", f"netns {vip}:{VIP_PORT}", vip, VIP_PORT, node)]
            finally:
                asyncio.run(mode.kcore_proxy_cleanup())


def measure(targets: list[Target], mb: int, seconds: float, rounds: int) -> list[dict[str, Any]]:
    """One client process measures the group's paths in turn, ``rounds`` times; the
    table gives medians per path and ratios against the group's ``direct`` (the first),
    each the median of the per-round ratios (paired samples, fair under drift)."""
    netns = {t.netns for t in targets}
    assert len(netns) == 1, "a group's paths are reached from one namespace"
    samples = client([(t.host, t.port) for t in targets], mb, seconds, rounds, netns.pop())
    direct = samples[0]
    rows = []
    for target, got in zip(targets, samples):
        rows.append({
            "path": target.path, "where": target.where,
            "mbps": round(statistics.median(g["mbps"] for g in got), 1),
            "conns_per_s": round(statistics.median(g["conns_per_s"] for g in got), 1),
            "mbps_ratio": round(statistics.median(g["mbps"] / d["mbps"] for g, d in zip(got, direct)), 3),
            "conns_ratio": round(statistics.median(g["conns_per_s"] / d["conns_per_s"]
                                                   for g, d in zip(got, direct)), 3),
            "samples": got,
        })
    return rows


# ---------------------------------------------------------------------------
# Sync time
# ---------------------------------------------------------------------------


def services_state(n: int, vip: Callable[[int], str], port: int) -> ProxyState:
    services = []
    for i in range(n):
        eps = tuple(Endpoint(f"10.{128 + (3 * i + k) // 65536}.{(3 * i + k) // 256 % 256}.{(3 * i + k) % 256}", 8080)
                    for k in range(2 + i % 2))
        services.append(ServicePort(f"ns-{i % 20}", f"svc-{i}", "http", "TCP", vip(i), port, endpoints=eps))
    return ProxyState(services=tuple(services), node_ips=("10.1.0.1",), cluster_cidr="10.244.0.0/16")


def change_one(state: ProxyState) -> ProxyState:
    first = state.services[0]
    return replace(state, services=(replace(first, endpoints=first.endpoints[:1]), *state.services[1:]),
                   generation=state.generation + 1)


@dataclass
class TimedRunner:
    """Runs commands like the mode does, remembering how long each ``iptables-restore`` took."""

    restores: list[float]

    async def __call__(self, argv: Sequence[str], stdin: str | None) -> CommandResult:
        start = time.perf_counter()
        result = await run_command(argv, stdin)
        if "iptables-restore" in argv:
            self.restores.append(time.perf_counter() - start)
        return result


async def timed(coro: Any) -> float:
    start = time.perf_counter()
    await coro
    return time.perf_counter() - start


def iptables_sync(n: int) -> dict[str, Any]:
    state = services_state(n, lambda i: f"10.96.{i // 250}.{i % 250 + 1}", VIP_PORT)
    changed = change_one(state)
    start = time.perf_counter()
    render_iptables(state)
    render_text = time.perf_counter() - start
    start = time.perf_counter()
    render_chains(state)
    render = time.perf_counter() - start

    async def run(node: str) -> dict[str, Any]:
        timer = TimedRunner([])
        mode = IptablesProxy(run=timer)
        await mode.kcore_proxy_start(settings={"netns": node}, context=None)
        full = await timed(mode.kcore_proxy_sync(state))
        full_restore, full_calls = sum(timer.restores), len(timer.restores)
        full_lines = len(render_iptables(state).splitlines())
        incremental = await timed(mode.kcore_proxy_sync(changed))
        incr_restore, incr_lines = sum(timer.restores[full_calls:]), mode.last_restore.count("\n")
        assert len(timer.restores) == full_calls + 1, "an incremental sync of one service took several calls"
        noop = await timed(mode.kcore_proxy_sync(replace(changed, generation=changed.generation + 1)))
        assert len(timer.restores) == full_calls + 1, "a no-op sync ran iptables-restore"
        cleanup = await timed(mode.kcore_proxy_cleanup())
        return {"first_sync_s": full, "first_restore_s": full_restore, "first_calls": full_calls,
                "first_lines": full_lines, "incr_sync_s": incremental, "incr_restore_s": incr_restore,
                "incr_lines": incr_lines, "noop_sync_s": noop, "cleanup_s": cleanup}

    with namespaces("pbench", "rules") as (node,):
        result = asyncio.run(run(node))
    return {"mode": "iptables", "services": n, "endpoints": sum(len(s.endpoints) for s in state.services),
            "render_s": render, "render_text_s": render_text, **result}


def socket_mode_sync(mode_name: str, n: int) -> dict[str, Any]:
    state = services_state(n, lambda i: f"127.97.{i // 250}.{i % 250 + 1}", VIP_PORT)
    changed = change_one(state)

    async def run() -> dict[str, Any]:
        if mode_name == "userspace":
            from kcore.proxy.userspace import UserspaceProxy

            mode: Any = UserspaceProxy(manage_addresses=False)
            settings: dict[str, Any] = {}
        else:
            from kcore_proxy_ipvs import IpvsProxy

            mode = IpvsProxy(forwarder_options={"manage_addresses": False})
            settings = {"datapath": "userspace"}
        await mode.kcore_proxy_start(settings=settings, context=None)
        try:
            first = await timed(mode.kcore_proxy_sync(state))
            incremental = await timed(mode.kcore_proxy_sync(changed))
            noop = await timed(mode.kcore_proxy_sync(replace(changed, generation=changed.generation + 1)))
        finally:
            cleanup = await timed(mode.kcore_proxy_cleanup())
        return {"first_sync_s": first, "incr_sync_s": incremental, "noop_sync_s": noop, "cleanup_s": cleanup}

    return {"mode": mode_name, "services": n, "endpoints": sum(len(s.endpoints) for s in state.services),
            **asyncio.run(run())}


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------


def table(header: Sequence[str], rows: list[Sequence[str]]) -> None:
    lines = [tuple(header), *map(tuple, rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(w) if i >= 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def print_tables(paths: list[dict[str, Any]], syncs: list[dict[str, Any]]) -> None:
    if paths:
        table(("path", "where", "MB/s", "ratio", "conn/s", "ratio"),
              [(r["path"], r["where"], f"{r['mbps']:.0f}", f"{r['mbps_ratio']:.2f}",
                f"{r['conns_per_s']:.0f}", f"{r['conns_ratio']:.2f}") for r in paths])
    if paths and syncs:
        print()
    if not syncs:
        return
    table(("mode", "services", "endpoints", "render ms", "1st sync ms", "1st restore ms", "calls", "1st lines",
           "incr sync ms", "incr restore ms", "incr lines", "no-op ms", "cleanup ms"),
          [(r["mode"], str(r["services"]), str(r["endpoints"]), ms(r.get("render_s")), ms(r["first_sync_s"]),
            ms(r.get("first_restore_s")), str(r.get("first_calls", "-")), str(r.get("first_lines", "-")),
            ms(r["incr_sync_s"]),
            ms(r.get("incr_restore_s")), str(r.get("incr_lines", "-")), ms(r["noop_sync_s"]), ms(r["cleanup_s"]))
           for r in syncs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512, help="size of the large transfer, MiB")
    parser.add_argument("--seconds", type=float, default=1.0, help="connection-rate time per path and round")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per path (medians are reported)")
    parser.add_argument("--services", default="1000,10000", help="comma-separated service counts for sync time")
    parser.add_argument("--skip-datapath", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    args = parser.parse_args()
    configure_logging(level="warning")
    root = os.geteuid() == 0
    notes: list[str] = []
    if not root:
        notes.append("not root: the iptables rows are skipped (they need a network namespace)")
    paths: list[dict[str, Any]] = []
    if not args.skip_datapath:
        with loopback_targets() as targets:
            paths += measure(targets, args.mb, args.seconds, args.rounds)
        if root:
            with iptables_targets() as targets:
                paths += measure(targets, args.mb, args.seconds, args.rounds)
    syncs: list[dict[str, Any]] = []
    if not args.skip_sync:
        for n in (int(x) for x in args.services.split(",")):
            if root:
                syncs.append(iptables_sync(n))
            syncs.append(socket_mode_sync("userspace", n))
            syncs.append(socket_mode_sync("ipvs", n))
    print_tables(paths, syncs)
    for note in notes:
        print(note)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps({
        "benchmark": "proxy_bench",
        "workload": f"one TCP service, per round and path a {args.mb} MiB transfer and {args.seconds}s of "
                    f"sequential 1-request connections, {args.rounds} rounds; "
                    f"sync of {args.services} services with 2-3 endpoints each",
        "iptables": sh("iptables", "--version").strip() if root else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "notes": notes,
        "datapath": paths,
        "sync": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in syncs],
    }, option=orjson.OPT_INDENT_2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
