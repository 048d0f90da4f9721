"""``kubectl exec``, ``kubectl cp`` and ``kubectl logs`` through the kubelet, end to end.

A real ``kcore up`` runs the pod on its own kubelet (exec served in-process); a
``kcore server`` with a ``kcore agent`` has the API server reach the agent's
kubelet server over HTTPS.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cluster import RunningCluster, running_cluster, start_agent, stop_agent
from support.kubectl import Kubectl, kubectl_binary

SLEEPER = ["python3", "-c", "import sys, time; print('started', flush=True); time.sleep(3600)"]


def pod_manifest(name: str, workdir: Path, node: str | None = None) -> str:
    spec: dict[str, object] = {
        "containers": [{"name": "main", "image": "python", "command": SLEEPER, "workingDir": str(workdir)}],
        "terminationGracePeriodSeconds": 1,
    }
    if node:
        spec["nodeName"] = node
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def wait_running(kubectl: Kubectl, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    phase = ""
    while time.monotonic() < deadline:
        phase = kubectl.run("get", "pod", name, "-o", "jsonpath={.status.phase}", check=False).stdout
        if phase == "Running":
            return
        time.sleep(0.3)
    raise AssertionError(f"pod {name} is not running ({phase!r}):\n{kubectl('describe', 'pod', name)}")


@pytest.fixture(scope="module")
def pod(cluster: RunningCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    workdir = tmp_path_factory.mktemp("workdir")
    kubectl = Kubectl(cluster.kubeconfig, tmp_path_factory.mktemp("cache"))
    kubectl("create", "-f", "-", input=pod_manifest("exec-pod", workdir))
    wait_running(kubectl, "exec-pod")
    yield "exec-pod", workdir
    kubectl.run("delete", "pod", "exec-pod", "--wait=false", check=False)


def test_exec_runs_in_the_container_context(kubectl: Kubectl, pod: tuple[str, Path]) -> None:
    name, workdir = pod
    out = kubectl("exec", name, "--", "sh", "-c", "echo $HOSTNAME; pwd; echo err >&2")
    assert out.splitlines() == [name, str(workdir)]
    result = kubectl.run("exec", name, "-c", "main", "--", "sh", "-c", "echo err >&2")
    assert result.stderr.strip() == "err"


def test_exec_exit_code_propagates(kubectl: Kubectl, pod: tuple[str, Path]) -> None:
    result = kubectl.run("exec", pod[0], "--", "sh", "-c", "echo out; exit 3", check=False)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "out\n"
    assert "exit code 3" in result.stderr


def test_exec_stdin(kubectl: Kubectl, pod: tuple[str, Path]) -> None:
    assert kubectl("exec", "-i", pod[0], "--", "cat", input="hi\nthere\n") == "hi\nthere\n"


def test_exec_unknown_command_fails(kubectl: Kubectl, pod: tuple[str, Path]) -> None:
    result = kubectl.run("exec", pod[0], "--", "no-such-command-kcore", check=False)
    assert result.returncode != 0
    assert "executable file not found" in result.stderr


def test_exec_errors(kubectl: Kubectl, pod: tuple[str, Path]) -> None:
    result = kubectl.run("exec", "no-such-pod", "--", "true", check=False)
    assert result.returncode != 0 and 'pods "no-such-pod" not found' in result.stderr
    result = kubectl.run("exec", pod[0], "-c", "nope", "--", "true", check=False)
    assert result.returncode != 0 and "not valid" in result.stderr + result.stdout


def test_exec_tty_without_terminal(kubectl: Kubectl, pod: tuple[str, Path]) -> None:
    # kubectl drops -t without a local terminal (and says so); -i still works.
    result = kubectl.run("exec", "-it", pod[0], "--", "cat", input="typed\n")
    assert "typed" in result.stdout


def test_kubectl_cp_both_ways(kubectl: Kubectl, pod: tuple[str, Path], tmp_path: Path) -> None:
    name, workdir = pod
    local = tmp_path / "local.txt"
    local.write_text("copied by kubectl cp\n")
    kubectl("cp", str(local), f"{name}:{workdir}/in-pod.txt")
    assert (workdir / "in-pod.txt").read_text() == "copied by kubectl cp\n"
    back = tmp_path / "back.txt"
    kubectl("cp", f"{name}:{workdir}/in-pod.txt", str(back))
    assert back.read_text() == "copied by kubectl cp\n"


def test_exec_rbac_needs_create_on_pods_exec(kubectl: Kubectl, pod: tuple[str, Path]) -> None:
    # A read-only service account (view) may not exec, with Kubernetes' message.
    kubectl("create", "serviceaccount", "viewer")
    kubectl("create", "rolebinding", "viewer", "--clusterrole=view", "--serviceaccount=default:viewer")
    result = kubectl.run("exec", pod[0], "--as=system:serviceaccount:default:viewer", "--", "true",
                         check=False)
    assert result.returncode != 0
    assert 'cannot create resource "pods/exec"' in result.stderr


# -- a pod on an agent node: through the kubelet server --------------------------------------


def test_logs_and_exec_on_an_agent_node(tmp_path: Path) -> None:
    with running_cluster(tmp_path, role="server") as server:
        agent = start_agent(tmp_path, server, "node-x", '[kubelet]\nport = 0\n')
        try:
            kubectl = Kubectl(server.kubeconfig, tmp_path / "cache")
            workdir = tmp_path / "agent-work"
            workdir.mkdir()
            kubectl("create", "-f", "-", input=pod_manifest("remote", workdir, node="node-x"))
            wait_running(kubectl, "remote")
            port = kubectl("get", "node", "node-x", "-o",
                           "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}")
            assert int(port) > 0
            deadline = time.monotonic() + 20
            while "started" not in (logs := kubectl.run("logs", "remote", check=False).stdout):
                assert time.monotonic() < deadline, logs
                time.sleep(0.3)
            out = kubectl("exec", "remote", "--", "sh", "-c", "echo $HOSTNAME; pwd")
            assert out.splitlines() == ["remote", str(workdir)]
            assert kubectl("exec", "-i", "remote", "--", "cat", input="via agent\n") == "via agent\n"
            result = kubectl.run("exec", "remote", "--", "sh", "-c", "exit 5", check=False)
            assert result.returncode == 5, result.stderr
        finally:
            stop_agent(agent)


def test_exec_interactive_tty(kubectl: Kubectl, pod: tuple[str, Path]) -> None:
    # script(1) gives kubectl a real terminal, so -it really asks for a TTY.
    command = " ".join(shlex.quote(a) for a in [
        kubectl_binary(), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
        "exec", "-it", pod[0], "--", "sh", "-c",
        "test -t 0 && echo IS-A-TTY; read line; echo got-$line; exit 4"])
    result = subprocess.run(["script", "-qec", command, "/dev/null"], input="hello\n", text=True,
                            capture_output=True, timeout=60)
    assert "IS-A-TTY" in result.stdout, result
    assert "got-hello" in result.stdout, result
    assert result.returncode == 4, result
