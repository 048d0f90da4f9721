"""Per-kind touches the server makes when an object is created.

Kubernetes' registry strategies do these in ``PrepareForCreate``: a new pod
starts Pending with its QoS class, a Job gets a selector tied to its uid.
"""

from __future__ import annotations

from typing import Any

from kcore.api.quantity import parse_quantity
from kcore.api.registry import KindInfo

Obj = dict[str, Any]


def pod_qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, by Kubernetes' rules."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            limit = limits.get(name)
            request = requests.get(name, limit)
            if limit is None or request is None or parse_quantity(limit) != parse_quantity(request):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def prepare_for_create(info: KindInfo, obj: Obj) -> None:
    """Set what the server owns on a new object (after uid and timestamps are assigned)."""
    core = info.group == ""
    if core and info.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": pod_qos_class(obj.get("spec") or {})}
    elif core and info.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
    elif core and info.kind in ("PersistentVolume", "PersistentVolumeClaim"):
        obj["status"] = {"phase": "Pending"}
    elif info.has_subresource("status") and not (core and info.kind == "Node"):
        obj.pop("status", None)  # status is the controllers' to write, through /status
    if info.group == "batch" and info.kind == "Job":
        from kcore.api.batch_v1 import Job
        from kcore.api.defaults_workloads import generate_job_selector

        job = Job.model_validate(obj)
        if not (job.spec and job.spec.manualSelector):
            generate_job_selector(job)
            obj.clear()
            obj.update(job.to_dict())
