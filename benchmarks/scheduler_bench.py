"""Scheduling throughput (pods/s), in the shape of Kubernetes' scheduler_perf SchedulingBasic.

Nodes have 4 cpu, 32Gi memory and 110 pods; pods request 100m cpu and 500Mi
memory (scheduler_perf's node-default.yaml and pod-default.yaml). Measured:

* ``fake``: the real queue, scheduling cycle, reserve/permit and an in-memory
  binder (``kcore.scheduler.testing.Simulator``), no API;
* ``api``: end to end through a real ApiServer on 127.0.0.1 (memory store):
  informers, binding through pods/binding, Scheduled events.

Prints a table and writes benchmarks/results/scheduler_bench.json.

    .venv/bin/python benchmarks/scheduler_bench.py [--pods 1000] [--nodes 500,5000] [--no-api]
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import platform
import sys
import time
from typing import Any

import orjson

from kcore.config import SchedulerConfig, SchedulerProfile
from kcore.log import configure_logging
from kcore.scheduler.testing import Simulator, make_node, make_pod, scheduler_host

RESULTS = pathlib.Path(__file__).parent / "results" / "scheduler_bench.json"
ALGORITHMS = {"default": None, "round-robin": "round-robin"}


def config_for(algorithm: str | None) -> SchedulerConfig:
    return SchedulerConfig(profiles=[SchedulerProfile(name="default-scheduler", algorithm=algorithm)])


def bench_fake(num_nodes: int, num_pods: int, algorithm: str | None) -> dict[str, float]:
    sim = Simulator(config=config_for(algorithm))
    for i in range(num_nodes):
        sim.add_node(make_node(f"node-{i}"))
    pods = [make_pod(f"pod-{i}", cpu="100m", memory="500Mi") for i in range(num_pods)]
    start = time.perf_counter()
    for pod in pods:
        sim.add_pod(pod)
    placed = sim.run()
    elapsed = time.perf_counter() - start
    if len(placed) != num_pods:
        raise SystemExit(f"only {len(placed)} of {num_pods} pods were scheduled")
    return {"pods_per_second": round(num_pods / elapsed, 1), "seconds": round(elapsed, 3)}


async def bench_api(num_nodes: int, num_pods: int, algorithm: str | None) -> dict[str, float]:
    from kcore.apiserver.server import ApiServer
    from kcore.client import ApiClient
    from kcore.config import ApiServerConfig
    from kcore.scheduler.runner import Scheduler
    from kcore.store.memory import MemoryStore

    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True))
    await server.start()
    try:
        async with ApiClient(server.url) as client:
            nodes = client.resource("v1", "Node")
            pods = client.resource("v1", "Pod")
            sem = asyncio.Semaphore(32)

            async def create_node(i: int) -> None:
                async with sem:
                    body = make_node(f"node-{i}").to_dict()
                    created = await nodes.create(body)
                    created["status"] = body["status"]
                    await nodes.update_status(created)

            async def create_pod(i: int) -> None:
                async with sem:
                    await pods.create(make_pod(f"pod-{i}", cpu="100m", memory="500Mi").to_dict())

            await asyncio.gather(*(create_node(i) for i in range(num_nodes)))
            await asyncio.gather(*(create_pod(i) for i in range(num_pods)))
            scheduler = Scheduler(client, scheduler_host(), config_for(algorithm))
            start = time.perf_counter()
            task = asyncio.create_task(scheduler.run())
            while scheduler.scheduled < num_pods:  # a benchmark may poll its own counter
                await asyncio.sleep(0.01)
                if task.done():
                    task.result()
            elapsed = time.perf_counter() - start
            await scheduler.stop()
            await task
    finally:
        await server.stop()
        await store.close()
    return {"pods_per_second": round(num_pods / elapsed, 1), "seconds": round(elapsed, 3)}


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ("path", "algorithm", "nodes", "pods", "pods/s", "seconds")
    lines = [header] + [(r["path"], r["algorithm"], str(r["nodes"]), str(r["pods"]),
                         f"{r['pods_per_second']:.0f}", f"{r['seconds']:.2f}") for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.rjust(w) if i >= 2 else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--nodes", default="500,5000", help="comma-separated node counts")
    parser.add_argument("--api-nodes", default="500", help="node counts for the end-to-end path")
    parser.add_argument("--no-api", action="store_true", help="skip the end-to-end path")
    args = parser.parse_args()
    configure_logging(level="warning")
    rows: list[dict[str, Any]] = []
    for num_nodes in (int(n) for n in args.nodes.split(",")):
        for label, algorithm in ALGORITHMS.items():
            result = bench_fake(num_nodes, args.pods, algorithm)
            rows.append({"path": "fake", "algorithm": label, "nodes": num_nodes, "pods": args.pods, **result})
    if not args.no_api:
        for num_nodes in (int(n) for n in args.api_nodes.split(",")):
            for label, algorithm in ALGORITHMS.items():
                result = asyncio.run(bench_api(num_nodes, args.pods, algorithm))
                rows.append({"path": "api", "algorithm": label, "nodes": num_nodes, "pods": args.pods, **result})
    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(orjson.dumps({
        "benchmark": "scheduler_bench",
        "workload": "SchedulingBasic: nodes 4 cpu/32Gi/110 pods; pods request 100m cpu/500Mi",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "results": rows,
    }, option=orjson.OPT_INDENT_2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
