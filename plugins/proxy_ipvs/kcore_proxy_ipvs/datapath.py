"""Data paths: what turns a ``TableDiff`` into forwarding.

A ``DataPath`` gets every table change through ``apply(diff)``. Three exist:

``IpvsadmDataPath``   renders the ``ipvsadm`` commands for a diff and hands
                      them to a runner (by default ``subprocess.run``): the
                      kernel then forwards. Used only where the kernel has
                      IPVS, ``ipvsadm`` is installed and kcore runs as root.
``UserspaceDataPath`` keeps the table with one live scheduler per virtual
                      service and answers ``choose(...)``: which real server a
                      new connection goes to, and counts connections
                      (``opened``/``closed``) for the schedulers that read
                      them. It moves no bytes itself: ``forwarder.py`` runs
                      kcore's userspace sockets with it as their chooser.
``RecordingDataPath`` remembers every diff, for tests.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from kcore_proxy_ipvs.schedulers import RealServer, Scheduler, make_scheduler
from kcore_proxy_ipvs.table import (
    RealServerSpec,
    TableDiff,
    VirtualService,
    VirtualServiceKey,
)


class DataPath(Protocol):
    """Something that makes forwarding match a virtual-service table."""

    name: str

    def apply(self, diff: TableDiff) -> None:
        """Carry out one diff; the diff's ``table`` is the complete new table."""
        ...


class RecordingDataPath:
    """Keeps every diff it is given, and the table they add up to."""

    name = "recording"

    def __init__(self) -> None:
        self.diffs: list[TableDiff] = []
        self.table: dict[VirtualServiceKey, VirtualService] = {}

    def apply(self, diff: TableDiff) -> None:
        self.diffs.append(diff)
        self.table = dict(diff.table)


# ---------------------------------------------------------------------------
# ipvsadm
# ---------------------------------------------------------------------------

_PROTO_FLAG = {"TCP": "-t", "UDP": "-u", "SCTP": "--sctp-service"}


def _service_args(key: VirtualServiceKey) -> list[str]:
    return [_PROTO_FLAG[key.protocol], key.endpoint]


def _service_opts(vs: VirtualService) -> list[str]:
    opts = ["-s", vs.scheduler]
    if vs.persistence_seconds:
        opts += ["-p", str(vs.persistence_seconds)]
    return opts


def _server_args(key: VirtualServiceKey, rs: RealServerSpec) -> list[str]:
    return [*_service_args(key), "-r", rs.endpoint]


def ipvsadm_commands(diff: TableDiff, binary: str = "ipvsadm") -> list[list[str]]:
    """The ``ipvsadm`` invocations that carry out ``diff``, in a safe order.

    Removals first (servers, then services), then new and changed services,
    then new and reweighted servers; every real server is masqueraded (``-m``).
    """
    cmds: list[list[str]] = []
    for change in diff.removed_servers:
        cmds.append([binary, "-d", *_server_args(change.service, change.server)])
    for vs in diff.removed_services:
        cmds.append([binary, "-D", *_service_args(vs.key)])
    for vs in diff.added_services:
        cmds.append([binary, "-A", *_service_args(vs.key), *_service_opts(vs)])
        for rs in vs.real_servers:
            cmds.append([binary, "-a", *_server_args(vs.key, rs), "-m", "-w", str(rs.weight)])
    for vs in diff.updated_services:
        cmds.append([binary, "-E", *_service_args(vs.key), *_service_opts(vs)])
    for change in diff.added_servers:
        cmds.append([binary, "-a", *_server_args(change.service, change.server), "-m", "-w",
                     str(change.server.weight)])
    for change in diff.updated_servers:
        cmds.append([binary, "-e", *_server_args(change.service, change.server), "-m", "-w",
                     str(change.server.weight)])
    return cmds


def render_commands(cmds: Sequence[Sequence[str]]) -> str:
    """Commands as shell lines, one a line."""
    return "".join(shlex.join(cmd) + "\n" for cmd in cmds)


def _run(cmd: Sequence[str]) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True, text=True, timeout=30)


class IpvsadmDataPath:
    """Programs the kernel's IPVS table with ``ipvsadm`` (needs root and ip_vs).

    ``runner`` executes one command; tests pass a recorder so nothing runs.
    kube-proxy also binds every virtual address to a dummy ``kube-ipvs0``
    interface and adds iptables masquerade rules; that is left to the lead's
    wiring of this mode into a node (see docs/proxy.md).
    """

    name = "ipvsadm"

    def __init__(self, runner: Callable[[Sequence[str]], None] = _run, binary: str = "ipvsadm") -> None:
        self.runner = runner
        self.binary = binary
        self.last_commands: list[list[str]] = []

    def commands(self, diff: TableDiff) -> list[list[str]]:
        return ipvsadm_commands(diff, self.binary)

    def apply(self, diff: TableDiff) -> None:
        cmds = self.commands(diff)
        self.last_commands = cmds
        for cmd in cmds:
            self.runner(cmd)


# ---------------------------------------------------------------------------
# Userspace: the schedulers decide, a userspace forwarder moves the bytes
# ---------------------------------------------------------------------------


ServerKey = RealServer | tuple[str, int]


def _key(server: ServerKey) -> tuple[str, int]:
    return server if isinstance(server, tuple) else server.key


class _Live:
    __slots__ = ("service", "scheduler", "servers")

    def __init__(self, service: VirtualService) -> None:
        self.service = service
        self.scheduler: Scheduler = make_scheduler(service.scheduler)
        self.servers = [RealServer(rs.ip, rs.port, rs.weight) for rs in service.real_servers]

    def update(self, service: VirtualService) -> None:
        if service.scheduler != self.service.scheduler:
            self.scheduler = make_scheduler(service.scheduler)
        counts = {s.key: (s.active, s.inactive) for s in self.servers}
        self.servers = [
            RealServer(rs.ip, rs.port, rs.weight, *counts.get(rs.key, (0, 0))) for rs in service.real_servers
        ]
        self.service = service


class UserspaceDataPath:
    """The IPVS table kept in Python: one live scheduler per virtual service.

    ``choose`` asks the scheduler for the real server of a new connection;
    ``opened`` counts a connection on a server (TCP as ActiveConn, UDP flows
    as InActConn, as the kernel shows them), ``closed`` takes it off again;
    ``pick`` is ``choose`` + ``opened``. Persistence (ClientIP affinity) is
    left to the forwarder, which keeps per-client stickiness.
    """

    name = "userspace"

    def __init__(self) -> None:
        self._live: dict[VirtualServiceKey, _Live] = {}
        self._lock = threading.Lock()

    def apply(self, diff: TableDiff) -> None:
        with self._lock:
            for vs in diff.removed_services:
                self._live.pop(vs.key, None)
            for key, vs in diff.table.items():
                live = self._live.get(key)
                if live is None:
                    self._live[key] = _Live(vs)
                elif live.service != vs:
                    live.update(vs)

    def choose(self, protocol: str, address: str, port: int, client_ip: str | None = None) -> RealServer | None:
        """The scheduler's real server for a new connection to ``address:port`` (not counted)."""
        with self._lock:
            live = self._live.get(VirtualServiceKey(protocol, address, port))
            if live is None:
                return None
            return live.scheduler.schedule(live.servers, client_ip=client_ip, dest_ip=address)

    def opened(self, protocol: str, address: str, port: int, server: ServerKey) -> None:
        """A connection to ``server`` was established: count it."""
        with self._lock:
            live = self._live.get(VirtualServiceKey(protocol, address, port))
            for s in live.servers if live else ():
                if s.key == _key(server):
                    if protocol == "UDP":
                        s.inactive += 1
                    else:
                        s.active += 1

    def pick(self, protocol: str, address: str, port: int, client_ip: str | None = None) -> RealServer | None:
        """The real server for one new connection to ``address:port``, counted; or None."""
        server = self.choose(protocol, address, port, client_ip)
        if server is not None:
            self.opened(protocol, address, port, server)
        return server

    def closed(self, protocol: str, address: str, port: int, server: ServerKey) -> None:
        """A connection counted earlier ended."""
        with self._lock:
            live = self._live.get(VirtualServiceKey(protocol, address, port))
            for s in live.servers if live else ():
                if s.key == _key(server):
                    if protocol == "UDP":
                        s.inactive = max(0, s.inactive - 1)
                    else:
                        s.active = max(0, s.active - 1)

    def stats(self, key: VirtualServiceKey, rs: RealServerSpec) -> tuple[int, int]:
        """(active, inactive) for one real server, for ``ipvsadm -Ln``-style output."""
        with self._lock:
            live = self._live.get(key)
            for s in live.servers if live else ():
                if s.key == rs.key:
                    return (s.active, s.inactive)
        return (0, 0)
