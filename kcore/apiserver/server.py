"""The API server process part: HTTP(S) listener, middleware, routing.

Every request passes, in order: metrics and error translation (any failure
becomes a ``Status``), the in-flight limit (429), authentication (401 for bad
credentials), authorization (403 with Kubernetes' message), then discovery,
OpenAPI, health, or the resource handlers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import errno
import ipaddress
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from kcore.api.registry import KindRegistry, builtin_registry
from kcore.apiserver import discovery, errors
from kcore.apiserver.admission import SYSTEM_NAMESPACES, AdmissionChain
from kcore.apiserver.allocators import ServiceAllocator
from kcore.apiserver.bootstrap_rbac import bootstrap_policy
from kcore.apiserver.handlers import LogSource, ResourceHandlers, json_response
from kcore.apiserver.metrics import ApiMetrics
from kcore.apiserver.namespace_cache import NamespaceCache
from kcore.apiserver.requestinfo import RequestInfo, parse_request
from kcore.apiserver.resources import ResourceStore, utc_now
from kcore.apiserver.security import ApiSecurity
from kcore.apiserver.watchcache import WatchCaches
from kcore.config import ApiServerConfig
from kcore.errors import UserFacingError
from kcore.log import get_logger
from kcore.store.contract import Store
from kcore.store.instrumented import InstrumentedStore

log = get_logger("apiserver")

# Served to anyone: agents fetch the CA before they can verify the server, then
# check it against the hash pinned in their join token.
PUBLIC_PATHS = frozenset({"/cacerts"})
INFO_KEY = web.RequestKey("info", RequestInfo)
USER_KEY = web.RequestKey("user", object)
Authenticate = Callable[[web.Request], Any]
Authorize = Callable[[Any, RequestInfo], Awaitable[None]]


class ApiServer:
    """The Kubernetes API over one store."""

    def __init__(
        self,
        store: Store,
        *,
        config: ApiServerConfig | None = None,
        registry: KindRegistry | None = None,
        ssl_context: ssl.SSLContext | None = None,
        security: ApiSecurity | None = None,
        hook: Any = None,
        log_source: LogSource | None = None,
        ca_pem: bytes | None = None,
        default_toleration_seconds: int = 300,
        clock: Callable[[], dt.datetime] = utc_now,
        service_cidr: str = "10.96.0.0/12",
        node_port_range: str = "30000-32767",
    ) -> None:
        self.config = config or ApiServerConfig()
        self.registry = registry or builtin_registry()
        self.ssl_context = ssl_context
        self.security = security
        self.ca_pem = ca_pem
        self.authenticate: Authenticate | None = security.authenticate if security else None
        self.authorize: Authorize | None = security.authorize if security else None
        self.clock = clock
        self.metrics = ApiMetrics(watchers=lambda: self.caches.watcher_count)
        self.store = InstrumentedStore(store, self.metrics.observe_store)
        self.resources = ResourceStore(self.store, clock)
        # Service cluster IPs and node ports, persisted as store keys (allocators.py).
        self.services = ServiceAllocator(
            self.store, service_cidr=service_cidr, node_port_range=node_port_range,
            load_balancer_ip=self.advertise_address)
        self.resources.services = self.services
        self.caches = WatchCaches(self.store)
        namespaces = self.registry.get("v1", "Namespace")
        self.namespaces = NamespaceCache(self.resources, self.caches, namespaces)
        self.admission = AdmissionChain(
            namespace_lookup=lambda name: self.namespaces.lookup(name),
            hook=hook, toleration_seconds=default_toleration_seconds,
        )
        self.handlers = ResourceHandlers(
            self.registry, self.resources, self.caches, self.admission,
            max_body_bytes=self.config.max_request_body_bytes, log_source=log_source, clock=clock,
        )
        # (group, resource, subresource) served outside the generic handlers.
        self.special: dict[tuple[str, str, str | None],
                           Callable[[web.Request, RequestInfo, Any], Awaitable[web.StreamResponse]]] = {}
        if security is not None:
            self.special[("authorization.k8s.io", "selfsubjectaccessreviews", None)] = \
                security.self_subject_access_review
            self.special[("", "serviceaccounts", "token")] = self._token_request
        self._inflight = 0
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port: int | None = None
        self.ready = False

    # ---- lifecycle -------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=self.config.max_request_body_bytes + 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start(self) -> None:
        """Bootstrap the store's built-in objects and start listening."""
        if self.ssl_context is None and not self.config.insecure_http:
            raise UserFacingError("the API server needs TLS unless [apiserver] insecure_http = true")
        if self.ssl_context is None and not _is_loopback(self.config.bind_address):
            raise UserFacingError(
                f"plain HTTP is only served on loopback, not on {self.config.bind_address}; "
                f"set [apiserver] bind_address = \"127.0.0.1\"")
        await self.bootstrap()
        await self.namespaces.start()
        if self.security is not None:
            await self.ensure_objects(bootstrap_policy())
            await self.security.start(self.resources, self.caches)
        # handler_cancellation: a watch whose client went away stops at once.
        self._runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0, handler_cancellation=True)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.config.bind_address, self.config.port,
                                 ssl_context=self.ssl_context, reuse_address=True, backlog=1024)
        try:
            await self._site.start()
        except OSError as exc:
            await self._runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise UserFacingError(
                    f"cannot listen on {self.config.bind_address}:{self.config.port}: the port "
                    f"is already in use") from None
            raise UserFacingError(f"cannot listen on {self.config.bind_address}:"
                                  f"{self.config.port}: {exc.strerror}") from None
        server = self._site._server  # noqa: SLF001 - aiohttp keeps the bound sockets here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        await self.ensure_kubernetes_service()
        self.ready = True
        log.info("api server listening", address=self.url)

    @property
    def advertise_address(self) -> str:
        """The address other components reach this server on (Endpoints of ``kubernetes``):
        ``advertise_address``, else a specific ``bind_address``, else 127.0.0.1."""
        if self.config.advertise_address:
            return self.config.advertise_address
        bind = self.config.bind_address
        return bind if bind not in ("0.0.0.0", "::", "") else "127.0.0.1"

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = self.config.bind_address
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        self.ready = False
        if self.security is not None:
            await self.security.stop()
        await self.namespaces.stop()
        await self.caches.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def bootstrap(self) -> None:
        """Objects every cluster has from the first start: the system namespaces."""
        namespaces = self.registry.get("v1", "Namespace")
        for name in SYSTEM_NAMESPACES:
            if await self.resources.get_or_none(namespaces, None, name) is None:
                obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                       "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
                try:
                    await self.resources.create(namespaces, obj)
                except errors.ApiError as exc:
                    if exc.code != 409:
                        raise
        # Allocation keys for Services stored before allocations were recorded.
        services = self.registry.get("v1", "Service")
        restored = await self.services.repair((await self.resources.list(services, None)).items)
        if restored:
            log.info("service allocations restored", count=restored)

    # ---- the `kubernetes` Service ------------------------------------------------

    def kubernetes_service_objects(self) -> list[dict[str, Any]]:
        """The ``kubernetes`` Service in ``default`` with its Endpoints and EndpointSlice,
        pointing at this server (Kubernetes' endpoint reconciler writes the same)."""
        port = self.port or self.config.port
        address = self.advertise_address
        family = "IPv6" if ":" in address else "IPv4"
        meta = {"name": "kubernetes", "namespace": "default"}
        service = {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {**meta, "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": self.services.kubernetes_ip,
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                     "sessionAffinity": "None"},
        }
        endpoints = {
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {**meta, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": address}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        }
        endpoint_slice = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {**meta, "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": family,
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
        return [service, endpoints, endpoint_slice]

    async def ensure_kubernetes_service(self) -> None:
        """Create the ``kubernetes`` Service and its endpoints, or bring their port and
        address up to date (the port may differ from the last run)."""
        await self.reconcile_system_service(self.kubernetes_service_objects())

    async def reconcile_system_service(self, objects: list[dict[str, Any]]) -> None:
        """Create a system Service with hand-written Endpoints and EndpointSlice, or bring
        its ports and their addresses up to date (``kubernetes``, ``kube-dns``)."""
        from kcore.apiserver.decode import prepare_object

        for wanted in objects:
            kind = self.registry.get(wanted["apiVersion"], wanted["kind"])
            namespace, name = wanted["metadata"].get("namespace"), wanted["metadata"]["name"]
            wanted, _ = prepare_object(kind, wanted, field_validation="Ignore")
            for _attempt in range(8):
                current = await self.resources.get_or_none(kind, namespace, name)
                try:
                    if current is None:
                        await self.resources.create(kind, wanted)
                    elif wanted["kind"] == "Service":
                        ports = (current.get("spec") or {}).get("ports")
                        if ports != wanted["spec"]["ports"]:
                            new = {**current, "spec": {**current["spec"], "ports": wanted["spec"]["ports"]}}
                            await self.resources.update(kind, new, old=current)
                    else:
                        body = {k: v for k, v in wanted.items()
                                if k not in ("metadata", "apiVersion", "kind")}
                        if any(current.get(k) != v for k, v in body.items()):
                            await self.resources.update(kind, {**current, **body}, old=current)
                except errors.ApiError as exc:
                    # 409: another API server wrote it first; 422 on create: its cluster IP
                    # is already claimed by that server's create: read it again.
                    if exc.code == 409 or (exc.code == 422 and current is None):
                        await asyncio.sleep(0.05)
                        continue
                    raise
                break
            else:
                log.warning("could not write a system service object", kind=wanted["kind"], name=name)

    async def ensure_objects(self, objects: list[dict[str, Any]]) -> None:
        """Create each object that does not exist yet (bootstrap policy and the like)."""
        for obj in objects:
            kind = self.registry.get(obj["apiVersion"], obj["kind"])
            meta = obj["metadata"]
            if await self.resources.get_or_none(kind, meta.get("namespace"), meta["name"]) is None:
                try:
                    await self.resources.create(kind, obj)
                except errors.ApiError as exc:
                    if exc.code != 409:
                        raise

    # ---- middleware ------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        started = time.perf_counter()
        info = parse_request(request.method, request.path, request.query)
        long_running = info.verb == "watch" or info.subresource in ("log", "exec", "attach", "portforward")
        code = 500
        counted = False
        try:
            if not long_running:
                if self._inflight >= self.config.max_inflight_requests:
                    raise errors.too_many_requests(1)
                self._inflight += 1
                counted = True
            request[INFO_KEY] = info
            request[USER_KEY] = await self._authenticate(request)
            if self.security is not None and ("Impersonate-User" in request.headers
                                              or "Impersonate-Group" in request.headers):
                request[USER_KEY] = await self.security.impersonate(request[USER_KEY], request)
            if self.authorize is not None and request.path not in PUBLIC_PATHS:
                await self.authorize(request[USER_KEY], _streaming_authz(info))
            response = await handler(request)
            code = response.status
            return response
        except errors.ApiError as exc:
            code = exc.code
            return _error_response(exc)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug: answer 500 with a Status, log it
            log.exception("internal error", path=request.path, method=request.method)
            code = 500
            return _error_response(errors.internal(str(exc) or type(exc).__name__))
        finally:
            if counted:
                self._inflight -= 1
            self.metrics.observe(info, code, time.perf_counter() - started)

    async def _authenticate(self, request: web.Request) -> Any:
        if self.authenticate is None:
            return None
        return await _maybe_await(self.authenticate(request))

    # ---- routing ---------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        info: RequestInfo = request[INFO_KEY]
        if path in ("/healthz", "/livez", "/readyz"):
            if path == "/readyz" and not self.ready:
                return web.Response(text="not ready", status=503)
            return web.Response(text="ok")
        if path == "/cacerts" and self.ca_pem is not None:
            return web.Response(body=self.ca_pem, content_type="application/x-pem-file")
        if path == "/version":
            return json_response(discovery.version_info())
        if path == "/metrics":
            body, content_type = self.metrics.render()
            return web.Response(body=body, headers={"Content-Type": content_type})
        if path.startswith("/openapi/"):
            return self._openapi(request, path)
        if request.method == "GET" and not info.is_resource_request:
            response = self._discovery(request, path)
            if response is not None:
                return response
        if info.is_resource_request:
            special = self.special.get((info.api_group, info.resource, info.subresource))
            if special is not None:
                return await special(request, info, request.get(USER_KEY))
            return await self.handlers.handle(request, info, request.get(USER_KEY))
        raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")

    async def _token_request(self, request: web.Request, info: RequestInfo, user: Any) -> web.StreamResponse:
        """POST serviceaccounts/NAME/token (TokenRequest, ``kubectl create token``)."""
        from kcore.apiserver.decode import parse_body
        from kcore.apiserver.resources import format_time

        if info.verb != "create":
            raise errors.method_not_allowed(f"{info.verb} is not supported on serviceaccounts/token")
        assert self.security is not None
        accounts = self.registry.get("v1", "ServiceAccount")
        account = await self.resources.get(accounts, info.namespace, info.name or "")
        raw = await request.read()
        body = parse_body(raw, request.headers.get("Content-Type")) if raw.strip() else {}
        spec = (body or {}).get("spec") or {} if isinstance(body, dict) else {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise errors.invalid("TokenRequest", "authentication.k8s.io", info.name, [{
                "reason": "FieldValueInvalid", "field": "spec.expirationSeconds",
                "message": "may not specify a duration less than 10 minutes"}])
        bound = spec.get("boundObjectRef") or None
        bound_pod = {"name": bound["name"], "uid": bound.get("uid", "")} \
            if bound and bound.get("kind") == "Pod" else None
        token = self.security.authenticator.issue_service_account_token(
            info.namespace or "", info.name or "", account["metadata"]["uid"],
            audiences=spec.get("audiences") or None, expiration_seconds=seconds, bound_pod=bound_pod)
        expires = self.clock() + dt.timedelta(seconds=seconds)
        return json_response({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": info.name, "namespace": info.namespace,
                         "creationTimestamp": None},
            "spec": {"audiences": spec.get("audiences") or list(self.security.authenticator.audiences),
                     "expirationSeconds": seconds, "boundObjectRef": bound},
            "status": {"token": token, "expirationTimestamp": format_time(expires)},
        }, status=201)

    def _discovery(self, request: web.Request, path: str) -> web.StreamResponse | None:
        accept = request.headers.get("Accept", "")
        parts = path.strip("/").split("/")
        if path == "/api":
            if discovery.wants_aggregated(accept):
                return _aggregated(discovery.aggregated_discovery(self.registry, legacy=True))
            return json_response(discovery.api_versions(f"{request.host}"))
        if path == "/apis":
            if discovery.wants_aggregated(accept):
                return _aggregated(discovery.aggregated_discovery(self.registry, legacy=False))
            return json_response(discovery.api_group_list(self.registry))
        if len(parts) == 2 and parts[0] == "api":
            return self._resource_list("", parts[1])
        if len(parts) == 2 and parts[0] == "apis":
            group = discovery.api_group(self.registry, parts[1])
            if group is None:
                raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
            return json_response(group)
        if len(parts) == 3 and parts[0] == "apis":
            return self._resource_list(parts[1], parts[2])
        return None

    def _resource_list(self, group: str, version: str) -> web.Response:
        if version not in self.registry.group_versions().get(group, []):
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return json_response(discovery.api_resource_list(self.registry, group, version))

    def _openapi(self, request: web.Request, path: str) -> web.Response:
        from kcore.apiserver import openapi

        if path == "/openapi/v3":
            return json_response(openapi.openapi_v3_index(self.registry))
        rest = path.removeprefix("/openapi/v3/")
        parts = rest.split("/")
        if len(parts) == 2 and parts[0] == "api":
            group, version = "", parts[1]
        elif len(parts) == 3 and parts[0] == "apis":
            group, version = parts[1], parts[2]
        else:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if version not in self.registry.group_versions().get(group, []):
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return json_response(openapi.openapi_v3_document(self.registry, group, version))


def _streaming_authz(info: RequestInfo) -> RequestInfo:
    """exec/attach/portforward open a stream whatever the method (a WebSocket upgrade is a
    GET): Kubernetes authorizes them as ``create`` on the subresource."""
    if info.subresource in ("exec", "attach", "portforward") and info.verb == "get":
        return dataclasses.replace(info, verb="create")
    return info


def _aggregated(body: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(body),
                        headers={"Content-Type": discovery.AGGREGATED_DISCOVERY_CONTENT_TYPE})


def _error_response(exc: errors.ApiError) -> web.Response:
    headers = dict(exc.headers)
    headers["Content-Type"] = "application/json"
    return web.Response(body=orjson.dumps(exc.status()), status=exc.code, headers=headers)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value):
        return await value
    return value
