"""Kubernetes object semantics over the revisioned store (the "generic registry").

Everything that makes a key-value write a Kubernetes write lives here: uid,
creationTimestamp, generation bumped on spec changes only, resourceVersion from
the store revision, optimistic concurrency, ``status`` written separately from
the rest, finalizers and graceful deletion. Objects are plain wire dicts that
the caller has already decoded, defaulted and validated; the store keeps their
JSON bytes.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kcore.api.registry import KindInfo
from kcore.apiserver import errors
from kcore.apiserver.strategy import prepare_for_create
from kcore.store.contract import (
    CompactedError,
    ConflictError,
    FutureRevisionError,
    InvalidContinueError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Store,
)

Obj = dict[str, Any]
Clock = Callable[[], dt.datetime]

# Fields that only the server sets; a client's values are ignored on update.
_SERVER_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                    "generation", "selfLink")
# Top-level keys that are not "spec" for the purpose of generation tracking.
_NON_SPEC_KEYS = frozenset({"apiVersion", "kind", "metadata", "status"})
# Kinds whose "spec" is their whole content (no spec/status split): no generation tracking.
_GENERATION_EXEMPT = frozenset({"ConfigMap", "Secret", "Event", "Endpoints", "EndpointSlice",
                                "ServiceAccount", "Binding", "ControllerRevision", "Lease"})

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_time(moment: dt.datetime) -> str:
    """Kubernetes ``metav1.Time``: RFC 3339 in UTC with second precision."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_key(info: KindInfo, namespace: str | None, name: str) -> str:
    if info.namespaced:
        return f"{info.key_prefix}{namespace}/{name}"
    return f"{info.key_prefix}{name}"


def list_prefix(info: KindInfo, namespace: str | None) -> str:
    if info.namespaced and namespace:
        return f"{info.key_prefix}{namespace}/"
    return info.key_prefix


def decode(kv: KeyValue) -> Obj:
    """A stored object with its resourceVersion (the key's modification revision)."""
    obj: Obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


_RAW_HEAD = b'{"metadata":{'


def encode(obj: Obj) -> bytes:
    """Stored form: metadata first and without resourceVersion (that is the revision
    of the write), so reads can splice the resourceVersion into the stored bytes."""
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
    return orjson.dumps({"metadata": metadata, **{k: v for k, v in obj.items() if k != "metadata"}})


def raw_object(kv: KeyValue) -> bytes:
    """The stored JSON with its resourceVersion, without parsing it (the fast read path)."""
    value = kv.value
    if not value.startswith(_RAW_HEAD):
        return orjson.dumps(decode(kv))
    head = b'{"metadata":{"resourceVersion":"' + str(kv.mod_revision).encode() + b'"'
    rest = value[len(_RAW_HEAD):]
    return head + (rest if rest.startswith(b"}") else b"," + rest)


def spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in _NON_SPEC_KEYS}


def parse_resource_version(value: str | None, *, what: str = "resourceVersion") -> int:
    if value in (None, ""):
        return 0
    try:
        number = int(value)  # type: ignore[arg-type]
    except ValueError:
        raise errors.bad_request(f"invalid {what}: {value!r} is not a valid resource version") from None
    if number < 0:
        raise errors.bad_request(f"invalid {what}: {value!r}")
    return number


@dataclass
class DeleteOptions:
    """The parts of ``DeleteOptions`` the store acts on."""

    grace_period_seconds: int | None = None
    propagation_policy: str | None = None  # Orphan | Background | Foreground
    precondition_uid: str | None = None
    precondition_resource_version: str | None = None
    dry_run: bool = False

    @classmethod
    def from_body(cls, body: Obj | None, query: dict[str, str]) -> DeleteOptions:
        body = body or {}
        preconditions = body.get("preconditions") or {}
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        policy = body.get("propagationPolicy", query.get("propagationPolicy"))
        if policy is None and body.get("orphanDependents") is not None:
            policy = "Orphan" if body["orphanDependents"] else "Background"
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(f"propagationPolicy: Unsupported value: {policy!r}: supported "
                                     f"values: \"Foreground\", \"Background\", \"Orphan\"")
        dry_run = body.get("dryRun") or query.get("dryRun")
        try:
            grace_int = None if grace is None else int(grace)
        except (TypeError, ValueError):
            raise errors.bad_request(f"gracePeriodSeconds: invalid value {grace!r}") from None
        return cls(
            grace_period_seconds=grace_int,
            propagation_policy=policy,
            precondition_uid=preconditions.get("uid"),
            precondition_resource_version=preconditions.get("resourceVersion"),
            dry_run=bool(dry_run) and "All" in (dry_run if isinstance(dry_run, list) else [dry_run]),
        )


@dataclass
class ListPage:
    items: list[Any]  # dicts, or JSON bytes for a raw list
    resource_version: str
    continue_token: str | None
    remaining: int | None


class ResourceStore:
    """CRUD with Kubernetes semantics for every kind, over one Store."""

    def __init__(self, store: Store, clock: Clock = utc_now) -> None:
        self.store = store
        self.clock = clock
        # In-process caches that must see this server's own writes at once
        # (the watch confirms them a moment later).
        self.observers: dict[str, list[Callable[[str, Obj], None]]] = {}
        # Service cluster IPs and node ports (kcore.apiserver.allocators.ServiceAllocator);
        # None: Services are stored as given (no allocation).
        self.services: Any = None

    def _allocates(self, info: KindInfo) -> bool:
        return self.services is not None and info.kind == "Service" and not info.group

    def observe(self, info: KindInfo, callback: Callable[[str, Obj], None]) -> None:
        self.observers.setdefault(info.key_prefix, []).append(callback)

    def _notify(self, info: KindInfo, event_type: str, obj: Obj) -> None:
        for callback in self.observers.get(info.key_prefix, ()):
            callback(event_type, obj)

    # ---- reads -----------------------------------------------------------------

    async def get(self, info: KindInfo, namespace: str | None, name: str) -> Obj:
        kv = await self.store.get(object_key(info, namespace, name))
        if kv is None:
            raise errors.not_found(info.plural, info.group, name)
        return decode(kv)

    async def get_raw(self, info: KindInfo, namespace: str | None, name: str) -> bytes:
        """The object's JSON as stored, with its resourceVersion, never parsed."""
        kv = await self.store.get(object_key(info, namespace, name))
        if kv is None:
            raise errors.not_found(info.plural, info.group, name)
        return raw_object(kv)

    async def get_or_none(self, info: KindInfo, namespace: str | None, name: str) -> Obj | None:
        kv = await self.store.get(object_key(info, namespace, name))
        return None if kv is None else decode(kv)

    async def list(
        self,
        info: KindInfo,
        namespace: str | None,
        *,
        limit: int = 0,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        predicate: Callable[[Obj], bool] | None = None,
        raw: bool = False,
    ) -> ListPage:
        """One page of matching objects; consistent at one revision across pages.

        With ``raw`` (and no predicate) the items are the stored JSON bytes with
        their resourceVersion spliced in, never parsed.
        """
        raw = raw and predicate is None
        revision = 0
        rv = parse_resource_version(resource_version)
        if resource_version_match == "Exact":
            if not rv:
                raise errors.bad_request("resourceVersionMatch: Exact requires a resourceVersion")
            revision = rv
        elif resource_version_match not in (None, "", "NotOlderThan"):
            raise errors.bad_request(f"resourceVersionMatch: Unsupported value: "
                                     f"{resource_version_match!r}")
        if resource_version_match == "NotOlderThan" or (rv and not resource_version_match):
            current = await self.store.current_revision()
            if rv > current:
                raise errors.timeout(f"Too large resource version: {rv}, current: {current}")
        prefix = list_prefix(info, namespace)
        items: list[Obj] = []
        token = continue_token
        try:
            while True:
                page = await self.store.list(
                    prefix, limit=(limit - len(items)) if limit else 0,
                    continue_token=token, revision=revision,
                )
                revision = page.revision
                if raw:
                    items.extend(raw_object(kv) for kv in page.items)  # type: ignore[misc]
                else:
                    for kv in page.items:
                        obj = decode(kv)
                        if predicate is None or predicate(obj):
                            items.append(obj)
                token = page.continue_token
                # Selectors filter after paging, so fetch more until the page is full.
                if not token or not limit or len(items) >= limit:
                    return ListPage(items, str(page.revision), token,
                                    page.remaining if predicate is None else None)
        except CompactedError:
            if continue_token:
                raise errors.gone("The provided continue parameter is too old to display a "
                                  "consistent list result. You can start a new list without the "
                                  "continue parameter.") from None
            raise errors.gone(f"too old resource version: {revision}") from None
        except InvalidContinueError as exc:
            raise errors.bad_request(str(exc)) from None
        except FutureRevisionError as exc:
            raise errors.timeout(f"Too large resource version: {exc.requested}, "
                                 f"current: {exc.current}") from None

    # ---- writes ----------------------------------------------------------------

    async def create(self, info: KindInfo, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Store a new object; fills server-owned metadata. 409 if the name is taken."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        for field in _SERVER_METADATA + ("resourceVersion",):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = format_time(self.clock())
        if info.kind not in _GENERATION_EXEMPT:
            meta["generation"] = 1
        obj["apiVersion"], obj["kind"] = info.api_version, info.kind
        prepare_for_create(info, obj)
        # ---- Service allocations (kcore.apiserver.allocators): released below if the
        # create fails after claiming them.
        claimed: list[str] = []
        if self._allocates(info):
            claimed = await self.services.allocate_create(obj, dry_run=dry_run)
        try:
            return await self._create_object(info, obj, meta, dry_run)
        except BaseException:
            if claimed:
                await self.services.release_keys(claimed, obj)
            raise

    async def _create_object(self, info: KindInfo, obj: Obj, meta: Obj, dry_run: bool) -> Obj:
        generated = not meta.get("name") and meta.get("generateName")
        for _attempt in range(8 if generated else 1):
            if generated:
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if not meta.get("name"):
                raise errors.invalid(info.kind, info.group, None, [{
                    "reason": "FieldValueRequired", "message": "name or generateName is required",
                    "field": "metadata.name"}])
            key = object_key(info, meta.get("namespace"), meta["name"])
            if dry_run:
                if await self.store.get(key) is not None:
                    raise errors.already_exists(info.plural, info.group, meta["name"])
                meta["resourceVersion"] = ""
                return obj
            try:
                revision = await self.store.create(key, encode(obj))
            except KeyExistsError:
                continue
            meta["resourceVersion"] = str(revision)
            self._notify(info, "ADDED", obj)
            return obj
        raise errors.already_exists(info.plural, info.group, meta["name"])

    async def update(
        self,
        info: KindInfo,
        obj: Obj,
        *,
        subresource: str | None = None,
        old: Obj | None = None,
        dry_run: bool = False,
        allow_create: bool = False,
    ) -> tuple[Obj, bool]:
        """Replace an object (or only its status). Returns (object, created).

        With a resourceVersion in ``obj`` the write is conditional on it (409 when
        stale); without one it applies to the current version.
        """
        meta = obj.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        if old is None:
            old = await self.get_or_none(info, namespace, name)
        if old is None:
            if allow_create and subresource is None:
                return await self.create(info, obj, dry_run=dry_run), True
            raise errors.not_found(info.plural, info.group, name)
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
            raise errors.stale_update(info.plural, info.group, name)
        new = merge_for_update(info, old, obj, subresource)
        if new == old:
            return old, False
        if self._allocates(info) and subresource is None and not old["metadata"].get("deletionTimestamp"):
            # ---- Service allocations: claim new ones now, release dropped ones once written
            claimed, dropped = await self.services.allocate_update(old, new, dry_run=dry_run)
            if dry_run:
                return new, False
            try:
                written = await self._write(info, old, new)
            except BaseException:
                await self.services.release_keys(claimed, new)
                raise
            await self.services.release_keys(dropped, old)
            return written, False
        if dry_run:
            return new, False
        return await self._write(info, old, new), False

    async def _write(self, info: KindInfo, old: Obj, new: Obj) -> Obj:
        """CAS-write ``new`` over ``old``; deletes it when a terminating object loses its last finalizer."""
        meta = new["metadata"]
        key = object_key(info, meta.get("namespace"), meta["name"])
        expected = int(old["metadata"]["resourceVersion"])
        try:
            if meta.get("deletionTimestamp") and not _pending_finalizers(info, new) and \
                    not _awaits_kubelet(info, new):
                revision = await self.store.delete(key, expected)
                new["metadata"]["resourceVersion"] = str(revision)
                self._notify(info, "DELETED", new)
                if self._allocates(info):
                    await self.services.release(old)
                    await self.services.release(new)
                return new
            revision = await self.store.update(key, encode(new), expected)
        except ConflictError:
            raise errors.stale_update(info.plural, info.group, meta["name"]) from None
        except KeyNotFoundError:
            raise errors.not_found(info.plural, info.group, meta["name"]) from None
        new["metadata"]["resourceVersion"] = str(revision)
        self._notify(info, "MODIFIED", new)
        return new

    async def delete(
        self, info: KindInfo, namespace: str | None, name: str, options: DeleteOptions
    ) -> tuple[Obj, bool]:
        """Delete (or start deleting) an object. Returns (object, gone_now)."""
        for _attempt in range(16):
            old = await self.get(info, namespace, name)
            meta = old["metadata"]
            if options.precondition_uid and options.precondition_uid != meta.get("uid"):
                raise errors.conflict(info.plural, info.group, name,
                                      f"Precondition failed: UID in precondition: "
                                      f"{options.precondition_uid}, UID in object meta: {meta.get('uid')}")
            if options.precondition_resource_version and \
                    options.precondition_resource_version != meta["resourceVersion"]:
                raise errors.conflict(info.plural, info.group, name,
                                      f"Precondition failed: ResourceVersion in precondition: "
                                      f"{options.precondition_resource_version}, ResourceVersion in "
                                      f"object meta: {meta['resourceVersion']}")
            new = self._begin_deletion(info, old, options)
            if new is None:
                if options.dry_run:
                    return old, True
                try:
                    revision = await self.store.delete(object_key(info, namespace, name),
                                                       int(meta["resourceVersion"]))
                except ConflictError:
                    continue
                except KeyNotFoundError:
                    raise errors.not_found(info.plural, info.group, name) from None
                old["metadata"]["resourceVersion"] = str(revision)
                self._notify(info, "DELETED", old)
                if self._allocates(info):
                    await self.services.release(old)
                return old, True
            if new == old or options.dry_run:
                return new, False
            try:
                return await self._write(info, old, new), False
            except errors.ApiError as exc:
                if exc.code == 409:
                    continue
                raise
        raise errors.conflict(info.plural, info.group, name, "too many concurrent changes")

    def _begin_deletion(self, info: KindInfo, old: Obj, options: DeleteOptions) -> Obj | None:
        """The object marked for deletion, or None when it can go at once."""
        meta = old["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = options.propagation_policy
        if policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        elif policy == "Orphan" and ORPHAN_FINALIZER not in finalizers:
            finalizers.append(ORPHAN_FINALIZER)
        grace = self._grace_period(info, old, options)
        if not finalizers and grace == 0:
            return None
        new = copy.deepcopy(old)
        new_meta = new["metadata"]
        now = self.clock()
        if finalizers:
            new_meta["finalizers"] = finalizers
        if grace:
            deadline = now + dt.timedelta(seconds=grace)
            current = meta.get("deletionTimestamp")
            if current is None or format_time(deadline) < current:
                new_meta["deletionTimestamp"] = format_time(deadline)  # only ever moves earlier
                new_meta["deletionGracePeriodSeconds"] = grace
        else:
            if not meta.get("deletionTimestamp"):
                new_meta["deletionTimestamp"] = format_time(now)
            new_meta["deletionGracePeriodSeconds"] = 0
        return new

    @staticmethod
    def _grace_period(info: KindInfo, obj: Obj, options: DeleteOptions) -> int:
        """Pods bound to a node wait for their kubelet; everything else goes at once."""
        if info.kind != "Pod" or info.group:
            return 0
        spec = obj.get("spec") or {}
        if not spec.get("nodeName"):
            return 0
        status = obj.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return 0
        if options.grace_period_seconds is not None:
            grace = max(0, options.grace_period_seconds)
        else:
            grace = spec.get("terminationGracePeriodSeconds", 30) or 0
        current = obj["metadata"].get("deletionGracePeriodSeconds")
        if current is not None and obj["metadata"].get("deletionTimestamp"):
            grace = min(grace, current) if grace else 0
        return grace


def _pending_finalizers(info: KindInfo, obj: Obj) -> bool:
    """Finalizers still to run: metadata's, and a Namespace's own spec.finalizers."""
    if obj["metadata"].get("finalizers"):
        return True
    return info.kind == "Namespace" and not info.group and \
        bool((obj.get("spec") or {}).get("finalizers"))


def _awaits_kubelet(info: KindInfo, obj: Obj) -> bool:
    """A terminating pod bound to a node stays until its kubelet confirms (grace 0 delete)."""
    if info.kind != "Pod" or info.group:
        return False
    meta = obj["metadata"]
    return bool((obj.get("spec") or {}).get("nodeName")) and \
        (meta.get("deletionGracePeriodSeconds") or 0) > 0 and \
        (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def merge_for_update(info: KindInfo, old: Obj, new: Obj, subresource: str | None) -> Obj:
    """The object to store for an update: server-owned metadata kept, status or spec
    taken from the request depending on the subresource, generation bumped on spec change."""
    has_status = info.has_subresource("status")
    if subresource == "status":
        merged = copy.deepcopy(old)
        if "status" in new:
            merged["status"] = copy.deepcopy(new["status"])
        else:
            merged.pop("status", None)
        # Kubernetes lets status writers touch labels/annotations? No: only status.
        return merged
    merged = copy.deepcopy(new)
    merged["apiVersion"], merged["kind"] = info.api_version, info.kind
    meta = merged.setdefault("metadata", {})
    old_meta = old["metadata"]
    for field in _SERVER_METADATA:
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    meta["name"] = old_meta["name"]
    if info.namespaced:
        meta["namespace"] = old_meta.get("namespace")
    meta["resourceVersion"] = old_meta["resourceVersion"]
    if old_meta.get("deletionTimestamp"):
        # Terminating objects may lose finalizers but never gain new ones.
        gained = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
        if gained:
            raise errors.forbidden(
                f"no new finalizers can be added if the object is being deleted, found new "
                f"finalizers {sorted(gained)!r}", name=old_meta["name"], group=info.group,
                kind=info.plural)
    if has_status:
        if "status" in old:
            merged["status"] = copy.deepcopy(old["status"])
        else:
            merged.pop("status", None)
    if info.kind == "Service" and not info.group:
        from kcore.apiserver.allocators import prepare_service_update

        prepare_service_update(old, merged)  # keep allocated values an update left out
    if info.kind not in _GENERATION_EXEMPT and spec_part(merged) != spec_part(old):
        meta["generation"] = int(old_meta.get("generation") or 1) + 1
    return merged
