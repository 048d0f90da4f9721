"""``kcore up`` runs a Deployment as real processes that kubectl scales, rolls out,
logs and deletes; the kubelet restarts crashed containers."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from support.kubectl import Kubectl

pytestmark = pytest.mark.slow

MARKER = "kcore-workload-marker"


def deployment(image_tag: str = "v1", replicas: int = 3) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  labels: {{app: worker}}
spec:
  replicas: {replicas}
  strategy:
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}
  selector:
    matchLabels: {{app: worker}}
  template:
    metadata:
      labels: {{app: worker}}
    spec:
      terminationGracePeriodSeconds: 3
      containers:
      - name: main
        image: python:{image_tag}
        command: ["python3", "-u", "-c",
                  "import time; print('hello from worker', flush=True); time.sleep(3600)",
                  "{MARKER}"]
        readinessProbe:
          exec: {{command: ["true"]}}
          periodSeconds: 1
"""


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def processes(marker: str = MARKER) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if marker in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def pods(kubectl: Kubectl, selector: str = "app=worker") -> list[dict[str, Any]]:
    return [p for p in json.loads(kubectl("get", "pods", "-l", selector, "-o", "json"))["items"]
            if not p["metadata"].get("deletionTimestamp")]


class RolloutWatcher:
    """Follows the worker pods with the official client's watch, in a thread."""

    def __init__(self, kubectl: Kubectl) -> None:
        import threading

        from kubernetes import client, config, watch

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubectl.kubeconfig), client_configuration=cfg)
        self.core = client.CoreV1Api(client.ApiClient(cfg))
        self.watch = watch.Watch()
        self.pods: dict[str, tuple[bool, bool]] = {}  # name -> (terminating, ready)
        self.events = 0
        self.max_total = 0
        self.min_ready = 10**9
        self.history: list[tuple[int, int]] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        listed = self.core.list_namespaced_pod("default", label_selector="app=worker")
        for pod in listed.items:
            self._record(pod)
        self.resource_version = listed.metadata.resource_version
        self._measure()

    def _record(self, pod: Any, deleted: bool = False) -> None:
        if deleted:
            self.pods.pop(pod.metadata.name, None)
            return
        ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        self.pods[pod.metadata.name] = (pod.metadata.deletion_timestamp is not None, ready)

    def _measure(self) -> None:
        live = [ready for terminating, ready in self.pods.values() if not terminating]
        self.history.append((len(live), sum(live)))
        self.max_total = max(self.max_total, len(live))
        self.min_ready = min(self.min_ready, sum(live))

    def _run(self) -> None:
        try:
            self._follow()
        except Exception:  # noqa: BLE001 - the stream ends when the cluster stops
            return

    def _follow(self) -> None:
        for event in self.watch.stream(self.core.list_namespaced_pod, "default",
                                       label_selector="app=worker",
                                       resource_version=self.resource_version, timeout_seconds=120):
            self.events += 1
            self._record(event["object"], deleted=event["type"] == "DELETED")
            self._measure()

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.watch.stop()


def test_deployment_lifecycle_with_real_processes(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=deployment())
    kubectl("rollout", "status", "deployment/worker", "--timeout=60s", timeout=90)
    wait_for(lambda: len(processes()) == 3, 30, "3 processes")

    kubectl("scale", "deployment/worker", "--replicas=5")
    kubectl("rollout", "status", "deployment/worker", "--timeout=60s", timeout=90)
    wait_for(lambda: len(processes()) == 5, 30, "5 processes")
    kubectl("scale", "deployment/worker", "--replicas=2")
    wait_for(lambda: len(processes()) == 2, 30, "2 processes")

    name = pods(kubectl)[0]["metadata"]["name"]
    assert "hello from worker" in kubectl("logs", name)
    assert "hello from worker" in kubectl("logs", "deployment/worker")

    # Watch every pod change during the rollout: never more than replicas + maxSurge
    # pods, never fewer than replicas - maxUnavailable ready ones.
    watcher = RolloutWatcher(kubectl)
    watcher.start()
    kubectl("apply", "-f", "-", input=deployment("v2", replicas=2))
    kubectl("rollout", "status", "deployment/worker", "--timeout=60s", timeout=90)
    watcher.stop()
    assert watcher.events > 0
    assert watcher.max_total <= 2 + 1, watcher.history
    assert watcher.min_ready >= 2 - 1, watcher.history
    images = {p["spec"]["containers"][0]["image"] for p in pods(kubectl)}
    assert images == {"python:v2"}
    history = kubectl("rollout", "history", "deployment/worker")
    assert "1" in history and "2" in history

    kubectl("rollout", "undo", "deployment/worker")
    kubectl("rollout", "status", "deployment/worker", "--timeout=60s", timeout=90)
    wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in pods(kubectl)} == {"python:v1"},
             30, "the previous template back")
    wait_for(lambda: len(processes()) == 2, 30, "2 processes after undo")

    kubectl("delete", "deployment", "worker")
    wait_for(lambda: not processes(), 30, "no process left")


CRASHER = """
apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  containers:
  - name: main
    image: python
    command: ["python3", "-c", "import sys; sys.exit(3)"]
"""

VICTIM = f"""
apiVersion: v1
kind: Pod
metadata:
  name: victim
spec:
  containers:
  - name: main
    image: python
    command: ["python3", "-c", "import time; time.sleep(3600)", "{MARKER}-victim"]
"""


def container_status(kubectl: Kubectl, pod: str) -> dict[str, Any]:
    obj = json.loads(kubectl("get", "pod", pod, "-o", "json"))
    statuses = obj["status"].get("containerStatuses") or [{}]
    return statuses[0]


def test_killed_container_restarts_and_crash_loop_backs_off(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=VICTIM)
    first = wait_for(lambda: processes(f"{MARKER}-victim"), 30, "the victim process")[0]
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: container_status(kubectl, "victim").get("restartCount", 0) >= 1
             and container_status(kubectl, "victim").get("state", {}).get("running"),
             40, "the victim restarted")
    second = processes(f"{MARKER}-victim")
    assert second and second[0].pid != first.pid

    kubectl("apply", "-f", "-", input=CRASHER)
    status = wait_for(lambda: (s := container_status(kubectl, "crasher"))
                      .get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" and s,
                      60, "CrashLoopBackOff")
    assert status["lastState"]["terminated"]["exitCode"] == 3
    assert status["restartCount"] >= 1
    kubectl("delete", "pod", "crasher", "victim", "--grace-period=1")
    wait_for(lambda: not processes(f"{MARKER}-victim"), 30, "victim gone")


def test_image_without_entrypoint_waits_with_a_reason(kubectl: Kubectl) -> None:
    manifest = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: mystery\nspec:\n  containers:\n"
                "  - name: main\n    image: example.com/unknown:1.0\n")
    kubectl("apply", "-f", "-", input=manifest)
    waiting = wait_for(lambda: container_status(kubectl, "mystery").get("state", {}).get("waiting", {})
                       .get("reason") == "ImageEntrypointUnknown"
                       and container_status(kubectl, "mystery")["state"]["waiting"], 30,
                       "the ImageEntrypointUnknown reason")
    assert "example.com/unknown:1.0" in waiting["message"] and "kubelet.images" in waiting["message"]
    events = json.loads(kubectl("get", "events", "--field-selector", "involvedObject.name=mystery",
                                "-o", "json"))["items"]
    assert any(e["type"] == "Warning" for e in events)
    logs = kubectl.run("logs", "mystery", check=False)
    assert logs.returncode == 1 and "Error from server (BadRequest)" in logs.stderr
    kubectl("delete", "pod", "mystery", "--grace-period=1")


TALKER = """
apiVersion: v1
kind: Pod
metadata:
  name: talker
spec:
  containers:
  - name: first
    image: python
    command: ["python3", "-u", "-c",
              "import time\\nfor i in range(5): print('line', i)\\ntime.sleep(0.5)\\nraise SystemExit(1)"]
  - name: second
    image: python
    command: ["python3", "-u", "-c",
              "import time, itertools\\nfor i in itertools.count(): print('tick', i); time.sleep(0.2)"]
"""


def test_logs_options(kubectl: Kubectl) -> None:
    import subprocess

    kubectl("apply", "-f", "-", input=TALKER)
    wait_for(lambda: (s := json.loads(kubectl("get", "pod", "talker", "-o", "json"))["status"]
                      .get("containerStatuses")) and any(c["name"] == "first" and c["restartCount"] >= 1
                                                         for c in s), 60, "first container restarted")
    # The restarted instance prints its five lines again; wait until it has.
    wait_for(lambda: kubectl("logs", "talker", "-c", "first", "--tail=2").splitlines() == ["line 3", "line 4"],
             30, "the tail of the current instance")
    stamped = kubectl("logs", "talker", "-c", "first", "--timestamps").splitlines()[0]
    stamp, text = stamped.split(" ", 1)
    assert stamp.endswith("Z") and "T" in stamp and text.startswith("line")
    previous = kubectl("logs", "talker", "-c", "first", "--previous")
    assert previous.splitlines()[:5] == [f"line {i}" for i in range(5)]
    assert "tick" in kubectl("logs", "talker", "-c", "second", "--since=10s")
    defaulted = kubectl.run("logs", "talker")
    assert 'Defaulted container "first"' in defaulted.stderr  # kubectl picks the first one

    follow = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
         "logs", "-f", "talker", "-c", "second", "--tail=1"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout is not None
        seen = [follow.stdout.readline().strip() for _ in range(4)]
        numbers = [int(line.split()[1]) for line in seen]
        assert numbers == sorted(numbers) and numbers[-1] > numbers[0]  # new lines keep arriving
    finally:
        follow.kill()
        follow.wait()
    kubectl("delete", "pod", "talker", "--grace-period=1")


def test_containers_get_the_kubernetes_service_environment(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "envs")
    manifest = ("apiVersion: v1\nkind: Pod\nmetadata: {name: env, namespace: envs}\nspec:\n"
                "  containers:\n  - name: c\n    image: x\n    command: [sleep, '600']\n"
                "    env:\n    - name: MY_NODE\n      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}\n")
    kubectl("apply", "-f", "-", input=manifest)
    wait_for(lambda: json.loads(kubectl("get", "pod", "env", "-n", "envs", "-o", "json"))["status"]
             .get("phase") == "Running", 30, "the pod running")
    env = dict(line.split("=", 1) for line in kubectl("exec", "-n", "envs", "env", "--", "env").splitlines()
               if "=" in line)
    service = json.loads(kubectl("get", "service", "kubernetes", "-n", "default", "-o", "json"))
    assert env["KUBERNETES_SERVICE_HOST"] == service["spec"]["clusterIP"]
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["HOSTNAME"] == "env"
    assert env["MY_NODE"] == "node-1"
    kubectl("delete", "namespace", "envs", "--wait=false")
