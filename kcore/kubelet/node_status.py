"""The Node object a kubelet registers and the status it keeps posting.

Reading the machine (IDs, kernel, OS) is confined to ``read_system_info``;
building the object and its conditions is pure, so the transition rules
(``lastTransitionTime`` moves only when a condition flips, heartbeats on
every write) are tested without a cluster.
"""

from __future__ import annotations

import hashlib
import platform
import socket
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

KUBELET_VERSION = "v1.32.0-kcore"
RUNTIME_VERSION = "process://kcore-0.1"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_PRESSURE = {
    "MemoryPressure": ("KubeletHasSufficientMemory", "kubelet has sufficient memory available",
                       "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    "DiskPressure": ("KubeletHasNoDiskPressure", "kubelet has no disk pressure",
                     "KubeletHasDiskPressure", "kubelet has disk pressure"),
    "PIDPressure": ("KubeletHasSufficientPID", "kubelet has sufficient PID available",
                    "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
}


def architecture() -> str:
    """GOARCH spelling of this machine's architecture."""
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine or "unknown")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _os_image() -> str:
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return f"{platform.system()} {platform.release()}".strip()


def read_system_info(runtime_version: str = RUNTIME_VERSION) -> dict[str, str]:
    """All ten ``NodeSystemInfo`` fields, from /etc and /proc with stable fallbacks."""
    machine_id = _read("/etc/machine-id") or _read("/var/lib/dbus/machine-id") or \
        hashlib.sha256(socket.gethostname().encode()).hexdigest()[:32]
    system_uuid = _read("/sys/class/dmi/id/product_uuid")
    if system_uuid is None:
        try:
            system_uuid = str(uuid.UUID(hex=machine_id[:32].ljust(32, "0")))
        except ValueError:
            system_uuid = str(uuid.uuid5(uuid.NAMESPACE_OID, machine_id))
    return {
        "machineID": machine_id,
        "systemUUID": system_uuid.lower(),
        "bootID": _read("/proc/sys/kernel/random/boot_id") or str(uuid.uuid5(uuid.NAMESPACE_OID, machine_id)),
        "kernelVersion": platform.release(),
        "osImage": _os_image(),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": KUBELET_VERSION,
        "operatingSystem": "linux",
        "architecture": architecture(),
    }


def node_labels(node_name: str, arch: str) -> dict[str, str]:
    """The well-known labels a kubelet puts on its Node."""
    return {
        "kubernetes.io/hostname": node_name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": arch,
    }


def node_conditions(
    previous: Sequence[Mapping[str, Any]], pressure: Mapping[str, bool], *, ready: bool,
    ready_message: str = "kubelet is posting ready status", now: str,
) -> list[dict[str, Any]]:
    """Ready plus the three pressure conditions, heartbeats set to ``now``."""
    old = {c.get("type"): c for c in previous}
    wanted: list[tuple[str, str, str, str]] = []
    for type_, (ok_reason, ok_msg, bad_reason, bad_msg) in _PRESSURE.items():
        bad = bool(pressure.get(type_, False))
        wanted.append((type_, "True" if bad else "False", bad_reason if bad else ok_reason, bad_msg if bad else ok_msg))
    wanted.append(("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady",
                   ready_message))
    out = []
    for type_, status, reason, message in wanted:
        prev = old.get(type_)
        transition = prev["lastTransitionTime"] if prev and prev.get("status") == status and \
            prev.get("lastTransitionTime") else now
        out.append({"type": type_, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": transition})
    return out


def node_status(
    *, capacity: Mapping[str, str], allocatable: Mapping[str, str], node_ip: str, hostname: str,
    system_info: Mapping[str, str], conditions: list[dict[str, Any]], kubelet_port: int = 0,
) -> dict[str, Any]:
    """The ``status`` of the Node."""
    return {
        "capacity": dict(capacity),
        "allocatable": dict(allocatable),
        "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": node_ip}, {"type": "Hostname", "address": hostname}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "nodeInfo": dict(system_info),
    }


def _without_heartbeats(status: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                         for c in status.get("conditions") or []]
    return out


def node_status_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether ``new`` differs from ``old`` in anything but heartbeat times."""
    if not old:
        return True
    a, b = _without_heartbeats(old), _without_heartbeats(new)
    return any(a.get(k) != v for k, v in b.items())


def resource_list(cpu: str | None, memory: str | None, host_cpu: int, host_memory_bytes: int,
                  max_pods: int) -> dict[str, str]:
    """cpu/memory/pods for capacity and allocatable: configured values win over the host's."""
    return {"cpu": cpu or str(host_cpu), "memory": memory or f"{host_memory_bytes // 1024}Ki", "pods": str(max_pods)}
