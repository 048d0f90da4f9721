"""ApiClient / ResourceClient against a real API server: CRUD, errors, paging, watch, binding."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from client.support import Cluster, configmap, pod

from kcore.api.registry import builtin_registry
from kcore.apiserver.authn import Authenticator
from kcore.apiserver.pki import ClusterPKI, client_ssl_context
from kcore.apiserver.security import ApiSecurity
from kcore.apiserver.server import ApiServer
from kcore.client.rest import ApiClient, ApiConnectionError, ApiStatusError, WatchEvent, bind_pod
from kcore.config import ApiServerConfig
from kcore.kubeconfig import build_kubeconfig, write_kubeconfig
from kcore.store.memory import MemoryStore


async def test_crud_round_trip(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    assert client.resource("v1", "ConfigMap") is cms
    created = await cms.create(configmap("one", a="1"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    got = await cms.get("one", "default")
    assert got["data"] == {"a": "1"} and got["kind"] == "ConfigMap"

    got["data"]["a"] = "2"
    updated = await cms.update(got)
    assert updated["data"] == {"a": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(got["metadata"]["resourceVersion"])

    # The stale copy now conflicts.
    with pytest.raises(ApiStatusError) as stale:
        await cms.update(got)
    assert stale.value.code == 409 and stale.value.reason == "Conflict"
    assert stale.value.status["kind"] == "Status"

    merged = await cms.patch("one", {"data": {"b": "3"}})
    assert merged["data"] == {"a": "2", "b": "3"}
    strategic = await cms.patch("one", {"metadata": {"labels": {"x": "y"}}}, patch_type="strategic")
    assert strategic["metadata"]["labels"] == {"x": "y"}
    jsonp = await cms.patch("one", [{"op": "remove", "path": "/data/b"}], patch_type="json")
    assert jsonp["data"] == {"a": "2"}
    applied = await cms.patch("one", {"apiVersion": "v1", "kind": "ConfigMap",
                                      "metadata": {"name": "one"}, "data": {"c": "4"}},
                              patch_type="apply", field_manager="tester")
    assert applied["data"]["c"] == "4"
    assert any(m["manager"] == "tester" for m in applied["metadata"]["managedFields"])

    deleted = await cms.delete("one")
    assert deleted is not None and deleted["metadata"]["name"] == "one"
    assert await cms.get_or_none("one") is None
    with pytest.raises(ApiStatusError) as missing:
        await cms.get("one")
    assert missing.value.code == 404 and missing.value.reason == "NotFound"
    assert missing.value.message == 'configmaps "one" not found'
    with pytest.raises(ApiStatusError) as gone:
        await cms.delete("one")
    assert gone.value.code == 404
    assert await cms.delete("one", missing_ok=True) is None


async def test_create_errors_carry_the_status(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("dup"))
    with pytest.raises(ApiStatusError) as exists:
        await cms.create(configmap("dup"))
    assert (exists.value.code, exists.value.reason) == (409, "AlreadyExists")
    with pytest.raises(ApiStatusError) as invalid:
        await cms.create(configmap("Not_A_Name"))
    assert (invalid.value.code, invalid.value.reason) == (422, "Invalid")
    with pytest.raises(ApiStatusError) as ns_missing:
        await cms.create(configmap("x", namespace="no-such-namespace"))
    assert ns_missing.value.code == 404


async def test_delete_preconditions(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    obj = await cms.create(configmap("pre"))
    with pytest.raises(ApiStatusError) as wrong:
        await cms.delete("pre", preconditions={"uid": "not-the-uid"})
    assert wrong.value.code == 409
    await cms.delete("pre", preconditions={"uid": obj["metadata"]["uid"]})
    assert await cms.get_or_none("pre") is None


async def test_cluster_scoped_and_status(client: ApiClient) -> None:
    namespaces = client.resource("v1", "Namespace")
    await namespaces.create({"metadata": {"name": "team-a"}})
    names = {n["metadata"]["name"] for n in (await namespaces.list())[0]}
    assert {"default", "kube-system", "team-a"} <= names

    pods = client.resource("v1", "Pod")
    created = await pods.create(pod("p", namespace="team-a"))
    created["status"] = {"phase": "Running"}
    created["spec"]["containers"][0]["image"] = "ignored-by-status"
    after = await pods.update_status(created)
    assert after["status"]["phase"] == "Running"
    assert after["spec"]["containers"][0]["image"] == "busybox"  # /status leaves spec alone
    patched = await pods.patch("p", {"status": {"message": "hi"}}, namespace="team-a", subresource="status")
    assert patched["status"]["message"] == "hi"


async def test_list_follows_continue_tokens(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    for i in range(7):
        await cms.create(configmap(f"cm-{i}", labels={"even": str(i % 2 == 0).lower()}))
    requests: list[dict[str, Any]] = []
    original = client.request

    async def counting(method: str, path: str, **kw: Any) -> Any:
        requests.append(kw.get("params") or {})
        return await original(method, path, **kw)

    client.request = counting  # type: ignore[method-assign]
    items, rv = await cms.list("default", limit=2)
    client.request = original  # type: ignore[method-assign]
    assert sorted(i["metadata"]["name"] for i in items) == [f"cm-{i}" for i in range(7)]
    assert all(i["kind"] == "ConfigMap" and i["apiVersion"] == "v1" for i in items)
    assert len(requests) == 4 and all("continue" in p for p in requests[1:])
    assert int(rv) >= max(int(i["metadata"]["resourceVersion"]) for i in items)

    even, _ = await cms.list("default", label_selector="even=true", limit=2)
    assert sorted(i["metadata"]["name"] for i in even) == ["cm-0", "cm-2", "cm-4", "cm-6"]
    by_name, _ = await cms.list(field_selector="metadata.name=cm-3")
    assert [i["metadata"]["name"] for i in by_name] == ["cm-3"]


async def test_watch_sees_added_modified_deleted(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("before"))
    _, rv = await cms.list("default")
    events: asyncio.Queue[WatchEvent] = asyncio.Queue()

    async def consume() -> None:
        async for event in cms.watch("default", resource_version=rv):
            await events.put(event)

    task = asyncio.create_task(consume())
    try:
        await cms.create(configmap("w", a="1"))
        await cms.patch("w", {"data": {"a": "2"}})
        await cms.delete("w")
        seen = [await asyncio.wait_for(events.get(), 10) for _ in range(3)]
    finally:
        task.cancel()
    assert [(e.type, e.object["metadata"]["name"]) for e in seen] == [
        ("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
    assert seen[1].object["data"] == {"a": "2"}
    rvs = [int(e.object["metadata"]["resourceVersion"]) for e in seen]
    assert rvs == sorted(rvs) and rvs[0] > int(rv)


async def test_watch_without_version_starts_with_current_objects(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    await cms.create(configmap("existing"))
    stream = cms.watch("default", label_selector=None, timeout_seconds=30).__aiter__()
    first = await asyncio.wait_for(stream.__anext__(), 10)
    await stream.aclose()
    assert (first.type, first.object["metadata"]["name"]) == ("ADDED", "existing")


async def test_watch_ends_cleanly_on_server_timeout(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    _, rv = await cms.list()
    seen = [e async for e in cms.watch(resource_version=rv, timeout_seconds=1, allow_bookmarks=False)]
    assert seen == []


async def test_watch_from_compacted_version_raises_410(cluster: Cluster) -> None:
    cms = cluster.client.resource("v1", "ConfigMap")
    first = await cms.create(configmap("old"))
    await cms.patch("old", {"data": {"v": "2"}})
    await cms.patch("old", {"data": {"v": "3"}})
    await cluster.store.compact(await cluster.store.current_revision())
    with pytest.raises(ApiStatusError) as gone:
        async for _ in cms.watch(resource_version=first["metadata"]["resourceVersion"]):
            pass
    assert gone.value.code == 410 and gone.value.reason in ("Expired", "Gone")


async def test_bind_pod(client: ApiClient) -> None:
    pods = client.resource("v1", "Pod")
    await pods.create(pod("web"))
    await bind_pod(client, "default", "web", "node-1")
    bound = await pods.get("web")
    assert bound["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in bound["status"]["conditions"])
    with pytest.raises(ApiStatusError) as again:
        await bind_pod(client, "default", "web", "node-2")
    assert again.value.code == 409


async def test_raw_request_and_non_status_errors(client: ApiClient) -> None:
    version = await client.request("GET", "/version")
    assert "gitVersion" in version
    assert await client.request("GET", "/healthz") == "ok"
    with pytest.raises(ApiStatusError) as missing:
        await client.request("GET", "/apis/nothing.example/v1/widgets")
    assert missing.value.code == 404
    err = ApiStatusError.from_response(502, b"<html>bad gateway</html>")
    assert (err.code, err.reason) == (502, "Unknown") and "bad gateway" in err.message


async def test_connection_refused_is_a_clear_error(cluster: Cluster) -> None:
    await cluster.stop_server()
    with pytest.raises(ApiConnectionError) as down:
        await cluster.client.resource("v1", "ConfigMap").list()
    assert str(cluster.port) in str(down.value)
    await cluster.start_server()
    assert (await cluster.client.resource("v1", "ConfigMap").list())[0] == []


async def test_from_kubeconfig_over_tls_with_token(tmp_path: Path) -> None:
    pki = ClusterPKI.load_or_create(tmp_path / "pki", node_name="node-a", bind_address="127.0.0.1")
    store = MemoryStore()
    registry = builtin_registry()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0), registry=registry,
                       ssl_context=pki.ssl_server_context(),
                       security=ApiSecurity(Authenticator(pki), registry))
    await server.start()
    try:
        path = tmp_path / "kubeconfig.yaml"
        write_kubeconfig(path, build_kubeconfig(server.url, pki.ca_pem, user="admin",
                                                token=pki.admin_token, namespace="kube-system"))
        async with ApiClient.from_kubeconfig(path, user_agent="kcore-test") as client:
            assert client.base_url.startswith("https://")
            assert client.default_namespace == "kube-system"
            cms = client.resource("v1", "ConfigMap")
            await cms.create(configmap("tls", namespace="kube-system"))
            assert [i["metadata"]["name"] for i in (await cms.list("kube-system"))[0]] == ["tls"]
            assert (await cms.get("tls"))["metadata"]["namespace"] == "kube-system"
        # The same TLS trust without the token is anonymous, and refused.
        async with ApiClient(server.url, ssl_context=client_ssl_context(pki.ca_pem)) as anonymous:
            with pytest.raises(ApiStatusError) as refused:
                await anonymous.resource("v1", "ConfigMap").list("kube-system")
            assert refused.value.code in (401, 403)
    finally:
        await server.stop()
        await store.close()


async def test_watch_delivers_objects_larger_than_a_read_buffer(client: ApiClient) -> None:
    cms = client.resource("v1", "ConfigMap")
    _, rv = await cms.list()
    big = "x" * 400_000  # several socket reads, beyond aiohttp's default line limit
    stream = cms.watch(resource_version=rv).__aiter__()
    first = asyncio.ensure_future(stream.__anext__())
    await cms.create(configmap("big", blob=big))
    await cms.create(configmap("small"))
    events = [await asyncio.wait_for(first, 10), await asyncio.wait_for(stream.__anext__(), 10)]
    await stream.aclose()
    assert [e.object["metadata"]["name"] for e in events] == ["big", "small"]
    assert events[0].object["data"]["blob"] == big


async def test_watch_passes_bookmarks_on(cluster: Cluster) -> None:
    cluster.server.handlers.bookmark_interval = 0.05
    cms = cluster.client.resource("v1", "ConfigMap")
    await cms.create(configmap("a"))
    _, rv = await cms.list()
    stream = cms.watch(resource_version=rv).__aiter__()
    event = await asyncio.wait_for(stream.__anext__(), 10)
    await stream.aclose()
    assert event.type == "BOOKMARK" and int(event.object["metadata"]["resourceVersion"]) >= int(rv)
