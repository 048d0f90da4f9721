"""Two agents; one is killed: its pods come back on the other, and when it returns
its old processes are removed. Real processes, real ``kcore server`` and agents."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from support.cluster import RunningCluster, running_cluster, start_agent, stop_agent
from support.kubectl import Kubectl

pytestmark = pytest.mark.slow

MARKER = "kcore-failover-marker"

SERVER_CONFIG = """
[controllers.node_lifecycle]
grace_period_seconds = 4
default_toleration_seconds = 2
monitor_period_seconds = 1
eviction_rate_per_second = 10
"""

AGENT_CONFIG = """
[kubelet]
runtime = "process"
lease_renew_interval_seconds = 1
status_update_interval_seconds = 5
"""

DEPLOYMENT = f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sleeper
spec:
  replicas: 4
  selector:
    matchLabels: {{app: sleeper}}
  template:
    metadata:
      labels: {{app: sleeper}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: python
        command: ["python3", "-c", "import time; time.sleep(3600)", "{MARKER}"]
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


def marker_processes(under: Path | None = None) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if MARKER in (proc.info["cmdline"] or []):
                if under is None or str(under) in proc.cwd():
                    found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[RunningCluster]:
    with running_cluster(tmp_path, role="server", extra_config=SERVER_CONFIG) as running:
        yield running


def test_pods_of_a_dead_node_come_back_elsewhere(cluster: RunningCluster, tmp_path: Path) -> None:
    kubectl = Kubectl(cluster.kubeconfig, tmp_path / "cache")
    agent_a = start_agent(tmp_path, cluster, "node-a", AGENT_CONFIG)
    agent_b = start_agent(tmp_path, cluster, "node-b", AGENT_CONFIG)
    try:
        def ready_nodes() -> set[str]:
            nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
            return {n["metadata"]["name"] for n in nodes
                    if any(c["type"] == "Ready" and c["status"] == "True"
                           for c in n["status"].get("conditions", []))}

        wait_for(lambda: ready_nodes() == {"node-a", "node-b"}, 30, "both nodes Ready")
        kubectl("apply", "-f", "-", input=DEPLOYMENT)

        def running_pods() -> list[dict[str, Any]]:
            pods = json.loads(kubectl("get", "pods", "-l", "app=sleeper", "-o", "json"))["items"]
            return [p for p in pods if p["status"].get("phase") == "Running"
                    and not p["metadata"].get("deletionTimestamp")]

        wait_for(lambda: len(running_pods()) == 4, 60, "4 running pods")
        on_a = [p["metadata"]["name"] for p in running_pods() if p["spec"]["nodeName"] == "node-a"]
        assert on_a, "the scheduler spreads pods over both nodes"
        assert len(marker_processes(agent_a.data_dir)) == len(on_a)

        agent_a.kill()  # the node dies; its containers keep running, orphaned from the API
        wait_for(lambda: (p := running_pods()) and len(p) == 4
                 and all(x["spec"]["nodeName"] == "node-b" for x in p),
                 90, "all 4 pods running on node-b")
        node_a = json.loads(kubectl("get", "node", "node-a", "-o", "json"))
        taints = {t["key"] for t in node_a["spec"].get("taints", [])}
        assert "node.kubernetes.io/unreachable" in taints

        agent_a = start_agent(tmp_path, cluster, "node-a", AGENT_CONFIG)  # it comes back
        wait_for(lambda: not marker_processes(agent_a.data_dir), 60,
                 "node-a's old pod processes to be stopped")
        assert all(p["spec"]["nodeName"] == "node-b" for p in running_pods())
        assert len(running_pods()) == 4

        kubectl("delete", "deployment", "sleeper")
        wait_for(lambda: not marker_processes(), 60, "every pod process to end")
    finally:
        stop_agent(agent_a)
        stop_agent(agent_b)
        for proc in marker_processes():
            proc.kill()
