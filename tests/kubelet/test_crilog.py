"""CRI log format, rotation and reading, on files and through real containers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kubelet.helpers import make_pod, py_container, wait_until

from kcore.kubelet.crilog import (
    LogOptions,
    RotatingLog,
    encode_entry,
    format_timestamp,
    parse_entry,
    parse_timestamp,
    read_log,
    rotated_files,
    split_output,
)
from kcore.kubelet.runtime_process import ProcessRuntime

NS = 1_475_713_029_669_794_202  # 2016-10-06T00:17:09.669794202Z


def test_timestamps_round_trip() -> None:
    assert format_timestamp(NS) == "2016-10-06T00:17:09.669794202Z"
    assert parse_timestamp("2016-10-06T00:17:09.669794202Z") == NS
    assert parse_timestamp("2016-10-06T02:17:09.5+02:00") == NS - 169794202
    assert parse_timestamp("2016-10-06T00:17:09Z") == NS - 669794202
    with pytest.raises(ValueError):
        parse_timestamp("yesterday")


def test_entry_format() -> None:
    line = encode_entry(NS, "stdout", False, b"log line")
    assert line == b"2016-10-06T00:17:09.669794202Z stdout F log line\n"
    entry = parse_entry(line)
    assert entry is not None and (entry.stream, entry.partial, entry.content) == ("stdout", False, b"log line")
    assert parse_entry(encode_entry(NS, "stderr", True, b"")).content == b""
    assert parse_entry(b"garbage") is None


@pytest.mark.parametrize(("pending", "data", "entries", "rest"), [
    (b"", b"a\nb\n", [(False, b"a"), (False, b"b")], b""),
    (b"", b"a\nbc", [(False, b"a")], b"bc"),
    (b"ab", b"c\n", [(False, b"abc")], b""),
    (b"", b"x" * 10 + b"\n", [(True, b"xxxx"), (True, b"xxxx"), (False, b"xx")], b""),
    (b"", b"x" * 9, [(True, b"xxxx"), (True, b"xxxx")], b"x"),
    (b"", b"xxxx\n", [(False, b"xxxx")], b""),
])
def test_split_output(pending: bytes, data: bytes, entries: list, rest: bytes) -> None:
    assert split_output(pending, data, max_line=4) == (entries, rest)


def test_rotation_keeps_max_files(tmp_path: Path) -> None:
    path = tmp_path / "c" / "0.log"
    log = RotatingLog(path, max_bytes=100, max_files=3)
    for i in range(20):
        log.write(encode_entry(NS + i, "stdout", False, b"line %02d" % i))  # 46 bytes each
    log.close()
    rotated = rotated_files(path)
    assert len(rotated) == 2 and path.exists()
    assert all(p.stat().st_size <= 100 for p in [*rotated, path])
    contents = b"".join(p.read_bytes() for p in [*rotated, path])
    numbers = [int(parse_entry(x).content.split()[1]) for x in contents.splitlines()]
    assert numbers == list(range(14, 20))  # the newest lines, in order, across files


async def _collect(path: Path, **opts: object) -> bytes:
    return b"".join([c async for c in read_log(path, LogOptions(**opts), clock_ns=lambda: NS + 100 * 10**9)])


async def test_read_options(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    log = RotatingLog(path, max_bytes=200, max_files=5)
    for i in range(6):
        log.write(encode_entry(NS + i * 10**9, "stdout" if i % 2 else "stderr", False, b"l%d" % i))
    log.write(encode_entry(NS + 6 * 10**9, "stdout", True, b"part-"))
    log.write(encode_entry(NS + 7 * 10**9, "stdout", False, b"end"))
    log.close()
    assert rotated_files(path)  # reading spans the rotated files too
    assert await _collect(path) == b"l0\nl1\nl2\nl3\nl4\nl5\npart-end\n"
    assert await _collect(path, tail_lines=2) == b"l5\npart-end\n"
    assert await _collect(path, tail_lines=0) == b""
    assert await _collect(path, since_time=format_timestamp(NS + 4 * 10**9)) == b"l4\nl5\npart-end\n"
    assert await _collect(path, since_seconds=95) == b"l5\npart-end\n"  # the clock is at NS+100s
    assert await _collect(path, limit_bytes=5) == b"l0\nl1"
    stamped = await _collect(path, tail_lines=1, timestamps=True)
    assert stamped == f"{format_timestamp(NS + 6 * 10**9)} part-{format_timestamp(NS + 7 * 10**9)} end\n".encode()


def test_options_from_dicts() -> None:
    assert LogOptions.from_any({"tailLines": 3, "follow": True}) == LogOptions(follow=True, tail_lines=3)
    assert LogOptions.from_any(None) == LogOptions()


async def test_container_streams_and_partial_lines(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    code = "import sys\nprint('out')\nsys.stdout.flush()\nprint('err', file=sys.stderr)\nsys.stderr.flush()\nprint('y' * 40000)\nsys.stdout.write('tail-no-newline')"
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", code), None)
    await wait_until(lambda: _state(runtime, cid))
    path = Path((await runtime.kcore_runtime_container_status(cid))["log_path"])
    entries = [parse_entry(x) for x in path.read_bytes().splitlines()]
    assert all(e is not None for e in entries)
    # Two pipes, two pumps: order holds within a stream, not across them.
    assert [(e.partial, e.content) for e in entries if e.stream == "stderr"] == [(False, b"err")]
    out = [e for e in entries if e.stream == "stdout"]
    assert (out[0].partial, out[0].content) == (False, b"out")
    long = [e for e in out if e.content.startswith(b"y")]
    assert [e.partial for e in long] == [True, True, False]
    assert [len(e.content) for e in long] == [16384, 16384, 40000 - 32768]
    assert out[-1].content == b"tail-no-newline" and not out[-1].partial
    rendered = b"".join([c async for c in runtime.kcore_runtime_container_logs(cid, {"tail_lines": 3})])
    assert sorted(rendered.splitlines()) == [b"err", b"tail-no-newline", b"y" * 40000]  # pieces rejoined


async def _state(rt: ProcessRuntime, cid: str) -> bool:
    return (await rt.kcore_runtime_container_status(cid))["state"] == "exited"


async def test_follow_streams_new_lines(runtime: ProcessRuntime) -> None:
    sb = await runtime.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    code = ("import os, time\nprint('first', flush=True)\n"
            "while not os.path.exists('go'): time.sleep(0.02)\nprint('second', flush=True)")
    cid = await runtime.kcore_runtime_start_container(sb, py_container("c", code), None)
    stream = runtime.kcore_runtime_container_logs(cid, LogOptions(follow=True, timestamps=True))
    first = await asyncio.wait_for(stream.__anext__(), 10)
    assert first.endswith(b"Z first\n")
    workdir = runtime.data_dir / "pods" / sb / "work" / "c"
    (workdir / "go").touch()
    second = await asyncio.wait_for(stream.__anext__(), 10)
    assert second.endswith(b"Z second\n")
    with pytest.raises(StopAsyncIteration):  # the follow ends when the container does
        await asyncio.wait_for(stream.__anext__(), 10)


async def test_runtime_rotates_container_logs(tmp_path: Path) -> None:
    rt = ProcessRuntime(data_dir=tmp_path, log_max_bytes=4096, log_max_files=2)
    sb = await rt.kcore_runtime_run_sandbox(pod=make_pod(), context=None)
    cid = await rt.kcore_runtime_start_container(sb, py_container("c", "for i in range(500): print(i, flush=True)"), None)
    await wait_until(lambda: _state(rt, cid))
    path = Path((await rt.kcore_runtime_container_status(cid))["log_path"])
    assert len(rotated_files(path)) == 1
    assert all(p.stat().st_size <= 4096 for p in [*rotated_files(path), path])
    text = b"".join([c async for c in rt.kcore_runtime_container_logs(cid, None)]).decode().split()
    assert text[-1] == "499" and text == [str(i) for i in range(int(text[0]), 500)]
    await rt.close()
