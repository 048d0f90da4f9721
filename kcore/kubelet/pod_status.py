"""A pod's status, computed from its spec and what the runtime and probes report.

Pure: no I/O and no clock (``now`` is an argument), so Kubernetes' rules for
phases, conditions and container states are tested as tables. The kubelet
feeds it one ``ContainerView`` per container and patches the result only when
it differs from what the API already holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]

# Conditions the kubelet owns; any other (PodScheduled, DisruptionTarget, readiness gates) is kept.
OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
_CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


@dataclass(frozen=True)
class ContainerView:
    """What the kubelet knows about one container of the pod.

    ``current`` and ``previous`` are runtime status dicts (``state``, ``exit_code``,
    ``started_at``...) of the newest instance and the one before it; ``waiting``
    is a (reason, message) the kubelet decided on (back-off, a failed start).
    """

    current: Obj | None = None
    previous: Obj | None = None
    waiting: tuple[str, str] | None = None
    ready: bool = False
    started: bool = False


def _terminated(st: Obj, runtime: str) -> dict[str, Any]:
    term: dict[str, Any] = {"exitCode": st.get("exit_code") if st.get("exit_code") is not None else 255}
    if st.get("reason"):
        term["reason"] = st["reason"]
    if st.get("message"):
        term["message"] = st["message"]
    term["startedAt"] = st.get("started_at")
    term["finishedAt"] = st.get("finished_at")
    term["containerID"] = f"{runtime}://{st['id']}"
    return term


def container_status(spec: Obj, view: ContainerView, *, runtime: str, default_waiting: str) -> dict[str, Any]:
    """One ``ContainerStatus`` with every field the official clients require."""
    image = spec.get("image") or ""
    cur = view.current
    out: dict[str, Any] = {
        "name": spec["name"], "image": image, "imageID": f"{runtime}://{image}" if image else "",
        "ready": False, "started": False, "restartCount": int(cur.get("restart_count") or 0) if cur else 0,
        "state": {}, "lastState": {},
    }
    if cur is not None:
        out["containerID"] = f"{runtime}://{cur['id']}"
    running = cur is not None and cur.get("state") == "running"
    if view.waiting is not None:
        reason, message = view.waiting
        out["state"] = {"waiting": {"reason": reason, "message": message} if message else {"reason": reason}}
        if cur is not None and cur.get("state") == "exited":
            out["lastState"] = {"terminated": _terminated(cur, runtime)}
        return out
    if cur is None or cur.get("state") not in ("running", "exited"):
        out["state"] = {"waiting": {"reason": default_waiting}}
    elif running:
        out["state"] = {"running": {"startedAt": cur.get("started_at")}}
        out["started"] = view.started
        out["ready"] = view.ready and view.started
    else:
        out["state"] = {"terminated": _terminated(cur, runtime)}
    if view.previous is not None and view.previous.get("state") == "exited":
        out["lastState"] = {"terminated": _terminated(view.previous, runtime)}
    return out


def pod_phase(spec: Obj, init_statuses: Sequence[Obj], statuses: Sequence[Obj]) -> str:
    """Kubernetes' getPhase: Pending, Running, Succeeded or Failed."""
    policy = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = 0
    for st in init_statuses:
        state, last = st.get("state") or {}, st.get("lastState") or {}
        if "running" in state:
            pending_init += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode") != 0:
                failed_init += 1
        elif "waiting" in state and "terminated" in last:
            if last["terminated"].get("exitCode") != 0:
                failed_init += 1
            else:  # pragma: no cover - a succeeded init container is not restarted
                pending_init += 1
        else:
            pending_init += 1
    unknown = running = waiting = stopped = succeeded = 0
    for st in statuses:
        state, last = st.get("state") or {}, st.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init and policy == "Never":
        return "Failed"
    if pending_init or failed_init or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(type_: str, ok: bool, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": type_, "status": "True" if ok else "False"}
    if not ok and reason:
        cond["reason"] = reason
        if message:
            cond["message"] = message
    return cond


def pod_conditions(
    pod: Obj, phase: str, init_statuses: Sequence[Obj], statuses: Sequence[Obj], *,
    sandbox_ready: bool, now: str,
) -> list[dict[str, Any]]:
    """The pod's conditions; ``lastTransitionTime`` only moves when a status flips."""
    spec = pod.get("spec") or {}
    previous = {c.get("type"): c for c in ((pod.get("status") or {}).get("conditions") or [])}
    app_started = any((s.get("state") or {}).get("running") or (s.get("lastState") or {}).get("terminated")
                      or (s.get("state") or {}).get("terminated") for s in statuses)
    incomplete = [s["name"] for s in init_statuses
                  if ((s.get("state") or {}).get("terminated") or {}).get("exitCode") != 0]
    initialized = not incomplete or app_started
    unready = [s["name"] for s in statuses if not s.get("ready")]
    gates = [g.get("conditionType") for g in spec.get("readinessGates") or []]
    gates_unready = [g for g in gates if (previous.get(g) or {}).get("status") != "True"]
    completed = phase in ("Succeeded", "Failed")

    owned = [
        _condition("PodReadyToStartContainers", sandbox_ready),
        _condition("Initialized", initialized, "ContainersNotInitialized",
                   f"containers with incomplete status: [{' '.join(incomplete)}]"),
    ]
    if completed and phase == "Succeeded":
        owned.append(_condition("ContainersReady", False, "PodCompleted"))
        owned.append(_condition("Ready", False, "PodCompleted"))
    else:
        message = f"containers with unready status: [{' '.join(unready)}]"
        owned.append(_condition("ContainersReady", not unready, "ContainersNotReady", message))
        if unready:
            owned.append(_condition("Ready", False, "ContainersNotReady", message))
        else:
            owned.append(_condition("Ready", not gates_unready, "ReadinessGatesNotReady",
                                    f"corresponding condition of pod readiness gate \"{' '.join(gates_unready)}\" "
                                    "does not exist or is False" if gates_unready else None))
    out: list[dict[str, Any]] = []
    for cond in owned:
        old = previous.get(cond["type"])
        same = old is not None and old.get("status") == cond["status"] and old.get("lastTransitionTime")
        cond["lastTransitionTime"] = old["lastTransitionTime"] if same else now
        out.append(cond)
    if "PodScheduled" not in previous and spec.get("nodeName"):
        out.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": now})
    out.extend(dict(c) for t, c in previous.items() if t not in OWNED_CONDITIONS)
    rank = {t: i for i, t in enumerate(_CONDITION_ORDER)}
    return sorted(out, key=lambda c: rank.get(c.get("type"), len(rank)))


def compute_pod_status(
    pod: Obj,
    init_views: Mapping[str, ContainerView],
    views: Mapping[str, ContainerView],
    *,
    node_ip: str,
    pod_ip: str | None,
    now: str,
    runtime: str = "process",
    sandbox_ready: bool = True,
) -> dict[str, Any]:
    """The ``status`` the kubelet reports for ``pod`` (fields it does not own are kept)."""
    spec = pod.get("spec") or {}
    old = pod.get("status") or {}
    init_specs = spec.get("initContainers") or []
    init_statuses = [container_status(c, init_views.get(c["name"], ContainerView()), runtime=runtime,
                                      default_waiting="PodInitializing") for c in init_specs]
    initializing = any(((s.get("state") or {}).get("terminated") or {}).get("exitCode") != 0
                       for s in init_statuses)
    statuses = [container_status(c, views.get(c["name"], ContainerView()), runtime=runtime,
                                 default_waiting="PodInitializing" if initializing else "ContainerCreating")
                for c in spec.get("containers") or []]
    phase = pod_phase(spec, init_statuses, statuses)
    status: dict[str, Any] = {k: v for k, v in old.items() if k in ("qosClass", "nominatedNodeName",
                                                                    "resourceClaimStatuses", "reason", "message")}
    status.update({
        "phase": phase,
        "conditions": pod_conditions(pod, phase, init_statuses, statuses, sandbox_ready=sandbox_ready, now=now),
        "hostIP": node_ip, "hostIPs": [{"ip": node_ip}],
        "startTime": old.get("startTime") or now,
        "containerStatuses": statuses,
    })
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    if init_specs:
        status["initContainerStatuses"] = init_statuses
    return status


def status_differs(old: Obj | None, new: Obj) -> bool:
    """Whether ``new`` says anything ``old`` does not (only the fields ``new`` sets count)."""
    old = old or {}
    return any(old.get(k) != v for k, v in new.items())
