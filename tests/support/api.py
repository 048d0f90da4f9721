"""A raw HTTP client for API tests: status, decoded body, headers; never raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from kcore.apiserver.server import ApiServer


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any


class Api:
    """A tiny raw client: returns status, decoded body and headers, never raises."""

    def __init__(self, server: ApiServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.url = server.url

    async def request(self, method: str, path: str, body: Any = None, *,
                      content_type: str = "application/json", headers: dict[str, str] | None = None,
                      raw: bytes | None = None) -> Reply:
        data = raw if raw is not None else (None if body is None else orjson.dumps(body))
        hdrs = {"Content-Type": content_type, **(headers or {})}
        async with self.session.request(method, self.url + path, data=data, headers=hdrs) as resp:
            text = await resp.read()
            try:
                decoded = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                decoded = text.decode()
            return Reply(resp.status, decoded, resp.headers)

    async def get(self, path: str, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> Reply:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> Reply:
        return await self.request("PUT", path, body, **kw)

    async def patch(self, path: str, body: Any, content_type: str, **kw: Any) -> Reply:
        return await self.request("PATCH", path, body, content_type=content_type, **kw)

    async def delete(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return await self.request("DELETE", path, body, **kw)



def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}
