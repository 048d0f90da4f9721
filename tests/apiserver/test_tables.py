"""Server-side Tables: kubectl's columns and cell logic on wire dicts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kcore.apiserver.tables import (
    human_duration,
    render_table,
    table_columns,
    table_row_cells,
    translate_timestamp_since,
    watch_event_table,
)

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def row(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Cells keyed by column name (wide columns included)."""
    names = [c["name"] for c in table_columns(kind)]
    cells = table_row_cells(kind, obj, now=NOW)
    assert len(cells) == len(names)
    return dict(zip(names, cells))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 30 * 60, "5h30m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (3 * 86400, "3d"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400, "3y"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400 + 10 * 86400, "9y"),
    ],
)
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_translate_timestamp() -> None:
    assert translate_timestamp_since(ago(minutes=5), NOW) == "5m"
    assert translate_timestamp_since(None, NOW) == "<unknown>"
    assert translate_timestamp_since("2024-06-01T11:59:30.123456Z", NOW) == "29s"


# --------------------------------------------------------------------- table shape


def _pod(name: str = "p", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": ago(seconds=30),
                     "labels": {"app": "x"}, "resourceVersion": "7"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}], "nodeName": "n1"},
        "status": status or {"phase": "Pending"},
    }


def test_table_shape_and_partial_object_metadata() -> None:
    t = render_table("Pod", "v1", [_pod()], now=NOW, resource_version="42", continue_token="abc")
    assert t["kind"] == "Table" and t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {"resourceVersion": "42", "continue": "abc"}
    assert [c["name"] for c in t["columnDefinitions"]] == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates",
    ]
    assert [c["priority"] for c in t["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert t["columnDefinitions"][0]["format"] == "name"
    assert all({"name", "type", "format", "description", "priority"} <= set(c) for c in t["columnDefinitions"])
    (r,) = t["rows"]
    assert r["cells"] == ["p", "0/1", "Pending", "0", "30s", "<none>", "n1", "<none>", "<none>"]
    assert r["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": _pod()["metadata"],
    }


def test_include_object_modes() -> None:
    obj = _pod()
    del obj["kind"]
    full = render_table("Pod", "v1", [obj], include_object="Object", now=NOW)["rows"][0]["object"]
    assert full["kind"] == "Pod" and full["apiVersion"] == "v1" and full["spec"] == obj["spec"]
    assert "kind" not in obj  # the input is not mutated
    assert "object" not in render_table("Pod", "v1", [obj], include_object="None", now=NOW)["rows"][0]
    with pytest.raises(ValueError):
        render_table("Pod", "v1", [obj], include_object="Everything", now=NOW)  # type: ignore[arg-type]


def test_columns_are_copies() -> None:
    table_columns("Pod")[0]["name"] = "Broken"
    assert table_columns("Pod")[0]["name"] == "Name"


def test_watch_event_tables() -> None:
    ev = watch_event_table("ADDED", "Pod", "v1", _pod(), now=NOW)
    assert ev["type"] == "ADDED"
    assert ev["object"]["kind"] == "Table" and len(ev["object"]["rows"]) == 1
    assert ev["object"]["metadata"]["resourceVersion"] == "7"
    assert ev["object"]["rows"][0]["cells"][0] == "p"
    bm = watch_event_table("BOOKMARK", "Pod", "v1", {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}}, now=NOW)
    assert bm["object"]["rows"] == [] and bm["object"]["metadata"]["resourceVersion"] == "9"
    status = {"kind": "Status", "apiVersion": "v1", "code": 410, "reason": "Expired"}
    assert watch_event_table("ERROR", "Pod", "v1", status, now=NOW) == {"type": "ERROR", "object": status}


# --------------------------------------------------------------------- pods


def _cs(name: str, *, ready: bool = False, restarts: int = 0, **state: Any) -> dict[str, Any]:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": state, "image": "i", "imageID": ""}


def _two_container_pod(**status: Any) -> dict[str, Any]:
    p = _pod(**status)
    p["spec"]["containers"] = [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]
    return p


def test_pod_running_ready() -> None:
    r = row("Pod", _two_container_pod(
        phase="Running", podIP="10.1.0.5",
        conditions=[{"type": "Ready", "status": "True"}],
        containerStatuses=[_cs("a", ready=True, running={}), _cs("b", ready=True, running={})],
    ))
    assert (r["Ready"], r["Status"], r["Restarts"], r["IP"]) == ("2/2", "Running", "0", "10.1.0.5")


def test_pod_crashloop_with_last_restart_time() -> None:
    cs = _cs("a", restarts=5, waiting={"reason": "CrashLoopBackOff"})
    cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}}
    r = row("Pod", _pod(phase="Running", containerStatuses=[cs]))
    assert r["Status"] == "CrashLoopBackOff"
    assert r["Restarts"] == "5 (5m ago)"
    assert r["Ready"] == "0/1"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"terminated": {"exitCode": 0, "reason": "Completed"}}, "Completed"),
        ({"terminated": {"exitCode": 137}}, "ExitCode:137"),
        ({"terminated": {"exitCode": 0, "signal": 9}}, "Signal:9"),
        ({"waiting": {"reason": "ContainerCreating"}}, "ContainerCreating"),
        ({"waiting": {"reason": "ImagePullBackOff"}}, "ImagePullBackOff"),
    ],
)
def test_pod_container_state_reasons(state: dict[str, Any], expected: str) -> None:
    assert row("Pod", _pod(phase="Running", containerStatuses=[_cs("a", **state)]))["Status"] == expected


def test_pod_completed_but_one_still_running() -> None:
    statuses = [_cs("a", terminated={"exitCode": 0, "reason": "Completed"}), _cs("b", ready=True, running={})]
    ready = _two_container_pod(phase="Running", containerStatuses=statuses, conditions=[{"type": "Ready", "status": "True"}])
    assert row("Pod", ready)["Status"] == "Running"
    not_ready = _two_container_pod(phase="Running", containerStatuses=statuses)
    assert row("Pod", not_ready)["Status"] == "NotReady"


def test_pod_init_containers() -> None:
    p = _pod(phase="Pending", initContainerStatuses=[
        _cs("i1", terminated={"exitCode": 0, "reason": "Completed"}),
        _cs("i2", running={}),
    ], containerStatuses=[_cs("a", waiting={"reason": "PodInitializing"})])
    p["spec"]["initContainers"] = [{"name": "i1", "image": "i"}, {"name": "i2", "image": "i"}]
    assert row("Pod", p)["Status"] == "Init:1/2"

    p["status"]["initContainerStatuses"][1] = _cs("i2", restarts=3, waiting={"reason": "CrashLoopBackOff"})
    r = row("Pod", p)
    assert r["Status"] == "Init:CrashLoopBackOff" and r["Restarts"] == "3"

    p["status"]["initContainerStatuses"][1] = _cs("i2", terminated={"exitCode": 2})
    assert row("Pod", p)["Status"] == "Init:ExitCode:2"
    p["status"]["initContainerStatuses"][1] = _cs("i2", terminated={"exitCode": 1, "reason": "Error"})
    assert row("Pod", p)["Status"] == "Init:Error"


def test_pod_sidecar_counts_in_ready() -> None:
    p = _pod(phase="Running", initContainerStatuses=[{**_cs("side", ready=True, running={}), "started": True}],
             containerStatuses=[_cs("a", ready=True, running={})],
             conditions=[{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}])
    p["spec"]["initContainers"] = [{"name": "side", "image": "i", "restartPolicy": "Always"}]
    r = row("Pod", p)
    assert (r["Ready"], r["Status"]) == ("2/2", "Running")


def test_pod_terminating_unknown_and_gated() -> None:
    p = _pod(phase="Running", containerStatuses=[_cs("a", ready=True, running={})])
    p["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert row("Pod", p)["Status"] == "Terminating"
    p["status"]["reason"] = "NodeLost"
    assert row("Pod", p)["Status"] == "Unknown"
    done = _pod(phase="Succeeded")
    done["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert row("Pod", done)["Status"] == "Succeeded"
    gated = _pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}])
    assert row("Pod", gated)["Status"] == "SchedulingGated"
    evicted = _pod(phase="Failed", reason="Evicted")
    assert row("Pod", evicted)["Status"] == "Evicted"


def test_pod_readiness_gates_and_nominated_node() -> None:
    p = _pod(phase="Running", nominatedNodeName="n9",
             conditions=[{"type": "example.com/lb", "status": "True"}, {"type": "example.com/x", "status": "False"}])
    p["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/x"}]
    r = row("Pod", p)
    assert r["Readiness Gates"] == "1/2" and r["Nominated Node"] == "n9"


# --------------------------------------------------------------------- workloads

TEMPLATE = {"spec": {"containers": [{"name": "web", "image": "nginx:1"}, {"name": "log", "image": "busybox"}]}}


def test_deployment_row() -> None:
    d = {
        "metadata": {"name": "d", "creationTimestamp": ago(days=2, hours=3)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    r = row("Deployment", d)
    assert r == {
        "Name": "d", "Ready": "2/3", "Up-to-date": 3, "Available": 2, "Age": "2d3h",
        "Containers": "web,log", "Images": "nginx:1,busybox", "Selector": "app=web",
    }
    assert row("Deployment", {"metadata": {"name": "e"}, "spec": {}})["Ready"] == "0/1"


def test_replicaset_statefulset_daemonset_rows() -> None:
    rs = {"metadata": {"name": "rs"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}, "template": TEMPLATE},
          "status": {"replicas": 2, "readyReplicas": 1}}
    r = row("ReplicaSet", rs)
    assert (r["Desired"], r["Current"], r["Ready"], r["Selector"]) == (2, 2, 1, "a=b")
    rc = {"metadata": {"name": "rc"}, "spec": {"replicas": 1, "selector": {"a": "b"}, "template": TEMPLATE}}
    assert row("ReplicationController", rc)["Selector"] == "a=b"
    sts = {"metadata": {"name": "s"}, "spec": {"replicas": 3, "template": TEMPLATE}, "status": {"readyReplicas": 3}}
    assert row("StatefulSet", sts)["Ready"] == "3/3"
    ds = {"metadata": {"name": "ds"}, "spec": {"template": {"spec": {**TEMPLATE["spec"], "nodeSelector": {"os": "linux"}}}},
          "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                     "updatedNumberScheduled": 2, "numberAvailable": 1}}
    assert [c["name"] for c in table_columns("DaemonSet")][:8] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"]
    r = row("DaemonSet", ds)
    assert (r["Desired"], r["Ready"], r["Available"], r["Node Selector"]) == (2, 1, 1, "os=linux")
    assert row("DaemonSet", {"metadata": {"name": "x"}})["Node Selector"] == "<none>"


def test_job_rows() -> None:
    base = {"metadata": {"name": "j", "creationTimestamp": ago(minutes=10)},
            "spec": {"completions": 3, "template": TEMPLATE, "selector": {"matchLabels": {"job": "j"}}}}
    running = {**base, "status": {"succeeded": 1, "startTime": ago(minutes=9)}}
    r = row("Job", running)
    assert (r["Status"], r["Completions"], r["Duration"], r["Selector"]) == ("Running", "1/3", "9m", "job=j")
    done = {**base, "status": {"succeeded": 3, "startTime": ago(minutes=9), "completionTime": ago(minutes=8),
                               "conditions": [{"type": "Complete", "status": "True"}]}}
    r = row("Job", done)
    assert (r["Status"], r["Completions"], r["Duration"]) == ("Complete", "3/3", "60s")
    par = {"metadata": {"name": "p"}, "spec": {"parallelism": 4}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    r = row("Job", par)
    assert (r["Status"], r["Completions"], r["Duration"]) == ("Failed", "0/1 of 4", "")
    assert row("Job", {"metadata": {"name": "s"}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}})["Status"] == "Suspended"


def test_cronjob_row() -> None:
    cj = {"metadata": {"name": "c", "creationTimestamp": ago(hours=1)},
          "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": TEMPLATE}}},
          "status": {"active": [{"name": "c-1"}], "lastScheduleTime": ago(minutes=3)}}
    r = row("CronJob", cj)
    assert [c["name"] for c in table_columns("CronJob")][:7] == [
        "Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"]
    assert (r["Schedule"], r["Timezone"], r["Suspend"], r["Active"], r["Last Schedule"], r["Age"]) == (
        "*/5 * * * *", "<none>", "False", 1, "3m", "60m")
    assert row("CronJob", {"metadata": {"name": "n"}, "spec": {"suspend": True, "timeZone": "UTC"}})["Last Schedule"] == "<none>"


def test_controller_revision_row() -> None:
    cr = {"metadata": {"name": "ds-abc", "ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u", "controller": True}]}, "revision": 2}
    r = row("ControllerRevision", cr)
    assert (r["Controller"], r["Revision"]) == ("daemonset.apps/ds", 2)
    assert row("ControllerRevision", {"metadata": {"name": "x"}})["Controller"] == "<none>"


# --------------------------------------------------------------------- services & networking


def test_service_rows() -> None:
    svc = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                                              "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                                              "selector": {"app": "web"}}}
    r = row("Service", svc)
    assert (r["Type"], r["Cluster-IP"], r["External-IP"], r["Port(s)"], r["Selector"]) == (
        "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "app=web")
    lb = {"metadata": {"name": "l"}, "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "ports": [{"port": 443}]}}
    assert row("Service", lb)["External-IP"] == "<pending>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    assert row("Service", lb)["External-IP"] == "1.2.3.4"
    ext = {"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}
    r = row("Service", ext)
    assert (r["External-IP"], r["Cluster-IP"], r["Port(s)"], r["Selector"]) == ("example.com", "<none>", "<none>", "<none>")
    headless = {"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}
    assert row("Service", headless)["Cluster-IP"] == "None"


def test_endpoints_and_slices() -> None:
    ep = {"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)], "ports": [{"port": 80}]}]}
    assert row("Endpoints", ep)["Endpoints"] == "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more..."
    assert row("Endpoints", {"metadata": {"name": "e"}})["Endpoints"] == "<none>"
    es = {"metadata": {"name": "es"}, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "x"}],
          "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}
    r = row("EndpointSlice", es)
    assert (r["AddressType"], r["Ports"], r["Endpoints"]) == ("IPv4", "80,x", "10.0.0.1,10.0.0.2")
    r = row("EndpointSlice", {"metadata": {"name": "z"}, "addressType": "IPv4"})
    assert (r["Ports"], r["Endpoints"]) == ("<unset>", "<unset>")


# --------------------------------------------------------------------- cluster & config


def test_node_rows() -> None:
    node = {
        "metadata": {"name": "n1", "creationTimestamp": ago(days=10),
                     "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": ""}},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}, {"type": "Hostname", "address": "n1"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.0-kcore", "osImage": "Debian", "kernelVersion": "6.1",
                                "containerRuntimeVersion": "kcore://0.1"}},
    }
    r = row("Node", node)
    assert r == {"Name": "n1", "Status": "Ready", "Roles": "control-plane,worker", "Age": "10d",
                 "Version": "v1.32.0-kcore", "Internal-IP": "192.168.1.2", "External-IP": "<none>",
                 "OS-Image": "Debian", "Kernel-Version": "6.1", "Container-Runtime": "kcore://0.1"}
    node["spec"] = {"unschedulable": True}
    assert row("Node", node)["Status"] == "Ready,SchedulingDisabled"
    node["status"]["conditions"][1]["status"] = "Unknown"
    assert row("Node", node)["Status"] == "NotReady,SchedulingDisabled"
    r = row("Node", {"metadata": {"name": "bare"}})
    assert (r["Status"], r["Roles"], r["OS-Image"]) == ("Unknown", "<none>", "<unknown>")


def test_simple_kinds() -> None:
    assert row("Namespace", {"metadata": {"name": "ns"}, "status": {"phase": "Terminating"}})["Status"] == "Terminating"
    assert row("ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})["Data"] == 3
    s = row("Secret", {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
    assert (s["Type"], s["Data"]) == ("kubernetes.io/tls", 2)
    assert row("ServiceAccount", {"metadata": {"name": "sa"}, "secrets": [{"name": "t"}]})["Secrets"] == 1
    assert row("Lease", {"metadata": {"name": "l"}, "spec": {"holderIdentity": "node-1"}})["Holder"] == "node-1"
    created = "2024-01-02T03:04:05Z"
    assert row("Role", {"metadata": {"name": "r", "creationTimestamp": created}}) == {"Name": "r", "Created At": created}
    assert row("LimitRange", {"metadata": {"name": "l", "creationTimestamp": created}})["Created At"] == created
    rb = {"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
          "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "d", "namespace": "kube-system"},
                       {"kind": "Group", "name": "devs"}]}
    r = row("RoleBinding", rb)
    assert (r["Role"], r["Users"], r["Groups"], r["ServiceAccounts"]) == ("ClusterRole/view", "alice", "devs", "kube-system:d")


def test_storage_rows() -> None:
    pv = {"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                                               "claimRef": {"namespace": "ns", "name": "c"}, "storageClassName": "fast"},
          "status": {"phase": "Bound"}}
    r = row("PersistentVolume", pv)
    assert (r["Capacity"], r["Access Modes"], r["Reclaim Policy"], r["Status"], r["Claim"], r["StorageClass"],
            r["VolumeAttributesClass"], r["VolumeMode"]) == ("1Gi", "RWO,RWX", "Retain", "Bound", "ns/c", "fast", "<unset>", "<unset>")
    pvc = {"metadata": {"name": "c"}, "spec": {"volumeName": "pv1", "storageClassName": "fast", "volumeMode": "Filesystem"},
           "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}
    r = row("PersistentVolumeClaim", pvc)
    assert (r["Status"], r["Volume"], r["Capacity"], r["Access Modes"], r["StorageClass"], r["VolumeMode"]) == (
        "Bound", "pv1", "1Gi", "RWO", "fast", "Filesystem")
    pending = row("PersistentVolumeClaim", {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending"}})
    assert (pending["Volume"], pending["Capacity"]) == ("", "")
    sc = {"metadata": {"name": "std", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
          "provisioner": "kcore.io/hostpath"}
    r = row("StorageClass", sc)
    assert (r["Name"], r["ReclaimPolicy"], r["VolumeBindingMode"], r["AllowVolumeExpansion"]) == (
        "std (default)", "Delete", "Immediate", False)


def test_quota_and_hpa_rows() -> None:
    q = {"metadata": {"name": "q"}, "status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
                                             "used": {"pods": "3", "requests.cpu": "500m"}}}
    r = row("ResourceQuota", q)
    assert [c["name"] for c in table_columns("ResourceQuota")] == ["Name", "Age", "Request", "Limit"]
    assert (r["Request"], r["Limit"]) == ("pods: 3/10, requests.cpu: 500m/1", "limits.cpu: 0/2")
    hpa = {"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1,
                                             "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {
                                                 "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]},
           "status": {"currentReplicas": 2}}
    r = row("HorizontalPodAutoscaler", hpa)
    assert (r["Reference"], r["Targets"], r["MinPods"], r["MaxPods"], r["Replicas"]) == (
        "Deployment/web", "cpu: <unknown>/80%", 1, 5, 2)
    hpa["status"]["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35}}}]
    assert row("HorizontalPodAutoscaler", hpa)["Targets"] == "cpu: 35%/80%"


# --------------------------------------------------------------------- events & fallback


def test_event_row_core_v1() -> None:
    ev = {"metadata": {"name": "p.17a"}, "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
          "reason": "Pulled", "type": "Normal", "message": " Pulled image \n", "count": 3,
          "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(minutes=2), "source": {"component": "kubelet", "host": "n1"}}
    r = row("Event", ev)
    assert [c["name"] for c in table_columns("Event") if c["priority"] == 0] == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert r == {"Last Seen": "2m", "Type": "Normal", "Reason": "Pulled", "Object": "pod/p", "Subobject": "spec.containers{c}",
                 "Source": "kubelet, n1", "Message": "Pulled image", "First Seen": "10m", "Count": 3, "Name": "p.17a"}


def test_event_row_new_style() -> None:
    ev = {"metadata": {"name": "e"}, "eventTime": "2024-06-01T11:59:00.000000Z", "reportingComponent": "sched",
          "involvedObject": {"kind": "Node"}, "type": "Warning", "reason": "X", "message": "m"}
    r = row("Event", ev)
    assert (r["Last Seen"], r["First Seen"], r["Count"], r["Source"], r["Object"]) == ("60s", "60s", 1, "sched", "node")
    series = {**ev, "series": {"count": 7, "lastObservedTime": "2024-06-01T11:59:50.000000Z"}}
    assert (row("Event", series)["Count"], row("Event", series)["Last Seen"]) == (7, "10s")
    v1 = {"metadata": {"name": "e2"}, "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "reason": "R",
          "type": "Normal", "reportingController": "ctl", "deprecatedCount": 2, "deprecatedLastTimestamp": ago(seconds=5)}
    r = row("Event", v1)
    assert (r["Object"], r["Message"], r["Count"], r["Source"], r["Last Seen"]) == ("pod/p", "hi", 2, "ctl", "5s")


def test_generic_fallback() -> None:
    t = render_table("Widget", "example.com/v1", [{"metadata": {"name": "w", "creationTimestamp": ago(hours=26)}}], now=NOW)
    assert [c["name"] for c in t["columnDefinitions"]] == ["Name", "Age"]
    assert t["rows"][0]["cells"] == ["w", "26h"]
