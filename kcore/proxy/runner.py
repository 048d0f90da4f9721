"""The node's service proxy: watch Services and EndpointSlices, drive one mode.

``ProxyRunner`` keeps two informers (one ``InformerFactory``), and after every
change - batched: changes within ``debounce_seconds`` (50 ms) make one sync -
and on a periodic resync (``resync_seconds``, 30 s) builds the complete
``ProxyState`` (``kcore.proxy.framework.build_state``) and hands it to the
configured mode (``[proxy] mode``, an entry point of group ``kcore.proxy``)
through ``kcore_proxy_sync``. A failed sync is logged and retried after
``retry_seconds``.

Switching modes: the mode that ran last is recorded in ``<data_dir>/proxy-mode``.
When the runner starts with a different mode, it first starts the previous mode
(its own settings, this node's context, no sync) and calls its
``kcore_proxy_cleanup`` (so its rules, listeners and addresses do not linger),
then records the new one. ``stop()`` calls the current mode's cleanup.

``fetch_state`` and ``render_rules`` serve ``kcore proxy rules``: one list of
each kind, and the mode's ``kcore_proxy_render_rules``. ``mode = "iptables"``
falls back to the pure renderer when the host has no ``iptables`` entry point
(a trimmed test host, ``KCORE_LOAD_PLUGINS``): the text is the same, since the
mode's own ``kcore_proxy_render_rules`` returns the renderer's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kcore.config import KcoreConfig
from kcore.errors import UserFacingError
from kcore.fileutil import write_private_file
from kcore.log import get_logger
from kcore.plugins import PluginError, PluginHost
from kcore.proxy.framework import build_state
from kcore.proxy.state import ProxyState

log = get_logger("proxy")

GROUP = "kcore.proxy"
MODE_FILE = "proxy-mode"


@dataclass
class ProxyContext:
    """What ``kcore_proxy_start`` is given about the node."""

    node_name: str
    node_ips: tuple[str, ...]
    data_dir: Path
    cluster_cidr: str | None = None
    service_cidr: str | None = None
    log: Any = field(default=None, repr=False)


def render_rules(host: PluginHost, mode: str, state: ProxyState) -> str:
    """The rules ``mode`` would install for ``state`` (installs nothing)."""
    names = host.names(GROUP)
    if mode == "iptables" and mode not in names:  # rendering needs no privilege nor plugin
        from kcore.proxy.iptables import render_iptables

        return render_iptables(state)
    if mode not in names:
        raise UserFacingError(
            f"proxy mode {mode!r} is not installed (installed: {', '.join(sorted(names)) or 'none'})"
        )
    if not host.has_hook(GROUP, mode, "kcore_proxy_render_rules"):
        return f"# proxy mode {mode!r} cannot render its rules\n"
    text = host.call_driver(GROUP, mode, "kcore_proxy_render_rules", state=state)
    return "" if text is None else str(text)


async def fetch_state(client: Any, *, node_name: str, node_ips: tuple[str, ...] | list[str],
                      cluster_cidr: str | None = None) -> ProxyState:
    """One list of Services and EndpointSlices (all namespaces) -> ``ProxyState``."""
    services, _ = await client.resource("v1", "Service").list()
    slices, _ = await client.resource("discovery.k8s.io/v1", "EndpointSlice").list()
    return build_state(services, slices, node_name=node_name, node_ips=tuple(node_ips),
                       cluster_cidr=cluster_cidr)


class ProxyRunner:
    """Informers -> debounced ``ProxyState`` -> the configured proxy mode."""

    def __init__(
        self,
        client: Any,
        host: PluginHost,
        config: KcoreConfig,
        *,
        node_name: str,
        node_ips: tuple[str, ...] | list[str],
        data_dir: str | Path,
        debounce_seconds: float = 0.05,
        resync_seconds: float = 30.0,
        retry_seconds: float = 1.0,
    ) -> None:
        from kcore.client import InformerFactory

        self.client = client
        self.host = host
        self.config = config
        self.mode = config.proxy.mode
        self.node_name = node_name
        self.node_ips = tuple(node_ips)
        self.data_dir = Path(data_dir)
        self.debounce_seconds = debounce_seconds
        self.resync_seconds = resync_seconds
        self.retry_seconds = retry_seconds
        self.factory = InformerFactory(client)
        self.services = self.factory.informer("v1", "Service")
        self.slices = self.factory.informer("discovery.k8s.io/v1", "EndpointSlice")
        for informer in (self.services, self.slices):
            informer.add_handler(on_add=self._changed, on_update=lambda _o, _n: self._changed(_n),
                                 on_delete=self._changed)
        self.generation = 0
        self.syncs = 0
        """Successful syncs so far."""
        self.last_state: ProxyState | None = None
        self.last_error: str | None = None
        self._dirty = asyncio.Event()
        self._synced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False

    # ---- state -----------------------------------------------------------------

    def _changed(self, _obj: Any) -> None:
        self._dirty.set()

    def build_state(self) -> ProxyState:
        """The desired state from the informers' caches."""
        return build_state(
            self.services.indexer.list(), self.slices.indexer.list(),
            node_name=self.node_name, node_ips=self.node_ips,
            cluster_cidr=self.config.network.cluster_cidr, generation=self.generation,
        )

    def render_rules(self) -> str:
        """What the mode would install for the current caches."""
        return render_rules(self.host, self.mode, self.build_state())

    async def wait_for_sync(self, after: int = 0, timeout: float = 10.0) -> int:
        """Wait until more than ``after`` syncs have succeeded; returns the count."""
        async with asyncio.timeout(timeout):
            async with self._synced:
                await self._synced.wait_for(lambda: self.syncs > after)
        return self.syncs

    # ---- mode switching --------------------------------------------------------

    @property
    def mode_file(self) -> Path:
        return self.data_dir / MODE_FILE

    def previous_mode(self) -> str | None:
        try:
            text = self.mode_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def _context(self) -> ProxyContext:
        return ProxyContext(
            node_name=self.node_name, node_ips=self.node_ips, data_dir=self.data_dir,
            cluster_cidr=self.config.network.cluster_cidr, service_cidr=self.config.network.service_cidr,
            log=log,
        )

    async def _cleanup_previous(self) -> None:
        previous = self.previous_mode()
        if previous is not None and previous != self.mode:
            log.info("proxy mode changed, cleaning up the previous mode", previous=previous, mode=self.mode)
            try:
                if self.host.has_hook(GROUP, previous, "kcore_proxy_cleanup"):
                    # Started first, with its own settings and this node's context, so it
                    # knows where its rules and addresses are (its namespace, its state files).
                    if self.host.has_hook(GROUP, previous, "kcore_proxy_start"):
                        await self.host.acall_driver(GROUP, previous, "kcore_proxy_start",
                                                     settings=self.config.proxy.plugin_settings(previous),
                                                     context=self._context())
                    await self.host.acall_driver(GROUP, previous, "kcore_proxy_cleanup")
            except PluginError as exc:
                log.warning("cannot clean up the previous proxy mode", previous=previous, error=str(exc))
            except Exception as exc:  # noqa: BLE001 - a broken old mode must not stop the new one
                log.exception("previous proxy mode failed to clean up", previous=previous, error=str(exc))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_private_file(self.mode_file, self.mode + "\n", mode=0o644)

    # ---- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        """Clean up a previous mode, start the mode and the informers (idempotent)."""
        if self._started:
            return
        if self.mode not in self.host.names(GROUP):
            raise UserFacingError(
                f"proxy.mode: no proxy mode {self.mode!r} is installed "
                f"(installed: {', '.join(sorted(self.host.names(GROUP))) or 'none'})"
            )
        await self._cleanup_previous()
        if self.host.has_hook(GROUP, self.mode, "kcore_proxy_start"):
            await self.host.acall_driver(GROUP, self.mode, "kcore_proxy_start",
                                         settings=self.config.proxy.plugin_settings(self.mode),
                                         context=self._context())
        self._started = True
        await self.factory.start()

    async def run(self) -> None:
        """Start, then sync after every change and on every resync until ``stop()``."""
        if self._task is not None:
            raise RuntimeError("the proxy runner is already running")
        self._stopping = False
        self._task = asyncio.create_task(self._main(), name="proxy runner")
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self._stopping or (current is not None and current.cancelling()):
                raise
        finally:
            self._task = None

    async def _main(self) -> None:
        await self.start()
        await self.factory.wait_synced()
        next_resync = time.monotonic()
        self._dirty.set()
        while True:
            timeout = max(0.0, next_resync - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._dirty.wait()
            if self._dirty.is_set():
                await asyncio.sleep(self.debounce_seconds)  # let a burst of changes coalesce
            self._dirty.clear()
            ok = await self.sync_once()
            next_resync = time.monotonic() + (self.resync_seconds if ok else self.retry_seconds)

    async def sync_once(self) -> bool:
        """Build the state and hand it to the mode; False (logged) when the mode failed."""
        self.generation += 1
        state = self.build_state()
        try:
            await self.host.acall_driver(GROUP, self.mode, "kcore_proxy_sync", state=state)
        except Exception as exc:  # noqa: BLE001 - retried; the proxy keeps running
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("proxy sync failed", mode=self.mode, error=self.last_error)
            return False
        self.last_error = None
        self.last_state = state
        async with self._synced:
            self.syncs += 1
            self._synced.notify_all()
        return True

    async def stop(self) -> None:
        """Stop watching and remove the mode's rules and listeners."""
        self._stopping = True
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.factory.stop()
        if self._started:
            self._started = False
            if self.host.has_hook(GROUP, self.mode, "kcore_proxy_cleanup"):
                try:
                    await self.host.acall_driver(GROUP, self.mode, "kcore_proxy_cleanup")
                except Exception as exc:  # noqa: BLE001 - shutting down anyway
                    log.exception("proxy cleanup failed", mode=self.mode, error=str(exc))


async def rules_from_kubeconfig(config: KcoreConfig, kubeconfig: str | Path, *,
                                host: PluginHost | None = None, node_name: str | None = None) -> str:
    """``kcore proxy rules``: list the API with the kubeconfig's credentials and render
    what the configured mode would install on this node."""
    import socket

    import aiohttp

    from kcore.client import ApiClient
    from kcore.client.rest import ApiConnectionError, ApiStatusError

    path = Path(kubeconfig).expanduser()
    if not path.is_file():
        raise UserFacingError(f"kubeconfig {str(path)!r} not found (start a server, or pass --kubeconfig)")
    try:
        client = ApiClient.from_kubeconfig(path)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise UserFacingError(f"kubeconfig {str(path)!r}: {exc}") from None
    try:
        state = await fetch_state(client, node_name=node_name or socket.gethostname(),
                                  node_ips=(config.kubelet.node_ip,),
                                  cluster_cidr=config.network.cluster_cidr)
    except ApiStatusError as exc:
        raise UserFacingError(f"API server {client.base_url}: {exc}") from None
    except (ApiConnectionError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise UserFacingError(f"cannot reach the API server {client.base_url}: {exc or type(exc).__name__}") from None
    finally:
        await client.close()
    if host is None:
        from kcore.plugins import create_plugin_host

        host = create_plugin_host()
    return render_rules(host, config.proxy.mode, state)
