"""ProxyRunner end to end: an in-process API server (ClusterIPs from 127.96.0.0/16,
bindable on ``lo`` without setup), EndpointSlices written through the API, and the
real ``userspace`` mode relaying to real TCP backends on 127.0.0.1.

Nothing sleeps to wait for the proxy: tests poll a condition under a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kcore.apiserver.server import ApiServer
from kcore.client import ApiClient
from kcore.config import ApiServerConfig, parse_config
from kcore.hookspecs import hookimpl
from kcore.plugins import PluginHost
from kcore.proxy.runner import ProxyRunner, fetch_state, render_rules
from kcore.proxy.state import ProxyState
from kcore.proxy.userspace import UserspaceProxy
from kcore.store.memory import MemoryStore
from kcore.testing import plugin_host_for

SERVICE_CIDR = "127.96.0.0/16"
DEADLINE = 10.0


class FakeMode:
    """A proxy mode that only records what it is asked to do."""

    def __init__(self, fail_syncs: int = 0) -> None:
        self.starts: list[tuple[dict[str, Any], Any]] = []
        self.states: list[ProxyState] = []
        self.cleanups = 0
        self.fail_syncs = fail_syncs

    @hookimpl
    def kcore_proxy_start(self, settings: dict[str, Any], context: Any) -> None:
        self.starts.append((settings, context))

    @hookimpl
    def kcore_proxy_sync(self, state: ProxyState) -> None:
        if self.fail_syncs > 0:
            self.fail_syncs -= 1
            raise RuntimeError("sync failed on purpose")
        self.states.append(state)

    @hookimpl
    def kcore_proxy_render_rules(self, state: ProxyState) -> str:
        return f"fake: {len(state.services)} service ports\n"

    @hookimpl
    def kcore_proxy_cleanup(self) -> None:
        self.cleanups += 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = DEADLINE) -> Any:
    """``await check()`` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Api:
    def __init__(self, server: ApiServer, client: ApiClient) -> None:
        self.server = server
        self.client = client
        self.services = client.resource("v1", "Service")
        self.slices = client.resource("discovery.k8s.io/v1", "EndpointSlice")

    async def create_service(self, name: str, port: int, **spec: Any) -> dict[str, Any]:
        body = {"metadata": {"name": name, "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": port, "protocol": "TCP"}], **spec}}
        return await self.services.create(body, namespace="default")

    async def put_slice(self, service: str, slice_name: str, backends: list[tuple[str, int, bool]]) -> dict[str, Any]:
        """Create or replace slice ``slice_name`` listing ``(ip, port, ready)`` backends (one port)."""
        (port,) = {p for _, p, _ in backends}
        body: dict[str, Any] = {
            "metadata": {"name": slice_name, "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "nodeName": "node-1",
                           "conditions": {"ready": ready, "serving": ready, "terminating": False}}
                          for ip, _, ready in backends],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
        current = await self.slices.get_or_none(slice_name, namespace="default")
        if current is None:
            return await self.slices.create(body, namespace="default")
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return await self.slices.update(body)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True),
                       service_cidr=SERVICE_CIDR)
    await server.start()
    client = ApiClient(server.url)
    try:
        yield Api(server, client)
    finally:
        await client.close()
        await server.stop()
        await store.close()


@contextlib.asynccontextmanager
async def running(runner: ProxyRunner) -> AsyncIterator[ProxyRunner]:
    task = asyncio.create_task(runner.run())
    try:
        await runner.wait_for_sync(0, timeout=DEADLINE)
        yield runner
    finally:
        await runner.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_runner(api: Api, host: PluginHost, mode: str, data_dir: Path, **kw: Any) -> ProxyRunner:
    config = parse_config({"proxy": {"mode": mode, "service_cidr": SERVICE_CIDR}})
    return ProxyRunner(api.client, host, config, node_name="node-1", node_ips=("127.0.0.1",),
                       data_dir=data_dir, **kw)


# ---------------------------------------------------------------------------
# Backends and clients
# ---------------------------------------------------------------------------


class Backends:
    """TCP servers on 127.0.0.1 free ports that answer each connection with their name."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.servers: list[asyncio.base_events.Server] = []

    async def start(self, names: list[str]) -> None:
        for name in names:

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str = name) -> None:
                writer.write(name.encode())
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.servers.append(server)
            self.ports[name] = int(server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        for server in self.servers:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()


async def ask(ip: str, port: int) -> str | None:
    """Connect and read the answer; None when refused or nothing came back."""
    try:
        async with asyncio.timeout(2):
            reader, writer = await asyncio.open_connection(ip, port)
            try:
                data = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    return data.decode() or None


async def refused(ip: str, port: int) -> bool:
    try:
        async with asyncio.timeout(2):
            _, writer = await asyncio.open_connection(ip, port)
    except ConnectionRefusedError:
        return True
    except (OSError, TimeoutError):
        return False
    writer.close()
    return False


async def ready_ports(runner: ProxyRunner, n: int) -> bool:
    """Whether the last successful sync gave default/web:http exactly ``n`` ready endpoints."""
    state = runner.last_state
    web = state.by_key().get("default/web:http") if state else None
    return web is not None and len(web.ready_endpoints()) == n


async def tally(ip: str, port: int, n: int) -> Counter[str | None]:
    return Counter([await ask(ip, port) for _ in range(n)])


@pytest.fixture
async def backends() -> AsyncIterator[Backends]:
    b = Backends()
    await b.start(["a", "b", "c"])
    try:
        yield b
    finally:
        await b.close()


# ---------------------------------------------------------------------------
# Userspace mode end to end
# ---------------------------------------------------------------------------


async def test_userspace_end_to_end(api: Api, backends: Backends, tmp_path: Path) -> None:
    host = plugin_host_for(named={"kcore.proxy:userspace": UserspaceProxy})
    runner = make_runner(api, host, "userspace", tmp_path)
    async with running(runner):
        port = free_port()
        service = await api.create_service("web", port)
        cluster_ip = service["spec"]["clusterIP"]
        assert cluster_ip.startswith("127.96.")
        # One slice per backend: each listens on its own port of 127.0.0.1.
        for name, bport in backends.ports.items():
            await api.put_slice("web", f"web-{name}", [("127.0.0.1", bport, True)])

        # All three backends answer through the ClusterIP, evenly (round robin).
        await eventually(lambda: ready_ports(runner, 3), "three ready endpoints synced")
        await eventually(lambda: ask(cluster_ip, port), "the service to answer")
        counts = await tally(cluster_ip, port, 30)
        assert counts == Counter({"a": 10, "b": 10, "c": 10})
        assert "default/web:http" in runner.render_rules()

        # Endpoint "b" not ready: it stops getting new connections.
        await api.put_slice("web", "web-b", [("127.0.0.1", backends.ports["b"], False)])

        async def b_gone() -> bool:
            return "b" not in await tally(cluster_ip, port, 6)

        await eventually(lambda: ready_ports(runner, 2), "endpoint b synced as not ready")
        await eventually(b_gone, "endpoint b to leave the rotation")
        counts = await tally(cluster_ip, port, 20)
        assert counts == Counter({"a": 10, "c": 10})

        # Deleting the service closes its listener.
        await api.services.delete("web", namespace="default")
        await eventually(lambda: refused(cluster_ip, port), "connections to be refused")
        assert runner.last_state is not None
        assert [sp.key for sp in runner.last_state.services] == ["default/kubernetes:https"]
    # stop() cleaned up the mode: nothing listens any more.
    assert (tmp_path / "proxy-mode").read_text().strip() == "userspace"


async def test_stop_removes_listeners(api: Api, backends: Backends, tmp_path: Path) -> None:
    host = plugin_host_for(named={"kcore.proxy:userspace": UserspaceProxy})
    runner = make_runner(api, host, "userspace", tmp_path)
    port = free_port()
    async with running(runner):
        service = await api.create_service("web", port)
        cluster_ip = service["spec"]["clusterIP"]
        await api.put_slice("web", "web-a", [("127.0.0.1", backends.ports["a"], True)])
        assert await eventually(lambda: ask(cluster_ip, port), "the service to answer") == "a"
    assert await refused(cluster_ip, port)


# ---------------------------------------------------------------------------
# Mode switching, batching, resync, retries (fake mode)
# ---------------------------------------------------------------------------


async def test_switching_modes_cleans_up_the_previous_mode(api: Api, backends: Backends, tmp_path: Path) -> None:
    fake = FakeMode()
    host = plugin_host_for(named={"kcore.proxy:fake": fake, "kcore.proxy:userspace": UserspaceProxy})
    (tmp_path / "proxy-mode").write_text("fake\n")
    runner = make_runner(api, host, "userspace", tmp_path)
    async with running(runner):
        assert fake.cleanups == 1
        # Started (to learn its settings and this node's context), cleaned up, never driven.
        assert len(fake.starts) == 1 and fake.states == []
        assert fake.starts[0][1].data_dir == tmp_path
        assert (tmp_path / "proxy-mode").read_text().strip() == "userspace"
    assert fake.cleanups == 1

    # Same mode again: no cleanup of anything else at start.
    runner = make_runner(api, host, "userspace", tmp_path)
    async with running(runner):
        assert fake.cleanups == 1


async def test_fake_mode_lifecycle_and_uninstalled_previous_mode(api: Api, tmp_path: Path) -> None:
    fake = FakeMode()
    host = plugin_host_for(named={"kcore.proxy:fake": fake})
    (tmp_path / "proxy-mode").write_text("gone\n")  # no longer installed: tolerated
    config = parse_config({"proxy": {"mode": "fake", "service_cidr": SERVICE_CIDR, "fake": {"knob": 3}}})
    runner = ProxyRunner(api.client, host, config, node_name="node-1", node_ips=["127.0.0.1"], data_dir=tmp_path)
    async with running(runner):
        assert len(fake.starts) == 1
        settings, context = fake.starts[0]
        assert settings == {"knob": 3}
        assert (context.node_name, context.node_ips, context.data_dir) == ("node-1", ("127.0.0.1",), tmp_path)
        # The API server's own "kubernetes" service is always there.
        assert [sp.key for sp in fake.states[0].services] == ["default/kubernetes:https"]
        assert fake.cleanups == 0
        assert (tmp_path / "proxy-mode").read_text().strip() == "fake"
        assert runner.render_rules() == "fake: 1 service ports\n"
    assert fake.cleanups == 1


async def test_changes_are_batched(api: Api, tmp_path: Path) -> None:
    fake = FakeMode()
    host = plugin_host_for(named={"kcore.proxy:fake": fake})
    runner = make_runner(api, host, "fake", tmp_path, debounce_seconds=0.05)
    async with running(runner):
        before = runner.syncs
        for _ in range(20):  # a burst of changes, all within the debounce window
            runner._changed({})
        await runner.wait_for_sync(before)
        await asyncio.sleep(0.3)
        assert runner.syncs == before + 1


async def test_state_follows_the_api(api: Api, tmp_path: Path) -> None:
    fake = FakeMode()
    host = plugin_host_for(named={"kcore.proxy:fake": fake})
    runner = make_runner(api, host, "fake", tmp_path)
    async with running(runner):
        service = await api.create_service("web", 8080, sessionAffinity="ClientIP")
        await api.put_slice("web", "web-x", [("10.244.0.5", 9000, True), ("10.244.0.6", 9000, False)])

        async def seen() -> ProxyState | None:
            state = fake.states[-1]
            web = state.by_key().get("default/web:http")
            return state if web is not None and len(web.endpoints) == 2 else None

        state = await eventually(seen, "the service and its slice in the state")
        sp = state.by_key()["default/web:http"]
        assert (sp.key, sp.cluster_ip, sp.port, sp.session_affinity) == (
            "default/web:http", service["spec"]["clusterIP"], 8080, True)
        assert [(e.ip, e.port, e.ready) for e in sp.endpoints] == [("10.244.0.5", 9000, True),
                                                                   ("10.244.0.6", 9000, False)]
        assert state.node_name == "node-1" and state.cluster_cidr == "10.244.0.0/16"
        # fetch_state (what `kcore proxy rules` uses) sees the same thing.
        fetched = await fetch_state(api.client, node_name="node-1", node_ips=["127.0.0.1"],
                                    cluster_cidr="10.244.0.0/16")
        assert fetched.services == state.services


async def test_periodic_resync_and_retry_after_failure(api: Api, tmp_path: Path) -> None:
    fake = FakeMode(fail_syncs=1)
    host = plugin_host_for(named={"kcore.proxy:fake": fake})
    runner = make_runner(api, host, "fake", tmp_path, resync_seconds=0.1, retry_seconds=0.05)
    async with running(runner):  # the first sync failed, the retry succeeded
        assert runner.last_error is None
        await runner.wait_for_sync(runner.syncs + 1)  # resyncs keep coming with no change
    assert fake.fail_syncs == 0 and len(fake.states) >= 2


async def test_unknown_mode_is_a_clear_error(api: Api, tmp_path: Path) -> None:
    from kcore.errors import UserFacingError

    host = plugin_host_for(named={"kcore.proxy:fake": FakeMode()})
    runner = make_runner(api, host, "nope", tmp_path)
    with pytest.raises(UserFacingError, match="'nope'"):
        await runner.run()
    await runner.stop()


def test_render_rules_iptables_fallback() -> None:
    host = plugin_host_for()
    text = render_rules(host, "iptables", ProxyState())
    assert "*nat" in text


# ---------------------------------------------------------------------------
# `kcore proxy rules`
# ---------------------------------------------------------------------------


async def test_rules_from_admin_kubeconfig_over_tls(tmp_path: Path) -> None:
    from kcore.api.registry import builtin_registry
    from kcore.apiserver.authn import Authenticator
    from kcore.apiserver.pki import ADMIN_USER, ClusterPKI
    from kcore.apiserver.security import ApiSecurity
    from kcore.kubeconfig import build_kubeconfig, write_kubeconfig
    from kcore.proxy.runner import rules_from_kubeconfig

    pki = ClusterPKI.load_or_create(tmp_path, node_name="node-1", bind_address="127.0.0.1")
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0),
                       ssl_context=pki.ssl_server_context(),
                       security=ApiSecurity(Authenticator(pki), builtin_registry()),
                       ca_pem=pki.ca_pem, service_cidr=SERVICE_CIDR)
    await server.start()
    try:
        kubeconfig = tmp_path / "kubeconfig.yaml"
        write_kubeconfig(kubeconfig, build_kubeconfig(
            f"https://127.0.0.1:{server.port}", pki.ca_pem, user=ADMIN_USER,
            client_cert_pem=pki.admin_cert_pem, client_key_pem=pki.admin_key_pem))
        admin = ApiClient.from_kubeconfig(kubeconfig)
        try:
            api = Api(server, admin)
            service = await api.create_service("web", 8080)
            await api.put_slice("web", "web-x", [("10.244.0.5", 9000, True)])
        finally:
            await admin.close()
        ip = service["spec"]["clusterIP"]

        host = plugin_host_for(named={"kcore.proxy:userspace": UserspaceProxy})
        text = await rules_from_kubeconfig(parse_config({}), kubeconfig, host=host, node_name="node-1")
        assert f"TCP    {ip}:8080" in text and "default/web:http" in text and "10.244.0.5:9000" in text

        iptables = await rules_from_kubeconfig(parse_config({"proxy": {"mode": "iptables"}}), kubeconfig,
                                               host=plugin_host_for(), node_name="node-1")
        assert "*nat" in iptables and ip in iptables
    finally:
        await server.stop()
        await store.close()


async def test_rules_errors_are_user_facing(tmp_path: Path) -> None:
    from kcore.errors import UserFacingError
    from kcore.kubeconfig import build_kubeconfig, write_kubeconfig
    from kcore.proxy.runner import rules_from_kubeconfig

    with pytest.raises(UserFacingError, match="not found"):
        await rules_from_kubeconfig(parse_config({}), tmp_path / "missing.yaml")
    kubeconfig = tmp_path / "kubeconfig.yaml"
    write_kubeconfig(kubeconfig, build_kubeconfig(f"http://127.0.0.1:{free_port()}", b"", user="admin", token="t"))
    with pytest.raises(UserFacingError, match="cannot reach the API server"):
        await rules_from_kubeconfig(parse_config({}), kubeconfig, host=plugin_host_for())


def test_cli_proxy_rules_missing_kubeconfig(tmp_path: Path) -> None:
    # A subprocess: main() configures logging process-wide.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "kcore.cli", "proxy", "rules", "--kubeconfig", str(tmp_path / "nope.yaml")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("kcore: error: kubeconfig") and "not found" in result.stderr
    assert "Traceback" not in result.stderr
