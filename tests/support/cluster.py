"""Start a real ``kcore up`` (or ``kcore server``) process for end-to-end tests.

The process listens on 127.0.0.1 on a free port with its own data directory;
tests talk to it with the admin kubeconfig it writes, exactly as a user would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningCluster:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig.yaml"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def kcore_command() -> list[str]:
    return [sys.executable, "-m", "kcore.cli"]


@contextmanager
def running_cluster(tmp_path: Path, *, role: str = "up", extra_config: str = "",
                    node_name: str = "node-1", timeout: float = 30.0) -> Iterator[RunningCluster]:
    """A ``kcore up`` process; stopped with SIGTERM (then SIGKILL) at exit."""
    port = free_port()
    data_dir = tmp_path / "data"
    config = tmp_path / "kcore.toml"
    config.write_text(f'[apiserver]\nbind_address = "127.0.0.1"\nport = {port}\n{extra_config}\n')
    log_path = tmp_path / "kcore.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [*kcore_command(), role, "--data-dir", str(data_dir), "--config", str(config),
             "--node-name", node_name],
            stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    cluster = RunningCluster(data_dir, port, process, log_path, env)
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
                extra_config: str = "") -> RunningAgent:
    """``kcore agent`` joining ``cluster`` with its join token, in its own data dir."""
    data_dir = tmp_path / f"agent-{node_name}"
    config = tmp_path / f"agent-{node_name}.toml"
    config.write_text(extra_config + "\n")
    log_path = tmp_path / f"agent-{node_name}.log"
    token = (cluster.data_dir / "token").read_text().strip()
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [*kcore_command(), "agent", "--server", cluster.url, "--token", token,
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
