"""Acknowledged means durable: SIGKILL a writer mid-burst, reopen, check everything."""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import subprocess
import sys

import orjson

from kcore.store.sqlite import SqliteStore

WRITER = pathlib.Path(__file__).with_name("durability_writer.py")
REPO = pathlib.Path(__file__).resolve().parents[2]


def valid(key: str, value: bytes) -> bool:
    data = orjson.loads(value)
    return data["key"] == key and hashlib.sha256(data["pad"].encode()).hexdigest() == data["sha"]


async def test_acknowledged_writes_survive_sigkill(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "store.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), "16"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # blocks until the writer acknowledges more keys
            acked.append(line.strip())
            if len(acked) >= 600:
                break
        proc.send_signal(signal.SIGKILL)
        acked += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 600

    store = await SqliteStore.open(path)
    try:
        rev = await store.current_revision()
        items = (await store.list("/d/")).items
        present = {kv.key: kv for kv in items}
        missing = [key for key in acked if key not in present]
        assert not missing, f"{len(missing)} acknowledged keys lost, e.g. {missing[:3]}"
        assert all(valid(kv.key, kv.value) for kv in items)  # nothing half-written
        # Only creates happened: revisions 1..rev, each exactly one key, none skipped.
        assert sorted(kv.mod_revision for kv in items) == list(range(1, rev + 1))
        assert rev >= len(acked)
        assert await store.create("/d/after", b"{}") == rev + 1  # and it is writable again
    finally:
        await store.close()
