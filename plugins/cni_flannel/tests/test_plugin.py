"""The ``flannel`` driver called through a plugin host as the kubelet will call it."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kcore.client import ApiClient
from kcore.plugins import PluginHost
from kcore.testing import plugin_host_for
from kcore_cni_flannel.ipam import AddressExhaustedError
from kcore_cni_flannel.plugin import Flannel

GROUP = "kcore.cni"


@pytest.fixture
def host() -> PluginHost:
    return plugin_host_for(named={f"{GROUP}:flannel": Flannel})


def pod(name: str, uid: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": uid}}


async def call(host: PluginHost, hook: str, **kw: Any) -> Any:
    return await host.acall_driver(GROUP, "flannel", hook, **kw)


async def test_ipam_only_lifecycle(host: PluginHost, client: ApiClient, tmp_path: Path) -> None:
    node = await client.resource("v1", "Node").create(
        {"metadata": {"name": "n1"},
         "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.7"}]}})
    ctx = SimpleNamespace(client=client, data_dir=tmp_path)
    settings = {"cluster_cidr": "10.244.0.0/16", "subnet_length": 29, "datapath": "none"}
    await call(host, "kcore_cni_setup_node", settings=settings, node=node, context=ctx)
    stored = await client.resource("v1", "Node").get("n1")
    assert stored["spec"]["podCIDR"] == "10.244.0.8/29"
    assert stored["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"] == "192.0.2.7"

    first = await call(host, "kcore_cni_add", pod=pod("a", "u1"), netns="/nonexistent", context=ctx)
    assert first["ips"][0] == {"address": "10.244.0.10/29", "gateway": "10.244.0.9"}
    again = await call(host, "kcore_cni_add", pod=pod("a", "u1"), netns="/nonexistent", context=ctx)
    assert again["ips"] == first["ips"]
    assert await call(host, "kcore_cni_check", pod=pod("a", "u1"), netns="", context=ctx) is True
    for i in range(2, 6):  # .10-.14 usable: 5 pods fit
        await call(host, "kcore_cni_add", pod=pod(f"p{i}", f"u{i}"), netns="", context=ctx)
    with pytest.raises(AddressExhaustedError, match="range set: 10.244.0.9-10.244.0.14"):
        await call(host, "kcore_cni_add", pod=pod("extra", "ux"), netns="", context=ctx)
    await call(host, "kcore_cni_del", pod=pod("a", "u1"), netns="", context=ctx)
    await call(host, "kcore_cni_del", pod=pod("a", "u1"), netns="", context=ctx)  # repeatable
    assert await call(host, "kcore_cni_check", pod=pod("a", "u1"), netns="", context=ctx) is False
    assert (await call(host, "kcore_cni_add", pod=pod("extra", "ux"), netns="", context=ctx))["ips"]

    # A restarted agent keeps the node's subnet and sees the existing allocations.
    restarted = plugin_host_for(named={f"{GROUP}:flannel": Flannel})
    await call(restarted, "kcore_cni_setup_node", settings=settings, node=node, context=ctx)
    b = await call(restarted, "kcore_cni_add", pod=pod("p2", "u2"), netns="", context=ctx)
    assert b["ips"][0]["address"] == "10.244.0.11/29"


@pytest.mark.root
async def test_bridge_lifecycle_in_a_test_namespace(host: PluginHost, client: ApiClient, tmp_path: Path) -> None:
    prefix = f"kcore-test-{secrets.token_hex(4)}"
    spaces = [f"{prefix}-node", f"{prefix}-pod"]
    try:
        for name in spaces:
            subprocess.run(["ip", "netns", "add", name], check=True)
        node = await client.resource("v1", "Node").create({"metadata": {"name": "n1"}})
        ctx = SimpleNamespace(client=client, data_dir=tmp_path, node_netns=spaces[0])
        await call(host, "kcore_cni_setup_node", settings={}, node=node, context=ctx)
        result = await call(host, "kcore_cni_add", pod=pod("a", "u1"), netns=spaces[1], context=ctx)
        assert result["ips"][0]["address"] == "10.244.1.2/24"
        assert await call(host, "kcore_cni_check", pod=pod("a", "u1"), netns=spaces[1], context=ctx) is True
        await call(host, "kcore_cni_del", pod=pod("a", "u1"), netns=spaces[1], context=ctx)
        assert await call(host, "kcore_cni_check", pod=pod("a", "u1"), netns=spaces[1], context=ctx) is False
        await call(host, "kcore_cni_teardown_node", context=ctx)
        out = subprocess.run(["ip", "-n", spaces[0], "-o", "link", "show"], capture_output=True, text=True).stdout
        assert "cni0" not in out and "veth" not in out
    finally:
        for name in reversed(spaces):
            subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
