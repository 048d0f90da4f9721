"""``kcore up`` run by an ordinary user: pods share the host network, Services get
ClusterIPs from 127.96.0.0/16 (bindable on loopback without privilege) and the
userspace proxy serves them, the cluster DNS answers on a loopback address and a
high port; kcore says all of this at start-up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster import free_port, kcore_command
from support.kubectl import Kubectl
from support.pods import HELLO_SERVER
from support.netlab import wait_until

NOBODY = 65534
pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                                   reason="needs root to become an ordinary user (setpriv)")]

@pytest.fixture
def home() -> Iterator[Path]:
    """A home for the ordinary user (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="kcore-user-"))
    os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_an_ordinary_user_gets_loopback_services_and_dns(tmp_path: Path, home: Path) -> None:
    # The checkout must be readable by the ordinary user (not so under a 0700 mktemp -d).
    probe = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
                            *kcore_command(), "version"], capture_output=True, text=True, cwd=home)
    if probe.returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot run kcore from this checkout: {probe.stderr.strip()[-200:]}")
    port, app_port = free_port(), free_port()
    config = home / "kcore.toml"
    config.write_text(f'[apiserver]\nbind_address = "127.0.0.1"\nport = {port}\n'
                      "[kubelet]\nprobe_period_scale = 0.2\n")
    log_path = tmp_path / "kcore.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
             *kcore_command(), "up", "--data-dir", str(home / "data"), "--config", str(config)],
            stdout=log_file, stderr=subprocess.STDOUT, cwd=home, start_new_session=True,
            env={**os.environ, "HOME": str(home), "PYTHONUNBUFFERED": "1"})
    try:
        kubeconfig = home / "data" / "kubeconfig.yaml"
        wait_until(kubeconfig.exists, timeout=30, what=f"the kubeconfig; log:\n{log_path.read_text()}")
        kubectl = Kubectl(kubeconfig, tmp_path / "cache")
        for said in ("not root: Services get ClusterIPs from a loopback range",
                     "pod network namespaces need root",
                     "cluster DNS on a loopback address and a high port"):
            wait_until(lambda said=said: said in log_path.read_text(), timeout=20, what=f"kcore to say {said!r}")
        assert json.loads(kubectl("get", "svc", "kubernetes", "-o", "json"))["spec"]["clusterIP"] == "127.96.0.1"
        kubectl.run("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hello", "labels": {"app": "hello"}},
            "spec": {"containers": [{"name": "web", "image": "python:3",
                                     "command": ["python3", "-c", HELLO_SERVER, str(app_port), "127.0.0.1"],
                                     "ports": [{"containerPort": app_port}],
                                     "readinessProbe": {"tcpSocket": {"port": app_port}, "periodSeconds": 1}}]}}))
        kubectl.run("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"},
            "spec": {"selector": {"app": "hello"}, "ports": [{"port": 8080, "targetPort": app_port}]}}))
        cluster_ip = json.loads(kubectl("get", "svc", "hello", "-o", "json"))["spec"]["clusterIP"]
        assert cluster_ip.startswith("127.96.")

        def answered() -> str | None:
            try:
                with urllib.request.urlopen(f"http://{cluster_ip}:8080/", timeout=2) as response:
                    return response.read().decode()
            except OSError:
                return None
        assert wait_until(answered, timeout=40, what="the Service through the userspace proxy") == "hello"
        dig = subprocess.run(["dig", "+short", "@127.96.0.10", "-p", "10053", "hello.default.svc.cluster.local"],
                             capture_output=True, text=True, timeout=10)
        assert dig.stdout.split() == [cluster_ip], dig
        pod = json.loads(kubectl("get", "pod", "hello", "-o", "json"))
        assert pod["status"]["podIP"] == "127.0.0.1"  # the host network
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        time.sleep(0.1)
