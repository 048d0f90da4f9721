"""CPU and memory usage of containers and the node, and the node's pressure signals.

A container of the process runtime is a session (its own ``setsid``), so its
usage is the sum over the session's processes. Sampling reads psutil; turning
readings into numbers and conditions is pure, so thresholds are testable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import psutil


def session_pids(sid: int) -> list[int]:
    """Every live process whose session id is ``sid`` (a container and all it forked)."""
    pids = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid:
                pids.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return pids


@dataclass(frozen=True)
class UsageSample:
    """Cumulative CPU seconds and current memory of a set of processes at one instant."""

    at: float
    cpu_seconds: float
    rss_bytes: int


def sample_processes(pids: Iterable[int], clock: Callable[[], float] = time.monotonic) -> UsageSample:
    """Sum CPU time (user+system, children included) and RSS over ``pids``; gone ones count 0."""
    cpu = 0.0
    rss = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                t = proc.cpu_times()
                cpu += t.user + t.system
                rss += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return UsageSample(clock(), cpu, rss)


def sample_session(sid: int, clock: Callable[[], float] = time.monotonic) -> UsageSample:
    """Usage of one container (its whole session)."""
    return sample_processes(session_pids(sid), clock)


def cpu_cores(before: UsageSample, after: UsageSample) -> float:
    """Average cores used between two samples (``usageNanoCores`` / 1e9)."""
    elapsed = after.at - before.at
    if elapsed <= 0:
        return 0.0
    return max(0.0, (after.cpu_seconds - before.cpu_seconds) / elapsed)


def sample_node(clock: Callable[[], float] = time.monotonic) -> UsageSample:
    """Node-wide busy CPU seconds and used memory."""
    t = psutil.cpu_times()
    busy = sum(getattr(t, f) for f in ("user", "nice", "system", "irq", "softirq", "steal") if hasattr(t, f))
    vm = psutil.virtual_memory()
    return UsageSample(clock(), busy, vm.total - vm.available)


@dataclass(frozen=True)
class NodeCapacity:
    """What the node has: reported as ``status.capacity``."""

    cpu: int
    memory_bytes: int
    pods: int

    def as_resource_list(self) -> dict[str, str]:
        return {"cpu": str(self.cpu), "memory": f"{self.memory_bytes // 1024}Ki", "pods": str(self.pods)}


def node_capacity(max_pods: int = 110) -> NodeCapacity:
    """The host's CPU count and total memory."""
    return NodeCapacity(psutil.cpu_count() or 1, psutil.virtual_memory().total, max_pods)


@dataclass(frozen=True)
class NodeReadings:
    """The raw numbers the pressure conditions are decided from."""

    memory_available_bytes: int
    memory_total_bytes: int
    disk_available_bytes: int
    disk_total_bytes: int
    pids_in_use: int
    pid_max: int


@dataclass(frozen=True)
class PressureThresholds:
    """Kubernetes' default hard eviction thresholds."""

    memory_available_bytes: int = 100 * 1024 * 1024
    disk_available_fraction: float = 0.10
    pids_available_fraction: float = 0.05


def read_node(disk_path: str = "/") -> NodeReadings:
    """Current readings from psutil and /proc."""
    vm = psutil.virtual_memory()
    du = psutil.disk_usage(disk_path)
    try:
        with open("/proc/sys/kernel/pid_max") as fh:
            pid_max = int(fh.read().strip())
    except OSError:
        pid_max = 32768
    return NodeReadings(vm.available, vm.total, du.free, du.total, len(psutil.pids()), pid_max)


def pressure_conditions(readings: NodeReadings, thresholds: PressureThresholds = PressureThresholds()) -> Mapping[str, bool]:
    """``MemoryPressure``, ``DiskPressure`` and ``PIDPressure``: True when under pressure."""
    disk_fraction = readings.disk_available_bytes / readings.disk_total_bytes if readings.disk_total_bytes else 1.0
    pid_fraction = 1 - readings.pids_in_use / readings.pid_max if readings.pid_max else 1.0
    return {
        "MemoryPressure": readings.memory_available_bytes < thresholds.memory_available_bytes,
        "DiskPressure": disk_fraction < thresholds.disk_available_fraction,
        "PIDPressure": pid_fraction < thresholds.pids_available_fraction,
    }
