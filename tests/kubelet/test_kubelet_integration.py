"""The kubelet against a real API server, running real processes with the process runtime."""

from __future__ import annotations

import asyncio
from typing import Any

import psutil
from kubelet.helpers import PY, pid_gone
from kubelet.kubelet_fixtures import *  # noqa: F403 - fixtures
from kubelet.kubelet_fixtures import free_port, http_server_code, pod_body, unique, wait_until

from kcore.client import ApiClient
from kcore.kubelet.node_status import KUBELET_VERSION, RUNTIME_VERSION

NODE_INFO_FIELDS = ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                    "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture")


# -- helpers --------------------------------------------------------------------------------


async def get_pod(client: ApiClient, name: str) -> dict[str, Any] | None:
    return await client.resource("v1", "Pod").get_or_none(name, "default")


def cstatus(pod: dict[str, Any] | None, name: str, init: bool = False) -> dict[str, Any]:
    key = "initContainerStatuses" if init else "containerStatuses"
    for st in ((pod or {}).get("status") or {}).get(key) or []:
        if st["name"] == name:
            return st
    return {}


def condition(pod: dict[str, Any] | None, type_: str) -> str | None:
    for c in ((pod or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c["status"]
    return None


async def wait_pod(client: ApiClient, name: str, pred: Any, timeout: float = 20) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        pod = await get_pod(client, name)
        return pod if pod is not None and pred(pod) else None
    return await wait_until(check, timeout=timeout, interval=0.05)


async def events_for(client: ApiClient, name: str) -> list[dict[str, Any]]:
    items, _ = await client.resource("v1", "Event").list("default")
    return [e for e in items if e["involvedObject"].get("name") == name]


async def pid_of(pod: dict[str, Any], kubelet: Any, container: str) -> int:
    """The pid of a container's current instance, from the runtime."""
    cid = cstatus(pod, container)["containerID"].split("://", 1)[1]
    return next(c["pid"] for c in await kubelet.runtime.list_containers() if c["id"] == cid)


def web_container(port: int, name: str = "web", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "python:3", "command": [PY, "-c", http_server_code(port)],
            "ports": [{"name": "http", "containerPort": port}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}, **extra}


# -- node and lease ----------------------------------------------------------------------------


async def test_node_registered_with_system_info_and_ready(kubelets: Any, client: ApiClient) -> None:
    await kubelets.start("node-a", max_pods=7, cpu="3", memory="2Gi")
    node = await client.resource("v1", "Node").get("node-a")
    status = node["status"]
    info = status["nodeInfo"]
    assert all(info.get(f) for f in NODE_INFO_FIELDS), info
    assert info["kubeletVersion"] == KUBELET_VERSION and info["containerRuntimeVersion"] == RUNTIME_VERSION
    assert info["operatingSystem"] == "linux" and info["architecture"] in ("amd64", "arm64")
    assert status["capacity"] == {"cpu": "3", "memory": "2Gi", "pods": "7"}
    assert status["allocatable"]["pods"] == "7"
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert any(a["type"] == "Hostname" for a in status["addresses"])
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert conds["Ready"]["message"] == "kubelet is posting ready status"
    for t in ("MemoryPressure", "DiskPressure", "PIDPressure"):
        assert conds[t]["status"] == "False"
        assert conds[t]["lastHeartbeatTime"] and conds[t]["lastTransitionTime"]
    assert status["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 0
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "node-a"


async def test_lease_renewed_and_owned_by_node(kubelets: Any, client: ApiClient) -> None:
    await kubelets.start("node-l")
    leases = client.resource("coordination.k8s.io/v1", "Lease")
    first = await wait_until(lambda: leases.get_or_none("node-l", "kube-node-lease"))
    node = await client.resource("v1", "Node").get("node-l")
    assert first["spec"]["holderIdentity"] == "node-l"
    assert first["spec"]["leaseDurationSeconds"] == 40
    assert first["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    renew = first["spec"]["renewTime"]
    assert len(renew) == len("2006-01-02T15:04:05.000000Z") and renew.endswith("Z")

    async def renewed() -> bool:
        lease = await leases.get("node-l", "kube-node-lease")
        return lease["spec"]["renewTime"] > renew
    await wait_until(renewed, timeout=5)


async def test_restarted_kubelet_keeps_its_node(kubelets: Any, client: ApiClient) -> None:
    k1 = await kubelets.start("node-r")
    uid = (await client.resource("v1", "Node").get("node-r"))["metadata"]["uid"]
    await kubelets.stop(k1)
    await kubelets.start("node-r")
    node = await client.resource("v1", "Node").get("node-r")
    assert node["metadata"]["uid"] == uid
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"


# -- pods -----------------------------------------------------------------------------------------


async def test_pod_runs_becomes_ready_and_restarts_when_killed(kubelets: Any, client: ApiClient) -> None:
    kubelet = await kubelets.start("node-p")
    port = free_port()
    name = unique("web")
    await client.resource("v1", "Pod").create(pod_body(name, "node-p", [web_container(port)]))
    pod = await wait_pod(client, name, lambda p: condition(p, "Ready") == "True")
    st = cstatus(pod, "web")
    assert pod["status"]["phase"] == "Running"
    assert st["ready"] is True and st["started"] is True and st["restartCount"] == 0
    assert st["image"] == "python:3" and st["imageID"] == "process://python:3"
    assert st["containerID"].startswith("process://") and "running" in st["state"]
    assert pod["status"]["podIP"] == "127.0.0.1" and pod["status"]["hostIP"] == "127.0.0.1"
    assert pod["status"]["startTime"]
    assert {c["type"] for c in pod["status"]["conditions"]} >= {"Initialized", "ContainersReady", "Ready"}
    reasons = {e["reason"] for e in await events_for(client, name)}
    assert {"Created", "Started"} <= reasons

    pid = await pid_of(pod, kubelet, "web")
    psutil.Process(pid).kill()
    pod = await wait_pod(client, name, lambda p: cstatus(p, "web").get("restartCount") == 1
                         and cstatus(p, "web").get("ready"))
    st = cstatus(pod, "web")
    assert st["lastState"]["terminated"]["exitCode"] == 137
    assert await pid_of(pod, kubelet, "web") != pid


async def test_crash_loop_back_off_with_growing_delays(kubelets: Any, client: ApiClient) -> None:
    await kubelets.start("node-c", backoff_base_seconds=0.5)
    name = unique("crash")
    crash = {"name": "crash", "image": "python:3", "command": [PY, "-c", "import sys; print('bye'); sys.exit(3)"]}
    await client.resource("v1", "Pod").create(pod_body(name, "node-c", [crash]))
    pod = await wait_pod(client, name, lambda p: (cstatus(p, "crash").get("state") or {}).get("waiting", {})
                         .get("reason") == "CrashLoopBackOff")
    waiting = cstatus(pod, "crash")["state"]["waiting"]
    uid = pod["metadata"]["uid"]
    assert waiting["message"] == f"back-off 500ms restarting failed container=crash pod={name}_default({uid})"
    assert cstatus(pod, "crash")["lastState"]["terminated"]["exitCode"] == 3
    assert pod["status"]["phase"] == "Running"  # restartPolicy Always: it will be restarted
    pod = await wait_pod(client, name, lambda p: "back-off 1s " in str(cstatus(p, "crash")))
    pod = await wait_pod(client, name, lambda p: "back-off 2s " in str(cstatus(p, "crash")))
    assert cstatus(pod, "crash")["restartCount"] >= 3
    assert "BackOff" in {e["reason"] for e in await events_for(client, name)}


async def test_status_is_not_rewritten_when_nothing_changes(kubelets: Any, client: ApiClient) -> None:
    await kubelets.start("node-q")
    name = unique("quiet")
    await client.resource("v1", "Pod").create(pod_body(name, "node-q", [web_container(free_port())]))
    pod = await wait_pod(client, name, lambda p: condition(p, "Ready") == "True")
    rv = pod["metadata"]["resourceVersion"]
    await asyncio.sleep(1.0)  # many relist and probe periods: a status write would show here
    assert (await get_pod(client, name))["metadata"]["resourceVersion"] == rv


async def test_failing_liveness_probe_restarts_the_container(kubelets: Any, client: ApiClient) -> None:
    kubelet = await kubelets.start("node-v")
    name = unique("live")
    c = {"name": "app", "image": "python:3", "command": [PY, "-c", "import time; time.sleep(600)"],
         "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}}
    await client.resource("v1", "Pod").create(pod_body(name, "node-v", [c], terminationGracePeriodSeconds=5))
    pod = await wait_pod(client, name, lambda p: "running" in (cstatus(p, "app").get("state") or {}))
    first_pid = await pid_of(pod, kubelet, "app")
    pod = await wait_pod(client, name, lambda p: cstatus(p, "app").get("restartCount", 0) >= 1)
    assert pid_gone(first_pid)
    events = await events_for(client, name)
    messages = {(e["reason"], e["message"]) for e in events}
    assert ("Killing", "Container app failed liveness probe, will be restarted") in messages
    assert any(r == "Unhealthy" and m.startswith("Liveness probe failed") for r, m in messages)


async def test_init_containers_run_first_in_order(kubelets: Any, client: ApiClient, tmp_path: Any) -> None:
    await kubelets.start("node-i")
    trace = tmp_path / "trace.txt"
    def step(label: str, code: str = "") -> dict[str, Any]:
        return {"name": label, "image": "python:3",
                "command": [PY, "-c", f"open({str(trace)!r}, 'a').write('{label}\\n'){code}"]}
    name = unique("init")
    app = step("app", "; import time; time.sleep(600)")
    await client.resource("v1", "Pod").create(pod_body(name, "node-i", [app],
                                                       initContainers=[step("first"), step("second")]))
    pod = await wait_pod(client, name, lambda p: p["status"].get("phase") == "Running")
    await wait_until(lambda: trace.read_text().count("\n") == 3)  # the app writes once it runs
    assert trace.read_text().split() == ["first", "second", "app"]
    inits = pod["status"]["initContainerStatuses"]
    assert [s["name"] for s in inits] == ["first", "second"]
    assert all(s["state"]["terminated"]["exitCode"] == 0 and s["state"]["terminated"]["reason"] == "Completed"
               for s in inits)
    assert condition(pod, "Initialized") == "True"


async def test_failed_init_container_with_never_fails_the_pod(kubelets: Any, client: ApiClient) -> None:
    await kubelets.start("node-f")
    name = unique("initfail")
    bad = {"name": "bad", "image": "python:3", "command": [PY, "-c", "raise SystemExit(2)"]}
    app = {"name": "app", "image": "python:3", "command": [PY, "-c", "print('never')"]}
    await client.resource("v1", "Pod").create(pod_body(name, "node-f", [app], initContainers=[bad],
                                                       restartPolicy="Never"))
    pod = await wait_pod(client, name, lambda p: p["status"].get("phase") == "Failed")
    assert cstatus(pod, "bad", init=True)["state"]["terminated"]["exitCode"] == 2
    assert cstatus(pod, "app")["state"]["waiting"]["reason"] == "PodInitializing"


async def test_completed_pod_succeeds(kubelets: Any, client: ApiClient) -> None:
    await kubelets.start("node-s")
    name = unique("job")
    c = {"name": "job", "image": "python:3", "command": [PY, "-c", "print('done')"]}
    await client.resource("v1", "Pod").create(pod_body(name, "node-s", [c], restartPolicy="OnFailure"))
    pod = await wait_pod(client, name, lambda p: p["status"].get("phase") == "Succeeded")
    assert cstatus(pod, "job")["state"]["terminated"]["reason"] == "Completed"
    assert cstatus(pod, "job")["restartCount"] == 0
    assert {c["type"]: c.get("reason") for c in pod["status"]["conditions"]}["Ready"] == "PodCompleted"


async def test_deleting_the_pod_stops_its_processes(kubelets: Any, client: ApiClient, tmp_path: Any) -> None:
    kubelet = await kubelets.start("node-d")
    name = unique("del")
    marker = tmp_path / "prestop.txt"
    c = web_container(free_port())
    c["lifecycle"] = {"preStop": {"exec": {"command": [PY, "-c", f"open({str(marker)!r}, 'w').write('bye')"]}}}
    await client.resource("v1", "Pod").create(pod_body(name, "node-d", [c]))
    pod = await wait_pod(client, name, lambda p: condition(p, "Ready") == "True")
    pid = await pid_of(pod, kubelet, "web")
    deleted = await client.resource("v1", "Pod").delete(name, "default")
    assert deleted["metadata"].get("deletionTimestamp")  # graceful: waits for the kubelet
    await wait_until(lambda: _gone(client, name), timeout=20)
    assert pid_gone(pid)
    assert marker.read_text() == "bye"
    events = {(e["reason"], e["message"]) for e in await events_for(client, name)}
    assert ("Killing", "Stopping container web") in events
    assert not any(p.get("state") == "running" for p in await kubelet.runtime.list_containers())


async def _gone(client: ApiClient, name: str) -> bool:
    return await get_pod(client, name) is None


async def test_pod_removed_from_api_while_running_is_stopped(kubelets: Any, client: ApiClient) -> None:
    kubelet = await kubelets.start("node-x")
    name = unique("force")
    c = {"name": "app", "image": "python:3", "command": [PY, "-c", "import time; time.sleep(600)"]}
    await client.resource("v1", "Pod").create(pod_body(name, "node-x", [c]))
    pod = await wait_pod(client, name, lambda p: "running" in (cstatus(p, "app").get("state") or {}))
    pid = await pid_of(pod, kubelet, "app")
    await client.resource("v1", "Pod").delete(name, "default", grace_period_seconds=0)
    assert await get_pod(client, name) is None
    await wait_until(lambda: pid_gone(pid), timeout=10)


async def test_unknown_image_without_command_waits_with_reason_and_event(kubelets: Any, client: ApiClient) -> None:
    await kubelets.start("node-u")
    name = unique("noimg")
    await client.resource("v1", "Pod").create(pod_body(name, "node-u", [{"name": "app", "image": "nginx:1.27"}]))
    pod = await wait_pod(client, name, lambda p: (cstatus(p, "app").get("state") or {}).get("waiting", {})
                         .get("reason") == "ImageEntrypointUnknown")
    assert "nginx" in cstatus(pod, "app")["state"]["waiting"]["message"]
    assert pod["status"]["phase"] == "Pending"
    events = await wait_until(lambda: _failed_events(client, name))
    assert "kubelet.images" in events[0]["message"] and events[0]["type"] == "Warning"
    assert events[0]["source"] == {"component": "kubelet", "host": "node-u"}


async def _failed_events(client: ApiClient, name: str) -> list[dict[str, Any]]:
    return [e for e in await events_for(client, name) if e["reason"] == "Failed"]


async def test_missing_configmap_is_a_create_container_config_error(kubelets: Any, client: ApiClient) -> None:
    kubelet = await kubelets.start("node-e")
    name = unique("cfg")
    code = "import os, time; print(os.environ['K'], flush=True); time.sleep(600)"
    c = {"name": "app", "image": "python:3", "command": [PY, "-c", code],
         "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "k"}}}]}
    await client.resource("v1", "Pod").create(pod_body(name, "node-e", [c]))
    pod = await wait_pod(client, name, lambda p: (cstatus(p, "app").get("state") or {}).get("waiting", {})
                         .get("reason") == "CreateContainerConfigError")
    assert "settings" in cstatus(pod, "app")["state"]["waiting"]["message"]
    await client.resource("v1", "ConfigMap").create(
        {"metadata": {"name": "settings", "namespace": "default"}, "data": {"k": "value-from-cm"}})
    pod = await wait_pod(client, name, lambda p: "running" in (cstatus(p, "app").get("state") or {}))
    await wait_until(lambda: _contains(lambda: _log_text(kubelet, pod, "app"), "value-from-cm"))


async def _log_text(kubelet: Any, pod: dict[str, Any], container: str) -> str:
    return b"".join([chunk async for chunk in kubelet.logs(pod, container, {})]).decode()


async def test_logs_return_the_container_output(kubelets: Any, client: ApiClient) -> None:
    kubelet = await kubelets.start("node-g")
    name = unique("logs")
    c = {"name": "talk", "image": "python:3",
         "command": [PY, "-c", "import sys, time; print('hello out', flush=True); "
                     "print('hello err', file=sys.stderr, flush=True); time.sleep(600)"]}
    await client.resource("v1", "Pod").create(pod_body(name, "node-g", [c]))
    pod = await wait_pod(client, name, lambda p: "running" in (cstatus(p, "talk").get("state") or {}))

    async def text() -> str:
        return b"".join([chunk async for chunk in kubelet.logs(pod, "talk", {})]).decode()
    await wait_until(lambda: _contains(text, "hello err"))
    assert (await text()).splitlines() == ["hello out", "hello err"]
    tail = b"".join([chunk async for chunk in kubelet.logs(pod, "talk", {"tailLines": 1})])
    assert tail == b"hello err\n"
    via_api = await client.request("GET", f"/api/v1/namespaces/default/pods/{name}/log")
    assert via_api == "hello out\nhello err\n"


async def _contains(text: Any, needle: str) -> bool:
    return needle in await text()


async def test_restarted_kubelet_adopts_running_containers(kubelets: Any, client: ApiClient, tmp_path: Any) -> None:
    data_dir = tmp_path / "adopt"
    k1 = await kubelets.start("node-k", data_dir=data_dir, stop_pods_on_shutdown=False)
    name = unique("adopt")
    port = free_port()
    await client.resource("v1", "Pod").create(pod_body(name, "node-k", [web_container(port)]))
    pod = await wait_pod(client, name, lambda p: condition(p, "Ready") == "True")
    pid = await pid_of(pod, k1, "web")
    container_id = cstatus(pod, "web")["containerID"]
    await kubelets.stop(k1)
    assert psutil.Process(pid).is_running()  # left running for the next kubelet

    k2 = await kubelets.start("node-k", data_dir=data_dir)
    adopted = [c for c in await k2.runtime.list_containers() if c["state"] == "running"]
    assert [(c["id"], c["pid"]) for c in adopted] == [(container_id.split("://")[1], pid)]
    # Give the new kubelet a full pass over the pod, then check nothing was restarted.
    k2.queue.add(pod["metadata"]["uid"])
    await wait_until(lambda: k2.idle)
    pod = await get_pod(client, name)
    st = cstatus(pod, "web")
    assert st["containerID"] == container_id and st["restartCount"] == 0 and st["ready"] is True
    assert await pid_of(pod, k2, "web") == pid and psutil.Process(pid).is_running()

    # The adopted container still restarts with a continuing count when it dies.
    psutil.Process(pid).kill()
    pod = await wait_pod(client, name, lambda p: cstatus(p, "web").get("restartCount") == 1
                         and "running" in cstatus(p, "web")["state"])
    assert cstatus(pod, "web")["lastState"]["terminated"]["containerID"] == container_id


async def test_stop_stops_pods_by_default(kubelets: Any, client: ApiClient) -> None:
    kubelet = await kubelets.start("node-z")
    name = unique("stop")
    c = {"name": "app", "image": "python:3", "command": [PY, "-c", "import time; time.sleep(600)"]}
    await client.resource("v1", "Pod").create(pod_body(name, "node-z", [c]))
    pod = await wait_pod(client, name, lambda p: "running" in (cstatus(p, "app").get("state") or {}))
    pid = await pid_of(pod, kubelet, "app")
    await kubelets.stop(kubelet)
    assert pid_gone(pid)


async def test_usage_reports_running_containers(kubelets: Any, client: ApiClient) -> None:
    kubelet = await kubelets.start("node-m")
    name = unique("usage")
    c = {"name": "app", "image": "python:3", "command": [PY, "-c", "import time; time.sleep(600)"]}
    await client.resource("v1", "Pod").create(pod_body(name, "node-m", [c]))
    await wait_pod(client, name, lambda p: "running" in (cstatus(p, "app").get("state") or {}))
    usage = await wait_until(lambda: kubelet.usage().get(f"default/{name}"))
    assert usage["app"]["memory_bytes"] > 1024 * 1024 and usage["app"]["cpu_cores"] >= 0
