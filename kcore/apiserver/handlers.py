"""REST verbs on resources: get, list, watch, create, update, patch, delete,
deletecollection, and the status, scale, binding, eviction and log subresources.

Each handler turns an aiohttp request plus its parsed ``RequestInfo`` into a
``ResourceStore`` call, passing through decoding, admission and validation on
the way in and table or list rendering on the way out.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web

from kcore.api.registry import KindInfo, KindRegistry
from kcore.apiserver import errors
from kcore.apiserver.admission import AdmissionChain, AdmissionRequest
from kcore.apiserver.decode import (
    duplicate_fields,
    media_type,
    parse_body,
    prepare_object,
    revalidate,
)
from kcore.apiserver.requestinfo import RequestInfo
from kcore.apiserver.resources import (
    DeleteOptions,
    ResourceStore,
    format_time,
    merge_for_update,
    parse_resource_version,
)
from kcore.apiserver.selectors import (
    SelectorError,
    check_field_selector,
    object_fields,
    parse_field_selector,
    parse_label_selector,
)
from kcore.apiserver.watchcache import WatchCaches, WatcherOverflow
from kcore.log import get_logger

log = get_logger("apiserver")

Obj = dict[str, Any]
JSON = "application/json"


class LogSource(Protocol):
    """Where pod logs come from (the kubelet of the pod's node)."""

    def __call__(self, pod: Obj, container: str, options: dict[str, Any]) -> AsyncIterator[bytes]: ...


def json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(f'299 - "{w}"' for w in warnings)
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def wants_table(accept: str) -> bool:
    return "as=Table" in accept and "g=meta.k8s.io" in accept


def _bool(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "t", "yes")


def _int(query: Any, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"{name}: invalid value {value!r}: must be an integer") from None


def _dry_run(query: Any) -> bool:
    values = query.getall("dryRun", []) if hasattr(query, "getall") else [query.get("dryRun")]
    for value in values:
        if value in (None, ""):
            continue
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return True
    return False


class ResourceHandlers:
    """The verbs of every registered kind, over one ResourceStore."""

    def __init__(
        self,
        registry: KindRegistry,
        resources: ResourceStore,
        caches: WatchCaches,
        admission: AdmissionChain,
        *,
        max_body_bytes: int,
        log_source: LogSource | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.registry = registry
        self.resources = resources
        self.caches = caches
        self.admission = admission
        self.max_body_bytes = max_body_bytes
        self.log_source = log_source
        self.streams: Any = None  # kcore.apiserver.streaming.PodStreams: pods/exec
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.bookmark_interval = 10.0

    # ---- entry point -----------------------------------------------------------

    def kind_for(self, info: RequestInfo) -> KindInfo:
        kind = self.registry.by_resource(info.api_group, info.api_version, info.resource)
        if kind is None:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        return kind

    async def handle(self, request: web.Request, info: RequestInfo, user: Any = None) -> web.StreamResponse:
        kind = self.kind_for(info)
        if info.namespace and not kind.namespaced and kind.kind != "Namespace":
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        sub = info.subresource
        if sub is not None and sub not in kind.subresources:
            raise errors.ApiError(404, "NotFound", "the server could not find the requested resource")
        if info.verb not in kind.verbs and (sub is None or info.verb == "watch"):
            raise errors.method_not_allowed(
                f"{info.verb} is not supported on resources of kind {kind.plural}")
        namespace = info.namespace if kind.namespaced else None
        verb = info.verb
        if (verb in ("update", "patch") and info.name is None) or \
                (verb == "create" and info.name is not None and sub is None):
            raise errors.method_not_allowed(
                f"{request.method} is not supported on "
                f"{'a collection of ' if info.name is None else 'a single '}{kind.plural}")
        if sub == "scale":
            return await self._scale(request, kind, namespace, info.name or "", verb, user)
        if sub == "binding":
            return await self._binding(request, kind, namespace, info.name or "", user)
        if sub == "eviction":
            return await self._eviction(request, kind, namespace, info.name or "", user)
        if sub == "log":
            return await self._log(request, kind, namespace, info.name or "")
        if sub == "exec" and kind.kind == "Pod" and not kind.group:
            from kcore.apiserver.streaming import exec_subresource
            return await exec_subresource(self, request, kind, namespace, info.name or "")
        if sub == "portforward" and kind.kind == "Pod" and not kind.group:
            from kcore.apiserver.streaming import portforward_subresource
            return await portforward_subresource(self, request, kind, namespace, info.name or "")
        if sub == "attach":
            raise errors.bad_request("the attach subresource is not supported by kcore yet "
                                     "(kubectl exec, logs and port-forward are)")
        if sub in ("exec", "proxy", "ephemeralcontainers", "token"):
            raise errors.bad_request(f"the {sub} subresource is not available on this server")
        if kind.kind == "Binding" and not kind.group:
            return await self._binding(request, kind, namespace, None, user)
        if verb == "get":
            return await self._get(request, kind, namespace, info.name or "")
        if verb == "list":
            return await self._list(request, kind, namespace)
        if verb == "watch":
            return await self._watch(request, kind, namespace, info.name)
        if verb == "create":
            return await self._create(request, kind, namespace, user)
        if verb == "update":
            return await self._update(request, kind, namespace, info.name or "", sub, user)
        if verb == "patch":
            return await self._patch(request, kind, namespace, info.name or "", sub, user)
        if verb == "delete":
            return await self._delete(request, kind, namespace, info.name or "", user)
        if verb == "deletecollection":
            return await self._delete_collection(request, kind, namespace, user)
        raise errors.method_not_allowed(f"verb {verb} is not supported")

    # ---- helpers ---------------------------------------------------------------

    async def read_body(self, request: web.Request) -> tuple[bytes, Any]:
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            raise errors.too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            size += len(chunk)
            if size > self.max_body_bytes:
                raise errors.too_large(self.max_body_bytes)
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            raise errors.bad_request("the request body is empty")
        return raw, parse_body(raw, request.headers.get("Content-Type"))

    def _check_identity(self, kind: KindInfo, obj: Any, namespace: str | None,
                        name: str | None) -> None:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body must be a JSON object")
        api_version = obj.get("apiVersion")
        if api_version and api_version != kind.api_version:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match "
                                     f"the expected API version ({kind.api_version})")
        if obj.get("kind") and obj["kind"] != kind.kind:
            raise errors.bad_request(f"the kind in the data ({obj['kind']}) does not match the "
                                     f"expected kind ({kind.kind})")
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if kind.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the "
                                         "namespace sent on the request")
            meta["namespace"] = namespace or body_ns
            if not meta["namespace"]:
                raise errors.bad_request("the namespace of the object must be set")
        else:
            meta.pop("namespace", None)
        if name is not None:
            body_name = meta.get("name")
            if body_name and body_name != name:
                raise errors.bad_request(f"the name of the object ({body_name}) does not match the "
                                         f"name on the URL ({name})")
            meta["name"] = name

    def _field_validation(self, request: web.Request) -> str:
        """``fieldValidation`` from the query; Kubernetes' default is Warn."""
        return request.query.get("fieldValidation") or "Warn"

    def _predicate(self, kind: KindInfo, query: Any) -> Callable[..., bool] | None:
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"))
            check_field_selector(kind.kind, fields)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        if labels.is_empty() and fields.is_empty():
            return None

        def matches(obj: Obj, memo: dict[str, dict[str, str]] | None = None,
                    slot: str = "") -> bool:
            """``memo[slot]`` caches the object's fields across watchers of one event."""
            if not labels.matches((obj.get("metadata") or {}).get("labels")):
                return False
            if fields.is_empty():
                return True
            if memo is None:
                return fields.matches(object_fields(kind.kind, obj))
            found = memo.get(slot)
            if found is None:
                found = memo[slot] = object_fields(kind.kind, obj)
            return fields.matches(found)

        return matches

    def _render(self, request: web.Request, kind: KindInfo, objects: list[Obj], *,
                list_meta: Obj | None, single: bool) -> web.Response:
        accept = request.headers.get("Accept", "")
        if wants_table(accept):
            from kcore.apiserver.tables import render_table

            table = render_table(
                kind.kind, kind.api_version, objects,
                include_object=request.query.get("includeObject", "Metadata"),
                now=self.clock(),
                resource_version=(list_meta or {}).get("resourceVersion"),
                continue_token=(list_meta or {}).get("continue"),
            )
            return json_response(table)
        if single:
            return json_response(objects[0])
        return json_response({"kind": kind.list_kind, "apiVersion": kind.api_version,
                              "metadata": list_meta or {}, "items": objects})

    # ---- reads -----------------------------------------------------------------

    async def _get(self, request: web.Request, kind: KindInfo, namespace: str | None,
                   name: str) -> web.Response:
        if not wants_table(request.headers.get("Accept", "")):
            body = await self.resources.get_raw(kind, namespace, name)
            return web.Response(body=body, content_type=JSON)
        obj = await self.resources.get(kind, namespace, name)
        return self._render(request, kind, [obj], list_meta=None, single=True)

    async def _list(self, request: web.Request, kind: KindInfo, namespace: str | None) -> web.Response:
        query = request.query
        limit = _int(query, "limit") or 0
        predicate = self._predicate(kind, query)
        # Plain JSON lists without selectors are served from the stored bytes, unparsed.
        raw = predicate is None and not wants_table(request.headers.get("Accept", ""))
        page = await self.resources.list(
            kind, namespace, limit=max(0, limit), continue_token=query.get("continue") or None,
            resource_version=query.get("resourceVersion"),
            resource_version_match=query.get("resourceVersionMatch"),
            predicate=predicate, raw=raw,
        )
        meta: Obj = {"resourceVersion": page.resource_version}
        if page.continue_token:
            meta["continue"] = page.continue_token
            if page.remaining is not None:
                meta["remainingItemCount"] = page.remaining
        if raw:
            head = orjson.dumps({"kind": kind.list_kind, "apiVersion": kind.api_version,
                                 "metadata": meta})
            body = head[:-1] + b',"items":[' + b",".join(page.items) + b"]}"
            return web.Response(body=body, content_type=JSON)
        return self._render(request, kind, page.items, list_meta=meta, single=False)

    async def _watch(self, request: web.Request, kind: KindInfo, namespace: str | None,
                     name: str | None) -> web.StreamResponse:
        query = request.query
        predicate = self._predicate(kind, query)
        if name:
            base = predicate

            def predicate(obj: Obj, memo: Any = None, slot: str = "",  # type: ignore[misc]
                          _base=base) -> bool:
                return obj["metadata"].get("name") == name and \
                    (_base is None or _base(obj, memo, slot))

        def visible(obj: Obj | None, memo: dict[str, dict[str, str]] | None = None,
                    slot: str = "") -> bool:
            if obj is None:
                return False
            if namespace and obj["metadata"].get("namespace") != namespace:
                return False
            return predicate is None or predicate(obj, memo, slot)

        timeout = _int(query, "timeoutSeconds")
        bookmarks = _bool(query.get("allowWatchBookmarks"))
        table = wants_table(request.headers.get("Accept", ""))
        rv = query.get("resourceVersion")
        cache = self.caches.for_kind(kind)
        initial: list[Obj] = []
        if rv in (None, "", "0"):
            page = await self.resources.list(kind, namespace, predicate=predicate)
            initial, start = page.items, int(page.resource_version)
        else:
            start = parse_resource_version(rv)
            current = await self.resources.store.current_revision()
            if start > current:
                raise errors.timeout(f"Too large resource version: {start}, current: {current}")
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON,
                                                           "Transfer-Encoding": "chunked"})
        await response.prepare(request)

        async def send(event_type: str, obj: Obj) -> None:
            if table and event_type in ("ADDED", "MODIFIED", "DELETED"):
                from kcore.apiserver.tables import render_table
                obj = render_table(kind.kind, kind.api_version, [obj],
                                   include_object=query.get("includeObject", "Metadata"),
                                   now=self.clock(), resource_version=obj["metadata"].get("resourceVersion"))
            await response.write(orjson.dumps({"type": event_type, "object": obj}) + b"\n")

        async def stream() -> None:
            for obj in initial:
                await send("ADDED", obj)
            last = start
            events = cache.watch(start).__aiter__()
            next_event: asyncio.Task[Any] | None = None
            try:
                while True:
                    if next_event is None:
                        next_event = asyncio.ensure_future(events.__anext__())
                    done, _ = await asyncio.wait({next_event},
                                                 timeout=self.bookmark_interval if bookmarks else None)
                    if not done:
                        progress = max(last, cache.progress_revision)
                        await send("BOOKMARK", {"kind": kind.kind, "apiVersion": kind.api_version,
                                                "metadata": {"resourceVersion": str(progress)}})
                        continue
                    try:
                        event = next_event.result()
                    except StopAsyncIteration:
                        return
                    next_event = None
                    last = event.revision
                    now_in = visible(event.object, event.fields, "object")
                    was_in = visible(event.prev_object, event.fields, "prev")
                    if event.type == "DELETED":
                        if was_in or now_in:
                            await send("DELETED", event.object)
                    elif now_in and not was_in:
                        await send("ADDED", event.object)
                    elif now_in and was_in:
                        await send("MODIFIED", event.object)
                    elif was_in and not now_in and event.type == "MODIFIED":
                        await send("DELETED", event.object)
            finally:
                if next_event is not None:
                    next_event.cancel()
                    with contextlib.suppress(BaseException):
                        await next_event
                await events.aclose()  # type: ignore[attr-defined]

        try:
            if timeout:
                await asyncio.wait_for(stream(), timeout)
            else:
                await stream()
        except TimeoutError:
            pass
        except WatcherOverflow as exc:
            await send("ERROR", errors.gone(str(exc)).status())
        except errors.ApiError as exc:
            await send("ERROR", exc.status())
        except ConnectionResetError:
            return response  # the client went away: nothing to say, nothing to log
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a store error ends this watch only
            from kcore.store.contract import CompactedError
            if isinstance(exc, CompactedError):
                await send("ERROR", errors.gone(f"too old resource version: {start} "
                                                f"({exc.compacted})").status())
            else:
                raise
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    # ---- writes ----------------------------------------------------------------

    def _manager(self, request: web.Request, default: str | None = None) -> str:
        manager = request.query.get("fieldManager")
        if manager:
            if len(manager) > 128:
                raise errors.bad_request("fieldManager: Too long: may not be longer than 128")
            return manager
        if default:
            return default
        agent = request.headers.get("User-Agent", "unknown")
        return agent.split("/", 1)[0] or "unknown"

    def _admission_request(self, op: str, kind: KindInfo, namespace: str | None, name: str | None,
                           obj: Obj | None, old: Obj | None, user: Any, dry_run: bool,
                           sub: str | None = None) -> AdmissionRequest:
        return AdmissionRequest(
            operation=op, info=kind, namespace=namespace, name=name, object=obj, old_object=old,
            subresource=sub, user=getattr(user, "name", "") or "",
            groups=tuple(getattr(user, "groups", ()) or ()), dry_run=dry_run,
        )

    async def _admit_and_validate(self, req: AdmissionRequest) -> Obj:
        """Mutating admission, then validation again only if a plugin changed the
        object (the built-in steps add only valid fields), then validating admission."""
        await self.admission.mutate_builtin(req)
        before = orjson.dumps(req.object) if self.admission.hook is not None else None
        self.admission.mutate_plugins(req)
        assert req.object is not None
        changed = before is not None and orjson.dumps(req.object) != before
        if changed and (req.info.validator or req.info.defaulter):
            req.object = revalidate(req.info, req.object)
        await self.admission.validate(req)
        return req.object

    async def _create(self, request: web.Request, kind: KindInfo, namespace: str | None,
                      user: Any) -> web.Response:
        raw, body = await self.read_body(request)
        dry_run = _dry_run(request.query)
        self._check_identity(kind, body, namespace, None)
        obj, warnings = prepare_object(
            kind, body, field_validation=self._field_validation(request),
            duplicates=duplicate_fields(raw, request.headers.get("Content-Type")),
        )
        req = self._admission_request("CREATE", kind, namespace, obj["metadata"].get("name"), obj,
                                      None, user, dry_run)
        obj = await self._admit_and_validate(req)
        obj = self._record_fields(kind, None, obj, self._manager(request), "Update", None)
        created = await self.resources.create(kind, obj, dry_run=dry_run)
        return json_response(created, status=201, warnings=warnings)

    def _record_fields(self, kind: KindInfo, old: Obj | None, new: Obj, manager: str,
                       operation: str, sub: str | None) -> Obj:
        """Track field ownership in managedFields (server-side apply's bookkeeping)."""
        try:
            from kcore.apiserver.patch import record_update, schema_for_model
        except ImportError:  # pragma: no cover - the patch package always provides these
            return new
        return record_update(old, new, manager, operation=operation, subresource=sub,
                             schema=schema_for_model(kind.model), now=format_time(self.clock()))

    async def _write_update(self, request: web.Request, kind: KindInfo, namespace: str | None,
                            name: str, sub: str | None, body: Obj, old: Obj | None, user: Any,
                            *, dry_run: bool, manager: str, operation: str = "Update",
                            warnings: list[str] | None = None,
                            duplicates: list[str] | None = None,
                            field_validation: str | None = None) -> web.Response:
        self._check_identity(kind, body, namespace, name)
        field_validation = field_validation or self._field_validation(request)
        if old is None:
            old = await self.resources.get(kind, namespace, name)
        wanted_rv = body["metadata"].get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise errors.stale_update(kind.plural, kind.group, name)
        if sub == "status":
            # Only status changes; validate the merged object.
            prepared, more = prepare_object(kind, body, field_validation=field_validation,
                                            duplicates=duplicates)
            merged = merge_for_update(kind, old, prepared, "status")
        else:
            _prepare_service_update(kind, old, body)
            prepared, more = prepare_object(kind, body, field_validation=field_validation,
                                            duplicates=duplicates)
            merged = merge_for_update(kind, old, prepared, None)
        warnings = (warnings or []) + more
        req = self._admission_request("UPDATE", kind, namespace, name, merged, old, user, dry_run, sub)
        merged = await self._admit_and_validate(req)
        merged = merge_for_update(kind, old, merged, sub)
        merged = self._record_fields(kind, old, merged, manager, operation, sub)
        updated, _ = await self.resources.update(kind, merged, subresource=sub, old=old, dry_run=dry_run)
        return json_response(updated, warnings=warnings)

    async def _update(self, request: web.Request, kind: KindInfo, namespace: str | None, name: str,
                      sub: str | None, user: Any) -> web.Response:
        raw, body = await self.read_body(request)
        if sub == "finalize" and kind.kind == "Namespace":
            sub = None
        return await self._write_update(
            request, kind, namespace, name, sub, body, None, user,
            dry_run=_dry_run(request.query), manager=self._manager(request),
            duplicates=duplicate_fields(raw, request.headers.get("Content-Type")),
        )

    async def _patch(self, request: web.Request, kind: KindInfo, namespace: str | None, name: str,
                     sub: str | None, user: Any) -> web.Response:
        from kcore.apiserver import patch as patching

        raw, body = await self.read_body(request)
        content_type = media_type(request.headers.get("Content-Type"))
        dry_run = _dry_run(request.query)
        schema = patching.schema_for_model(kind.model)
        for _attempt in range(8):
            old = await self.resources.get_or_none(kind, namespace, name)
            try:
                if content_type == "application/apply-patch+yaml":
                    if sub is not None:
                        raise errors.bad_request("server-side apply of subresources is not supported")
                    return await self._apply(request, kind, namespace, name, body, old, user,
                                             dry_run=dry_run, schema=schema)
                if old is None:
                    raise errors.not_found(kind.plural, kind.group, name)
                base = copy.deepcopy(old)
                if content_type == "application/json-patch+json":
                    patched = patching.apply_json_patch(base, body)
                elif content_type == "application/merge-patch+json":
                    patched = patching.apply_merge_patch(base, body)
                elif content_type == "application/strategic-merge-patch+json":
                    patched = patching.apply_strategic_merge_patch(base, body, schema)
                else:
                    raise errors.unsupported_media_type(content_type)
            except patching.PatchError as exc:
                raise errors.ApiError(422 if "test" in str(exc) else 400,
                                      "Invalid" if "test" in str(exc) else "BadRequest",
                                      str(exc)) from None
            if not isinstance(patched, dict):
                raise errors.bad_request("the patch produced something that is not an object")
            meta = patched.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise errors.bad_request("metadata must be an object")
            # A patch that names a resourceVersion is conditional on it; otherwise retry
            # on conflicts against the newest version, as Kubernetes does.
            explicit_rv = meta.get("resourceVersion") if meta.get("resourceVersion") != \
                old["metadata"].get("resourceVersion") else None
            if not explicit_rv:
                meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            try:
                return await self._write_update(
                    request, kind, namespace, name, sub, patched, old, user, dry_run=dry_run,
                    manager=self._manager(request),
                    operation="Update",
                )
            except errors.ApiError as exc:
                if exc.code == 409 and exc.reason == "Conflict" and not explicit_rv:
                    continue
                raise
        raise errors.conflict(kind.plural, kind.group, name, "too many concurrent changes")

    async def _apply(self, request: web.Request, kind: KindInfo, namespace: str | None, name: str,
                     body: Any, old: Obj | None, user: Any, *, dry_run: bool, schema: Any) -> web.Response:
        from kcore.apiserver import patch as patching

        manager = request.query.get("fieldManager")
        if not manager:
            raise errors.bad_request("PATCH, application/apply-patch+yaml requests must include a "
                                     "fieldManager query parameter")
        force = _bool(request.query.get("force"))
        if not isinstance(body, dict):
            raise errors.bad_request("the applied configuration must be an object")
        self._check_identity(kind, body, namespace, name)
        field_validation = self._field_validation(request)
        # Validate the applied configuration's fields before merging it.
        _model_check, warnings = prepare_object(kind, copy.deepcopy(body),
                                                field_validation=field_validation) \
            if field_validation != "Ignore" else (None, [])
        try:
            merged = patching.server_side_apply(old, body, manager, force=force, schema=schema,
                                                now=format_time(self.clock()))
        except patching.ApplyConflictError as exc:
            causes = [{"reason": "FieldManagerConflict", "message": f'conflict with "{who}"',
                       "field": path} for path, who in exc.conflicts]
            raise errors.ApiError(409, "Conflict", str(exc), name=name, group=kind.group,
                                  kind=kind.plural, causes=causes) from None
        except patching.PatchError as exc:
            raise errors.bad_request(str(exc)) from None
        if old is None:
            obj, more = prepare_object(kind, merged, field_validation="Ignore")
            req = self._admission_request("CREATE", kind, namespace, name, obj, None, user, dry_run)
            obj = await self._admit_and_validate(req)
            obj.setdefault("metadata", {})["managedFields"] = merged["metadata"].get("managedFields")
            created = await self.resources.create(kind, obj, dry_run=dry_run)
            return json_response(created, status=201, warnings=warnings)
        merged.setdefault("metadata", {})["resourceVersion"] = old["metadata"]["resourceVersion"]
        _prepare_service_update(kind, old, merged)
        prepared, _ = prepare_object(kind, merged, field_validation="Ignore")
        new = merge_for_update(kind, old, prepared, None)
        req = self._admission_request("UPDATE", kind, namespace, name, new, old, user, dry_run)
        new = await self._admit_and_validate(req)
        new = merge_for_update(kind, old, new, None)
        new["metadata"]["managedFields"] = merged["metadata"].get("managedFields")
        updated, _ = await self.resources.update(kind, new, old=old, dry_run=dry_run)
        return json_response(updated, warnings=warnings)

    async def _delete_options(self, request: web.Request) -> DeleteOptions:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if len(raw) > self.max_body_bytes:
                raise errors.too_large(self.max_body_bytes)
            if raw.strip():
                body = parse_body(raw, request.headers.get("Content-Type") or JSON)
                if not isinstance(body, dict):
                    raise errors.bad_request("DeleteOptions must be an object")
        options = DeleteOptions.from_body(body, dict(request.query))
        options.dry_run = options.dry_run or _dry_run(request.query)
        return options

    async def _delete(self, request: web.Request, kind: KindInfo, namespace: str | None, name: str,
                      user: Any) -> web.Response:
        options = await self._delete_options(request)
        old = await self.resources.get(kind, namespace, name)
        req = self._admission_request("DELETE", kind, namespace, name, None, old, user, options.dry_run)
        await self.admission.mutate(req)
        await self.admission.validate(req)
        if kind.kind == "Namespace" and not kind.group:
            return await self._delete_namespace(kind, old, options)
        obj, _gone = await self.resources.delete(kind, namespace, name, options)
        return json_response(obj)  # the deleted object, or the one now terminating

    async def _delete_namespace(self, kind: KindInfo, old: Obj, options: DeleteOptions) -> web.Response:
        """A namespace first turns Terminating; the namespace controller empties it and
        removes the ``kubernetes`` finalizer, and then it goes."""
        if (old.get("spec") or {}).get("finalizers"):
            new = copy.deepcopy(old)
            meta = new["metadata"]
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = format_time(self.clock())
                meta["deletionGracePeriodSeconds"] = 0
            if options.propagation_policy == "Orphan":
                meta.setdefault("finalizers", [])
                if "orphan" not in meta["finalizers"]:
                    meta["finalizers"].append("orphan")
            new.setdefault("status", {})["phase"] = "Terminating"
            if new == old or options.dry_run:
                return json_response(new)
            written = await self.resources._write(kind, old, new)
            return json_response(written)
        obj, _ = await self.resources.delete(kind, None, old["metadata"]["name"], options)
        return json_response(obj)

    async def _delete_collection(self, request: web.Request, kind: KindInfo, namespace: str | None,
                                 user: Any) -> web.Response:
        options = await self._delete_options(request)
        page = await self.resources.list(kind, namespace, predicate=self._predicate(kind, request.query))
        deleted: list[Obj] = []
        for obj in page.items:
            meta = obj["metadata"]
            try:
                req = self._admission_request("DELETE", kind, meta.get("namespace"), meta["name"],
                                              None, obj, user, options.dry_run)
                await self.admission.mutate(req)
                await self.admission.validate(req)
                gone_obj, _ = await self.resources.delete(kind, meta.get("namespace"), meta["name"], options)
                deleted.append(gone_obj)
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        return json_response({"kind": kind.list_kind, "apiVersion": kind.api_version,
                              "metadata": {"resourceVersion": page.resource_version}, "items": deleted})

    # ---- subresources ----------------------------------------------------------

    async def _scale(self, request: web.Request, kind: KindInfo, namespace: str | None, name: str,
                     verb: str, user: Any) -> web.Response:
        """autoscaling/v1 Scale over spec.replicas of Deployments, ReplicaSets, StatefulSets, RCs."""
        from kcore.apiserver import patch as patching

        if verb == "get":
            return json_response(scale_of(kind, await self.resources.get(kind, namespace, name)))
        if verb not in ("update", "patch"):
            raise errors.method_not_allowed(f"{verb} is not supported on the scale subresource")
        raw, request_body = await self.read_body(request)
        # Like every update in Kubernetes (GuaranteedUpdate), a scale without a
        # resourceVersion precondition is retried on conflict: controllers write the
        # object's status concurrently, and `kubectl scale` must not fail because of it.
        for _attempt in range(16):
            obj = await self.resources.get(kind, namespace, name)
            body = copy.deepcopy(request_body)
            current = scale_of(kind, obj)
            if verb == "patch":
                content_type = media_type(request.headers.get("Content-Type"))
                try:
                    if content_type == "application/json-patch+json":
                        body = patching.apply_json_patch(current, body)
                    elif content_type in ("application/merge-patch+json",
                                          "application/strategic-merge-patch+json"):
                        body = patching.apply_merge_patch(current, body)
                    else:
                        raise errors.unsupported_media_type(content_type)
                except patching.PatchError as exc:
                    raise errors.bad_request(str(exc)) from None
            if not isinstance(body, dict):
                raise errors.bad_request("the body must be a Scale object")
            replicas = (body.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid("Scale", "autoscaling", name, [{
                    "reason": "FieldValueInvalid", "field": "spec.replicas",
                    "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0"}])
            # the client's precondition is what it sent, not what a patch merged in
            sent = request_body if isinstance(request_body, dict) else {}
            wanted_rv = (sent.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != obj["metadata"]["resourceVersion"]:
                raise errors.stale_update(kind.plural, kind.group, name)
            new = copy.deepcopy(obj)
            new.setdefault("spec", {})["replicas"] = replicas
            merged = merge_for_update(kind, obj, new, None)
            merged = self._record_fields(kind, obj, merged, self._manager(request), "Update", "scale")
            try:
                updated, _ = await self.resources.update(kind, merged, old=obj, dry_run=_dry_run(request.query))
            except errors.ApiError as exc:
                if exc.code == 409 and not wanted_rv:
                    continue
                raise
            return json_response(scale_of(kind, updated))
        raise errors.conflict(kind.plural, kind.group, name, "too many concurrent changes")

    async def _binding(self, request: web.Request, kind: KindInfo, namespace: str | None,
                       name: str | None, user: Any) -> web.Response:
        """Bind a pod to a node: sets spec.nodeName once; a second binding is a conflict."""
        _raw, body = await self.read_body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be a Binding object")
        pod_name = name or (body.get("metadata") or {}).get("name")
        target = body.get("target") or {}
        node = target.get("name")
        if not pod_name:
            raise errors.bad_request("the binding must name a pod")
        if not node:
            raise errors.invalid("Binding", "", pod_name, [{
                "reason": "FieldValueRequired", "message": "Required value", "field": "target.name"}])
        pods = self.registry.get("v1", "Pod")
        for _attempt in range(8):
            pod = await self.resources.get(pods, namespace, pod_name)
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict("pods", "", pod_name, "pod is being deleted, cannot be assigned to a host")
            current = (pod.get("spec") or {}).get("nodeName")
            if current:
                raise errors.conflict("pods", "", pod_name,
                                      f"pod {pod_name} is already assigned to node \"{current}\"")
            new = copy.deepcopy(pod)
            new["spec"]["nodeName"] = node
            conditions = new.setdefault("status", {}).setdefault("conditions", [])
            conditions[:] = [c for c in conditions if c.get("type") != "PodScheduled"]
            conditions.append({"type": "PodScheduled", "status": "True",
                               "lastTransitionTime": format_time(self.clock())})
            try:
                await self.resources._write(pods, pod, new)
            except errors.ApiError as exc:
                if exc.code == 409:
                    continue
                raise
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                  "status": "Success", "code": 201}, status=201)
        raise errors.conflict("pods", "", pod_name, "too many concurrent changes")

    async def _eviction(self, request: web.Request, kind: KindInfo, namespace: str | None, name: str,
                        user: Any) -> web.Response:
        """policy/v1 Eviction: a delete that honours the eviction's DeleteOptions."""
        _raw, body = await self.read_body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the body must be an Eviction object")
        options = DeleteOptions.from_body(body.get("deleteOptions"), {})
        await self.resources.delete(kind, namespace, name, options)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success", "code": 201}, status=201)

    async def _log(self, request: web.Request, kind: KindInfo, namespace: str | None,
                   name: str) -> web.StreamResponse:
        """Container logs, streamed from the pod's kubelet as text (chunked when following)."""
        pod = await self.resources.get(kind, namespace, name)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers", [])]
        container = request.query.get("container")
        if not container:
            if len(containers) != 1:
                raise errors.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(containers)}]")
            container = containers[0]
        all_containers = containers + [c["name"] for c in (pod.get("spec") or {}).get("initContainers", [])]
        if container not in all_containers:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        if not (pod.get("spec") or {}).get("nodeName"):
            raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                                     f"the pod is not scheduled yet")
        if self.log_source is None:
            raise errors.bad_request(f'container "{container}" in pod "{name}" has no logs: no '
                                     f"kubelet serves logs for node {pod['spec']['nodeName']}")
        options = {
            "follow": _bool(request.query.get("follow")),
            "previous": _bool(request.query.get("previous")),
            "timestamps": _bool(request.query.get("timestamps")),
            "tailLines": _int(request.query, "tailLines"),
            "sinceSeconds": _int(request.query, "sinceSeconds"),
            "limitBytes": _int(request.query, "limitBytes"),
        }
        # Read the first chunk before answering, so a missing log is an error status,
        # not a 200 followed by nothing.
        chunks = self.log_source(pod, container, options).__aiter__()
        try:
            first: bytes | None = await chunks.__anext__()
        except StopAsyncIteration:
            first = None
        except errors.ApiError:
            raise
        except Exception as exc:  # noqa: BLE001 - the kubelet says why there is no log
            raise errors.bad_request(f'container "{container}" in pod "{name}": {exc}') from None
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(first)
                async for chunk in chunks:
                    await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            pass  # kubectl logs -f ended by the user
        return response


def _prepare_service_update(kind: KindInfo, old: Obj, new: Any) -> None:
    """Services: before validation, keep the cluster IP and node ports an update left out
    and drop those its new type cannot have (kcore.apiserver.allocators)."""
    if kind.kind == "Service" and not kind.group and isinstance(new, dict):
        from kcore.apiserver.allocators import prepare_service_update

        prepare_service_update(old, new)


def scale_of(kind: KindInfo, obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of a scalable object."""
    from kcore.apiserver.selectors import selector_from_label_selector, selector_from_set

    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    selector = spec.get("selector")
    if kind.kind == "ReplicationController":
        selector_text = str(selector_from_set(selector))
    else:
        selector_text = str(selector_from_label_selector(selector))
    meta = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                     "resourceVersion": meta.get("resourceVersion"),
                     "creationTimestamp": meta.get("creationTimestamp")},
        "spec": {"replicas": spec.get("replicas", 1)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector_text},
    }
