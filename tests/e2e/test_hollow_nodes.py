"""Hollow nodes (``kcore simulate``) against a real ``kcore server``.

One process runs 100 simulated kubelets with the fake runtime; the real
scheduler and controllers place and run a 300-replica Deployment on them.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cluster import RunningCluster, kcore_command, running_cluster
from support.kubectl import Kubectl

from kcore.client import ApiClient
from kcore.simulate import hollow_nodes

NODES = 100
REPLICAS = 300
GRACE_SECONDS = 6

SERVER_CONFIG = f"""
[controllers.node_lifecycle]
grace_period_seconds = {GRACE_SECONDS}
monitor_period_seconds = 1
"""

# Heartbeats well inside the server's short grace period.
SIMULATE_CONFIG = """
[kubelet]
lease_renew_interval_seconds = 1.5
"""

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hollow-web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: hollow-web}}
  template:
    metadata:
      labels: {{app: hollow-web}}
    spec:
      containers:
      - name: web
        image: nginx
        resources:
          requests: {{cpu: 100m, memory: 64Mi}}
"""


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


def ready_status(node: dict[str, Any]) -> str | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status"))
    return None


def get_json(kubectl: Kubectl, *args: str) -> list[dict[str, Any]]:
    return json.loads(kubectl("get", *args, "-o", "json", timeout=60))["items"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    with running_cluster(tmp_path_factory.mktemp("hollow"), role="server",
                         extra_config=SERVER_CONFIG) as running:
        yield running


@pytest.mark.slow
def test_hollow_nodes_run_a_deployment_and_go_unknown_when_killed(
        server: RunningCluster, tmp_path: Path) -> None:
    kubectl = Kubectl(server.kubeconfig, tmp_path / "kube-cache")
    token = (server.data_dir / "token").read_text().strip()
    config = tmp_path / "simulate.toml"
    config.write_text(SIMULATE_CONFIG)
    log_path = tmp_path / "simulate.log"
    with log_path.open("wb") as log_file:
        sim = subprocess.Popen(
            [*kcore_command(), "simulate", "--server", server.url, "--token", token,
             "--nodes", str(NODES), "--config", str(config), "--data-dir", str(tmp_path / "hollow")],
            stdout=log_file, stderr=subprocess.STDOUT, env=server.env)
    try:
        def ready_nodes() -> int:
            nodes = get_json(kubectl, "nodes")
            return sum(1 for n in nodes if n["metadata"]["name"].startswith("hollow-")
                       and ready_status(n) == "True")

        assert sim.poll() is None, log_path.read_text()
        wait_for(lambda: ready_nodes() == NODES, 30, f"{NODES} hollow nodes Ready")

        kubectl("apply", "-f", "-", input=DEPLOYMENT.format(replicas=REPLICAS))

        def running_pods() -> list[dict[str, Any]] | None:
            pods = get_json(kubectl, "pods", "-l", "app=hollow-web")
            running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
            return running if len(running) == REPLICAS else None

        pods = wait_for(running_pods, 45, f"{REPLICAS} Running pods")
        per_node = Counter(p["spec"]["nodeName"] for p in pods)
        assert all(name.startswith("hollow-") for name in per_node)
        # Least-allocated scoring spreads equal pods: 3 per node on average.
        assert len(per_node) >= NODES * 0.9, per_node
        assert max(per_node.values()) <= 6, per_node.most_common(5)
        ready = [c for p in pods for c in p["status"]["conditions"] if c["type"] == "Ready"]
        assert all(c["status"] == "True" for c in ready) and len(ready) == REPLICAS

        kubectl("scale", "deployment", "hollow-web", "--replicas=0")
        wait_for(lambda: not get_json(kubectl, "pods", "-l", "app=hollow-web"), 45,
                 "every pod gone after scaling to 0")

        sim.send_signal(signal.SIGKILL)
        sim.wait(10)

        def all_not_ready() -> bool:
            nodes = [n for n in get_json(kubectl, "nodes") if n["metadata"]["name"].startswith("hollow-")]
            return len(nodes) == NODES and all(ready_status(n) in ("Unknown", "False") for n in nodes)

        wait_for(all_not_ready, GRACE_SECONDS + 20, "every hollow node NotReady/Unknown after the kill")
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()


async def test_hollow_nodes_python_api_runs_a_pod(tmp_path: Path) -> None:
    with running_cluster(tmp_path, role="server") as server:
        token = (server.data_dir / "token").read_text().strip()
        admin = ApiClient.from_kubeconfig(server.kubeconfig)
        try:
            async with hollow_nodes(server.url, token, 3, prefix="py-hollow-", timeout=30) as nodes:
                assert nodes.names == ["py-hollow-0", "py-hollow-1", "py-hollow-2"]
                listed, _rv = await admin.resource("v1", "Node").list()
                assert {n["metadata"]["name"] for n in listed} >= set(nodes.names)
                pods = admin.resource("v1", "Pod")
                await pods.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                   "spec": {"nodeName": "py-hollow-1",
                                            "containers": [{"name": "c", "image": "busybox"}]}},
                                  namespace="default")
                deadline = time.monotonic() + 20
                while True:
                    pod = await pods.get("p", namespace="default")
                    if (pod.get("status") or {}).get("phase") == "Running":
                        break
                    assert time.monotonic() < deadline, pod.get("status")
                    await asyncio.sleep(0.1)
                # The Node authorizer let each node see only its own pods.
                assert nodes.nodes[1].kubelet._pods and not nodes.nodes[0].kubelet._pods
        finally:
            await admin.close()

