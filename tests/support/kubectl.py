"""Run the real kubectl against a test cluster with a fresh discovery cache."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


def kubectl_binary() -> str:
    """The kubectl on PATH (scripts/system-packages.sh installs one when missing)."""
    found = shutil.which("kubectl")
    if found is None:
        venv_copy = Path(sys.prefix) / "bin" / "kubectl"
        found = str(venv_copy) if venv_copy.exists() else None
    if found is None:
        raise RuntimeError("kubectl is not installed: run scripts/system-packages.sh as root")
    return found


@dataclass
class Kubectl:
    kubeconfig: Path
    cache_dir: Path
    prefix: tuple[str, ...] = ()
    """Run kubectl through this (``ip netns exec NS``) for clusters inside a namespace."""

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [*self.prefix, kubectl_binary(), "--kubeconfig", str(self.kubeconfig),
                   "--cache-dir", str(self.cache_dir), *args]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def __call__(self, *args: str, **kw: object) -> str:
        return self.run(*args, **kw).stdout  # type: ignore[arg-type]

    def stream(self, *args: str) -> StreamingKubectl:
        """Start a long-running kubectl (``get -w``, ``logs -f``) reading its output lines."""
        command = [*self.prefix, kubectl_binary(), "--kubeconfig", str(self.kubeconfig),
                   "--cache-dir", str(self.cache_dir), *args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1)
        return StreamingKubectl(process)


@dataclass
class StreamingKubectl:
    """A kubectl process whose output lines arrive on a queue (read by a thread)."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        """Block until an output line satisfies ``predicate``; fail with all output seen."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line in {timeout}s; output so far: {self.lines}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"kubectl exited ({self.process.wait()}) before a matching "
                                     f"line; output: {self.lines}")
            self.lines.append(line)
            if predicate(line):
                return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> StreamingKubectl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
