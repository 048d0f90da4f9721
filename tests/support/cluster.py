"""Start a real ``kcore up`` (or ``kcore server``) process for end-to-end tests.

The process listens on 127.0.0.1 on a free port with its own data directory;
tests talk to it with the admin kubeconfig it writes, exactly as a user would.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def netns_config(extra_config: str = "", **sections: dict[str, Any]) -> str:
    """TOML for a cluster inside test namespaces: kcore's own defaults (pod network,
    10.96.0.0/12 Services, DNS on port 53) under ``extra_config``."""
    return tomli_w.dumps(_merge(sections, tomllib.loads(extra_config)))


def host_safe_config(extra_config: str = "", **sections: dict[str, Any]) -> str:
    """TOML for a test cluster on the host: pods on the host network (no bridge, no
    namespaces: tests change no host networking), and Services on a loopback range of
    their own (127.N.0.0/16, which needs no interface), under ``extra_config``."""
    defaults: dict[str, Any] = {
        "network": {"plugin": "none", "service_cidr": f"127.{random.randint(100, 250)}.0.0/16"},
        "dns": {"port": free_port()},  # not 53: clusters in one run must not collide
    }
    merged = _merge(_merge(defaults, sections), tomllib.loads(extra_config))
    return tomli_w.dumps(merged)


@dataclass
class RunningCluster:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"
    netns: str | None = None

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def in_netns(netns: str | None) -> list[str]:
    """The command prefix that runs a program inside ``netns`` (none for the host).

    ``nsenter --net`` rather than ``ip netns exec``: kcore keeps the host's mount
    namespace, as it would on a real node, so the pod namespaces it mounts under
    /run/netns outlive it (a restarted kcore finds its pods' namespaces)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--"] if netns else []


def kcore_command() -> list[str]:
    return [sys.executable, "-m", "kcore.cli"]


@contextmanager
def running_cluster(tmp_path: Path, *, role: str = "up", extra_config: str = "",
                    node_name: str = "node-1", timeout: float = 30.0, netns: str | None = None,
                    bind_address: str = "127.0.0.1") -> Iterator[RunningCluster]:
    """A ``kcore up`` process; stopped with SIGTERM (then SIGKILL) at exit.

    With ``netns`` it runs inside that (test-made) network namespace with kcore's
    real networking defaults; otherwise on the host with ``host_safe_config``.
    """
    port = free_port()
    data_dir = tmp_path / "data"
    config = tmp_path / "kcore.toml"
    make_config = netns_config if netns else host_safe_config
    config.write_text(make_config(extra_config, apiserver={"bind_address": bind_address, "port": port}))
    log_path = tmp_path / "kcore.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*in_netns(netns), *kcore_command(), role, "--data-dir", str(data_dir), "--config", str(config),
             "--node-name", node_name],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    cluster = RunningCluster(data_dir, port, process, log_path, env, address=bind_address, netns=netns)
    try:
        deadline = time.monotonic() + timeout
        while not cluster.kubeconfig.exists():
            if process.poll() is not None:
                raise RuntimeError(f"kcore exited with {process.returncode}:\n{cluster.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"kcore did not write a kubeconfig in {timeout}s:\n{cluster.log()}")
            time.sleep(0.05)
        yield cluster
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class RunningAgent:
    node_name: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the agent process only (its containers live in their own sessions)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_agent(tmp_path: Path, cluster: RunningCluster, node_name: str,
                extra_config: str = "", netns: str | None = None) -> RunningAgent:
    """``kcore agent`` joining ``cluster`` with its join token, in its own data dir
    (inside ``netns`` with kcore's real networking defaults, if given)."""
    data_dir = tmp_path / f"agent-{node_name}"
    config = tmp_path / f"agent-{node_name}.toml"
    config.write_text(netns_config(extra_config) if netns else host_safe_config(extra_config))
    log_path = tmp_path / f"agent-{node_name}.log"
    token = (cluster.data_dir / "token").read_text().strip()
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [*in_netns(netns), *kcore_command(), "agent", "--server", cluster.url, "--token", token,
             "--node-name", node_name, "--data-dir", str(data_dir), "--config", str(config)],
            stdout=log_file, stderr=subprocess.STDOUT, env=cluster.env,
        )
    return RunningAgent(node_name, data_dir, process, log_path)


def stop_agent(agent: RunningAgent) -> None:
    if agent.process.poll() is None:
        agent.process.send_signal(signal.SIGTERM)
        try:
            agent.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.process.kill()
            agent.process.wait()
