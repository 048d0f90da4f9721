"""Resource arithmetic for scheduling, as plain integers.

Quantities become ints once, when a pod or node enters the cache: CPU in
millicores, everything else in whole units (memory and storage in bytes,
extended resources as counts). Comparing ints is what the filter hot path does
thousands of times per pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from kcore.api.quantity import parse_quantity

CPU = "cpu"
MEMORY = "memory"
PODS = "pods"
EPHEMERAL_STORAGE = "ephemeral-storage"

# What a container without requests is assumed to use when *scoring* (never
# when filtering), so empty pods do not all pile onto one node.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

Resources = dict[str, int]


@lru_cache(maxsize=8192)
def amount(resource: str, value: str | int | float) -> int:
    """One quantity as the scheduler's integer unit for ``resource``."""
    quantity = parse_quantity(value)
    return quantity.milli_value() if resource == CPU else quantity.int_value()


def resource_list(values: Mapping[str, Any] | None) -> Resources:
    """A ``ResourceList`` (name -> quantity text) as integers."""
    if not values:
        return {}
    return {name: amount(name, value) for name, value in values.items()}


def _add(total: Resources, more: Mapping[str, int]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


def _max_into(total: Resources, other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > total.get(name, 0):
            total[name] = value


def container_requests(container: Any) -> Resources:
    """A container's requests; limits stand in for absent requests (API defaulting)."""
    res = container.resources
    if res is None:
        return {}
    requests = resource_list(res.requests)
    if res.limits:
        for name, value in resource_list(res.limits).items():
            requests.setdefault(name, value)
    return requests


def pod_requests(pod: Any) -> Resources:
    """What the pod reserves on a node (Kubernetes ``PodRequests``).

    The larger of the app containers' sum and each init container's need,
    plus the pod overhead. Sidecars (init containers with ``restartPolicy:
    Always``) keep running, so they add to everything after them.
    """
    spec = pod.spec
    total: Resources = {}
    for container in spec.containers or ():
        _add(total, container_requests(container))
    sidecars: Resources = {}
    init_peak: Resources = {}
    for container in spec.initContainers or ():
        need = container_requests(container)
        if container.restartPolicy == "Always":
            _add(sidecars, need)
            _max_into(init_peak, sidecars)
        else:
            step = dict(sidecars)
            _add(step, need)
            _max_into(init_peak, step)
    _add(total, sidecars)
    _max_into(total, init_peak)
    if spec.overhead:
        _add(total, resource_list(spec.overhead))
    return total


def pod_non_zero_requests(pod: Any) -> tuple[int, int]:
    """(millicpu, memory) with defaults for containers that request nothing; scoring only."""
    cpu = memory = 0
    for container in pod.spec.containers or ():
        req = container_requests(container)
        cpu += req.get(CPU) or DEFAULT_MILLI_CPU_REQUEST
        memory += req.get(MEMORY) or DEFAULT_MEMORY_REQUEST
    init_cpu = init_memory = 0
    for container in pod.spec.initContainers or ():
        req = container_requests(container)
        init_cpu = max(init_cpu, req.get(CPU) or DEFAULT_MILLI_CPU_REQUEST)
        init_memory = max(init_memory, req.get(MEMORY) or DEFAULT_MEMORY_REQUEST)
    overhead = resource_list(pod.spec.overhead)
    return (
        max(cpu, init_cpu) + overhead.get(CPU, 0),
        max(memory, init_memory) + overhead.get(MEMORY, 0),
    )


HostPort = tuple[str, str, int]
"""(host IP, protocol, port); host IP ``0.0.0.0`` means every address."""


def pod_host_ports(pod: Any) -> list[HostPort]:
    """Every host port the pod's containers (and sidecars) claim on their node."""
    ports: list[HostPort] = []
    containers = list(pod.spec.containers or ())
    containers += [c for c in pod.spec.initContainers or () if c.restartPolicy == "Always"]
    for container in containers:
        for port in container.ports or ():
            if port.hostPort:
                ports.append((port.hostIP or "0.0.0.0", port.protocol or "TCP", port.hostPort))
    return ports
