"""Subprocess for test_sqlite_durability: create keys forever, print each one acknowledged.

Usage: python durability_writer.py DB_PATH WORKERS. Each value is JSON carrying a
digest of its own padding, so a torn or partial value is detectable on reopen.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

import orjson

from kcore.log import configure_logging

configure_logging(stream=sys.stderr)  # before kcore.store binds its logger: stdout carries only keys

from kcore.store.sqlite import SqliteStore  # noqa: E402


def make_value(key: str) -> bytes:
    pad = (key * 64)[:2000]
    return orjson.dumps({"key": key, "pad": pad, "sha": hashlib.sha256(pad.encode()).hexdigest()})


async def main(path: str, workers: int) -> None:
    store = await SqliteStore.open(path)

    async def worker(w: int) -> None:
        i = 0
        while True:
            key = f"/d/{w:02d}/{i:06d}"
            await store.create(key, make_value(key))
            sys.stdout.write(key + "\n")
            sys.stdout.flush()
            i += 1

    await asyncio.gather(*(worker(w) for w in range(workers)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
