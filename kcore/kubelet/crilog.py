"""CRI-format container logs: the on-disk format, rotation, the pipe pump and the reader.

Each line on disk is ``<RFC3339Nano> <stream> <tag> <content>`` where tag is
``F`` (full line) or ``P`` (partial: the line was longer than the limit and goes
on in the next entry), exactly what containerd writes and ``kubectl logs``
expects a kubelet to render. Writing and reading live together here because the
format, the rotation naming and the reader's file order must agree.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from kcore.log import get_logger

log = get_logger("kubelet.crilog")

MAX_LINE = 16 * 1024
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 5
_READ_CHUNK = 64 * 1024
_TS_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


# -- format -----------------------------------------------------------------


def format_timestamp(ns: int) -> str:
    """RFC 3339 with nanoseconds in UTC, the CRI log timestamp."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch from an RFC 3339 (optionally fractional) timestamp."""
    m = _TS_RE.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    whole, frac, zone = m.groups()
    tz = timezone.utc if zone == "Z" else datetime.strptime(zone.replace(":", ""), "%z").tzinfo
    secs = int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=tz).timestamp())
    return secs * 1_000_000_000 + int((frac or "0").ljust(9, "0"))


@dataclass(frozen=True)
class CriEntry:
    """One parsed line of a CRI log file."""

    timestamp: str
    ts_ns: int
    stream: str
    partial: bool
    content: bytes


def encode_entry(ts_ns: int, stream: str, partial: bool, content: bytes) -> bytes:
    """One CRI log line, newline-terminated."""
    return b"%s %s %s %s\n" % (
        format_timestamp(ts_ns).encode(), stream.encode(), b"P" if partial else b"F", content,
    )


def parse_entry(line: bytes) -> CriEntry | None:
    """Parse one line (with or without its newline); None if it is not CRI format."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    ts = parts[0].decode("ascii", "replace")
    try:
        ts_ns = parse_timestamp(ts)
    except ValueError:
        return None
    content = parts[3] if len(parts) == 4 else b""
    return CriEntry(ts, ts_ns, parts[1].decode(), parts[2] == b"P", content)


def split_output(pending: bytes, data: bytes, max_line: int = MAX_LINE) -> tuple[list[tuple[bool, bytes]], bytes]:
    """Cut a stream's new bytes into (partial, content) entries plus the unfinished rest.

    Pure, so the P/F rule is tested without pipes: complete lines are full
    entries; an unfinished line longer than ``max_line`` is emitted in
    ``max_line`` pieces tagged partial, the rest waits for more data.
    """
    buf = pending + data
    out: list[tuple[bool, bytes]] = []
    start = 0
    while True:
        nl = buf.find(b"\n", start)
        end = len(buf) if nl < 0 else nl
        while end - start > max_line:
            out.append((True, buf[start:start + max_line]))
            start += max_line
        if nl < 0:
            return out, buf[start:]
        out.append((False, buf[start:nl]))
        start = nl + 1


# -- rotation ---------------------------------------------------------------


def rotated_files(path: Path) -> list[Path]:
    """Rotated siblings of ``path`` (``0.log.1``, ``0.log.2`` ...), oldest first."""
    found = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1:]
        if suffix.isdigit():
            found.append((int(suffix), p))
    return [p for _, p in sorted(found)]


def log_files(path: Path) -> list[Path]:
    """Every file of one log, oldest first, the live file last."""
    return [*rotated_files(path), *([path] if path.exists() else [])]


class RotatingLog:
    """An append-only CRI log file rotated by size, keeping ``max_files`` files in all."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES, max_files: int = DEFAULT_MAX_FILES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max(1, max_files)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        """Append whole entries; rotate first if they would overflow a non-empty file."""
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        os.write(self._fd, data)
        self._size += len(data)

    def write_entries(self, entries: list[bytes]) -> None:
        """Append many entries in as few writes as rotation allows."""
        batch: list[bytes] = []
        size = self._size
        for entry in entries:
            if batch and size + len(entry) > self.max_bytes:
                self.write(b"".join(batch))
                batch, size = [], self._size
            if not batch and size and size + len(entry) > self.max_bytes:
                size = 0  # this entry's write will rotate first
            batch.append(entry)
            size += len(entry)
        if batch:
            self.write(b"".join(batch))

    def _rotate(self) -> None:
        os.close(self._fd)
        old = rotated_files(self.path)
        last = int(old[-1].name.rsplit(".", 1)[1]) if old else 0
        os.rename(self.path, self.path.with_name(f"{self.path.name}.{last + 1}"))
        for stale in rotated_files(self.path)[: max(0, len(old) + 1 - (self.max_files - 1))]:
            stale.unlink(missing_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# -- the pump from a container's pipes ----------------------------------------


@dataclass
class LogWriter:
    """Drains a container's stdout/stderr (pipes or FIFOs) into its CRI log file.

    One task per stream; both share the file, and single-threaded asyncio keeps
    each entry whole. ``changed`` wakes followers after every write.
    """

    log: RotatingLog
    max_line: int = MAX_LINE
    clock_ns: Callable[[], int] = time.time_ns
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self, stream: str, fd: int) -> None:
        """Pump ``fd`` (a read end, owned from now on) as ``stream`` until EOF."""
        self._tasks.append(asyncio.get_running_loop().create_task(self._pump(stream, fd)))

    async def _pump(self, stream: str, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_CHUNK)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
        )
        pending = b""
        try:
            while True:
                data = await reader.read(_READ_CHUNK)
                if not data:
                    break
                entries, pending = split_output(pending, data, self.max_line)
                self._emit(stream, entries)
            if pending:  # the stream ended mid-line: that line is complete now
                self._emit(stream, [(False, pending)])
        finally:
            transport.close()

    def _emit(self, stream: str, entries: list[tuple[bool, bytes]]) -> None:
        if not entries:
            return
        now = self.clock_ns()
        self.log.write_entries([encode_entry(now, stream, p, c) for p, c in entries])
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_changed(self, timeout: float) -> None:
        """Return after the next write, or after ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass

    async def wait_closed(self, timeout: float | None = None) -> None:
        """Wait until every stream reached EOF, then close the file."""
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("log pump failed", path=str(self.log.path), error=repr(task.exception()))
        self.log.close()
        self._changed.set()

    def detach(self) -> None:
        """Stop pumping without waiting (the kubelet is going away; the pipes stay)."""
        for task in self._tasks:
            task.cancel()
        self.log.close()


# -- reading for kubectl logs ---------------------------------------------------


@dataclass(frozen=True)
class LogOptions:
    """``kubectl logs`` options as the kubelet receives them."""

    follow: bool = False
    tail_lines: int | None = None
    since_seconds: float | None = None
    since_time: str | None = None
    timestamps: bool = False
    limit_bytes: int | None = None
    previous: bool = False

    @classmethod
    def from_any(cls, options: Any) -> LogOptions:
        """Accept a LogOptions, a dict (snake_case or camelCase keys) or None."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if not isinstance(options, dict):
            options = {k: getattr(options, k) for k in cls.__dataclass_fields__ if hasattr(options, k)}
        camel = {"tailLines": "tail_lines", "sinceSeconds": "since_seconds", "sinceTime": "since_time",
                 "limitBytes": "limit_bytes"}
        return cls(**{camel.get(k, k): v for k, v in options.items() if camel.get(k, k) in cls.__dataclass_fields__})

    def since_ns(self, now_ns: int) -> int | None:
        if self.since_time:
            return parse_timestamp(self.since_time)
        if self.since_seconds is not None:
            return now_ns - int(self.since_seconds * 1_000_000_000)
        return None


def render_entry(entry: CriEntry, timestamps: bool) -> bytes:
    """What ``kubectl logs`` prints for one entry: content, newline unless partial."""
    text = entry.content if entry.partial else entry.content + b"\n"
    return (entry.timestamp.encode() + b" " + text) if timestamps else text


def _entries(data: bytes) -> Iterator[CriEntry]:
    for raw in data.splitlines():
        entry = parse_entry(raw)
        if entry is not None:
            yield entry


def _logical_lines(entries: Iterator[CriEntry]) -> Iterator[list[CriEntry]]:
    """Group P...P F runs per stream, so ``tail`` counts lines, not pieces."""
    open_parts: dict[str, list[CriEntry]] = {}
    for entry in entries:
        parts = open_parts.setdefault(entry.stream, [])
        parts.append(entry)
        if not entry.partial:
            yield parts
            open_parts[entry.stream] = []
    for parts in open_parts.values():
        if parts:
            yield parts


async def read_log(
    path: Path,
    options: LogOptions,
    *,
    finished: Callable[[], bool] = lambda: True,
    wait_changed: Callable[[float], Any] | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
    poll_interval: float = 0.25,
) -> AsyncIterator[bytes]:
    """Render a container's log for kubectl: history (tail/since), then follow.

    ``finished`` says the container exited and its writer is done, which ends a
    follow; ``wait_changed(timeout)`` returns early when new data was written
    (without it, follow polls).
    """
    since = options.since_ns(clock_ns())
    budget = options.limit_bytes

    def take(chunk: bytes) -> tuple[bytes, bool]:
        nonlocal budget
        if budget is None:
            return chunk, False
        chunk = chunk[:budget]
        budget -= len(chunk)
        return chunk, budget <= 0

    files = log_files(path)
    history: deque[list[CriEntry]] | list[list[CriEntry]]
    history = deque(maxlen=options.tail_lines) if options.tail_lines is not None else []
    if options.tail_lines != 0:
        for f in files[:-1]:
            history.extend(ln for ln in _logical_lines(_entries(f.read_bytes()))
                           if since is None or ln[0].ts_ns >= since)
    offset = 0
    inode = None
    if path.exists():
        with open(path, "rb") as fh:
            data = fh.read()
            inode = os.fstat(fh.fileno()).st_ino
        cut = data.rfind(b"\n") + 1
        offset = cut
        if options.tail_lines != 0:
            history.extend(ln for ln in _logical_lines(_entries(data[:cut]))
                           if since is None or ln[0].ts_ns >= since)
    for line in history:
        chunk, done = take(b"".join(render_entry(e, options.timestamps) for e in line))
        if chunk:
            yield chunk
        if done:
            return
    if not options.follow:
        return

    while True:
        was_finished = finished()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and (st.st_ino != inode or st.st_size < offset):  # rotated away
            inode, offset = st.st_ino, 0
        new = b""
        if st is not None and st.st_size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                new = fh.read()
            new = new[: new.rfind(b"\n") + 1]
            offset += len(new)
        for entry in _entries(new):
            if since is not None and entry.ts_ns < since:
                continue
            chunk, done = take(render_entry(entry, options.timestamps))
            if chunk:
                yield chunk
            if done:
                return
        if was_finished and not new:
            return
        if not new:
            if wait_changed is not None:
                await wait_changed(poll_interval)
            else:
                await asyncio.sleep(poll_interval)
