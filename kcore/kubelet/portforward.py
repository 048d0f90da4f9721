"""Port-forward's far end: open a TCP connection to a port *inside a pod's network*.

A pod on the host network is reached at ``127.0.0.1:port``. A pod with its own
network namespace (``/run/netns/<name>``) is reached at its own loopback: the
socket has to be *created* in that namespace, and a socket keeps the namespace
it was created in. ``setns(2)`` changes only the calling thread, so the socket
is made in a dedicated short-lived thread that enters the namespace, connects,
and exits (taking its changed namespace with it); the connected socket is then
handed to asyncio. Python 3.11 has no ``os.setns``, hence ctypes.

Errors read as Kubernetes': ``error forwarding port 8080 to pod ..., uid ...:
failed to connect to localhost:8080 inside namespace ...``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import socket
import threading
from dataclasses import dataclass

from kcore.log import get_logger

log = get_logger("kubelet.portforward")

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
CONNECT_TIMEOUT = 10.0


class PortForwardError(Exception):
    """The port could not be reached; the message is what the client is shown."""


class DialError(Exception):
    """Nothing accepted the connection on localhost (the detail of both attempts)."""


_libc: ctypes.CDLL | None = None


def _setns(fd: int, nstype: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _connect_loopback(port: int, timeout: float) -> socket.socket:
    """Connect to localhost:port in the current thread's namespace, IPv4 then IPv6."""
    errors: list[str] = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect((host, port))
        except OSError as exc:
            sock.close()
            label = "IPv4" if family == socket.AF_INET else "IPv6"
            errors.append(f"{label}: dial tcp {host if ':' not in host else f'[{host}]'}:{port}: "
                          f"connect: {exc.strerror or exc}")
            continue
        sock.setblocking(False)
        return sock
    raise DialError(" ".join(errors))


def _netns_path(netns: str) -> str:
    return netns if "/" in netns else os.path.join(NETNS_DIR, netns)


def connect_in_netns(netns: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
    """Blocking: a socket connected to localhost:port inside ``netns``, made in a throwaway thread."""
    result: list[socket.socket | BaseException] = []

    def run() -> None:
        try:
            fd = os.open(_netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd, CLONE_NEWNET)
            finally:
                os.close(fd)
            result.append(_connect_loopback(port, timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            result.append(exc)

    thread = threading.Thread(target=run, name=f"portforward-netns-{port}", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0] if result else RuntimeError("the netns thread ended without a result")
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def open_pod_connection(netns: str | None, port: int, timeout: float = CONNECT_TIMEOUT
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An asyncio stream to localhost:port in the pod's network (``netns`` None: the host's)."""
    if netns is None:
        sock = await asyncio.to_thread(_connect_loopback, port, timeout)
    else:
        # to_thread only waits here; the setns happens in connect_in_netns's own thread.
        sock = await asyncio.to_thread(connect_in_netns, netns, port, timeout)
    return await asyncio.open_connection(sock=sock)


@dataclass(frozen=True)
class PortForwardTarget:
    """A pod port-forward connects into: its identity (for messages) and its network."""

    namespace: str
    name: str
    uid: str
    netns: str | None

    @classmethod
    def for_pod(cls, pod: dict, kubelet: object) -> PortForwardTarget:
        meta = pod.get("metadata") or {}
        uid = meta.get("uid") or ""
        netns_for_pod = getattr(kubelet, "netns_for_pod", None)
        netns = netns_for_pod(uid) if netns_for_pod is not None else None
        return cls(meta.get("namespace") or "default", meta.get("name") or "", uid, netns)

    async def connect(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to ``port`` in the pod; PortForwardError with Kubernetes' wording otherwise."""
        if not 0 < port < 65536:
            raise PortForwardError(f"invalid port {port}")
        try:
            return await open_pod_connection(self.netns, port)
        except (OSError, DialError) as exc:
            where = f'namespace "{self.netns}"' if self.netns else "the host network namespace"
            detail = str(exc) if isinstance(exc, DialError) else \
                f"cannot enter the network namespace: {exc.strerror or exc}"
            message = (f"error forwarding port {port} to pod {self.namespace}/{self.name}, uid {self.uid}: "
                       f"failed to connect to localhost:{port} inside {where}: {detail}")
            log.info("port-forward connection failed", pod=f"{self.namespace}/{self.name}", port=port,
                     error=detail)
            raise PortForwardError(message) from None
