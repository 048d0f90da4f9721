"""kcore.admission plugins: mutations are applied, rejections reach the client as 403."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from support.api import Api, pod

from kcore import hookimpl
from kcore.apiserver.server import ApiServer
from kcore.config import ApiServerConfig
from kcore.store.memory import MemoryStore
from kcore.testing import plugin_host_for


class TeamLabel:
    """Adds a label to every pod (a mutating plugin)."""

    @hookimpl
    def kcore_admission_mutate(self, request: Any) -> dict[str, Any] | None:
        if request.kind != "Pod" or request.operation != "CREATE":
            return None
        obj = dict(request.object)
        obj["metadata"] = {**obj["metadata"], "labels": {**(obj["metadata"].get("labels") or {}),
                                                         "team": "blue"}}
        return obj


class SeesTeam:
    """Runs after TeamLabel and records what it saw."""

    seen: list[str] = []

    @hookimpl
    def kcore_admission_mutate(self, request: Any) -> None:
        if request.kind == "Pod":
            SeesTeam.seen.append((request.object["metadata"].get("labels") or {}).get("team", ""))


class NoLatest:
    """Rejects images tagged latest (a validating plugin)."""

    @hookimpl
    def kcore_admission_validate(self, request: Any) -> str | None:
        if request.kind != "Pod" or request.object is None:
            return None
        for container in request.object["spec"]["containers"]:
            if container["image"].endswith(":latest"):
                return f"image {container['image']} uses the latest tag"
        return None


@pytest.fixture
async def api_with_plugins() -> AsyncIterator[Api]:
    host = plugin_host_for(SeesTeam(), TeamLabel(), NoLatest())
    store = MemoryStore()
    server = ApiServer(store, config=ApiServerConfig(bind_address="127.0.0.1", port=0, insecure_http=True),
                       hook=host.hook)
    await server.start()
    async with aiohttp.ClientSession() as session:
        yield Api(server, session)
    await server.stop()


async def test_mutation_is_stored_and_chained(api_with_plugins: Api) -> None:
    SeesTeam.seen.clear()
    reply = await api_with_plugins.post("/api/v1/namespaces/default/pods", pod("m1"))
    assert reply.status == 201, reply.body
    assert reply.body["metadata"]["labels"] == {"team": "blue"}
    assert SeesTeam.seen == ["blue"]


async def test_rejection_reason_reaches_the_client(api_with_plugins: Api) -> None:
    body = pod("bad")
    body["spec"]["containers"][0]["image"] = "nginx:latest"
    reply = await api_with_plugins.post("/api/v1/namespaces/default/pods", body)
    assert reply.status == 403
    assert reply.body["reason"] == "Forbidden"
    assert reply.body["message"] == 'pods "bad" is forbidden: image nginx:latest uses the latest tag'
    assert (await api_with_plugins.get("/api/v1/namespaces/default/pods/bad")).status == 404
