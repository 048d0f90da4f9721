"""Optimistic concurrency and watch consistency under concurrent load, over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from support.api import Api

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_concurrent_read_increment_write_loses_no_update(api: Api) -> None:
    clients, increments = 50, 4
    assert (await api.post(CONFIGMAPS, configmap("counter", value="0"))).status == 201
    successes = 0
    conflicts = 0

    async def client() -> None:
        nonlocal successes, conflicts
        async with aiohttp.ClientSession() as session:  # one connection pool per client
            own = Api(api.server, session)
            done = 0
            while done < increments:
                current = await own.get(f"{CONFIGMAPS}/counter")
                assert current.status == 200, current.body
                obj = current.body
                obj["data"]["value"] = str(int(obj["data"]["value"]) + 1)
                reply = await own.put(f"{CONFIGMAPS}/counter", obj)
                if reply.status == 409:
                    assert reply.body["reason"] == "Conflict"
                    conflicts += 1
                    continue
                assert reply.status == 200, reply.body
                successes += 1
                done += 1

    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(clients))), timeout=120)
    final = await api.get(f"{CONFIGMAPS}/counter")
    assert int(final.body["data"]["value"]) == successes == clients * increments
    assert conflicts > 0  # the clients really raced


async def _watch(api: Api, resource_version: str, until: str, events: list[tuple[str, str, str]]) -> None:
    """Collect (type, name, resourceVersion) from a watch until ``until`` is ADDED."""
    url = f"{api.url}{CONFIGMAPS}?watch=true&resourceVersion={resource_version}&timeoutSeconds=60"
    async with api.session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        async for line in resp.content:
            if not line.strip():
                continue
            event = orjson.loads(line)
            assert event["type"] in ("ADDED", "MODIFIED", "DELETED"), event
            meta = event["object"]["metadata"]
            events.append((event["type"], meta["name"], meta["resourceVersion"]))
            if event["type"] == "ADDED" and meta["name"] == until:
                return
    raise AssertionError(f"watch from {resource_version} ended before {until} was added: {events}")


async def test_watches_from_successive_versions_see_suffixes_of_one_sequence(api: Api) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await _watch_suffixes(Api(api.server, session))  # > 100 connections at once


async def _watch_suffixes(api: Api) -> None:
    writes, watchers = 150, 100
    start = (await api.get(CONFIGMAPS)).body["metadata"]["resourceVersion"]
    versions: list[str] = []
    written = asyncio.Condition()

    async def writer() -> None:
        for i in range(writes):
            name = f"burst-{i % 7}"
            if i < 7:
                reply = await api.post(CONFIGMAPS, configmap(name, i=str(i)))
            elif i % 11 == 0:
                reply = await api.delete(f"{CONFIGMAPS}/{name}")
                if reply.status == 404:
                    reply = await api.post(CONFIGMAPS, configmap(name, i=str(i)))
            else:
                reply = await api.patch(f"{CONFIGMAPS}/{name}", {"data": {"i": str(i)}},
                                        "application/merge-patch+json")
                if reply.status == 404:
                    reply = await api.post(CONFIGMAPS, configmap(name, i=str(i)))
            assert reply.status in (200, 201), reply.body
            async with written:
                versions.append(reply.body["metadata"]["resourceVersion"])
                written.notify_all()
            if i % 3 == 0:
                await asyncio.sleep(0)  # let watchers in mid-burst
        assert (await api.post(CONFIGMAPS, configmap("the-end"))).status == 201

    full: list[tuple[str, str, str]] = []
    seen: list[list[tuple[str, str, str]]] = [[] for _ in range(watchers)]
    opened_at: list[str] = []

    async def open_watches() -> None:
        tasks = []
        for i in range(watchers):
            async with written:
                await written.wait_for(lambda: len(versions) > i)
                opened_at.append(versions[i])
            tasks.append(asyncio.create_task(_watch(api, versions[i], "the-end", seen[i])))
        await asyncio.gather(*tasks)

    reference = asyncio.create_task(_watch(api, start, "the-end", full))
    await asyncio.wait_for(asyncio.gather(writer(), open_watches(), reference), timeout=120)

    rvs = [int(rv) for _, _, rv in full]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs) == writes + 1
    assert [rv for _, _, rv in full[:-1]] == versions
    for i, events in enumerate(seen):
        position = versions.index(opened_at[i])
        assert events == full[position + 1:], f"watch {i} from {opened_at[i]}"
