"""Calling plugins: one driver, explicit per-plugin order, async, configure, tracing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from kcore import hookimpl
from kcore.plugins import (
    HookNotImplementedError,
    PluginLoadError,
    PluginNotFoundError,
    PluginRecord,
    create_plugin_host,
    format_plugin_table,
)
from kcore.testing import install_fake_distribution, plugin_host_for


class Mode:
    """A proxy mode that remembers what it was asked to sync."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.synced: list[Any] = []

    @hookimpl
    def kcore_proxy_sync(self, state: Any) -> None:
        self.synced.append(state)

    @hookimpl
    def kcore_proxy_render_rules(self, state: Any) -> str:
        return self.label


class Scorer:
    def __init__(self, score: int) -> None:
        self.score = score

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: Any) -> int:
        state.setdefault("order", []).append(self.score)
        return self.score


class FilterOnly:
    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: Any) -> None:
        return None


def test_call_driver_calls_only_the_selected_plugin() -> None:
    a, b = Mode("a"), Mode("b")
    host = plugin_host_for(named={"kcore.proxy:a": a, "kcore.proxy:b": b})
    assert host.call_driver("kcore.proxy", "b", "kcore_proxy_sync", state={"x": 1}) is None
    assert (a.synced, b.synced) == ([], [{"x": 1}])
    assert host.call_driver("kcore.proxy", "a", "kcore_proxy_render_rules", state={}) == "a"
    # A broadcast reaches both, which is why drivers are never broadcast.
    host.hook.kcore_proxy_sync(state={"y": 2})
    assert len(a.synced) == 1 and len(b.synced) == 2


def test_call_driver_sees_plugins_registered_later() -> None:
    a = Mode("a")
    host = plugin_host_for(named={"kcore.proxy:a": a})
    host.call_driver("kcore.proxy", "a", "kcore_proxy_sync", state=1)
    late = Mode("late")
    host.register(late, "late", group="kcore.proxy")
    host.call_driver("kcore.proxy", "a", "kcore_proxy_sync", state=2)
    assert (a.synced, late.synced) == ([1, 2], [])
    host.call_driver("kcore.proxy", "late", "kcore_proxy_sync", state=3)
    assert (a.synced, late.synced) == ([1, 2], [3])


def test_call_driver_missing_hook_and_unknown_hook_name() -> None:
    host = plugin_host_for(named={"kcore.proxy:a": Mode("a")})
    assert not host.has_hook("kcore.proxy", "a", "kcore_proxy_cleanup")
    assert host.has_hook("kcore.proxy", "a", "kcore_proxy_sync")
    with pytest.raises(HookNotImplementedError, match="'a' does not implement kcore_proxy_cleanup"):
        host.call_driver("kcore.proxy", "a", "kcore_proxy_cleanup")
    with pytest.raises(ValueError, match="not a kcore hook"):
        host.call_driver("kcore.proxy", "a", "kcore_proxy_snyc", state={})
    with pytest.raises(PluginNotFoundError, match="available: a"):
        host.call_driver("kcore.proxy", "b", "kcore_proxy_sync", state={})


def test_call_driver_accepts_hook_arguments_named_like_its_own() -> None:
    class Provisioner:
        @hookimpl
        def kcore_csi_create_volume(
            self, name: str, capacity_bytes: int, parameters: dict[str, Any], context: Any
        ) -> dict[str, Any]:
            return {"volume_id": f"vol-{name}", "capacity_bytes": capacity_bytes}

    host = plugin_host_for(named={"kcore.csi:hostpath": Provisioner()})
    volume = host.call_driver(
        "kcore.csi", "hostpath", "kcore_csi_create_volume",
        name="pvc-1", capacity_bytes=10, parameters={}, context=None,
    )
    assert volume == {"volume_id": "vol-pvc-1", "capacity_bytes": 10}


async def test_acall_driver_awaits_coroutine_implementations() -> None:
    class Runtime:
        @hookimpl
        async def kcore_runtime_run_sandbox(self, pod: Any, context: Any) -> str:
            await asyncio.sleep(0)
            return f"sandbox-{pod}"

        @hookimpl
        def kcore_runtime_stop_sandbox(self, sandbox_id: str) -> None:
            self.stopped = sandbox_id

    runtime = Runtime()
    host = plugin_host_for(named={"kcore.runtime:fake": runtime})
    assert await host.acall_driver("kcore.runtime", "fake", "kcore_runtime_run_sandbox", pod="p", context=None) == "sandbox-p"
    assert await host.acall_driver("kcore.runtime", "fake", "kcore_runtime_stop_sandbox", sandbox_id="s1") is None
    assert runtime.stopped == "s1"


def test_implementations_follow_the_given_order_and_skip_non_implementers() -> None:
    host = plugin_host_for(named={
        "kcore.scheduler:low": Scorer(10),
        "kcore.scheduler:filter-only": FilterOnly(),
        "kcore.scheduler:high": Scorer(90),
    })
    state: dict[str, Any] = {}
    impls = host.implementations("kcore_scheduler_score", ["high", "filter-only", "low"], group="kcore.scheduler")
    assert [i.name for i in impls] == ["high", "low"]
    assert [i(state=state, pod=None, node_info=None) for i in impls] == [90, 10]
    assert state["order"] == [90, 10]
    # Without names: registration order, and full keys work as names too.
    assert [i.name for i in host.implementations("kcore_scheduler_score")] == ["low", "high"]
    assert [i.name for i in host.implementations("kcore_scheduler_score", ["kcore.scheduler:high"])] == ["high"]
    with pytest.raises(PluginNotFoundError, match="no kcore.scheduler plugin named 'middle'"):
        host.implementations("kcore_scheduler_score", ["middle"], group="kcore.scheduler")


def test_configure_is_historic_so_late_plugins_get_the_config() -> None:
    seen: list[tuple[str, Any]] = []

    class Configurable:
        def __init__(self, label: str) -> None:
            self.label = label

        @hookimpl
        def kcore_plugin_configure(self, config: Any) -> None:
            seen.append((self.label, config))

    host = plugin_host_for(Configurable("early"), config={"cluster": "c1"})
    host.register(Configurable("late"), "late")
    assert seen == [("early", {"cluster": "c1"}), ("late", {"cluster": "c1"})]


def test_register_rejects_unknown_hooks_loudly() -> None:
    class Typo:
        @hookimpl
        def kcore_scheduler_scroe(self, state: Any, pod: Any, node_info: Any) -> int:
            return 1

    host = plugin_host_for()
    with pytest.raises(PluginLoadError, match="did you mean 'kcore_scheduler_score'"):
        host.register(Typo(), "typo", group="kcore.scheduler")
    assert host.records() == [] and host.pm.get_plugins() == set()
    with pytest.raises(PluginLoadError):
        plugin_host_for(Typo())


def test_unregister_removes_plugin_and_record() -> None:
    a = Mode("a")
    host = plugin_host_for(named={"kcore.proxy:a": a})
    host.unregister("a", group="kcore.proxy")
    assert host.records() == [] and not host.pm.is_registered(a)
    with pytest.raises(PluginNotFoundError):
        host.driver("kcore.proxy", "a")


def test_same_object_under_two_names_is_registered_once() -> None:
    a = Mode("a")
    host = plugin_host_for(named={"kcore.proxy:a": a, "kcore.proxy:alias": a})
    host.hook.kcore_proxy_sync(state=1)
    assert a.synced == [1]
    assert host.driver("kcore.proxy", "alias") is a
    assert host.call_driver("kcore.proxy", "alias", "kcore_proxy_render_rules", state={}) == "a"


def test_trace_env_logs_every_hook_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCORE_TRACE_PLUGINS", "1")
    host = create_plugin_host(autoload=False)
    host.register(Mode("a"), "a", group="kcore.proxy")
    with capture_logs() as logs:
        host.call_driver("kcore.proxy", "a", "kcore_proxy_render_rules", state={"svc": 1})
    events = [(e["event"], e.get("hook")) for e in logs]
    assert ("hook call", "kcore_proxy_render_rules") in events
    assert ("hook result", "kcore_proxy_render_rules") in events
    call = next(e for e in logs if e["event"] == "hook call")
    assert call["plugins"] == ["kcore.proxy:a"] and call["kwargs"] == {"state": "{'svc': 1}"}


def test_no_trace_logs_without_the_switch() -> None:
    host = create_plugin_host(autoload=False)
    host.register(Mode("a"), "a", group="kcore.proxy")
    with capture_logs() as logs:
        host.call_driver("kcore.proxy", "a", "kcore_proxy_render_rules", state={})
    assert logs == []


def test_plugin_table_is_aligned_with_error_lines_under_failures() -> None:
    records = [
        PluginRecord("kcore.store", "memory", "kcore", "0.1.0", "kcore.store.memory_backend", "loaded"),
        PluginRecord("kcore.proxy", "ipvs", "kcore-proxy-ipvs", "1.10.2", "kcore_proxy_ipvs", "failed",
                     "ModuleNotFoundError: No module named 'pyroute2'"),
    ]
    assert format_plugin_table(records).splitlines() == [
        "GROUP        NAME    DISTRIBUTION      VERSION  STATUS",
        "kcore.store  memory  kcore             0.1.0    loaded",
        "kcore.proxy  ipvs    kcore-proxy-ipvs  1.10.2   failed",
        "    error: ModuleNotFoundError: No module named 'pyroute2'",
    ]


def test_install_fake_distribution_writes_real_metadata(tmp_path: Path) -> None:
    import importlib.metadata

    with install_fake_distribution(
        tmp_path, "kcore-meta-probe", "3.1",
        entry_points={"kcore.dns": {"probe": "kcore_meta_probe.server:Server"}},
        modules={"kcore_meta_probe": "VALUE = 1\n", "kcore_meta_probe.server": "class Server:\n    pass\n"},
    ) as root:
        assert importlib.metadata.version("kcore-meta-probe") == "3.1"
        (ep,) = importlib.metadata.entry_points(group="kcore.dns", name="probe")
        assert ep.load().__name__ == "Server"
        assert (root / "kcore_meta_probe" / "__init__.py").read_text() == "VALUE = 1\n"
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("kcore-meta-probe")
    assert not root.exists()


def test_call_driver_keeps_a_firstresult_list_whole() -> None:
    from kcore import hookimpl
    from kcore.testing import plugin_host_for

    class TwoContainers:
        @hookimpl
        def kcore_runtime_list_containers(self) -> list[dict]:
            return [{"id": "a"}, {"id": "b"}]

    host = plugin_host_for(named={"kcore.runtime:two": TwoContainers()})
    assert host.call_driver("kcore.runtime", "two", "kcore_runtime_list_containers") == [
        {"id": "a"}, {"id": "b"}]
