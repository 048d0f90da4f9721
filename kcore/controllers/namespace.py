"""The namespace controller: empties a terminating namespace, then lets it go.

Deleting a Namespace only marks it (deletionTimestamp, phase Terminating) because
its spec carries the ``kubernetes`` finalizer. This controller then deletes every
namespaced object in it — one ``deletecollection`` per kind, object by object for a
kind without that verb — and looks again until nothing is left. Objects may take a
while: a pod bound to a node waits for its kubelet, an object with finalizers waits
for whoever owns them. Once the namespace is empty it removes ``kubernetes`` from
``spec.finalizers`` through the ``finalize`` subresource and the API server deletes
the namespace. Progress is reported in the namespace's status conditions, as
Kubernetes does (``NamespaceContentRemaining``, ``NamespaceFinalizersRemaining``,
``NamespaceDeletionContentFailure``).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

from kcore.api.registry import KindInfo
from kcore.client.controller import Controller
from kcore.client.informer import Informer, InformerFactory
from kcore.client.rest import ApiClient, ApiStatusError
from kcore.log import get_logger

log = get_logger("namespace-controller")

Obj = dict[str, Any]

FINALIZER = "kubernetes"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def deletable_kinds(kinds: list[KindInfo]) -> list[KindInfo]:
    """The namespaced kinds whose objects the controller must delete and can list."""
    return [k for k in kinds if k.namespaced and k.list_model is not None
            and "list" in k.verbs and "delete" in k.verbs]


def deletion_conditions(
    remaining: dict[str, int],
    finalizers: dict[str, int],
    failures: list[str],
    now: str,
    previous: list[Obj] | None = None,
) -> list[Obj]:
    """The status conditions describing a namespace's deletion (pure).

    ``remaining`` counts objects left per resource, ``finalizers`` counts finalizers
    they still carry; a condition keeps its lastTransitionTime while its status holds.
    """
    def line(counts: dict[str, int], what: str) -> str:
        return ", ".join(f"{name} has {n} {what}" for name, n in sorted(counts.items()))

    wanted = [
        (CONTENT_FAILURE, bool(failures), "ContentDeletionFailed" if failures else "ContentDeleted",
         "; ".join(failures) if failures else "All content successfully deleted, may be waiting on finalization"),
        (CONTENT_REMAINING, bool(remaining), "SomeResourcesRemain" if remaining else "ContentRemoved",
         f"Some resources are remaining: {line(remaining, 'resource instances')}" if remaining
         else "All content successfully removed"),
        (FINALIZERS_REMAINING, bool(finalizers), "SomeFinalizersRemain" if finalizers else "ContentHasNoFinalizers",
         f"Some content in the namespace has finalizers remaining: {line(finalizers, 'resource instances')}"
         if finalizers else "All content-preserving finalizers finished"),
    ]
    before = {c.get("type"): c for c in previous or []}
    conditions: list[Obj] = []
    for kind, true, reason, message in wanted:
        status = "True" if true else "False"
        old = before.get(kind)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else now
        conditions.append({"type": kind, "status": status, "lastTransitionTime": since,
                           "reason": reason, "message": message})
    return conditions


class NamespaceController(Controller):
    """Deletes the content of terminating namespaces and then finalizes them."""

    def __init__(
        self,
        client: ApiClient,
        factory: InformerFactory,
        *,
        workers: int = 2,
        recheck_seconds: float = 2.0,
        clock: Callable[[], dt.datetime] = _now,
    ) -> None:
        super().__init__("namespace", workers=workers)
        self.client = client
        self.factory = factory
        self.recheck_seconds = recheck_seconds
        """How soon to look again while content remains (Kubernetes estimates it; we poll)."""
        self.clock = clock
        self.namespaces = factory.informer("v1", "Namespace")
        self.watch(self.namespaces)

    @property
    def informers(self) -> list[Informer]:
        return [self.namespaces]

    async def run(self, informers: list[Informer] | None = None) -> None:
        await self.factory.start()
        await super().run(informers if informers is not None else self.informers)

    async def reconcile(self, key: str) -> float | None:
        namespace = self.namespaces.indexer.get(key)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return None
        if FINALIZER not in ((namespace.get("spec") or {}).get("finalizers") or []):
            return None  # ours is done; others' finalizers are theirs
        name = namespace["metadata"]["name"]
        failures = await self._delete_content(name)
        remaining, finalizers = await self._remaining(name)
        namespace = await self._report(namespace, remaining, finalizers, failures)
        if failures or remaining:
            log.debug("namespace not empty yet", namespace=name, remaining=remaining, failures=failures)
            return self.recheck_seconds
        await self._finalize(namespace)
        return None

    async def _delete_content(self, namespace: str) -> list[str]:
        """Ask for every object in the namespace to be deleted; the failures, as messages."""
        failures: list[str] = []
        for info in deletable_kinds(self.client.registry.kinds()):
            resource = self.client.resource(info.api_version, info.kind)
            try:
                if "deletecollection" in info.verbs:
                    await self.client.request("DELETE", resource.path(namespace),
                                              body={"kind": "DeleteOptions", "apiVersion": "v1",
                                                    "propagationPolicy": "Background"})
                else:
                    items, _ = await resource.list(namespace)
                    for obj in items:
                        if not obj["metadata"].get("deletionTimestamp"):
                            await resource.delete(obj["metadata"]["name"], namespace,
                                                  propagation_policy="Background", missing_ok=True)
            except ApiStatusError as exc:
                if exc.code in (404, 405):
                    continue
                failures.append(f"Failed to delete all resource types, 1 remaining: {info.plural}: {exc.message}")
        return failures

    async def _remaining(self, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
        """What is still there, per resource, and how many of those carry finalizers."""
        remaining: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for info in deletable_kinds(self.client.registry.kinds()):
            items, _ = await self.client.resource(info.api_version, info.kind).list(namespace)
            resource = f"{info.plural}.{info.group}" if info.group else info.plural
            if items:
                remaining[resource] = len(items)
            for obj in items:
                for finalizer in obj["metadata"].get("finalizers") or []:
                    finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
        return remaining, finalizers

    async def _report(self, namespace: Obj, remaining: dict[str, int], finalizers: dict[str, int],
                      failures: list[str]) -> Obj:
        """Write the deletion conditions if they changed; the newest namespace we know."""
        previous = (namespace.get("status") or {}).get("conditions") or []
        now = self.clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions = deletion_conditions(remaining, finalizers, failures, now, previous)
        if conditions == previous:
            return namespace
        updated = copy.deepcopy(namespace)  # never the cached object itself
        updated.setdefault("status", {})["conditions"] = conditions
        try:
            return await self.client.resource("v1", "Namespace").update_status(updated)
        except ApiStatusError as exc:
            if exc.code not in (404, 409):
                raise
            return namespace  # a conflict or a vanished namespace is settled by the next look

    async def _finalize(self, namespace: Obj) -> None:
        name = namespace["metadata"]["name"]
        body = copy.deepcopy(namespace)
        body["spec"] = dict(body.get("spec") or {})
        body["spec"]["finalizers"] = [f for f in body["spec"].get("finalizers") or [] if f != FINALIZER]
        resource = self.client.resource("v1", "Namespace")
        try:
            await self.client.request("PUT", resource.path(None, name, "finalize"), body=body)
        except ApiStatusError as exc:
            if exc.code == 404:
                return
            raise  # 409: the cache was stale; retried with back-off from fresher state
        log.info("namespace emptied and finalized", namespace=name)
