"""Cluster DNS: queries/s answered over UDP and p50/p99 latency, from a table of 1,000 services.

The ``coredns`` plugin's server runs in a child process on 127.0.0.1 with its
cluster view filled directly (1,000 ClusterIP services plus 100 headless ones with
3 endpoints each: the informer cache it would hold); the benchmark process is the
client, sending A queries for random services over one UDP socket with a fixed
number in flight (a closed loop), and checking every answer (NOERROR, one
address or more). Measured per row:

* ``cached``: the server's answer cache on (the default; a repeated question is a
  dict lookup until the next Service/EndpointSlice change);
* ``uncached``: every query parsed, resolved from the view and rendered with
  dnspython;
* ``resolver``: the same two paths in-process without sockets (the server's CPU
  cost per query, no kernel or client time);
* ``dnsperf``: when Debian's ``dnsperf`` is on PATH (scripts/system-packages.sh
  installs it), the same server measured by that C client instead (``-q 100``
  queries in flight, one UDP socket) from a query file of the service names plus
  10% names that do not exist (NXDOMAIN), so the Python client's own cost is out
  of the number.

Prints a table and writes benchmarks/results/dns_bench.json.

    .venv/bin/python benchmarks/dns_bench.py [--seconds 3] [--services 1000] [--concurrency 1,32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import pathlib
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import dns.message
import orjson

from kcore.log import configure_logging

RESULTS = pathlib.Path(__file__).parent / "results" / "dns_bench.json"
HEADLESS = 100


def fill_view(view: Any, services: int) -> None:
    for i in range(services):
        view.on_service({"metadata": {"name": f"svc-{i}", "namespace": f"ns-{i % 20}"},
                         "spec": {"clusterIP": f"10.96.{i // 250}.{i % 250 + 1}",
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    for i in range(HEADLESS):
        name, namespace = f"db-{i}", f"ns-{i % 20}"
        view.on_service({"metadata": {"name": name, "namespace": namespace},
                         "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})
        view.on_slice({"metadata": {"name": f"{name}-x", "namespace": namespace,
                                    "labels": {"kubernetes.io/service-name": name}},
                       "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                       "endpoints": [{"addresses": [f"10.244.{i}.{k + 1}"], "hostname": f"{name}-{k}",
                                      "conditions": {"ready": True}} for k in range(3)]})


def query_names(services: int) -> list[str]:
    names = [f"svc-{i}.ns-{i % 20}.svc.cluster.local" for i in range(services)]
    names += [f"db-{i}.ns-{i % 20}.svc.cluster.local" for i in range(HEADLESS)]
    return names


def serve(services: int, cache: bool, port_out: Any, stop: Any) -> None:
    """The child process: fill a view, listen, report the port, run until told to stop."""
    configure_logging(level="warning")
    from kcore_dns_coredns import build_server

    async def main() -> None:
        server = build_server({"bind_address": "127.0.0.1", "port": 0, "cache": cache})
        fill_view(server.view, services)
        await server.start()
        port_out.put(server.port)
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        threading.Thread(target=lambda: (stop.wait(), loop.call_soon_threadsafe(done.set_result, None)),
                         daemon=True).start()
        await done
        await server.stop()

    asyncio.run(main())


def load(port: int, names: list[str], concurrency: int, seconds: float) -> dict[str, Any]:
    """Closed-loop UDP client: ``concurrency`` queries in flight for ``seconds``."""
    wires = [dns.message.make_query(n, "A").to_wire() for n in names]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(1.0)
    rng = random.Random(1)
    pending: dict[int, float] = {}
    latencies: list[float] = []
    next_id = 0
    lost = bad = 0

    def send() -> None:
        nonlocal next_id
        next_id = (next_id + 1) & 0xFFFF
        while next_id in pending:
            next_id = (next_id + 1) & 0xFFFF
        wire = rng.choice(wires)
        pending[next_id] = time.perf_counter()
        sock.send(next_id.to_bytes(2, "big") + wire[2:])

    # Warm up (fills the server's answer cache when it has one), then measure.
    for phase, length in (("warm", min(1.0, seconds / 3)), ("measure", seconds)):
        latencies.clear()
        lost = bad = 0
        pending.clear()
        for _ in range(concurrency):
            send()
        start = time.perf_counter()
        end = start + length
        while True:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                lost += len(pending)
                pending.clear()
                if time.perf_counter() >= end:
                    break
                for _ in range(concurrency):
                    send()
                continue
            now = time.perf_counter()
            sent = pending.pop(int.from_bytes(data[:2], "big"), None)
            if sent is None:
                continue
            if data[3] & 0x0F != 0 or int.from_bytes(data[6:8], "big") == 0:
                bad += 1
            latencies.append(now - sent)
            if now < end:
                send()
            elif not pending:
                break
        elapsed = time.perf_counter() - start
    sock.close()
    latencies.sort()
    return {"queries": len(latencies), "seconds": round(elapsed, 3),
            "qps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 3),
            "lost": lost, "bad_answers": bad}


@contextlib.contextmanager
def served(services: int, cache: bool) -> Iterator[int]:
    """The server in a child process; yields its UDP/TCP port on 127.0.0.1."""
    ctx = multiprocessing.get_context("spawn")
    port_out, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=serve, args=(services, cache, port_out, stop), daemon=True)
    child.start()
    try:
        yield port_out.get(timeout=60)
    finally:
        stop.set()
        child.join(10)
        if child.is_alive():
            child.kill()


def bench_socket(services: int, cache: bool, concurrency: int, seconds: float) -> dict[str, Any]:
    with served(services, cache) as port:
        return load(port, query_names(services), concurrency, seconds)


def dnsperf_queries(services: int) -> list[str]:
    """dnsperf's query file: every service name, and one missing name per ten (NXDOMAIN)."""
    names = query_names(services)
    missing = [f"missing-{i}.ns-{i % 20}.svc.cluster.local" for i in range(len(names) // 10)]
    lines = [f"{name} A" for name in names + missing]
    random.Random(3).shuffle(lines)
    return lines


def bench_dnsperf(dnsperf: str, services: int, cache: bool, seconds: float, in_flight: int = 100) -> dict[str, Any]:
    """Run ``dnsperf`` against the server for ``seconds``; its queries/s, latency and rcodes."""
    with tempfile.NamedTemporaryFile("w", suffix=".queries") as data, served(services, cache) as port:
        data.write("\n".join(dnsperf_queries(services)) + "\n")
        data.flush()
        # Warm-up pass (the answer cache), then the measured run.
        for limit in (min(1.0, seconds / 3), seconds):
            proc = subprocess.run([dnsperf, "-s", "127.0.0.1", "-p", str(port), "-d", data.name,
                                   "-l", str(limit), "-q", str(in_flight), "-c", "1", "-t", "2"],
                                  capture_output=True, text=True, timeout=seconds + 30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"dnsperf failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return parse_dnsperf(proc.stdout) | {"concurrency": in_flight}


def parse_dnsperf(text: str) -> dict[str, Any]:
    """The numbers of dnsperf's summary ("Queries completed: N", "Queries per second: X", ...)."""
    def number(label: str) -> float:
        match = re.search(rf"{label}:\s+([0-9.]+)", text)
        if match is None:
            raise RuntimeError(f"no {label!r} in dnsperf output:\n{text}")
        return float(match.group(1))

    codes = dict((name, int(count)) for name, count in
                 re.findall(r"([A-Z]+) (\d+) \(", (re.search(r"Response codes:(.*)", text) or ["", ""])[1]))
    return {"queries": int(number("Queries completed")), "seconds": number("Run time \\(s\\)"),
            "qps": number("Queries per second"), "avg_ms": round(number("Average Latency \\(s\\)") * 1000, 3),
            "lost": int(number("Queries lost")), "rcodes": codes}


def bench_resolver(services: int, cache: bool, seconds: float) -> dict[str, Any]:
    from kcore_dns_coredns import ClusterView, Resolver

    view = ClusterView()
    fill_view(view, services)
    resolver = Resolver(view, cache=cache)
    wires = [dns.message.make_query(n, "A").to_wire() for n in query_names(services)]
    for wire in wires:
        resolver.answer(wire, udp=True)
    rng = random.Random(2)
    order = [rng.choice(wires) for _ in range(10_000)]
    count = 0
    samples: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = time.perf_counter()
        for wire in order:
            resolver.answer(wire, udp=True)
        samples.append((time.perf_counter() - batch) / len(order))
        count += len(order)
    elapsed = time.perf_counter() - start
    return {"queries": count, "seconds": round(elapsed, 3), "qps": round(count / elapsed, 1),
            "us_per_query": round(statistics.median(samples) * 1e6, 2)}


def dnsperf_version(dnsperf: str) -> str:
    proc = subprocess.run([dnsperf, "-h"], capture_output=True, text=True, check=False)
    match = re.search(r"Version (\S+)", proc.stdout + proc.stderr)
    return f"dnsperf {match.group(1)}" if match else "dnsperf"


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("path", "answers", "in flight", "queries/s", "p50 ms", "p99 ms", "avg ms", "queries", "lost")

    def ms(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.3f}" if key in row else "-"

    lines = [header] + [
        (r["path"], r["answers"], str(r.get("concurrency", "-")), f"{r['qps']:.0f}",
         ms(r, "p50_ms"), ms(r, "p99_ms"), ms(r, "avg_ms"), str(r["queries"]), str(r.get("lost", "-")))
        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(w) if i >= 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--concurrency", default="1,32", help="comma-separated queries in flight")
    parser.add_argument("--no-dnsperf", action="store_true", help="skip the dnsperf rows even if it is installed")
    args = parser.parse_args()
    configure_logging(level="warning")
    dnsperf = None if args.no_dnsperf else shutil.which("dnsperf")
    rows: list[dict[str, Any]] = []
    for cache in (True, False):
        label = "cached" if cache else "uncached"
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            result = bench_socket(args.services, cache, concurrency, args.seconds)
            rows.append({"path": "udp", "answers": label, "concurrency": concurrency, **result})
        rows.append({"path": "resolver", "answers": label, **bench_resolver(args.services, cache, args.seconds)})
        if dnsperf:
            rows.append({"path": "dnsperf", "answers": label,
                         **bench_dnsperf(dnsperf, args.services, cache, min(args.seconds, 10.0))})
    print_table(rows)
    if not dnsperf:
        print("dnsperf not on PATH: no dnsperf rows (scripts/system-packages.sh installs it as root)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps({
        "benchmark": "dns_bench",
        "workload": f"A queries for random names among {args.services} ClusterIP services and {HEADLESS} "
                    "headless services (3 endpoints each), server in a child process on 127.0.0.1; "
                    "dnsperf rows: the same names plus 10% NXDOMAIN names",
        "dnsperf": dnsperf_version(dnsperf) if dnsperf else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "results": rows,
    }, option=orjson.OPT_INDENT_2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
