"""The REST client every kcore component uses to talk to the API server.

Objects travel as plain wire dicts (what the API serves), not pydantic models:
components read a few fields and write small patches, so validating whole objects
on the client would cost time for nothing. Failures come back as
:class:`ApiStatusError` carrying the server's ``Status``, the way client-go's
``StatusError`` does, so callers branch on ``code``/``reason``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from kcore.api.registry import KindInfo, KindRegistry, builtin_registry
from kcore.log import get_logger

log = get_logger("client")

JSON = "application/json"
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
"""``patch_type`` -> Content-Type, as kubectl's ``--type`` names them."""

_HTTP_REASONS: dict[int, str] = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict", 410: "Gone",
    413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid",
    429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
}
_MAX_429_RETRIES = 5


class ApiStatusError(Exception):
    """A non-2xx answer (or a watch ERROR event): the server's ``Status`` and its parts."""

    def __init__(self, status: dict[str, Any]) -> None:
        self.status = status
        self.code: int = int(status.get("code") or 0)
        self.reason: str = str(status.get("reason") or _HTTP_REASONS.get(self.code, "Unknown"))
        self.message: str = str(status.get("message") or self.reason)
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @classmethod
    def from_response(cls, code: int, body: bytes) -> ApiStatusError:
        """Build from an HTTP answer; a body that is not a Status still yields one."""
        status: Any = None
        if body:
            try:
                status = orjson.loads(body)
            except orjson.JSONDecodeError:
                status = None
        if not isinstance(status, dict) or status.get("kind") != "Status":
            text = body.decode("utf-8", "replace").strip() if body else ""
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "code": code, "reason": _HTTP_REASONS.get(code, "Unknown"),
                      "message": text or f"the server answered HTTP {code}"}
        status.setdefault("code", code)
        return cls(status)


class ApiConnectionError(ConnectionError):
    """The API server could not be reached or dropped the connection."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event: ``type`` is ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    object: dict[str, Any]


def _resource_version(obj: dict[str, Any]) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class ApiClient:
    """One HTTP session to one API server, shared by every resource client made from it."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        token: str | None = None,
        user_agent: str = "kcore",
        registry: KindRegistry | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.ssl_context = ssl_context
        self.token = token
        self.user_agent = user_agent
        self.registry = registry or builtin_registry()
        self.timeout = timeout
        self.default_namespace = "default"
        self._session: aiohttp.ClientSession | None = None
        self._resources: dict[tuple[str, str], ResourceClient] = {}

    @classmethod
    def from_kubeconfig(cls, path: str | Path, **kw: Any) -> ApiClient:
        """A client for the current context of a kubeconfig (what ``--kubeconfig`` points at)."""
        from kcore.apiserver.pki import client_ssl_context
        from kcore.kubeconfig import current_credentials, load_kubeconfig

        creds = current_credentials(load_kubeconfig(path))
        server: str = creds["server"]
        if server.startswith("https://") and "ssl_context" not in kw and creds["ca_pem"]:
            kw["ssl_context"] = client_ssl_context(creds["ca_pem"], creds["client_cert_pem"],
                                                   creds["client_key_pem"])
        if creds["token"] and "token" not in kw:
            kw["token"] = creds["token"]
        client = cls(server, **kw)
        client.default_namespace = creds["namespace"] or "default"
        return client

    # ---- lifecycle -------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        # Made lazily: an aiohttp session belongs to the loop that first uses it.
        if self._session is None or self._session.closed:
            headers = {"User-Agent": self.user_agent, "Accept": JSON}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            # No connection cap: every informer holds one connection open for its watch.
            connector = aiohttp.TCPConnector(limit=0, ssl=self.ssl_context if self.ssl_context else True)
            self._session = aiohttp.ClientSession(headers=headers, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- resources -------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> ResourceClient:
        """The client of one kind (cached, so call it freely)."""
        key = (api_version, kind)
        client = self._resources.get(key)
        if client is None:
            client = self._resources[key] = ResourceClient(self, self.registry.get(api_version, kind))
        return client

    # ---- raw requests ----------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = JSON,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer (text if not JSON, None if empty).

        A 429 is retried after the server's Retry-After (it was rejected before any
        work was done, so any verb is safe to repeat).
        """
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        headers = {"Content-Type": content_type} if data is not None else {}
        query = _clean_params(params)
        url = self.base_url + path
        for attempt in range(_MAX_429_RETRIES + 1):
            try:
                async with self._get_session().request(
                    method, url, data=data, headers=headers, params=query,
                    timeout=aiohttp.ClientTimeout(total=self.timeout),
                ) as resp:
                    raw = await resp.read()
                    if resp.status == 429 and attempt < _MAX_429_RETRIES:
                        delay = _retry_after(resp.headers.get("Retry-After"), attempt)
                        log.debug("throttled; retrying", method=method, path=path, delay=delay)
                        await asyncio.sleep(delay)
                        continue
                    if resp.status >= 300:
                        raise ApiStatusError.from_response(resp.status, raw)
                    return _decode(raw, resp.headers.get("Content-Type", ""))
            except aiohttp.ClientConnectionError as exc:
                raise ApiConnectionError(f"{method} {url}: {exc or type(exc).__name__}") from exc
            except TimeoutError as exc:
                raise ApiConnectionError(f"{method} {url}: no answer within {self.timeout:g}s") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream_lines(self, path: str, params: dict[str, Any] | None = None) -> AsyncIterator[bytes]:
        """GET a streaming answer and yield it line by line (watch, followed logs).

        Lines are split by hand rather than with ``readline`` so an object larger than
        aiohttp's line limit still arrives whole.
        """
        url = self.base_url + path
        try:
            async with self._get_session().get(
                url, params=_clean_params(params),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, connect=self.timeout),
            ) as resp:
                if resp.status >= 300:
                    raise ApiStatusError.from_response(resp.status, await resp.read())
                buffer = bytearray()
                async for chunk in resp.content.iter_any():
                    scan_from = len(buffer)
                    buffer += chunk
                    start = 0
                    while (end := buffer.find(b"\n", max(start, scan_from))) >= 0:
                        line = bytes(buffer[start:end])
                        start = end + 1
                        if line.strip():
                            yield line
                    if start:
                        del buffer[:start]
                if buffer.strip():
                    yield bytes(buffer)
        except aiohttp.ClientPayloadError as exc:
            raise ApiConnectionError(f"GET {url}: the stream broke off: {exc}") from exc
        except aiohttp.ClientConnectionError as exc:
            raise ApiConnectionError(f"GET {url}: {exc or type(exc).__name__}") from exc


class ResourceClient:
    """CRUD, watch and subresources of one kind. Objects are wire dicts."""

    def __init__(self, api: ApiClient, info: KindInfo) -> None:
        self.api = api
        self.info = info
        root = f"/apis/{info.group}/{info.version}" if info.group else f"/api/{info.version}"
        self._root = root

    # ---- paths -----------------------------------------------------------------

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """The URL path of the collection, an object, or one of its subresources."""
        parts = [self._root]
        if self.info.namespaced and namespace:
            parts.append(f"namespaces/{quote(namespace, safe='')}")
        parts.append(self.info.plural)
        if name is not None:
            if not name:
                raise ValueError(f"a {self.info.kind} name must not be empty")
            parts.append(quote(name, safe=""))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)

    def _namespace(self, namespace: str | None, obj: dict[str, Any] | None = None) -> str | None:
        """The namespace an object call goes to: explicit, else the object's, else the default."""
        if not self.info.namespaced:
            return None
        if namespace:
            return namespace
        if obj is not None:
            ns = (obj.get("metadata") or {}).get("namespace")
            if ns:
                return ns
        return self.api.default_namespace

    def _identify(self, obj: dict[str, Any]) -> tuple[str | None, str]:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ValueError(f"the {self.info.kind} has no metadata.name")
        return self._namespace(None, obj), name

    def _typed(self, obj: dict[str, Any]) -> dict[str, Any]:
        # List items may come without apiVersion/kind; callers expect them set.
        obj.setdefault("apiVersion", self.info.api_version)
        obj.setdefault("kind", self.info.kind)
        return obj

    # ---- reads -----------------------------------------------------------------

    async def get(self, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self._typed(await self.api.request("GET", self.path(self._namespace(namespace), name)))

    async def get_or_none(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return await self.get(name, namespace)
        except ApiStatusError as exc:
            if exc.code == 404:
                return None
            raise

    async def list(
        self,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 0,
        resource_version: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every matching object and the list's resourceVersion.

        ``limit`` is the page size: pages are fetched with continue tokens until the
        end. If a token expires mid-way (410), the whole list is fetched again in one
        request, as client-go's pager does, so the result is still consistent.
        """
        path = self.path(namespace if self.info.namespaced else None)
        params: dict[str, Any] = {"labelSelector": label_selector, "fieldSelector": field_selector,
                                  "limit": limit or None, "resourceVersion": resource_version}
        items: list[dict[str, Any]] = []
        continue_token: str | None = None
        while True:
            page_params = dict(params)
            if continue_token:
                page_params["continue"] = continue_token
                page_params["resourceVersion"] = None
            try:
                page = await self.api.request("GET", path, params=page_params)
            except ApiStatusError as exc:
                if exc.code == 410 and continue_token:
                    log.info("list continue token expired; listing in one request",
                             kind=self.info.kind)
                    items, continue_token = [], None
                    params["limit"] = None
                    continue
                raise
            items.extend(self._typed(item) for item in page.get("items") or [])
            meta = page.get("metadata") or {}
            continue_token = meta.get("continue")
            if not continue_token:
                return items, str(meta.get("resourceVersion") or "")

    # ---- writes ----------------------------------------------------------------

    async def create(self, obj: dict[str, Any], *, namespace: str | None = None,
                     field_manager: str | None = None) -> dict[str, Any]:
        ns = self._namespace(namespace, obj)
        body = self._typed(dict(obj))
        return await self.api.request("POST", self.path(ns), body=body,
                                      params={"fieldManager": field_manager})

    async def update(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace the object; conditional on its resourceVersion when it carries one (409 if stale)."""
        ns, name = self._identify(obj)
        return await self.api.request("PUT", self.path(ns, name), body=self._typed(dict(obj)))

    async def update_status(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace only the status (the ``/status`` subresource)."""
        ns, name = self._identify(obj)
        return await self.api.request("PUT", self.path(ns, name, "status"), body=self._typed(dict(obj)))

    async def patch(
        self,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        """Patch with ``merge``, ``strategic``, ``json`` (RFC 6902) or server-side ``apply``."""
        content_type = PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            raise ValueError(f"unknown patch type {patch_type!r}; use one of {sorted(PATCH_CONTENT_TYPES)}")
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        params: dict[str, Any] = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        return await self.api.request(
            "PATCH", self.path(self._namespace(namespace), name, subresource),
            body=patch, content_type=content_type, params=params)

    async def delete(
        self,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: dict[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """Delete (or start deleting) an object; the server's answer.

        With ``missing_ok`` an object that is already gone answers None instead of
        raising the 404.
        """
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = preconditions
        try:
            return await self.api.request("DELETE", self.path(self._namespace(namespace), name), body=options)
        except ApiStatusError as exc:
            if exc.code == 404 and missing_ok:
                return None
            raise

    # ---- subresources ----------------------------------------------------------

    async def get_subresource(self, name: str, subresource: str,
                              namespace: str | None = None) -> dict[str, Any]:
        return await self.api.request("GET", self.path(self._namespace(namespace), name, subresource))

    async def create_subresource(self, name: str, subresource: str, body: dict[str, Any],
                                 namespace: str | None = None) -> dict[str, Any]:
        return await self.api.request("POST", self.path(self._namespace(namespace), name, subresource),
                                      body=body)

    # ---- watch -----------------------------------------------------------------

    async def watch(
        self,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        """Events after ``resource_version`` (from a fresh list when None), until the stream ends.

        BOOKMARK events are passed on (their object carries only a resourceVersion).
        An ERROR event raises :class:`ApiStatusError` — 410 means "re-list"; a broken
        connection raises :class:`ApiConnectionError`. A clean end of the stream
        (server timeout) just ends the iteration: re-watch from the last version.
        """
        path = self.path(namespace if self.info.namespaced else None)
        params: dict[str, Any] = {
            "watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
            "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if allow_bookmarks else None,
        }
        lines = self.api.stream_lines(path, params)
        try:
            async for line in lines:
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ApiConnectionError(f"watch of {self.info.plural}: undecodable event: {exc}") from exc
                event_type = event.get("type")
                obj = event.get("object") or {}
                if event_type == "ERROR":
                    raise ApiStatusError(obj if isinstance(obj, dict) else {"code": 500, "message": str(obj)})
                if event_type != "BOOKMARK":
                    self._typed(obj)
                yield WatchEvent(event_type, obj)
        finally:
            await lines.aclose()  # type: ignore[attr-defined]


async def bind_pod(client: ApiClient, namespace: str, pod: str, node: str) -> None:
    """Bind a pod to a node through ``pods/{pod}/binding`` (the scheduler's one write)."""
    body = {"apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
    await client.resource("v1", "Pod").create_subresource(pod, "binding", body, namespace=namespace)


def _clean_params(params: dict[str, Any] | None) -> dict[str, str] | None:
    if not params:
        return None
    out = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()
           if v is not None and v != ""}
    return out or None


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type or raw[:1] in (b"{", b"["):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return raw.decode("utf-8", "replace")


def _retry_after(header: str | None, attempt: int) -> float:
    try:
        seconds = float(header) if header else 0.0
    except ValueError:
        seconds = 0.0
    return min(max(seconds, 0.05 * (2 ** attempt)), 5.0)
