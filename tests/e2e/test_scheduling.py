"""The scheduler runs inside ``kcore up``: pods get bound, or say why not."""

from __future__ import annotations

import json
import time

from support.kubectl import Kubectl

NODE = """
apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels: {{kubernetes.io/hostname: {name}, pool: e2e}}
status:
  capacity: {{cpu: "2", memory: 4Gi, pods: "110"}}
  allocatable: {{cpu: "2", memory: 4Gi, pods: "110"}}
  conditions:
  - {{type: Ready, status: "True", reason: KubeletReady, message: ready}}
"""

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeSelector: {{pool: e2e}}
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources:
      requests: {{cpu: "{cpu}"}}
"""


def wait_for(check, timeout: float = 20.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_pods_are_bound_and_unschedulable_ones_say_why(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=NODE.format(name="sched-node-1"))
    kubectl("apply", "-f", "-", input=POD.format(name="fits", cpu="500m"))
    kubectl("apply", "-f", "-", input=POD.format(name="too-big", cpu="8"))

    def node_of(name: str) -> str:
        return kubectl("get", "pod", name, "-o", "jsonpath={.spec.nodeName}")

    assert wait_for(lambda: node_of("fits")) == "sched-node-1"

    def unschedulable() -> dict | None:
        pod = json.loads(kubectl("get", "pod", "too-big", "-o", "json"))
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition["type"] == "PodScheduled" and condition["status"] == "False":
                return condition
        return None

    condition = wait_for(unschedulable)
    assert condition["reason"] == "Unschedulable"
    # node-1 (kcore up's own kubelet) is not in the pool; sched-node-1 is too small.
    assert condition["message"].startswith("0/2 nodes are available: ")
    assert "1 Insufficient cpu" in condition["message"]
    assert "1 node(s) didn't match Pod's node affinity/selector" in condition["message"]
    events = kubectl("get", "events", "--field-selector", "involvedObject.name=too-big", "-o", "json")
    assert any(e["reason"] == "FailedScheduling" for e in json.loads(events)["items"])

    bigger = NODE.format(name="sched-node-2").replace('cpu: "2"', 'cpu: "16"')
    kubectl("apply", "-f", "-", input=bigger)
    assert wait_for(lambda: node_of("too-big")) == "sched-node-2"
