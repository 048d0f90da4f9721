"""``kubectl port-forward`` and the Python client's port-forward, end to end.

A real ``kcore up`` runs a pod serving files with ``python3 -m http.server``;
the real kubectl forwards a local port to it (SPDY tunnelled in WebSocket, its
default, and plain SPDY, its fallback), to a service in front of it, and the
official ``kubernetes`` client forwards over WebSocket channels. A pod on a
``kcore agent`` node is reached through that node's kubelet server.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward
from support.cluster import RunningCluster, free_port, running_cluster, start_agent, stop_agent
from support.kubectl import Kubectl, StreamingKubectl, kubectl_binary

BIG_SIZE = 5 * 1024 * 1024


@dataclass
class WebPod:
    name: str
    port: int
    root: Path


def web_pod_manifest(name: str, port: int, root: Path, node: str | None = None) -> str:
    spec: dict[str, object] = {
        "containers": [{
            "name": "main", "image": "python",
            "command": ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
            "ports": [{"name": "http", "containerPort": port}],
        }],
        "terminationGracePeriodSeconds": 1,
    }
    if node:
        spec["nodeName"] = node
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "labels": {"app": name}}, "spec": spec})


def serve_files(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hello.txt").write_text("hello from the pod\n")
    (root / "big.bin").write_bytes(os.urandom(BIG_SIZE))


def wait_serving(kubectl: Kubectl, pod: WebPod, timeout: float = 60) -> None:
    """Running, and the HTTP server answers (it binds a moment after the container starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = kubectl.run("get", "pod", pod.name, "-o", "jsonpath={.status.phase}", check=False).stdout
        if phase == "Running":
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"pod {pod.name} is not running:\n{kubectl('describe', 'pod', pod.name)}")
    while time.monotonic() < deadline:
        out = kubectl.run("exec", pod.name, "--", "python3", "-c",
                          f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{pod.port}/')",
                          check=False)
        if out.returncode == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"the HTTP server of pod {pod.name} does not answer")


@contextmanager
def port_forward(kubectl: Kubectl, *args: str,
                 env: dict[str, str] | None = None) -> Iterator[tuple[int, StreamingKubectl]]:
    """``kubectl port-forward ARGS`` in the background; yields the local port it listens on."""
    command = [kubectl_binary(), "--kubeconfig", str(kubectl.kubeconfig), "--cache-dir", str(kubectl.cache_dir),
               "port-forward", "--address", "127.0.0.1", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                               env=dict(os.environ, **(env or {})))
    with StreamingKubectl(process) as running:
        line = running.wait_for(lambda l: l.startswith("Forwarding from 127.0.0.1:"), timeout=30)
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) ->", line)
        assert match, line
        yield int(match.group(1)), running


def http_get(local: int, path: str, timeout: float = 30) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{local}{path}", timeout=timeout) as response:
        return response.read()


@pytest.fixture(scope="module")
def web(cluster: RunningCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebPod]:
    root = tmp_path_factory.mktemp("www")
    serve_files(root)
    kubectl = Kubectl(cluster.kubeconfig, tmp_path_factory.mktemp("cache"))
    pod = WebPod("pf-web", free_port(), root)
    kubectl("create", "-f", "-", input=web_pod_manifest(pod.name, pod.port, root))
    kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": pod.name},
        "spec": {"selector": {"app": pod.name}, "ports": [{"port": 80, "targetPort": "http"}]},
    }))
    wait_serving(kubectl, pod)
    yield pod
    kubectl.run("delete", "pod", pod.name, "--wait=false", check=False)


def test_port_forward_to_a_pod(kubectl: Kubectl, web: WebPod) -> None:
    with port_forward(kubectl, f"pod/{web.name}", f":{web.port}") as (local, running):
        assert http_get(local, "/hello.txt") == b"hello from the pod\n"
        assert http_get(local, "/hello.txt") == b"hello from the pod\n"  # a second connection
        running.wait_for(lambda l: "Handling connection" in l)


def test_port_forward_concurrent_connections(kubectl: Kubectl, web: WebPod) -> None:
    with port_forward(kubectl, web.name, f":{web.port}") as (local, _):
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: http_get(local, "/hello.txt"), range(16)))
        assert answers == [b"hello from the pod\n"] * 16


def test_port_forward_large_transfer_arrives_intact(kubectl: Kubectl, web: WebPod) -> None:
    expected = hashlib.sha256((web.root / "big.bin").read_bytes()).hexdigest()
    with port_forward(kubectl, f"pod/{web.name}", f":{web.port}") as (local, _):
        with ThreadPoolExecutor(2) as pool:
            bodies = list(pool.map(lambda _: http_get(local, "/big.bin", timeout=60), range(2)))
    for body in bodies:
        assert len(body) == BIG_SIZE
        assert hashlib.sha256(body).hexdigest() == expected


def test_port_forward_over_plain_spdy(kubectl: Kubectl, web: WebPod) -> None:
    """kubectl's fallback when WebSockets are off: ``POST`` with ``Upgrade: SPDY/3.1``."""
    env = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
    expected = (web.root / "big.bin").read_bytes()
    with port_forward(kubectl, f"pod/{web.name}", f":{web.port}", "-v=6", env=env) as (local, running):
        assert http_get(local, "/hello.txt") == b"hello from the pod\n"
        assert http_get(local, "/big.bin", timeout=60) == expected
    upgrades = [line for line in running.lines if "/portforward" in line]
    assert upgrades and "POST" in upgrades[0] and "101 Switching Protocols" in upgrades[0], running.lines


def test_port_forward_to_a_service(kubectl: Kubectl, web: WebPod) -> None:
    # kubectl resolves service port 80 -> targetPort "http" -> the pod's containerPort.
    with port_forward(kubectl, f"svc/{web.name}", ":80") as (local, running):
        assert http_get(local, "/hello.txt") == b"hello from the pod\n"
    assert any(f"-> {web.port}" in line for line in running.lines), running.lines


def test_port_forward_to_a_port_nobody_listens_on(kubectl: Kubectl, web: WebPod) -> None:
    closed = free_port()
    with port_forward(kubectl, f"pod/{web.name}", f":{closed}") as (local, running):
        with socket.create_connection(("127.0.0.1", local), timeout=20) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert sock.recv(1024) == b""  # closed, not left hanging
        line = running.wait_for(lambda l: "error forwarding port" in l, timeout=20)
        assert f"failed to connect to localhost:{closed}" in line
        assert web.name in line
        # kubectl gives up on the pod after an error stream message: it exits, it does not hang.
        running.wait_for(lambda l: "lost connection to pod" in l, timeout=20)
        assert running.process.wait(timeout=20) != 0


def test_port_forward_needs_create_on_pods_portforward(kubectl: Kubectl, web: WebPod) -> None:
    kubectl("create", "serviceaccount", "pf-viewer")
    kubectl("create", "rolebinding", "pf-viewer", "--clusterrole=view", "--serviceaccount=default:pf-viewer")
    result = kubectl.run("port-forward", f"pod/{web.name}", f":{web.port}",
                         "--as=system:serviceaccount:default:pf-viewer", check=False, timeout=30)
    assert result.returncode != 0
    assert 'cannot create resource "pods/portforward"' in result.stderr


# -- the official Python client (WebSocket channels) -------------------------------------------


def core_api(cluster: RunningCluster) -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(k8s_config.new_client_from_config(str(cluster.kubeconfig)))


def python_client_get(api: k8s_client.CoreV1Api, pod: str, port: int, path: str) -> bytes:
    forward = portforward(api.connect_get_namespaced_pod_portforward, pod, "default", ports=str(port))
    sock = forward.socket(port)
    sock.setblocking(True)
    sock.settimeout(30)
    sock.sendall(f"GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n".encode())
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    assert forward.error(port) is None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    return body


def test_python_client_port_forward(cluster: RunningCluster, web: WebPod) -> None:
    api = core_api(cluster)
    assert python_client_get(api, web.name, web.port, "/hello.txt") == b"hello from the pod\n"
    assert python_client_get(api, web.name, web.port, "/big.bin") == (web.root / "big.bin").read_bytes()


def test_python_client_port_forward_errors(cluster: RunningCluster, web: WebPod, kubectl: Kubectl) -> None:
    api = core_api(cluster)
    closed = free_port()
    forward = portforward(api.connect_get_namespaced_pod_portforward, web.name, "default", ports=str(closed))
    sock = forward.socket(closed)
    sock.setblocking(True)
    sock.settimeout(20)
    assert sock.recv(1024) == b""
    deadline = time.monotonic() + 10
    while forward.error(closed) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"failed to connect to localhost:{closed}" in (forward.error(closed) or "")
    # A pod that is not running is refused before any upgrade, with the reason.
    kubectl("run", "pf-done", "--image=python", "--restart=Never", "--command", "--", "true")
    deadline = time.monotonic() + 60
    while kubectl("get", "pod", "pf-done", "-o", "jsonpath={.status.phase}") != "Succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    with pytest.raises(ApiException) as info:
        portforward(api.connect_get_namespaced_pod_portforward, "pf-done", "default", ports="80")
    assert "pod is not running" in str(info.value)


# -- a pod on an agent node: through the kubelet server ----------------------------------------


@pytest.mark.slow
def test_port_forward_on_an_agent_node(tmp_path: Path) -> None:
    root = tmp_path / "www"
    serve_files(root)
    with running_cluster(tmp_path, role="server") as server:
        agent = start_agent(tmp_path, server, "node-x", '[kubelet]\nport = 0\n')
        try:
            kubectl = Kubectl(server.kubeconfig, tmp_path / "cache")
            pod = WebPod("remote-web", free_port(), root)
            kubectl("create", "-f", "-", input=web_pod_manifest(pod.name, pod.port, root, node="node-x"))
            wait_serving(kubectl, pod)
            expected = (root / "big.bin").read_bytes()
            with port_forward(kubectl, f"pod/{pod.name}", f":{pod.port}") as (local, _):
                assert http_get(local, "/hello.txt") == b"hello from the pod\n"
                assert http_get(local, "/big.bin", timeout=60) == expected
            with port_forward(kubectl, f"pod/{pod.name}", f":{pod.port}",
                              env={"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}) as (local, _):
                assert http_get(local, "/hello.txt") == b"hello from the pod\n"
            closed = free_port()
            with port_forward(kubectl, f"pod/{pod.name}", f":{closed}") as (local, running):
                with socket.create_connection(("127.0.0.1", local), timeout=20) as sock:
                    assert sock.recv(1024) == b""
                running.wait_for(lambda l: f"failed to connect to localhost:{closed}" in l, timeout=20)
            api = core_api(server)
            assert python_client_get(api, pod.name, pod.port, "/hello.txt") == b"hello from the pod\n"
        finally:
            stop_agent(agent)
