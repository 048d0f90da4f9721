"""Store backends under load: writes (sequential vs concurrent), gets, big lists, watch fan-out.

Every backend in entry-point group ``kcore.store`` is measured on a fresh data
dir. The sequential/concurrent write pair shows group commit: one writer pays
one fsync per write, 64 writers share them. Prints a table and writes
benchmarks/results/store_bench.json.

    .venv/bin/python benchmarks/store_bench.py [--seconds 2] [--backends memory,sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import Any

import orjson

from kcore.log import configure_logging
from kcore.store.contract import Store

RESULTS = pathlib.Path(__file__).parent / "results" / "store_bench.json"
VALUE = orjson.dumps({"kind": "Pod", "metadata": {"name": "x" * 40, "labels": {"app": "bench"}}, "spec": "y" * 600})


async def timed_ops(workers: int, seconds: float, op: Callable[[int, int], Awaitable[Any]]) -> float:
    """Run ``op(worker, i)`` in ``workers`` concurrent loops for ``seconds``; ops/s."""
    deadline = time.perf_counter() + seconds
    counts = [0] * workers

    async def loop(w: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            await op(w, i)
            i += 1
            if i % 64 == 0:
                await asyncio.sleep(0)  # yield: an in-process store never suspends by itself
        counts[w] = i

    start = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(workers)))
    return sum(counts) / (time.perf_counter() - start)


async def bench_backend(name: str, store: Store, seconds: float) -> dict[str, float]:
    out: dict[str, float] = {}
    out["put_seq_per_s"] = await timed_ops(1, seconds, lambda w, i: store.create(f"/b/seq/{i:08d}", VALUE))
    out["put_64_per_s"] = await timed_ops(
        64, seconds, lambda w, i: store.create(f"/b/conc/{w:02d}/{i:08d}", VALUE)
    )
    commits = getattr(store, "commits", None)

    # 10k keys for gets and lists, written concurrently to keep set-up short.
    n_keys = 10_000
    sem = asyncio.Semaphore(256)

    async def put(i: int) -> None:
        async with sem:
            await store.create(f"/b/list/{i:06d}", VALUE)

    await asyncio.gather(*(put(i) for i in range(n_keys)))
    if commits is not None:
        out["writes_per_commit"] = round((await store.current_revision()) / max(store.commits, 1), 1)  # type: ignore[attr-defined]

    rng = random.Random(1)
    keys = [f"/b/list/{rng.randrange(n_keys):06d}" for _ in range(4096)]
    out["get_seq_per_s"] = await timed_ops(1, seconds / 2, lambda w, i: store.get(keys[i % 4096]))
    out["get_64_per_s"] = await timed_ops(64, seconds / 2, lambda w, i: store.get(keys[(w * 64 + i) % 4096]))

    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        result = await store.list("/b/list/")
        samples.append(time.perf_counter() - t0)
        assert len(result.items) == n_keys
    out["list_10k_ms"] = round(statistics.median(samples) * 1000, 2)
    t0 = time.perf_counter()
    page = await store.list("/b/list/", limit=500)
    pages = 1
    while page.continue_token:
        page = await store.list("/b/list/", limit=500, continue_token=page.continue_token)
        pages += 1
    out["list_10k_paged_500_ms"] = round((time.perf_counter() - t0) * 1000, 2)

    out["watch_fanout_events_per_s"] = await bench_fanout(store, watchers=100, events=2000)
    log_line = " ".join(f"{k}={v:,.0f}" if v >= 100 else f"{k}={v}" for k, v in out.items())
    print(f"  {name}: {log_line}", file=sys.stderr)
    return out


async def bench_fanout(store: Store, watchers: int, events: int) -> float:
    """Events delivered per second to ``watchers`` live watchers of one prefix."""
    start_rev = await store.current_revision()
    done = [0] * watchers
    finished = asyncio.Event()

    async def consume(i: int) -> None:
        async for _ in store.watch("/b/fan/", start_rev):
            done[i] += 1
            if done[i] == events:
                break
        if all(d == events for d in done):
            finished.set()

    tasks = [asyncio.create_task(consume(i)) for i in range(watchers)]
    await asyncio.sleep(0)  # yield: let every watcher subscribe before the clock starts
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(64)

    async def put(i: int) -> None:
        async with sem:
            await store.create(f"/b/fan/{i:06d}", VALUE)

    await asyncio.gather(*(put(i) for i in range(events)))
    await asyncio.wait_for(finished.wait(), 120)
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    return watchers * events / elapsed


def print_table(results: dict[str, dict[str, float]]) -> None:
    metrics = list(next(iter(results.values())).keys())
    names = list(results)
    width = max(len(m) for m in metrics) + 2
    print("metric".ljust(width) + "".join(n.rjust(16) for n in names))
    for metric in metrics:
        row = metric.ljust(width)
        for n in names:
            v = results[n].get(metric)
            row += ("-" if v is None else f"{v:,.1f}" if v < 100 else f"{v:,.0f}").rjust(16)
        print(row)


async def run(backends: list[str], seconds: float) -> dict[str, dict[str, float]]:
    eps = {ep.name: ep for ep in entry_points(group="kcore.store")}
    results: dict[str, dict[str, float]] = {}
    for name in backends:
        module = eps[name].load()
        with tempfile.TemporaryDirectory(prefix=f"kcore-bench-{name}-") as tmp:
            store = module.kcore_store_open(settings={}, data_dir=pathlib.Path(tmp))
            try:
                results[name] = await bench_backend(name, store, seconds)
            finally:
                await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each throughput phase")
    parser.add_argument("--backends", default="", help="comma-separated entry-point names (default: all)")
    args = parser.parse_args()
    configure_logging(level="warning", stream=sys.stderr)
    names = [b for b in args.backends.split(",") if b] or sorted(
        ep.name for ep in entry_points(group="kcore.store")
    )
    results = asyncio.run(run(names, args.seconds))
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_bytes(
        orjson.dumps(
            {
                "benchmark": "store",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "seconds_per_phase": args.seconds,
                "value_bytes": len(VALUE),
                "results": results,
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
