"""Does this kernel have IPVS? Checked without changing anything.

``/proc/net/ip_vs`` exists once the ``ip_vs`` module is loaded (or built in).
Otherwise ``modprobe -n -q ip_vs`` (a dry run: it loads nothing) says whether
the module could be loaded. Both probes are injectable for tests.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC_IP_VS = Path("/proc/net/ip_vs")


@dataclass(frozen=True, slots=True)
class IpvsSupport:
    """Whether kernel IPVS can be used here, and the evidence for it."""

    available: bool
    reason: str


def _modprobe_dry_run() -> bool | None:
    """True/False from ``modprobe -n -q ip_vs``; None when there is no modprobe."""
    modprobe = shutil.which("modprobe") or next(
        (p for p in ("/sbin/modprobe", "/usr/sbin/modprobe") if Path(p).exists()), None
    )
    if modprobe is None:
        return None
    try:
        done = subprocess.run([modprobe, "-n", "-q", "ip_vs"], capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.returncode == 0


def detect_ipvs(
    proc_path: Path = PROC_IP_VS,
    modprobe: Callable[[], bool | None] = _modprobe_dry_run,
) -> IpvsSupport:
    """Look for kernel IPVS: loaded (``/proc/net/ip_vs``) or loadable (modprobe -n)."""
    if proc_path.exists():
        return IpvsSupport(True, f"{proc_path} exists")
    loadable = modprobe()
    if loadable:
        return IpvsSupport(True, "the ip_vs module can be loaded (modprobe -n ip_vs)")
    if loadable is None:
        return IpvsSupport(False, f"{proc_path} is missing and modprobe is not installed")
    return IpvsSupport(False, f"{proc_path} is missing and modprobe cannot find ip_vs")
