"""The API server end to end: creates/s, gets/s, list latency and watch latency over HTTPS.

Starts the API server as ``kcore server`` does (PKI, TLS, authn/authz, admission,
sqlite store in a temp data dir, free port on 127.0.0.1) but without the scheduler
and controllers, in a subprocess so its CPU is separate from the client's
(``--role server`` or ``--role up`` starts the whole process instead). Talks to it
the way a user does: HTTPS with the admin client certificate from the kubeconfig it
writes, over keep-alive connections. Phases:

- creates: N pods (default 10,000) in ``default`` with ``--workers`` concurrent
  creators (1,000 pods in ``bench-1k`` are created first, as a warm-up and for the
  small list);
- gets: concurrent GETs of random pods for a fixed time;
- lists: full list of the 1,000 and the N pods, median of a few runs, and the N
  pods again walked in pages of 500;
- watch: ``--watchers`` watches of ConfigMaps in ``bench-w``; one ConfigMap is
  updated ``--updates`` times, one at a time (each update waits until every watcher
  has it), and per delivery we record receive time minus the write's completion
  (``after ack``) and minus its start (``after send``).

Prints a table and writes benchmarks/results/api_bench.json.

    .venv/bin/python benchmarks/api_bench.py            # full run, under a minute
    .venv/bin/python benchmarks/api_bench.py --quick    # CI smoke, ~20 seconds
    .venv/bin/python benchmarks/api_bench.py --kubeconfig PATH   # an already running server
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from kcore.apiserver.pki import client_ssl_context
from kcore.kubeconfig import current_credentials, load_kubeconfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "api_bench.json"
JSON = {"Content-Type": "application/json"}
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class Settings:
    pods: int
    small_pods: int
    workers: int
    get_seconds: float
    list_runs: int
    watchers: int
    updates: int
    update_gap: float


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile; ``samples`` need not be sorted."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs have spent not idle since boot (Linux /proc/stat)."""
    try:
        fields = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(fields[:8]) - fields[3] - fields[4]) / TICK  # all but idle and iowait


class CpuMeter:
    """Where the CPU went during a phase, in percent of one core: the server (~100% means
    its single event loop is saturated) and everything that is neither the server nor
    this client (other work on the machine, which makes the numbers low)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def server_seconds(self) -> float | None:
        if self.pid is None:
            return None
        try:
            fields = pathlib.Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

    @contextmanager
    def phase(self, out: dict[str, Any], name: str) -> Iterator[None]:
        """Record ``<name>_server_cpu_pct`` and ``<name>_other_cpu_pct`` over the block."""
        s0, m0, c0, t0 = self.server_seconds(), machine_busy_seconds(), time.process_time(), time.perf_counter()
        yield
        s1, m1, c1, elapsed = self.server_seconds(), machine_busy_seconds(), time.process_time(), \
            time.perf_counter() - t0
        if s0 is None or s1 is None or elapsed <= 0:
            return
        out[f"{name}_server_cpu_pct"] = round(100 * (s1 - s0) / elapsed, 1)
        if m0 is not None and m1 is not None:
            other = (m1 - m0) - (s1 - s0) - (c1 - c0)
            out[f"{name}_other_cpu_pct"] = round(max(0.0, 100 * other / elapsed), 1)


@dataclass
class Client:
    """Thin HTTPS client: one pooled session for request/response, one for watches
    (each watch holds its own connection for the whole phase)."""

    base: str
    ssl: Any
    headers: dict[str, str]
    workers: int
    session: aiohttp.ClientSession = field(init=False)
    watch_session: aiohttp.ClientSession = field(init=False)

    async def __aenter__(self) -> Client:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=self.workers),
            headers=self.headers, timeout=aiohttp.ClientTimeout(total=120),
        )
        self.watch_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.ssl, limit=0),
            headers=self.headers, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        await self.watch_session.close()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(method, self.base + path, data=data,
                                        headers=JSON if data is not None else None) as resp:
            return resp.status, await resp.read()

    async def expect(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        status, raw = await self.request(method, path, body)
        if status not in ok:
            raise RuntimeError(f"{method} {path}: HTTP {status}: {raw[:300]!r}")
        return orjson.loads(raw) if raw else None


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


async def ensure_namespace(client: Client, name: str) -> None:
    await client.expect("POST", "/api/v1/namespaces", {"metadata": {"name": name}}, ok=(201, 409))


async def run_workers(workers: int, total: int, op: Callable[[int], Awaitable[None]]) -> float:
    """Run ``op(i)`` for i in range(total) over ``workers`` concurrent loops; seconds taken."""
    counter = iter(range(total))

    async def loop() -> None:
        for i in counter:  # a shared iterator: each index is taken by exactly one worker
            await op(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(workers)))
    return time.perf_counter() - t0


async def bench_creates(client: Client, s: Settings, run_id: str, cpu: CpuMeter,
                        out: dict[str, Any]) -> list[str]:
    await ensure_namespace(client, "bench-1k")
    latencies: list[float] = []
    failures = 0

    def creator(namespace: str, names: list[str]) -> Callable[[int], Awaitable[None]]:
        async def op(i: int) -> None:
            nonlocal failures
            t0 = time.perf_counter()
            status, raw = await client.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod(names[i]))
            latencies.append(time.perf_counter() - t0)
            if status != 201:
                failures += 1
                if failures <= 3:
                    print(f"create {names[i]}: HTTP {status}: {raw[:200]!r}", file=sys.stderr)
        return op

    small = [f"b{run_id}-{i:05d}" for i in range(s.small_pods)]
    await run_workers(s.workers, len(small), creator("bench-1k", small))
    latencies.clear()

    names = [f"p{run_id}-{i:05d}" for i in range(s.pods)]
    with cpu.phase(out, "create"):
        elapsed = await run_workers(s.workers, len(names), creator("default", names))
    out["creates_per_s"] = round(len(names) / elapsed, 1)
    out["create_p50_ms"] = round(percentile(latencies, 50) * 1000, 2)
    out["create_p99_ms"] = round(percentile(latencies, 99) * 1000, 2)
    out["create_failures"] = failures
    if failures:
        raise RuntimeError(f"{failures} of {len(names)} creates failed")
    return names


async def bench_gets(client: Client, s: Settings, names: list[str], cpu: CpuMeter,
                     out: dict[str, Any]) -> None:
    rng = random.Random(1)
    latencies: list[float] = []
    deadline = time.perf_counter() + s.get_seconds
    failures = 0

    async def loop() -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            name = names[rng.randrange(len(names))]
            t0 = time.perf_counter()
            status, _ = await client.request("GET", f"/api/v1/namespaces/default/pods/{name}")
            latencies.append(time.perf_counter() - t0)
            failures += status != 200

    t0 = time.perf_counter()
    with cpu.phase(out, "get"):
        await asyncio.gather(*(loop() for _ in range(s.workers)))
    elapsed = time.perf_counter() - t0
    out["gets_per_s"] = round(len(latencies) / elapsed, 1)
    out["get_p50_ms"] = round(percentile(latencies, 50) * 1000, 2)
    out["get_p99_ms"] = round(percentile(latencies, 99) * 1000, 2)
    if failures:
        raise RuntimeError(f"{failures} GETs failed")


async def timed_list(client: Client, path: str) -> tuple[float, int, int]:
    """One full response read (not parsed) -> (seconds, items, bytes)."""
    t0 = time.perf_counter()
    status, raw = await client.request("GET", path)
    elapsed = time.perf_counter() - t0
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status}: {raw[:200]!r}")
    return elapsed, len(orjson.loads(raw)["items"]), len(raw)


async def bench_lists(client: Client, s: Settings, cpu: CpuMeter, out: dict[str, Any]) -> None:
    async def paged() -> tuple[float, int, int]:
        t0, items, pages, token = time.perf_counter(), 0, 0, ""
        while True:
            path = "/api/v1/namespaces/default/pods?limit=500" + (f"&continue={token}" if token else "")
            body = await client.expect("GET", path)
            items += len(body["items"])
            pages += 1
            token = body["metadata"].get("continue") or ""
            if not token:
                return time.perf_counter() - t0, items, pages

    with cpu.phase(out, "list"):
        for key, namespace in (("list_small", "bench-1k"), ("list_big", "default")):
            runs = [await timed_list(client, f"/api/v1/namespaces/{namespace}/pods") for _ in range(s.list_runs)]
            out[f"{key}_ms"] = round(statistics.median(r[0] for r in runs) * 1000, 1)
            out[f"{key}_items"] = runs[0][1]
            out[f"{key}_mb"] = round(runs[0][2] / 1e6, 2)
        runs = [await paged() for _ in range(s.list_runs)]
    out["list_big_paged_500_ms"] = round(statistics.median(r[0] for r in runs) * 1000, 1)
    out["list_big_paged_items"] = runs[0][1]
    out["list_big_pages"] = runs[0][2]


async def bench_watch(client: Client, s: Settings, cpu: CpuMeter, out: dict[str, Any]) -> None:
    await ensure_namespace(client, "bench-w")
    base = "/api/v1/namespaces/bench-w/configmaps"
    name = f"cm-{uuid.uuid4().hex[:8]}"
    cm = await client.expect("POST", base, {"metadata": {"name": name}, "data": {"seq": "-1"}})
    start_rv = cm["metadata"]["resourceVersion"]

    total_updates = s.updates + 1  # seq 0 is a warm-up, not measured
    received: list[list[float]] = [[0.0] * total_updates for _ in range(s.watchers)]
    counts = [0] * total_updates
    arrived = [asyncio.Event() for _ in range(total_updates)]
    connected = 0
    all_connected = asyncio.Event()

    async def watcher(w: int) -> None:
        nonlocal connected
        url = f"{client.base}{base}?watch=true&resourceVersion={start_rv}"
        async with client.watch_session.get(url) as resp:
            if resp.status != 200:
                raise RuntimeError(f"watch: HTTP {resp.status}: {(await resp.read())[:200]!r}")
            connected += 1
            if connected == s.watchers:
                all_connected.set()
            async for line in resp.content:
                now = time.perf_counter()
                event = orjson.loads(line)
                obj = event["object"]
                if event["type"] != "MODIFIED" or obj["metadata"]["name"] != name:
                    continue
                seq = int(obj["data"]["seq"])
                received[w][seq] = now
                counts[seq] += 1
                if counts[seq] == s.watchers:
                    arrived[seq].set()
                if seq == total_updates - 1:
                    return

    tasks = [asyncio.create_task(watcher(w)) for w in range(s.watchers)]
    try:
        await asyncio.wait_for(all_connected.wait(), 60)
        sent = [0.0] * total_updates
        acked = [0.0] * total_updates

        async def update(seq: int) -> None:
            nonlocal cm
            cm["data"] = {"seq": str(seq)}
            sent[seq] = time.perf_counter()
            cm = await client.expect("PUT", f"{base}/{name}", cm)
            acked[seq] = time.perf_counter()
            await asyncio.wait_for(arrived[seq].wait(), 30)
            await asyncio.sleep(s.update_gap)

        await update(0)
        with cpu.phase(out, "watch"):
            for seq in range(1, total_updates):
                await update(seq)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    after_ack = [received[w][q] - acked[q] for w in range(s.watchers) for q in range(1, total_updates)]
    after_send = [received[w][q] - sent[q] for w in range(s.watchers) for q in range(1, total_updates)]
    fanout = [max(received[w][q] for w in range(s.watchers)) - min(received[w][q] for w in range(s.watchers))
              for q in range(1, total_updates)]
    out["watch_deliveries"] = len(after_ack)
    out["watch_p50_ms"] = round(percentile(after_ack, 50) * 1000, 2)
    out["watch_p99_ms"] = round(percentile(after_ack, 99) * 1000, 2)
    out["watch_after_send_p50_ms"] = round(percentile(after_send, 50) * 1000, 2)
    out["watch_after_send_p99_ms"] = round(percentile(after_send, 99) * 1000, 2)
    out["watch_first_to_last_p50_ms"] = round(percentile(fanout, 50) * 1000, 2)
    out["update_p50_ms"] = round(percentile([a - b for a, b in zip(acked[1:], sent[1:])], 50) * 1000, 2)


async def bench(kubeconfig: pathlib.Path, s: Settings, server_pid: int | None) -> dict[str, Any]:
    creds = current_credentials(load_kubeconfig(kubeconfig))
    ctx = client_ssl_context(creds["ca_pem"], creds["client_cert_pem"], creds["client_key_pem"])
    headers = {"Accept": "application/json"}
    if creds.get("token"):
        headers["Authorization"] = f"Bearer {creds['token']}"
    cpu = CpuMeter(server_pid)
    out: dict[str, Any] = {}
    run_id = uuid.uuid4().hex[:6]  # unique names, so a run against a live server never collides
    async with Client(creds["server"].rstrip("/"), ctx, headers, s.workers) as client:
        names: list[str] = []

        async def creates() -> None:
            names.extend(await bench_creates(client, s, run_id, cpu, out))

        phases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("creates", creates),
            ("gets", lambda: bench_gets(client, s, names, cpu, out)),
            ("lists", lambda: bench_lists(client, s, cpu, out)),
            ("watch", lambda: bench_watch(client, s, cpu, out)),
        ]
        for label, phase in phases:
            t0 = time.perf_counter()
            await phase()
            print(f"  {label}: {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return out


ROWS: list[tuple[str, str, str]] = [
    ("creates_per_s", "creates/s ({pods:,} pods, {workers} creators)", "/s"),
    ("create_p50_ms", "  create latency p50", "ms"),
    ("create_p99_ms", "  create latency p99", "ms"),
    ("gets_per_s", "gets/s ({workers} readers, random pods)", "/s"),
    ("get_p50_ms", "  get latency p50", "ms"),
    ("get_p99_ms", "  get latency p99", "ms"),
    ("list_small_ms", "list {list_small_items:,} pods (median of {list_runs}, {list_small_mb} MB)", "ms"),
    ("list_big_ms", "list {list_big_items:,} pods (median of {list_runs}, {list_big_mb} MB)", "ms"),
    ("list_big_paged_500_ms", "list {list_big_paged_items:,} pods, limit=500 ({list_big_pages} pages)", "ms"),
    ("watch_p50_ms", "watch latency p50 after ack ({watchers} watchers, {watch_deliveries:,} deliveries)", "ms"),
    ("watch_p99_ms", "watch latency p99 after ack", "ms"),
    ("watch_after_send_p50_ms", "watch latency p50 after send", "ms"),
    ("watch_after_send_p99_ms", "watch latency p99 after send", "ms"),
    ("watch_first_to_last_p50_ms", "  first-to-last watcher spread p50", "ms"),
    ("update_p50_ms", "  update (PUT) latency p50", "ms"),
] + [
    (f"{phase}_{who}_cpu_pct", f"{label} phase: {who} CPU (one core = 100%)", "%")
    for phase, label in (("create", "create"), ("get", "get"), ("list", "list"), ("watch", "watch"))
    for who in ("server", "other")
]


def print_table(results: dict[str, Any], s: Settings) -> None:
    fmt = {**vars(s), **results}
    lines = []
    for key, label, unit in ROWS:
        if key not in results:
            continue
        value = results[key]
        text = f"{value:,.0f}" if value >= 1000 else f"{value:,.1f}" if value >= 10 else f"{value:.2f}"
        lines.append((label.format(**fmt), f"{text} {unit}"))
    width = max(len(label) for label, _ in lines) + 2
    print("metric".ljust(width) + "value".rjust(14))
    for label, value in lines:
        print(label.ljust(width) + value.rjust(14))


def other_load(seconds: float) -> float | None:
    """Percent of one core the machine spends busy over ``seconds`` while we sleep."""
    m0 = machine_busy_seconds()
    time.sleep(seconds)
    m1 = machine_busy_seconds()
    return None if m0 is None or m1 is None else round(100 * (m1 - m0) / seconds, 1)


def settings_from(args: argparse.Namespace) -> Settings:
    if args.quick:
        s = Settings(pods=1000, small_pods=100, workers=args.workers, get_seconds=1.0, list_runs=3,
                     watchers=20, updates=30, update_gap=0.01)
    else:
        s = Settings(pods=10_000, small_pods=1000, workers=args.workers, get_seconds=5.0, list_runs=5,
                     watchers=100, updates=200, update_gap=0.02)
    if args.pods is not None:
        s.pods = args.pods
    if args.watchers is not None:
        s.watchers = args.watchers
    if args.updates is not None:
        s.updates = args.updates
    return s


async def serve_api(data_dir: pathlib.Path, config_path: pathlib.Path) -> None:
    """The API server exactly as ``kcore server`` starts it (PKI, TLS, authn/authz,
    admission, store, watch caches) but without the scheduler and controllers, whose
    own traffic would otherwise be measured too. Runs until SIGTERM."""
    import signal

    from kcore.cluster import NodeOptions, open_store, prepare_data_dir, start_api_server
    from kcore.config import load_config
    from kcore.log import configure_logging
    from kcore.plugins import create_plugin_host

    options = NodeOptions(role="server", config=load_config(config_path), data_dir=data_dir,
                          node_name="node-1", config_path=str(config_path))
    configure_logging(options.config.logging.level, options.config.logging.format)
    prepare_data_dir(data_dir)
    host = create_plugin_host()
    host.configure(options.config)
    store = open_store(host, options)
    api, _pki = await start_api_server(store, host, options)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()
    finally:
        await api.stop()
        await store.close()


@contextmanager
def api_only_server(tmp: pathlib.Path) -> Iterator[tuple[pathlib.Path, int]]:
    """``serve_api`` in a subprocess on a free loopback port; yields (kubeconfig, pid)."""
    import signal
    import socket
    import subprocess

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp / "kcore.toml"
    config.write_text(f'[apiserver]\nbind_address = "127.0.0.1"\nport = {port}\n')
    data_dir = tmp / "data"
    kubeconfig = data_dir / "kubeconfig.yaml"
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, __file__, "--serve-api", str(data_dir), str(config)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not kubeconfig.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API server did not start:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield kubeconfig, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-api":  # the server subprocess
        asyncio.run(serve_api(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a CI smoke run")
    parser.add_argument("--pods", type=int, help="pods created in 'default' (default 10,000; quick 1,000)")
    parser.add_argument("--workers", type=int, default=32, help="concurrent clients for creates and gets")
    parser.add_argument("--watchers", type=int, help="concurrent watches (default 100; quick 20)")
    parser.add_argument("--updates", type=int, help="measured ConfigMap updates (default 200; quick 30)")
    parser.add_argument("--role", default="api", choices=["api", "server", "up"],
                        help="what to start: api = the API server alone (default); server/up = the "
                             "whole `kcore server`/`kcore up` process, scheduler and controllers included")
    parser.add_argument("--kubeconfig", type=pathlib.Path,
                        help="benchmark this running server instead of starting one")
    parser.add_argument("--server-pid", type=int, help="with --kubeconfig: pid to report server CPU for")
    parser.add_argument("--output", type=pathlib.Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args()
    s = settings_from(args)
    busy_before = other_load(1.0)
    if busy_before is not None and busy_before > 20:
        print(f"warning: the machine was {busy_before:.0f}% busy (of one core) before the run; "
              f"other processes share the CPUs and the numbers will be low", file=sys.stderr)

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kcore-api-bench-") as tmp:
        if args.kubeconfig:
            results = asyncio.run(bench(args.kubeconfig, s, args.server_pid))
            server = "external"
        elif args.role == "api":
            with api_only_server(pathlib.Path(tmp)) as (kubeconfig, pid):
                results = asyncio.run(bench(kubeconfig, s, pid))
            server = "API server alone in a subprocess (as `kcore server` starts it), sqlite store"
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from support.cluster import running_cluster  # the same launcher the e2e tests use

            with running_cluster(pathlib.Path(tmp), role=args.role) as cluster:
                results = asyncio.run(bench(cluster.kubeconfig, s, cluster.process.pid))
            server = f"`kcore {args.role}` subprocess (scheduler and controllers included), sqlite store"
    wall = time.perf_counter() - t0

    print_table(results, s)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(orjson.dumps({
        "benchmark": "api",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "server": server,
        "transport": "https, admin client certificate, keep-alive",
        "settings": vars(s),
        "wall_seconds": round(wall, 1),
        "other_cpu_pct_before": busy_before,
        "results": results,
    }, option=orjson.OPT_INDENT_2))
    print(f"wrote {args.output} ({wall:.0f}s)")


if __name__ == "__main__":
    main()
