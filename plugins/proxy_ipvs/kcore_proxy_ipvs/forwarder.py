"""Forwarding without kernel IPVS: kcore's userspace sockets, IPVS schedulers deciding.

When the kernel has no IPVS the mode still has to move bytes. kcore's
userspace mode already has the socket machinery (a listener per virtual
address, TCP pumps with half-close, UDP flows, idle timeouts, non-local
addresses put on ``lo`` as root); it takes a chooser per listener. Here the
chooser of listener ``PROTO VIP:port`` asks the ``UserspaceDataPath`` for the
virtual service with the same key, so every connection is scheduled by
``rr``/``lc``/``sh``/... exactly as ``ipvsadm`` would have the kernel do it,
and the connection counts the ``lc`` family reads (and ``ipvsadm -Ln``
shows) follow the connections that are really open.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kcore.proxy.balancer import Balancer
from kcore.proxy.state import ServicePort
from kcore.proxy.userspace import ListenAddress, UserspaceProxy
from kcore_proxy_ipvs.datapath import UserspaceDataPath

EndpointKey = tuple[str, int]


class SchedulerChooser:
    """One listener's chooser: the virtual service's scheduler picks, the rest follow.

    ``candidates`` puts the scheduler's choice first and the other ready
    endpoints after it, so a refusing endpoint falls through to the next one
    like the userspace mode does. A connection is counted on the endpoint it
    really reached (``connected``) and uncounted when it ends (``released``).
    ClientIP persistence (``-p``) is a ``Balancer`` sticky table in front of
    the scheduler.
    """

    def __init__(self, datapath: UserspaceDataPath, addr: ListenAddress,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.datapath = datapath
        self.vs = (addr.protocol, addr.ip, addr.port)
        self._endpoints: tuple[EndpointKey, ...] = ()
        self._sticky: Balancer[EndpointKey] = Balancer(clock=clock)

    def update(self, endpoints: Iterable[EndpointKey], *, affinity: bool | None = None,
               affinity_timeout: float | None = None) -> None:
        self._endpoints = tuple(dict.fromkeys(endpoints))
        self._sticky.update(self._endpoints, affinity=affinity, affinity_timeout=affinity_timeout)

    def candidates(self, client_ip: str | None = None) -> list[EndpointKey]:
        first: EndpointKey | None = None
        if self._sticky.affinity and client_ip is not None:
            first = self._sticky.sticky_endpoint(client_ip)
        if first is None:
            server = self.datapath.choose(*self.vs, client_ip=client_ip)
            first = server.key if server is not None else None
        if first is None or first not in self._endpoints:
            return []  # no server can take it (all quiesced, or the table lags): refuse
        return [first, *(ep for ep in self._endpoints if ep != first)]

    def connected(self, client_ip: str | None, endpoint: EndpointKey) -> None:
        self.datapath.opened(*self.vs, endpoint)
        self._sticky.connected(client_ip, endpoint)

    def failed(self, client_ip: str | None, endpoint: EndpointKey) -> None:
        self._sticky.failed(client_ip, endpoint)

    def released(self, endpoint: EndpointKey) -> None:
        self.datapath.closed(*self.vs, endpoint)


def scheduled_forwarder(datapath: UserspaceDataPath, **kw: object) -> UserspaceProxy:
    """A userspace proxy whose listeners are scheduled by ``datapath``."""

    def factory(_sp: ServicePort, addr: ListenAddress) -> SchedulerChooser:
        return SchedulerChooser(datapath, addr)

    return UserspaceProxy(chooser_factory=factory, name="ipvs", **kw)  # type: ignore[arg-type]
