"""Pod network (the ``flannel`` plugin): time to network a pod and to tear it down, and
pod-to-pod TCP throughput across two hosts through the VXLAN overlay versus
host-to-host over the underlay, in the same run.

Needs root. Every "host" is a network namespace ``kcore-bench-cni-<hex>-h<n>`` with a
veth into an underlay namespace holding a bridge (kcore_cni_flannel.lab); a real API
server on 127.0.0.1 (memory store) holds the Node objects; each host runs its own
``Flannel`` instance with ``node_netns`` set, so nothing touches the host's network
and every namespace is deleted at the end. Measured:

* ``add`` / ``del``: ``kcore_cni_add`` into a fresh pod namespace (IPAM + veth pair +
  addresses + routes) and ``kcore_cni_del``, one pod at a time, p50/p99 over ``--pods``;
* ``overlay`` / ``underlay``: one TCP stream for ``--seconds`` between Python sender and
  receiver processes (``ip netns exec``): pod on host 1 -> pod on host 2 by pod IP,
  then host 1 -> host 2 by underlay IP; the best of ``--repeat`` runs each, and the
  overlay/underlay ratio.

Prints a table and writes benchmarks/results/cni_bench.json.

    sudo .venv/bin/python benchmarks/cni_bench.py [--pods 50] [--seconds 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import platform
import sys
import time
from types import SimpleNamespace
from typing import Any

from kcore.apiserver.server import ApiServer
from kcore.client import ApiClient
from kcore.config import ApiServerConfig, NetworkConfig
from kcore.log import configure_logging
from kcore.store.memory import MemoryStore
from kcore_cni_flannel.lab import Host, Lab
from kcore_cni_flannel.plugin import Flannel

RESULTS = pathlib.Path(__file__).parent / "results" / "cni_bench.json"
PORT = 5201

# Accept one connection, count bytes until EOF; print {"bytes": n, "seconds": t}.
RECEIVER = r"""
import json, socket, sys, time
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
conn, _ = srv.accept()
buf = bytearray(1 << 20); view = memoryview(buf); total = 0; start = None
while True:
    n = conn.recv_into(view)
    if not n: break
    if start is None: start = time.perf_counter()
    total += n
print(json.dumps({"bytes": total, "seconds": time.perf_counter() - start}))
"""

# Connect (retrying while the receiver starts), send for argv[3] seconds, close.
SENDER = r"""
import socket, sys, time
deadline = time.monotonic() + 10
while True:
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.05)
chunk = b"\0" * (256 << 10); end = time.perf_counter() + float(sys.argv[3])
while time.perf_counter() < end:
    s.sendall(chunk)
s.close()
"""


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def pod(i: int) -> dict[str, Any]:
    return {"metadata": {"name": f"bench-{i}", "namespace": "default", "uid": f"uid-bench-{i}"}}


async def stream(lab: Lab, src: str, dst: str, address: str, seconds: float) -> float:
    """One TCP stream from namespace ``src`` to ``address`` in ``dst``; Gbit/s."""
    receiver = await lab.spawn(dst, RECEIVER, address, str(PORT))
    sender = await lab.spawn(src, SENDER, address, str(PORT), str(seconds))
    _, err = await asyncio.wait_for(sender.communicate(), seconds + 30)
    if sender.returncode != 0:
        raise RuntimeError(f"sender failed: {err.decode()}")
    out, err = await asyncio.wait_for(receiver.communicate(), 30)
    if receiver.returncode != 0:
        raise RuntimeError(f"receiver failed: {err.decode()}")
    result = json.loads(out)
    return result["bytes"] * 8 / result["seconds"] / 1e9


async def run(args: argparse.Namespace) -> dict[str, Any]:
    lab = Lab("bench-cni")
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True))
    await server.start()
    plugins: list[tuple[Flannel, SimpleNamespace]] = []
    try:
        async with ApiClient(server.url) as client:
            hosts: list[Host] = [await lab.add_host(i) for i in (1, 2)]
            for host in hosts:
                node = await client.resource("v1", "Node").create(
                    {"metadata": {"name": host.name},
                     "status": {"addresses": [{"type": "InternalIP", "address": host.ip}]}})
                ctx = SimpleNamespace(client=client, data_dir=pathlib.Path(args.data_dir) / host.name,
                                      node_name=host.name, node_ip=host.ip, node_netns=host.netns)
                plugin = Flannel()
                plugins.append((plugin, ctx))
                await plugin.kcore_cni_setup_node(settings=NetworkConfig(), node=node, context=ctx)
            (first, ctx1), (second, ctx2) = plugins

            spaces = [await lab.add_netns(f"p{i}") for i in range(args.pods)]
            adds: list[float] = []
            for i, netns in enumerate(spaces):
                start = time.perf_counter()
                await first.kcore_cni_add(pod=pod(i), netns=netns, context=ctx1)
                adds.append(time.perf_counter() - start)
            dels: list[float] = []
            for i, netns in enumerate(spaces):
                start = time.perf_counter()
                await first.kcore_cni_del(pod=pod(i), netns=netns, context=ctx1)
                dels.append(time.perf_counter() - start)

            src_ns, dst_ns = await lab.add_netns("src"), await lab.add_netns("dst")
            await first.kcore_cni_add(pod=pod(1000), netns=src_ns, context=ctx1)
            result = await second.kcore_cni_add(pod=pod(1001), netns=dst_ns, context=ctx2)
            dst_ip = result["ips"][0]["address"].split("/")[0]
            overlay: list[float] = []
            underlay: list[float] = []
            for _ in range(args.repeat):
                overlay.append(await stream(lab, src_ns, dst_ns, dst_ip, args.seconds))
                underlay.append(await stream(lab, hosts[0].netns, hosts[1].netns, hosts[1].ip, args.seconds))
    finally:
        for plugin, ctx in plugins:
            await plugin.kcore_cni_teardown_node(context=ctx)
        await lab.aclose()
        await server.stop()
        await store.close()
        leftovers = lab.leftovers()
        if leftovers:
            print(f"warning: namespaces left behind: {leftovers}", file=sys.stderr)

    ms = 1000.0
    rows = [
        {"measure": "add", "what": f"kcore_cni_add, {args.pods} pods one at a time",
         "p50_ms": round(percentile(adds, 0.5) * ms, 2), "p99_ms": round(percentile(adds, 0.99) * ms, 2),
         "mean_ms": round(sum(adds) / len(adds) * ms, 2)},
        {"measure": "del", "what": f"kcore_cni_del, {args.pods} pods one at a time",
         "p50_ms": round(percentile(dels, 0.5) * ms, 2), "p99_ms": round(percentile(dels, 0.99) * ms, 2),
         "mean_ms": round(sum(dels) / len(dels) * ms, 2)},
        {"measure": "overlay", "what": "pod h1 -> pod h2 over flannel.1 (VXLAN), 1 TCP stream",
         "gbit_s": round(max(overlay), 3), "runs_gbit_s": [round(x, 3) for x in overlay]},
        {"measure": "underlay", "what": "h1 -> h2 over the underlay veth/bridge, 1 TCP stream",
         "gbit_s": round(max(underlay), 3), "runs_gbit_s": [round(x, 3) for x in underlay]},
    ]
    return {"rows": rows, "overlay_to_underlay": round(max(overlay) / max(underlay), 3)}


def print_table(result: dict[str, Any]) -> None:
    header = ("measure", "p50 ms", "p99 ms", "mean ms", "Gbit/s", "what")
    lines = [header] + [
        (r["measure"], str(r.get("p50_ms", "-")), str(r.get("p99_ms", "-")), str(r.get("mean_ms", "-")),
         str(r.get("gbit_s", "-")), r["what"]) for r in result["rows"]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(w) if i in (0, 5) else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths, strict=True))))
    print(f"overlay / underlay throughput: {result['overlay_to_underlay']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=50, help="pods to add and delete")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each TCP stream")
    parser.add_argument("--repeat", type=int, default=3, help="streams per path (the best counts)")
    parser.add_argument("--data-dir", default=None, help="IPAM state (default: a temporary directory)")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("cni_bench needs root: it builds hosts and pods in network namespaces")
    configure_logging(level="warning")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kcore-cni-bench-") as tmp:
        args.data_dir = args.data_dir or tmp
        result = asyncio.run(run(args))
    print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "cni_bench",
        "workload": f"{args.pods} pods added then deleted on one host; one TCP stream of {args.seconds}s, "
                    f"best of {args.repeat}, pod->pod across two namespace hosts (VXLAN) and host->host",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        **result,
    }, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
