"""Pure parts of the kubelet: pod phase, conditions and container statuses; node
conditions; lease times; back-off messages. No server, no processes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kcore.kubelet.lease import lease_object, micro_time
from kcore.kubelet.node_status import node_conditions, node_status_changed, read_system_info, resource_list
from kcore.kubelet.pod_status import (
    ContainerView,
    compute_pod_status,
    container_status,
    pod_conditions,
    pod_phase,
    status_differs,
)
from kcore.kubelet.pod_worker import go_duration, group_instances, pod_ref, sandbox_id_of

T0 = "2024-01-01T00:00:00Z"
T1 = "2024-01-01T00:01:00Z"


def rt(state: str, cid: str = "c1", exit_code: int | None = None, restart: int = 0, **kw: Any) -> dict[str, Any]:
    return {"id": cid, "state": state, "exit_code": exit_code, "restart_count": restart,
            "started_at": T0, "finished_at": T1 if state == "exited" else None,
            "reason": {0: "Completed"}.get(exit_code, "Error") if state == "exited" else None, **kw}


RUNNING = {"state": {"running": {"startedAt": T0}}, "lastState": {}}
WAITING = {"state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}}
DONE = {"state": {"terminated": {"exitCode": 0}}, "lastState": {}}
FAILED = {"state": {"terminated": {"exitCode": 1}}, "lastState": {}}
CRASHLOOP = {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}}


# -- phase --------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "inits", "apps", "phase"), [
    ("Always", [], [WAITING], "Pending"),
    ("Always", [], [RUNNING], "Running"),
    ("Always", [], [RUNNING, WAITING], "Pending"),
    ("Always", [], [DONE], "Running"),             # Always restarts even a success
    ("Always", [], [CRASHLOOP], "Running"),        # waiting after a crash counts as stopped
    ("OnFailure", [], [DONE], "Succeeded"),
    ("OnFailure", [], [FAILED], "Running"),        # it will be restarted
    ("OnFailure", [], [DONE, DONE], "Succeeded"),
    ("Never", [], [DONE], "Succeeded"),
    ("Never", [], [FAILED], "Failed"),
    ("Never", [], [DONE, FAILED], "Failed"),
    ("Never", [], [RUNNING, FAILED], "Running"),
    ("Always", [RUNNING], [WAITING], "Pending"),
    ("Always", [DONE], [RUNNING], "Running"),
    ("Never", [FAILED], [WAITING], "Failed"),
    ("OnFailure", [FAILED], [WAITING], "Pending"),  # the init container is retried
    ("Always", [CRASHLOOP], [WAITING], "Pending"),
    ("Never", [CRASHLOOP], [WAITING], "Failed"),
    ("Always", [], [{}], "Pending"),                 # no state at all: unknown
])
def test_pod_phase(policy: str, inits: list[dict[str, Any]], apps: list[dict[str, Any]], phase: str) -> None:
    assert pod_phase({"restartPolicy": policy}, inits, apps) == phase


# -- container statuses ------------------------------------------------------------------------


SPEC = {"name": "app", "image": "python:3"}


def test_container_status_of_a_container_not_started_has_every_required_field() -> None:
    st = container_status(SPEC, ContainerView(), runtime="process", default_waiting="ContainerCreating")
    assert st == {"name": "app", "image": "python:3", "imageID": "process://python:3", "ready": False,
                  "started": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}},
                  "lastState": {}}


def test_running_container_is_ready_only_when_started_and_probed_ready() -> None:
    view = ContainerView(current=rt("running", restart=2), ready=True, started=True)
    st = container_status(SPEC, view, runtime="process", default_waiting="x")
    assert st["state"] == {"running": {"startedAt": T0}} and st["ready"] and st["started"]
    assert st["restartCount"] == 2 and st["containerID"] == "process://c1"
    not_started = container_status(SPEC, ContainerView(current=rt("running"), ready=True, started=False),
                                   runtime="process", default_waiting="x")
    assert not not_started["ready"] and not not_started["started"]


def test_exited_container_is_terminated_and_previous_instance_is_last_state() -> None:
    view = ContainerView(current=rt("running", "c2", restart=1), previous=rt("exited", "c1", 137),
                         ready=True, started=True)
    st = container_status(SPEC, view, runtime="process", default_waiting="x")
    assert st["lastState"] == {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": T0,
                                              "finishedAt": T1, "containerID": "process://c1"}}
    done = container_status(SPEC, ContainerView(current=rt("exited", exit_code=0)), runtime="process",
                            default_waiting="x")
    assert done["state"]["terminated"]["reason"] == "Completed" and not done["ready"]


def test_waiting_override_keeps_the_crash_as_last_state() -> None:
    view = ContainerView(current=rt("exited", exit_code=3, restart=1), waiting=("CrashLoopBackOff", "back-off 10s"))
    st = container_status(SPEC, view, runtime="process", default_waiting="x")
    assert st["state"] == {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    assert st["lastState"]["terminated"]["exitCode"] == 3 and st["restartCount"] == 1


# -- conditions ---------------------------------------------------------------------------------


def _pod(conditions: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"nodeName": "n", "containers": [SPEC], **spec},
            "status": {"conditions": conditions or []}}


def _by_type(conds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conds}


def test_conditions_ready_and_transition_time_kept_while_unchanged() -> None:
    ready = {**RUNNING, "name": "app", "ready": True}
    conds = _by_type(pod_conditions(_pod(), "Running", [], [ready], sandbox_ready=True, now=T0))
    assert conds["Ready"]["status"] == "True" and conds["ContainersReady"]["status"] == "True"
    assert conds["Initialized"]["status"] == "True" and conds["PodScheduled"]["status"] == "True"
    assert conds["PodReadyToStartContainers"]["status"] == "True"
    again = _by_type(pod_conditions(_pod(list(conds.values())), "Running", [], [ready], sandbox_ready=True, now=T1))
    assert again["Ready"]["lastTransitionTime"] == T0
    unready = {**ready, "ready": False}
    flipped = _by_type(pod_conditions(_pod(list(conds.values())), "Running", [], [unready],
                                      sandbox_ready=True, now=T1))
    assert flipped["Ready"] == {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                                "message": "containers with unready status: [app]", "lastTransitionTime": T1}


def test_conditions_keep_foreign_ones_and_readiness_gates() -> None:
    gate = {"type": "example.com/gate", "status": "False", "lastTransitionTime": T0}
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": "then"}
    pod = _pod([gate, scheduled], readinessGates=[{"conditionType": "example.com/gate"}])
    conds = _by_type(pod_conditions(pod, "Running", [], [{**RUNNING, "name": "app", "ready": True}],
                                    sandbox_ready=True, now=T1))
    assert conds["example.com/gate"] == gate and conds["PodScheduled"] == scheduled
    assert conds["ContainersReady"]["status"] == "True"
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "ReadinessGatesNotReady"


def test_initialized_lists_incomplete_init_containers() -> None:
    inits = [{**DONE, "name": "a"}, {**RUNNING, "name": "b"}]
    conds = _by_type(pod_conditions(_pod(), "Pending", inits, [{**WAITING, "name": "app"}],
                                    sandbox_ready=True, now=T0))
    assert conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["message"] == "containers with incomplete status: [b]"


def test_succeeded_pod_is_not_ready_because_completed() -> None:
    conds = _by_type(pod_conditions(_pod(), "Succeeded", [], [{**DONE, "name": "app"}], sandbox_ready=True, now=T0))
    assert conds["Ready"]["reason"] == "PodCompleted" and conds["ContainersReady"]["reason"] == "PodCompleted"


# -- the whole status ---------------------------------------------------------------------------


def test_compute_pod_status_whole() -> None:
    pod = _pod(initContainers=[{"name": "init", "image": "busybox"}])
    pod["status"]["qosClass"] = "BestEffort"
    status = compute_pod_status(
        pod, {"init": ContainerView(current=rt("exited", "i1", 0))},
        {"app": ContainerView(current=rt("running", "a1"), ready=True, started=True)},
        node_ip="10.0.0.5", pod_ip="10.0.0.5", now=T1)
    assert status["phase"] == "Running" and status["qosClass"] == "BestEffort"
    assert status["hostIP"] == "10.0.0.5" and status["hostIPs"] == [{"ip": "10.0.0.5"}]
    assert status["podIP"] == "10.0.0.5" and status["podIPs"] == [{"ip": "10.0.0.5"}]
    assert status["startTime"] == T1
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert status["containerStatuses"][0]["ready"] is True
    assert not status_differs({**pod["status"], **status}, status)
    assert status_differs(pod["status"], status)


def test_app_containers_wait_with_pod_initializing_while_init_runs() -> None:
    pod = _pod(initContainers=[{"name": "init", "image": "busybox"}])
    status = compute_pod_status(pod, {"init": ContainerView(current=rt("running", "i1"))}, {},
                                node_ip="1.2.3.4", pod_ip=None, now=T0)
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["phase"] == "Pending" and "podIP" not in status


# -- node ------------------------------------------------------------------------------------------


def test_node_conditions_transitions_and_heartbeats() -> None:
    first = node_conditions([], {"MemoryPressure": False}, ready=True, now=T0)
    kinds = {c["type"]: c for c in first}
    assert set(kinds) == {"Ready", "MemoryPressure", "DiskPressure", "PIDPressure"}
    assert kinds["Ready"]["reason"] == "KubeletReady" and kinds["DiskPressure"]["reason"] == "KubeletHasNoDiskPressure"
    later = {c["type"]: c for c in node_conditions(first, {"MemoryPressure": True}, ready=True, now=T1)}
    assert later["Ready"]["lastTransitionTime"] == T0 and later["Ready"]["lastHeartbeatTime"] == T1
    assert later["MemoryPressure"]["status"] == "True" and later["MemoryPressure"]["lastTransitionTime"] == T1
    assert later["MemoryPressure"]["reason"] == "KubeletHasInsufficientMemory"


def test_node_status_changed_ignores_heartbeats() -> None:
    a = {"capacity": {"cpu": "1"}, "conditions": node_conditions([], {}, ready=True, now=T0)}
    b = {"capacity": {"cpu": "1"}, "conditions": node_conditions(a["conditions"], {}, ready=True, now=T1)}
    assert not node_status_changed(a, b)
    assert node_status_changed(a, {**b, "capacity": {"cpu": "2"}})
    assert node_status_changed(None, b)


def test_system_info_has_all_ten_fields() -> None:
    info = read_system_info()
    assert len(info) == 10 and all(info.values())


def test_resource_list_prefers_configured_values() -> None:
    assert resource_list(None, None, 4, 8 * 1024 ** 3, 110) == {"cpu": "4", "memory": "8388608Ki", "pods": "110"}
    assert resource_list("2", "1Gi", 4, 1, 10) == {"cpu": "2", "memory": "1Gi", "pods": "10"}


# -- lease, back-off messages, sandbox ids -------------------------------------------------------


def test_micro_time_and_lease_object() -> None:
    now = dt.datetime(2006, 1, 2, 15, 4, 5, 123, tzinfo=dt.UTC)
    assert micro_time(now) == "2006-01-02T15:04:05.000123Z"
    lease = lease_object("n1", "uid-1", 40, now)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-1"}]
    assert lease["spec"] == {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": micro_time(now)}


@pytest.mark.parametrize(("seconds", "text"), [
    (10, "10s"), (20.0, "20s"), (160, "2m40s"), (300, "5m0s"), (0.5, "500ms"), (1.5, "1.5s"), (3725, "1h2m5s"),
    (0, "0s"),
])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def test_sandbox_ids_and_instances() -> None:
    pod = {"metadata": {"name": "web", "namespace": "prod", "uid": "u-1"}}
    assert sandbox_id_of(pod) == "prod_web_u-1" and pod_ref(pod) == "web_prod(u-1)"
    listing = [rt("exited", "b", 1, restart=1, name="x", sandbox_id="s"), rt("running", "c", restart=2, name="x",
               sandbox_id="s"), rt("exited", "a", 1, restart=0, name="x", sandbox_id="s"),
               rt("running", "z", name="x", sandbox_id="other")]
    assert [i["id"] for i in group_instances(listing, "s")["x"]] == ["a", "b", "c"]
