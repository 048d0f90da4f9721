"""The ``ipvs`` proxy mode: services as an IPVS virtual-service table.

Configured under ``[proxy.ipvs]``:

``scheduler``  one of ``rr wrr lc wlc sh dh sed nq`` (default ``rr``), used
               for every virtual service.
``datapath``   ``auto`` (default), ``ipvsadm`` or ``userspace``. ``auto``
               programs the kernel with ``ipvsadm`` only when the kernel has
               IPVS, ``ipvsadm`` is installed and kcore runs as root; otherwise
               it says so and keeps the table in userspace, where the
               schedulers choose the backend for each connection.

Each sync builds the complete table from the state, diffs it against the
last one (``last_diff``) and hands the diff to the data path. With the
userspace data path the mode then also forwards: kcore's userspace sockets
listen on every virtual address and ask the table's schedulers for each new
connection's backend (``forwarder.py``), so the mode works on any kernel.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from typing import Any

from kcore import hookimpl
from kcore.errors import UserFacingError
from kcore.log import get_logger
from kcore.proxy.state import ProxyState
from kcore.proxy.userspace import UserspaceProxy
from kcore_proxy_ipvs.datapath import DataPath, IpvsadmDataPath, UserspaceDataPath
from kcore_proxy_ipvs.forwarder import scheduled_forwarder
from kcore_proxy_ipvs.kernel import IpvsSupport, detect_ipvs
from kcore_proxy_ipvs.schedulers import UnknownSchedulerError, check_scheduler_name
from kcore_proxy_ipvs.table import (
    TableDiff,
    VirtualService,
    VirtualServiceKey,
    build_table,
    diff_tables,
    render_ipvsadm,
)

log = get_logger("proxy.ipvs")

DATAPATHS = ("auto", "ipvsadm", "userspace")
SETTINGS = ("scheduler", "datapath")


class IpvsSettingsError(UserFacingError, ValueError):
    """A bad ``[proxy.ipvs]`` setting; the message names the key."""


def parse_settings(settings: dict[str, Any] | None) -> tuple[str, str]:
    """(scheduler, datapath) from the mode's table, or a clear error."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise IpvsSettingsError(
            f"proxy.ipvs: unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}"
        )
    try:
        scheduler = check_scheduler_name(settings.get("scheduler", "rr"))
    except UnknownSchedulerError as err:
        raise IpvsSettingsError(f"proxy.ipvs.scheduler: {err}") from None
    datapath = settings.get("datapath", "auto")
    if datapath not in DATAPATHS:
        raise IpvsSettingsError(
            f"proxy.ipvs.datapath: unknown data path {datapath!r}; choose one of: {', '.join(DATAPATHS)}"
        )
    return scheduler, datapath


class IpvsProxy:
    """The ``ipvs`` mode; the entry point names this class (one per node)."""

    def __init__(
        self,
        datapath: DataPath | None = None,
        probe: Callable[[], IpvsSupport] = detect_ipvs,
        ipvsadm: Callable[[], str | None] = lambda: shutil.which("ipvsadm"),
        is_root: Callable[[], bool] = lambda: os.geteuid() == 0,
        forward: bool = True,
        forwarder_options: dict[str, Any] | None = None,
    ) -> None:
        """``forward``: with the userspace data path, also listen and forward
        (False: keep the table only, for tests). ``forwarder_options`` go to
        the ``UserspaceProxy`` (e.g. ``manage_addresses``)."""
        self._given_datapath = datapath
        self._forward = forward
        self._forwarder_options = dict(forwarder_options or {})
        self.forwarder: UserspaceProxy | None = None
        self.datapath: DataPath | None = datapath
        self.scheduler = "rr"
        self._probe = probe
        self._ipvsadm = ipvsadm
        self._is_root = is_root
        self._table: dict[VirtualServiceKey, VirtualService] = {}
        self._last_diff: TableDiff | None = None
        self._lock = threading.Lock()

    # -- state ---------------------------------------------------------------

    @property
    def table(self) -> dict[VirtualServiceKey, VirtualService]:
        """The table the data path was last brought to."""
        return dict(self._table)

    @property
    def last_diff(self) -> TableDiff | None:
        """What the last sync (or cleanup) changed; None before the first."""
        return self._last_diff

    # -- choosing a data path ------------------------------------------------

    def _choose_datapath(self, wanted: str) -> DataPath:
        if wanted == "userspace":
            log.info("IPVS table kept in userspace, as configured", scheduler=self.scheduler)
            return UserspaceDataPath()
        support = self._probe()
        binary = self._ipvsadm()
        root = self._is_root()
        problems = []
        if not support.available:
            problems.append(f"the kernel has no IPVS ({support.reason})")
        if binary is None:
            problems.append("ipvsadm is not installed")
        if not root:
            problems.append("kcore is not running as root")
        if not problems:
            log.info("programming kernel IPVS with ipvsadm", scheduler=self.scheduler, evidence=support.reason)
            return IpvsadmDataPath(binary=binary or "ipvsadm")
        if wanted == "ipvsadm":
            raise IpvsSettingsError(f"proxy.ipvs.datapath: ipvsadm cannot be used: {'; '.join(problems)}")
        log.warning(
            "kernel IPVS unavailable; using a userspace data path (schedulers pick backends in Python)",
            reason="; ".join(problems),
            scheduler=self.scheduler,
        )
        return UserspaceDataPath()

    def _start(self, settings: dict[str, Any] | None) -> None:
        scheduler, wanted = parse_settings(settings)
        self.scheduler = scheduler
        if self._given_datapath is not None:
            self.datapath = self._given_datapath
        else:
            self.datapath = self._choose_datapath(wanted)

    # -- hooks ---------------------------------------------------------------

    async def _start_forwarder(self, context: Any) -> None:
        if self._forward and isinstance(self.datapath, UserspaceDataPath) and self.forwarder is None:
            self.forwarder = scheduled_forwarder(self.datapath, **self._forwarder_options)
            await self.forwarder.kcore_proxy_start(settings={}, context=context)

    @hookimpl
    async def kcore_proxy_start(self, settings: dict[str, Any], context: Any) -> None:
        """Validate settings, pick the data path (kernel IPVS or userspace) and,
        for the userspace one, start its forwarder."""
        with self._lock:
            self._start(settings)
        await self._start_forwarder(context)

    def apply(self, state: ProxyState) -> TableDiff:
        """Bring the data path to the table for ``state`` (the diff is applied; no sockets)."""
        with self._lock:
            if self.datapath is None:
                self._start({})
            assert self.datapath is not None
            new = build_table(state, self.scheduler)
            diff = diff_tables(self._table, new)
            if not diff.empty:
                self.datapath.apply(diff)
                log.debug("ipvs sync", generation=state.generation, **diff.summary())
            self._table = new
            self._last_diff = diff
            return diff

    @hookimpl
    async def kcore_proxy_sync(self, state: ProxyState) -> None:
        """Apply the table diff; with the userspace data path, then bring the
        forwarder's listeners to the same services."""
        self.apply(state)
        if self.forwarder is None and self._forward and isinstance(self.datapath, UserspaceDataPath):
            await self._start_forwarder(None)
        if self.forwarder is not None:
            await self.forwarder.kcore_proxy_sync(state)

    @hookimpl
    def kcore_proxy_render_rules(self, state: ProxyState) -> str:
        """The table for ``state`` as ``ipvsadm -Ln`` would print it."""
        stats = getattr(self.datapath, "stats", None)
        return render_ipvsadm(build_table(state, self.scheduler), stats)

    @hookimpl
    async def kcore_proxy_cleanup(self) -> None:
        """Remove every virtual service this mode added, and the forwarder's
        listeners and addresses."""
        if self.forwarder is not None:
            await self.forwarder.kcore_proxy_cleanup()
        with self._lock:
            diff = diff_tables(self._table, {})
            if self.datapath is not None and not diff.empty:
                self.datapath.apply(diff)
            self._table = {}
            self._last_diff = diff
