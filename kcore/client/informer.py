"""Informers: a local, indexed cache of one kind kept current by list + watch.

Modelled on client-go's shared informer (tools/cache). An informer lists once, then
watches from the list's resourceVersion, so its cache holds exactly what the server
holds, a little later. Controllers read the cache instead of the API ("caches, not
queries") and get notified of changes through handlers, which should do no more
than enqueue a key.

The cache hands out the very dicts it stores, for speed. **Never mutate an object
you got from an informer or indexer**: copy it first (``copy.deepcopy``) and write
the copy back through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from kcore.client.rest import ApiClient, ApiStatusError, ResourceClient
from kcore.log import get_logger

log = get_logger("informer")

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]

INDEX_NAMESPACE = "namespace"
INDEX_OWNER = "owner"
INDEX_NODE = "node"

_BACKOFF_START = 0.1
_BACKOFF_MAX = 5.0


def object_key(obj: Obj) -> str:
    """The cache key of an object: ``namespace/name``, or ``name`` for cluster-scoped ones."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else meta["name"]


def split_key(key: str) -> tuple[str | None, str]:
    """``(namespace, name)`` of a cache key (namespace None for cluster-scoped objects)."""
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else (None, key)


def namespace_index(obj: Obj) -> list[str]:
    namespace = (obj.get("metadata") or {}).get("namespace")
    return [namespace] if namespace else []


def owner_index(obj: Obj) -> list[str]:
    """The uid of the controlling owner, the way controllers find what they own."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid"):
            return [ref["uid"]]
    return []


def node_index(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


DEFAULT_INDEXERS: dict[str, IndexFunc] = {
    INDEX_NAMESPACE: namespace_index,
    INDEX_OWNER: owner_index,
    INDEX_NODE: node_index,
}


def _rv(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


class Indexer:
    """The cache: objects by key plus secondary indexes kept in step with every change.

    Objects returned are shared with the cache: never mutate them (copy on write).
    """

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        # What each key was filed under, so removal never depends on re-running an indexer.
        self._filed: dict[str, dict[str, list[str]]] = {}
        self.add_indexers(indexers or {})

    # ---- reads -----------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def by_index(self, index: str, value: str) -> list[Obj]:
        """Objects filed under ``value`` in ``index``; KeyError for an unknown index."""
        if index not in self._indexers:
            raise KeyError(f"no index named {index!r}")
        return [self._items[k] for k in self._indices[index].get(value, ())]

    def index_keys(self, index: str, value: str) -> list[str]:
        if index not in self._indexers:
            raise KeyError(f"no index named {index!r}")
        return list(self._indices[index].get(value, ()))

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    # ---- writes (the informer's) -------------------------------------------------

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        """Add indexes (also after objects are cached: they are indexed at once)."""
        for name, func in indexers.items():
            if name in self._indexers:
                if self._indexers[name] is not func:
                    raise ValueError(f"an index named {name!r} already exists")
                continue
            self._indexers[name] = func
            self._indices[name] = {}
            for key, obj in self._items.items():
                self._file(key, name, func(obj))

    def upsert(self, obj: Obj) -> Obj | None:
        """Store ``obj``; the object it replaced, if any."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unfile(key)
        self._items[key] = obj
        for name, func in self._indexers.items():
            self._file(key, name, func(obj))
        return old

    def delete(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        if old is not None:
            self._unfile(key)
        return old

    def _file(self, key: str, index: str, values: list[str]) -> None:
        if not values:
            return
        self._filed.setdefault(key, {})[index] = values
        bucket = self._indices[index]
        for value in values:
            bucket.setdefault(value, set()).add(key)

    def _unfile(self, key: str) -> None:
        for index, values in self._filed.pop(key, {}).items():
            bucket = self._indices[index]
            for value in values:
                keys = bucket.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del bucket[value]


class _Handler:
    __slots__ = ("on_add", "on_update", "on_delete")

    def __init__(self, on_add: AddHandler | None, on_update: UpdateHandler | None,
                 on_delete: DeleteHandler | None) -> None:
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete


class Informer:
    """List-then-watch one kind into an :class:`Indexer`, notifying handlers of changes."""

    def __init__(
        self,
        client: ApiClient,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_seconds: float = 0,
        indexers: dict[str, IndexFunc] | None = None,
    ) -> None:
        self.client = client
        self.resource: ResourceClient = client.resource(api_version, kind)
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_seconds = resync_seconds
        self.indexer = Indexer({**DEFAULT_INDEXERS, **(indexers or {})})
        self.last_resource_version: str | None = None
        """The newest resourceVersion the cache reflects (list, event or bookmark)."""
        self.relists = 0
        """How many full lists were made (1 after the first sync; more after 410s)."""
        self._handlers: list[_Handler] = []
        self._synced = asyncio.Event()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        self._log = log.bind(kind=kind, namespace=namespace or "")

    # ---- handlers --------------------------------------------------------------

    def add_handler(self, *, on_add: AddHandler | None = None, on_update: UpdateHandler | None = None,
                    on_delete: DeleteHandler | None = None) -> None:
        """Register callbacks (synchronous; keep them short: enqueue a key).

        A handler added after the first sync is first told about every cached
        object through ``on_add``, so it sees the same world as the others.
        """
        handler = _Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if self._synced.is_set() and on_add is not None:
            for obj in self.indexer.list():
                self._call(on_add, obj)

    def add_indexers(self, indexers: dict[str, IndexFunc]) -> None:
        self.indexer.add_indexers(indexers)

    def _call(self, func: Callable[..., None], *args: Obj) -> None:
        try:
            func(*args)
        except Exception:  # noqa: BLE001 - one bad handler must not stop the informer
            self._log.exception("informer handler failed", handler=getattr(func, "__qualname__", repr(func)))

    def _notify_add(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _notify_update(self, old: Obj, new: Obj) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _notify_delete(self, obj: Obj) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    # ---- state -----------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> None:
        """Return once the first list is in the cache; TimeoutError after ``timeout``."""
        async with asyncio.timeout(timeout):
            await self._synced.wait()

    # ---- lifecycle -------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until :meth:`stop`; errors are logged and retried with back-off."""
        if self._task is not None:
            raise RuntimeError(f"the {self.kind} informer is already running")
        self._stopped = False
        # The work runs in a child task so stop() cancels only it, never the caller's task.
        self._task = asyncio.create_task(self._main(), name=f"informer {self.kind}")
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self._stopped or (current is not None and current.cancelling()):
                raise
        finally:
            self._task = None

    async def stop(self) -> None:
        """Stop watching; the cache keeps its last contents."""
        self._stopped = True
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _main(self) -> None:
        resync: asyncio.Task[None] | None = None
        if self.resync_seconds > 0:
            resync = asyncio.create_task(self._resync_loop(), name=f"informer-resync {self.kind}")
        try:
            await self._list_watch_loop()
        finally:
            if resync is not None:
                resync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resync

    async def _list_watch_loop(self) -> None:
        backoff = _BACKOFF_START
        while not self._stopped:
            try:
                rv = await self._list_and_replace()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep trying: the server may come back
                self._log.warning("list failed; retrying", error=str(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_START
            await self._watch_until_gone(rv)

    async def _list_and_replace(self) -> str:
        """List everything and make the cache equal to it, telling handlers what changed."""
        items, rv = await self.resource.list(self.namespace, label_selector=self.label_selector,
                                             field_selector=self.field_selector)
        self.relists += 1
        seen: set[str] = set()
        for obj in items:
            key = object_key(obj)
            seen.add(key)
            old = self.indexer.upsert(obj)
            if old is None:
                self._notify_add(obj)
            elif _rv(old) != _rv(obj):
                self._notify_update(old, obj)
        for key in [k for k in self.indexer.keys() if k not in seen]:
            gone = self.indexer.delete(key)
            if gone is not None:
                # Deleted while we were not watching: the last state we knew.
                self._notify_delete(gone)
        self.last_resource_version = rv
        if not self._synced.is_set():
            self._log.debug("informer synced", objects=len(items), resource_version=rv)
            self._synced.set()
        return rv

    async def _watch_until_gone(self, rv: str) -> None:
        """Watch from ``rv``, re-watching from the newest version seen whenever the stream
        ends or breaks; return only when the server says 410 Gone (time to re-list)."""
        backoff = _BACKOFF_START
        while not self._stopped:
            started = time.monotonic()
            delivered = False
            try:
                async for event in self.resource.watch(
                    self.namespace, resource_version=rv, label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    timeout_seconds=random.randint(300, 600),  # recycle long connections, as client-go
                ):
                    delivered = True
                    new_rv = _rv(event.object)
                    if event.type != "BOOKMARK":
                        self._apply(event.type, event.object)
                    if new_rv:
                        rv = new_rv
                        self.last_resource_version = rv
                failure: str | None = None
                if not delivered and time.monotonic() - started < 1.0:
                    failure = "the watch ended at once"
            except asyncio.CancelledError:
                raise
            except ApiStatusError as exc:
                if exc.code == 410:
                    self._log.info("watch expired; re-listing", resource_version=rv, message=exc.message)
                    return
                failure = str(exc)
            except Exception as exc:  # noqa: BLE001 - a dropped connection: re-watch from rv
                failure = str(exc) or type(exc).__name__
            if failure is None:
                backoff = _BACKOFF_START
                continue
            if delivered:
                backoff = _BACKOFF_START
            self._log.info("watch broke off; re-watching", resource_version=rv, error=failure,
                           retry_in=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _apply(self, event_type: str, obj: Obj) -> None:
        if event_type == "DELETED":
            gone = self.indexer.delete(object_key(obj))
            if gone is not None:
                self._notify_delete(obj)
            return
        if event_type not in ("ADDED", "MODIFIED"):
            self._log.warning("unknown watch event type", type=event_type)
            return
        old = self.indexer.upsert(obj)
        if old is None:
            self._notify_add(obj)
        elif _rv(old) != _rv(obj):
            self._notify_update(old, obj)

    async def _resync_loop(self) -> None:
        """Re-deliver every cached object as an update, so level-triggered controllers
        get a periodic chance to correct drift they were not told about."""
        await self._synced.wait()
        while True:
            await asyncio.sleep(self.resync_seconds)
            for obj in self.indexer.list():
                self._notify_update(obj, obj)


class InformerFactory:
    """Hands every controller the same informer for the same (kind, namespace, selectors),
    so a cluster of controllers costs one list and one watch per kind."""

    def __init__(self, client: ApiClient, resync_seconds: float = 0) -> None:
        self.client = client
        self.resync_seconds = resync_seconds
        self._informers: dict[tuple[str, str, str | None, str | None, str | None], Informer] = {}
        self._tasks: dict[Informer, asyncio.Task[None]] = {}

    def informer(self, api_version: str, kind: str, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_seconds: float | None = None,
                 indexers: dict[str, IndexFunc] | None = None) -> Informer:
        """The shared informer; extra ``indexers`` are added to it if it exists already."""
        key = (api_version, kind, namespace, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = self._informers[key] = Informer(
                self.client, api_version, kind, namespace=namespace, label_selector=label_selector,
                field_selector=field_selector,
                resync_seconds=self.resync_seconds if resync_seconds is None else resync_seconds,
                indexers=indexers)
        elif indexers:
            informer.add_indexers(indexers)
        return informer

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def start(self) -> None:
        """Start every informer not running yet (call again after asking for more)."""
        for informer in self._informers.values():
            if informer not in self._tasks:
                self._tasks[informer] = asyncio.create_task(informer.run(),
                                                            name=f"informer {informer.kind}")

    async def wait_synced(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(i.wait_synced() for i in self._informers.values()))

    async def stop(self) -> None:
        for informer in list(self._tasks):
            await informer.stop()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
