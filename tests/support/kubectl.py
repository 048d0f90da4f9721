"""Run the real kubectl against a test cluster with a fresh discovery cache."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


def kubectl_binary() -> str:
    """The kubectl on PATH (scripts/system-packages.sh installs one when missing)."""
    found = shutil.which("kubectl")
    if found is None:
        venv_copy = Path(sys.prefix) / "bin" / "kubectl"
        found = str(venv_copy) if venv_copy.exists() else None
    if found is None:
        raise RuntimeError("kubectl is not installed: run scripts/system-packages.sh as root")
    return found


@dataclass
class Kubectl:
    kubeconfig: Path
    cache_dir: Path

    def run(self, *args: str, input: str | None = None, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [kubectl_binary(), "--kubeconfig", str(self.kubeconfig),
                   "--cache-dir", str(self.cache_dir), *args]
        result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def __call__(self, *args: str, **kw: object) -> str:
        return self.run(*args, **kw).stdout  # type: ignore[arg-type]
