"""Hollow nodes end to end: nodes registered/s and pods/s to Running through a real server.

Starts ``kcore server`` (sqlite store, scheduler, controllers) and ``kcore simulate
--nodes N`` as two subprocesses, then, from this process, watches Nodes and Pods
through the admin client and measures:

* registration: from starting ``kcore simulate`` to N Nodes Ready (nodes/s);
* idle: the simulate process's CPU and memory with N nodes heartbeating;
* pods: a Deployment of P replicas (100m cpu, 64Mi each), from create to P pods
  scheduled and to P pods Running and Ready (pods/s);
* teardown: scaling to 0 until every pod is gone (pods/s);

with, per phase, the CPU seconds used by the server and by the simulate process.
Prints a table and writes benchmarks/results/hollow_bench.json.

    .venv/bin/python benchmarks/hollow_bench.py [--nodes 200] [--pods 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson
import psutil

from kcore.client import ApiClient, Informer
from kcore.log import configure_logging

RESULTS = pathlib.Path(__file__).parent / "results" / "hollow_bench.json"
KCORE = [sys.executable, "-m", "kcore.cli"]

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hollow-bench"},
    "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "hollow-bench"}},
        "template": {"metadata": {"labels": {"app": "hollow-bench"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}},
    },
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cpu:
    """CPU seconds of a process (and its children) between two points."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)

    def seconds(self) -> float:
        try:
            t = self.proc.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    def rss_mib(self) -> float:
        try:
            return self.proc.memory_info().rss / 2**20
        except psutil.Error:
            return 0.0


def ready(obj: dict[str, Any]) -> bool:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"hollow_bench: {what} did not happen within {timeout:.0f}s")
        await asyncio.sleep(0.02)
    return time.perf_counter() - start


async def bench(nodes: int, pods: int, tmp: pathlib.Path) -> dict[str, Any]:
    port = free_port()
    config = tmp / "kcore.toml"
    config.write_text(f'[apiserver]\nbind_address = "127.0.0.1"\nport = {port}\n'
                      '[logging]\nlevel = "warning"\n')
    data = tmp / "data"
    server = subprocess.Popen([*KCORE, "server", "--data-dir", str(data), "--config", str(config)],
                              stdout=(tmp / "server.log").open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    sim: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while not (data / "kubeconfig.yaml").exists() or not (data / "token").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"kcore server did not start:\n{(tmp / 'server.log').read_text()}")
            await asyncio.sleep(0.05)
        admin = ApiClient.from_kubeconfig(data / "kubeconfig.yaml")
        node_inf = Informer(admin, "v1", "Node")
        pod_inf = Informer(admin, "v1", "Pod", namespace="default")
        tasks = [asyncio.create_task(node_inf.run()), asyncio.create_task(pod_inf.run())]
        await node_inf.wait_synced()
        await pod_inf.wait_synced()
        server_cpu = Cpu(server.pid)
        out: dict[str, Any] = {"nodes": nodes, "pods": pods, "cpus": os.cpu_count()}

        def ready_nodes() -> int:
            return sum(1 for n in node_inf.indexer.list() if ready(n))

        # -- registration
        token = (data / "token").read_text().strip()
        sim_config = tmp / "simulate.toml"
        sim_config.write_text('[logging]\nlevel = "warning"\n')
        s0 = server_cpu.seconds()
        sim = subprocess.Popen([*KCORE, "simulate", "--server", f"https://127.0.0.1:{port}", "--token", token,
                                "--nodes", str(nodes), "--config", str(sim_config),
                                "--data-dir", str(tmp / "hollow")],
                               stdout=(tmp / "simulate.log").open("wb"), stderr=subprocess.STDOUT)
        sim_cpu = Cpu(sim.pid)
        secs = await wait_until(lambda: ready_nodes() >= nodes, 300, f"{nodes} nodes Ready")
        out["register"] = {"seconds": secs, "nodes_per_second": nodes / secs,
                           "server_cpu_seconds": server_cpu.seconds() - s0,
                           "simulate_cpu_seconds": sim_cpu.seconds()}

        # -- idle heartbeating
        await asyncio.sleep(2)  # let start-up settle
        s0, m0, t0 = server_cpu.seconds(), sim_cpu.seconds(), time.perf_counter()
        await asyncio.sleep(10)
        dt = time.perf_counter() - t0
        out["idle"] = {"seconds": dt, "server_cpu_percent": 100 * (server_cpu.seconds() - s0) / dt,
                       "simulate_cpu_percent": 100 * (sim_cpu.seconds() - m0) / dt,
                       "simulate_rss_mib": sim_cpu.rss_mib(),
                       "simulate_rss_kib_per_node": sim_cpu.rss_mib() * 1024 / nodes,
                       "server_rss_mib": server_cpu.rss_mib()}

        # -- pods
        def count(pred: Callable[[dict[str, Any]], bool]) -> int:
            return sum(1 for p in pod_inf.indexer.list() if pred(p))

        deployments = admin.resource("apps/v1", "Deployment")
        body = orjson.loads(orjson.dumps(DEPLOYMENT))
        body["spec"]["replicas"] = pods
        s0, m0 = server_cpu.seconds(), sim_cpu.seconds()
        await deployments.create(body, namespace="default")
        scheduled = await wait_until(lambda: count(lambda p: bool((p.get("spec") or {}).get("nodeName"))) >= pods,
                                     600, f"{pods} pods scheduled")
        running = scheduled + await wait_until(
            lambda: count(lambda p: (p.get("status") or {}).get("phase") == "Running" and ready(p)) >= pods,
            600, f"{pods} pods Running")
        per_node: dict[str, int] = {}
        for p in pod_inf.indexer.list():
            per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
        out["run"] = {"seconds_to_scheduled": scheduled, "seconds_to_running": running,
                      "pods_per_second": pods / running,
                      "nodes_used": len(per_node), "max_pods_per_node": max(per_node.values()),
                      "server_cpu_seconds": server_cpu.seconds() - s0,
                      "simulate_cpu_seconds": sim_cpu.seconds() - m0,
                      "simulate_rss_mib": sim_cpu.rss_mib()}

        # -- teardown
        s0, m0 = server_cpu.seconds(), sim_cpu.seconds()
        await deployments.patch("hollow-bench", {"spec": {"replicas": 0}}, namespace="default")
        secs = await wait_until(lambda: len(pod_inf.indexer) == 0, 600, "every pod gone")
        out["teardown"] = {"seconds": secs, "pods_per_second": pods / secs,
                           "server_cpu_seconds": server_cpu.seconds() - s0,
                           "simulate_cpu_seconds": sim_cpu.seconds() - m0}
        for inf in (node_inf, pod_inf):
            await inf.stop()
        for task in tasks:
            task.cancel()
        await admin.close()
        return out
    finally:
        for proc in (sim, server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def print_table(r: dict[str, Any]) -> None:
    rows = [
        ("register", f"{r['nodes']} nodes Ready", f"{r['register']['seconds']:.2f}",
         f"{r['register']['nodes_per_second']:.0f} nodes/s",
         f"{r['register']['server_cpu_seconds']:.1f}", f"{r['register']['simulate_cpu_seconds']:.1f}"),
        ("idle", "10 s of heartbeats", f"{r['idle']['seconds']:.2f}",
         f"{r['idle']['simulate_rss_kib_per_node']:.0f} KiB/node",
         f"{r['idle']['server_cpu_percent'] * r['idle']['seconds'] / 100:.1f}",
         f"{r['idle']['simulate_cpu_percent'] * r['idle']['seconds'] / 100:.1f}"),
        ("scheduled", f"{r['pods']} pods bound", f"{r['run']['seconds_to_scheduled']:.2f}",
         f"{r['pods'] / r['run']['seconds_to_scheduled']:.0f} pods/s", "", ""),
        ("running", f"{r['pods']} pods Running", f"{r['run']['seconds_to_running']:.2f}",
         f"{r['run']['pods_per_second']:.0f} pods/s",
         f"{r['run']['server_cpu_seconds']:.1f}", f"{r['run']['simulate_cpu_seconds']:.1f}"),
        ("teardown", "scale to 0, all gone", f"{r['teardown']['seconds']:.2f}",
         f"{r['teardown']['pods_per_second']:.0f} pods/s",
         f"{r['teardown']['server_cpu_seconds']:.1f}", f"{r['teardown']['simulate_cpu_seconds']:.1f}"),
    ]
    header = ("phase", "what", "seconds", "rate", "server cpu s", "simulate cpu s")
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
    print(f"spread: {r['run']['nodes_used']} nodes used, at most {r['run']['max_pods_per_node']} pods on one; "
          f"simulate RSS {r['idle']['simulate_rss_mib']:.0f} MiB idle, {r['run']['simulate_rss_mib']:.0f} MiB "
          f"with pods; idle CPU: simulate {r['idle']['simulate_cpu_percent']:.0f}%, "
          f"server {r['idle']['server_cpu_percent']:.0f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS)
    args = parser.parse_args()
    configure_logging(level="warning")
    with tempfile.TemporaryDirectory(prefix="hollow-bench-") as tmp:
        result = asyncio.run(bench(args.nodes, args.pods, pathlib.Path(tmp)))
    print_table(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps({
        "benchmark": "hollow_bench",
        "workload": "kcore server + kcore simulate (fake runtime); Deployment pods request 100m cpu/64Mi; "
                    "hollow nodes 4 cpu/16Gi/110 pods",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "results": [result],
    }, option=orjson.OPT_INDENT_2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
