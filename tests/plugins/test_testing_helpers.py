"""kcore.testing helpers work the way plugin authors use them."""

from __future__ import annotations

from typing import Any

from kcore import hookimpl
from kcore.proxy.state import Endpoint, ProxyState, ServicePort
from kcore.proxy.userspace import UserspaceProxy
from kcore.testing import proxy_sync_once


class RecordingMode:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.synced: Any = None

    @hookimpl
    def kcore_proxy_start(self, settings: dict[str, Any], context: Any) -> None:
        self.calls.append(f"start {sorted(settings)}")

    @hookimpl
    def kcore_proxy_sync(self, state: Any) -> None:
        self.calls.append("sync")
        self.synced = state

    @hookimpl
    def kcore_proxy_render_rules(self, state: Any) -> str:
        return f"{len(state.services)} services"

    @hookimpl
    def kcore_proxy_cleanup(self) -> None:
        self.calls.append("cleanup")


STATE = ProxyState(services=(ServicePort(
    namespace="default", name="web", port_name="http", protocol="TCP", cluster_ip="127.96.7.7",
    port=18080, endpoints=(Endpoint(ip="127.0.0.1", port=18081),)),))


async def test_proxy_sync_once_drives_start_sync_rules_cleanup() -> None:
    mode = RecordingMode()
    rules = await proxy_sync_once(mode, STATE, settings={"scheduler": "rr"})
    assert rules == "1 services"
    assert mode.calls == ["start ['scheduler']", "sync", "cleanup"]
    assert mode.synced is STATE


async def test_proxy_sync_once_with_the_userspace_mode() -> None:
    rules = await proxy_sync_once(UserspaceProxy(), STATE)
    assert rules is not None and "127.96.7.7:18080" in rules and "127.0.0.1:18081" in rules
