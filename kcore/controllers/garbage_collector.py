"""The garbage collector: deletes objects whose owners are gone, and carries out the
``Foreground`` and ``Orphan`` deletion policies.

Kubernetes' GC keeps an explicit owner -> dependents graph. Here the graph *is* the
informer caches: every kind that can be listed and watched gets an informer (shared
through the :class:`InformerFactory`) with an extra index from owner uid to the
objects that name it in ``ownerReferences``. Dependents of an owner are then one
index lookup per kind, and the graph can never drift from what the caches hold.

One work item is one object (``apiVersion|kind|namespace|name``). Reconciling it:

* it carries the ``orphan`` finalizer and is being deleted: remove the reference to
  it from every dependent, then the finalizer (``--cascade=orphan``);
* it carries ``foregroundDeletion`` and is being deleted: delete its dependents and
  drop the finalizer once no dependent with ``blockOwnerDeletion`` is left
  (``--cascade=foreground``);
* it has owners: if none of them exists any more (checked by uid, with a live GET
  when the cache does not have it, so a recreated namesake is not the owner), delete
  it — the owner went first, its dependents follow (``--cascade=background``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, Literal

from kcore.api.registry import KindInfo
from kcore.client.controller import Controller
from kcore.client.informer import Informer, InformerFactory, object_key
from kcore.client.rest import ApiClient, ApiStatusError
from kcore.log import get_logger

log = get_logger("garbage-collector")

Obj = dict[str, Any]
OwnerState = Literal["solid", "absent", "waiting"]

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"
INDEX_OWNER_UIDS = "gc-owner-uids"
"""Informer index: the uid of every owner an object names (not only the controller)."""

DEFAULT_IGNORED_KINDS: frozenset[tuple[str, str]] = frozenset({("v1", "Event")})
"""Kinds the collector does not watch (Kubernetes ignores events too: many, never owners)."""

_ABSENT_CACHE_SIZE = 10_000


def owner_uids(obj: Obj) -> list[str]:
    """Index function: the uids of all of an object's owners."""
    return [ref["uid"] for ref in (obj.get("metadata") or {}).get("ownerReferences") or [] if ref.get("uid")]


@dataclass(frozen=True, slots=True)
class ItemRef:
    """What a work item names: one object of one kind."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def key(self) -> str:
        return f"{self.api_version}|{self.kind}|{self.namespace}|{self.name}"

    @classmethod
    def parse(cls, key: str) -> ItemRef:
        api_version, kind, namespace, name = key.split("|", 3)
        return cls(api_version, kind, namespace, name)

    @classmethod
    def of(cls, info: KindInfo, obj: Obj) -> ItemRef:
        meta = obj.get("metadata") or {}
        return cls(info.api_version, info.kind, meta.get("namespace") or "", meta["name"])


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def has_finalizer(obj: Obj, finalizer: str) -> bool:
    return finalizer in ((obj.get("metadata") or {}).get("finalizers") or [])


def ref_to(obj: Obj, owner_uid: str) -> Obj | None:
    """The ownerReference of ``obj`` that points at ``owner_uid``."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("uid") == owner_uid:
            return ref
    return None


def deletion_policy(obj: Obj) -> str:
    """The propagation policy to delete a dependent with, keeping a policy it already asked for."""
    if has_finalizer(obj, ORPHAN_FINALIZER):
        return "Orphan"
    if has_finalizer(obj, FOREGROUND_FINALIZER):
        return "Foreground"
    return "Background"


class GarbageCollector(Controller):
    """Collects dependents of deleted owners and runs the foreground/orphan finalizers."""

    def __init__(
        self,
        client: ApiClient,
        factory: InformerFactory,
        *,
        workers: int = 4,
        ignored_kinds: frozenset[tuple[str, str]] = DEFAULT_IGNORED_KINDS,
    ) -> None:
        super().__init__("garbage-collector", workers=workers)
        self.client = client
        self.factory = factory
        self._informers: dict[tuple[str, str], Informer] = {}
        self._absent: collections.OrderedDict[str, None] = collections.OrderedDict()
        for info in client.registry.kinds():
            if (info.api_version, info.kind) in ignored_kinds or info.list_model is None:
                continue
            if "list" not in info.verbs or "watch" not in info.verbs:
                continue
            informer = factory.informer(info.api_version, info.kind, indexers={INDEX_OWNER_UIDS: owner_uids})
            self._informers[(info.api_version, info.kind)] = informer
            self._add_handlers(info, informer)

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    async def run(self, informers: list[Informer] | None = None) -> None:
        """Start the shared informers (if nobody did yet) and collect until stop()."""
        await self.factory.start()
        await super().run(informers if informers is not None else self.informers)

    # ---- the graph, from the caches ----------------------------------------------

    def dependents(self, owner_uid: str) -> list[tuple[KindInfo, Obj]]:
        """Every cached object that names ``owner_uid`` among its owners."""
        found: list[tuple[KindInfo, Obj]] = []
        for informer in self._informers.values():
            for obj in informer.indexer.by_index(INDEX_OWNER_UIDS, owner_uid):
                found.append((informer.resource.info, obj))
        return found

    def _enqueue_item(self, item: ItemRef) -> None:
        self.queue.add(item.key())

    def _enqueue_owners(self, obj: Obj, refs: list[Obj] | None = None) -> None:
        """Queue the owners ``obj`` names: one waiting in foreground may now be unblocked."""
        namespace = (obj.get("metadata") or {}).get("namespace") or ""
        for ref in refs if refs is not None else (obj.get("metadata") or {}).get("ownerReferences") or []:
            try:
                info = self.client.registry.get(ref.get("apiVersion", ""), ref.get("kind", ""))
            except KeyError:
                continue
            self._enqueue_item(ItemRef(info.api_version, info.kind, namespace if info.namespaced else "",
                                       ref.get("name", "")))

    def _add_handlers(self, info: KindInfo, informer: Informer) -> None:
        def interesting(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            return bool(meta.get("ownerReferences")) or (
                is_deleting(obj) and (has_finalizer(obj, ORPHAN_FINALIZER)
                                      or has_finalizer(obj, FOREGROUND_FINALIZER)))

        def on_add(obj: Obj) -> None:
            if interesting(obj):
                self._enqueue_item(ItemRef.of(info, obj))

        def on_update(old: Obj, new: Obj) -> None:
            old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
            old_refs = old_meta.get("ownerReferences") or []
            new_refs = new_meta.get("ownerReferences") or []
            state = ("deletionTimestamp", "finalizers", "uid")
            changed = any(old_meta.get(f) != new_meta.get(f) for f in state)
            if (changed or old_refs != new_refs) and interesting(new):
                self._enqueue_item(ItemRef.of(info, new))
            if old_refs != new_refs:
                self._enqueue_owners(old, [r for r in old_refs if r not in new_refs])

        def on_delete(obj: Obj) -> None:
            uid = (obj.get("metadata") or {}).get("uid")
            if uid:
                self._note_absent(uid)
                for dep_info, dep in self.dependents(uid):
                    self._enqueue_item(ItemRef.of(dep_info, dep))
            self._enqueue_owners(obj)

        informer.add_handler(on_add=on_add, on_update=on_update, on_delete=on_delete)

    def _note_absent(self, uid: str) -> None:
        self._absent[uid] = None
        self._absent.move_to_end(uid)
        while len(self._absent) > _ABSENT_CACHE_SIZE:
            self._absent.popitem(last=False)

    # ---- reconcile -------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        item = ItemRef.parse(key)
        informer = self._informers.get((item.api_version, item.kind))
        if informer is None:
            return None
        obj = informer.indexer.get(f"{item.namespace}/{item.name}" if item.namespace else item.name)
        if obj is None:
            return None
        info = informer.resource.info
        if is_deleting(obj):
            if has_finalizer(obj, ORPHAN_FINALIZER):
                await self._orphan_dependents(info, obj)
            elif has_finalizer(obj, FOREGROUND_FINALIZER):
                await self._delete_dependents_first(info, obj)
            return None
        if (obj.get("metadata") or {}).get("ownerReferences"):
            await self._attempt_to_delete(info, obj)
        return None

    async def _owner_state(self, dependent: Obj, ref: Obj) -> OwnerState:
        """Whether the owner ``ref`` names exists (same uid), is gone, or is deleting in foreground."""
        uid = ref.get("uid") or ""
        if uid in self._absent:
            return "absent"
        try:
            info = self.client.registry.get(ref.get("apiVersion", ""), ref.get("kind", ""))
        except KeyError:
            # We cannot look it up, so we cannot prove it gone: keep the dependent.
            log.info("owner of an unknown kind; keeping the dependent", owner=ref,
                     dependent=object_key(dependent))
            return "solid"
        namespace = (dependent.get("metadata") or {}).get("namespace")
        if info.namespaced and not namespace:
            return "absent"  # a cluster-scoped object cannot be owned by a namespaced one
        namespace = namespace if info.namespaced else None
        owner: Obj | None = None
        informer = self._informers.get((info.api_version, info.kind))
        if informer is not None:
            cached = informer.indexer.get(f"{namespace}/{ref.get('name')}" if namespace else ref.get("name", ""))
            if cached is not None and cached["metadata"].get("uid") == uid:
                owner = cached
        if owner is None:
            # The cache may lag behind a just-created owner: ask the API before deciding.
            owner = await self.client.resource(info.api_version, info.kind).get_or_none(
                ref.get("name", ""), namespace)
            if owner is None or owner["metadata"].get("uid") != uid:
                self._note_absent(uid)
                return "absent"
        if is_deleting(owner) and has_finalizer(owner, FOREGROUND_FINALIZER):
            return "waiting"
        return "solid"

    async def _attempt_to_delete(self, info: KindInfo, obj: Obj) -> None:
        refs = (obj.get("metadata") or {}).get("ownerReferences") or []
        solid: list[Obj] = []
        gone: list[Obj] = []
        waiting: list[Obj] = []
        for ref in refs:
            state = await self._owner_state(obj, ref)
            (solid if state == "solid" else gone if state == "absent" else waiting).append(ref)
        if solid:
            if gone or waiting:
                # Still owned: only forget the owners that are going away.
                await self._remove_owner_refs(info, obj, {r["uid"] for r in gone + waiting})
            return
        uid = obj["metadata"].get("uid")
        if waiting and uid and self.dependents(uid):
            # An owner deletes in foreground and this one has dependents: it must do the same.
            await self._delete(info, obj, "Foreground")
            return
        await self._delete(info, obj, deletion_policy(obj))

    async def _delete_dependents_first(self, info: KindInfo, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        blocking = 0
        for dep_info, dep in self.dependents(uid):
            ref = ref_to(dep, uid) or {}
            if ref.get("blockOwnerDeletion"):
                blocking += 1
            if not is_deleting(dep):
                self._enqueue_item(ItemRef.of(dep_info, dep))
        if blocking == 0:
            await self._remove_finalizer(info, owner, FOREGROUND_FINALIZER)

    async def _orphan_dependents(self, info: KindInfo, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        for dep_info, dep in self.dependents(uid):
            await self._remove_owner_refs(dep_info, dep, {uid})
        await self._remove_finalizer(info, owner, ORPHAN_FINALIZER)

    # ---- writes ----------------------------------------------------------------

    async def _delete(self, info: KindInfo, obj: Obj, policy: str) -> None:
        meta = obj["metadata"]
        log.info("deleting object whose owners are gone", kind=info.kind, namespace=meta.get("namespace"),
                 name=meta["name"], propagation=policy)
        await self.client.resource(info.api_version, info.kind).delete(
            meta["name"], meta.get("namespace"), propagation_policy=policy,
            preconditions={"uid": meta["uid"]}, missing_ok=True)

    async def _patch_list(self, info: KindInfo, obj: Obj, field: str, keep: Any) -> None:
        """Shrink ``metadata.<field>`` of the live object to the entries ``keep`` accepts.

        A JSON patch that tests the uid and the current list first makes it a
        compare-and-swap: a concurrent change fails it (and the item is retried).
        """
        meta = obj["metadata"]
        resource = self.client.resource(info.api_version, info.kind)
        live = await resource.get_or_none(meta["name"], meta.get("namespace"))
        if live is None or live["metadata"].get("uid") != meta.get("uid"):
            return
        current = live["metadata"].get(field) or []
        wanted = [entry for entry in current if keep(entry)]
        if wanted == current:
            return
        path = f"/metadata/{field}"
        ops: list[Obj] = [{"op": "test", "path": "/metadata/uid", "value": meta["uid"]},
                          {"op": "test", "path": path, "value": current}]
        ops.append({"op": "replace", "path": path, "value": wanted} if wanted else {"op": "remove", "path": path})
        try:
            await resource.patch(meta["name"], ops, namespace=meta.get("namespace"), patch_type="json")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise

    async def _remove_owner_refs(self, info: KindInfo, obj: Obj, uids: set[str]) -> None:
        await self._patch_list(info, obj, "ownerReferences", lambda ref: ref.get("uid") not in uids)

    async def _remove_finalizer(self, info: KindInfo, obj: Obj, finalizer: str) -> None:
        log.info("dependents handled; removing finalizer", kind=info.kind,
                 namespace=obj["metadata"].get("namespace"), name=obj["metadata"]["name"], finalizer=finalizer)
        await self._patch_list(info, obj, "finalizers", lambda f: f != finalizer)
