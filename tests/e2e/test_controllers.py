"""The controller manager runs inside ``kcore up``: workloads, garbage collection, namespaces."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from support.kubectl import Kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {namespace}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: nginx:1.14.2
        command: ["sleep", "3600"]
"""


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def items(kubectl: Kubectl, *args: str) -> list[dict[str, Any]]:
    return json.loads(kubectl("get", *args, "-o", "json"))["items"]


def test_deployment_creates_replicaset_and_pods_and_delete_collects_them(kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", input=DEPLOYMENT.format(name="web", namespace="default"))
    sets = wait_for(lambda: items(kubectl, "replicasets", "-l", "app=web"))
    assert len(sets) == 1 and sets[0]["metadata"]["name"].startswith("web-")
    owner = sets[0]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Deployment" and owner["name"] == "web" and owner["controller"]
    pods = wait_for(lambda: (p := items(kubectl, "pods", "-l", "app=web")) and len(p) == 3 and p)
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)

    kubectl("scale", "deployment", "web", "--replicas=1")
    wait_for(lambda: len(items(kubectl, "pods", "-l", "app=web")) == 1)

    kubectl("delete", "deployment", "web")
    wait_for(lambda: not items(kubectl, "replicasets", "-l", "app=web"))
    wait_for(lambda: not items(kubectl, "pods", "-l", "app=web"))


def test_namespace_deletion_removes_everything_in_it(kubectl: Kubectl) -> None:
    kubectl("create", "namespace", "doomed")
    kubectl("apply", "-f", "-", input=DEPLOYMENT.format(name="app", namespace="doomed"))
    kubectl("create", "configmap", "settings", "-n", "doomed", "--from-literal=a=b")
    wait_for(lambda: len(items(kubectl, "pods", "-n", "doomed")) == 3)
    kubectl("delete", "namespace", "doomed", "--wait=true", timeout=60)
    assert kubectl.run("get", "namespace", "doomed", check=False).returncode == 1
    assert items(kubectl, "configmaps", "-n", "doomed") == []
    assert items(kubectl, "pods", "-n", "doomed") == []
