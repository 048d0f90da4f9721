"""The fake runtime: hollow containers, driven through the plugin host like the real one."""

from __future__ import annotations

import pytest
from kubelet.helpers import make_pod

from kcore.api.core_v1 import Container
from kcore.kubelet.runtime_fake import FAKE_LOG_LINE, FakeRuntime
from kcore.kubelet.runtime_process import ContainerNotFoundError
from kcore.testing import plugin_host_for


async def test_fake_runtime_lifecycle() -> None:
    host = plugin_host_for(named={"kcore.runtime:fake": FakeRuntime})

    async def call(hook: str, **kw: object) -> object:
        return await host.acall_driver("kcore.runtime", "fake", hook, **kw)

    sb = await call("kcore_runtime_run_sandbox", pod=make_pod(), context=None)
    cid = await call("kcore_runtime_start_container", sandbox_id=sb, container=Container(name="c", image="anything"), context=None)
    st = await call("kcore_runtime_container_status", container_id=cid)
    assert (st["state"], st["exit_code"], st["pid"]) == ("running", None, None)
    logs = host.call_driver("kcore.runtime", "fake", "kcore_runtime_container_logs", container_id=cid, options={"timestamps": True})
    lines = [x async for x in logs]
    assert len(lines) == 1 and lines[0].endswith(FAKE_LOG_LINE + b"\n") and lines[0][:4].isdigit()
    await call("kcore_runtime_stop_container", container_id=cid, grace_seconds=30)
    st = await call("kcore_runtime_container_status", container_id=cid)
    assert (st["state"], st["exit_code"], st["reason"]) == ("exited", 0, "Completed")
    again = await call("kcore_runtime_start_container", sandbox_id=sb, container=Container(name="c"), context=None)
    assert (await call("kcore_runtime_container_status", container_id=again))["restart_count"] == 1
    await call("kcore_runtime_stop_sandbox", sandbox_id=sb)
    # Called on the plugin itself: PluginHost.call_driver unwraps any list result,
    # which breaks this firstresult hook that returns a list (reported to the lead).
    runtime = host.driver("kcore.runtime", "fake")
    assert all(c["state"] == "exited" for c in runtime.kcore_runtime_list_containers())
    await call("kcore_runtime_remove_sandbox", sandbox_id=sb)
    assert runtime.kcore_runtime_list_containers() == []
    with pytest.raises(ContainerNotFoundError):
        await call("kcore_runtime_container_status", container_id=cid)


def test_many_hollow_pods_are_cheap() -> None:
    rt = FakeRuntime()
    for i in range(2000):
        sb = rt.kcore_runtime_run_sandbox(make_pod(f"p{i}"), None)
        rt.kcore_runtime_start_container(sb, Container(name="c"), None)
    assert len(rt.kcore_runtime_list_containers()) == 2000
