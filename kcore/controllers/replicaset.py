"""The ReplicaSet and ReplicationController controller: keep ``spec.replicas`` pods.

One reconcile serves both kinds (Kubernetes' "replication manager" is the same code
behind two informers); they differ only in their API group and in how the
selector is written (a LabelSelector or a plain map). A reconcile:

1. claims pods: adopts active orphans that match the selector, releases owned pods
   that no longer match (both conditional patches on the pod's resourceVersion);
2. if the cache has caught up with its own earlier writes (expectations), creates
   the missing pods in slow-start batches (1, 2, 4, ...) or deletes the extras,
   choosing them by :func:`podutil.deletion_rank`;
3. writes status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration and the ReplicaFailure condition.

Expectations (client-go's ControllerExpectations) exist because the cache lags the
API: right after creating three pods the cache may show none of them, and a naive
second reconcile would create three more. So a reconcile records what it expects
to see, the pod handlers count it off, and replicas are only managed again once
everything expected was observed (or after a timeout, in case an event was lost).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kcore.apiserver.selectors import LabelSelector, SelectorError, selector_from_label_selector, selector_from_set
from kcore.client import ApiClient, ApiStatusError, Controller, EventRecorder, Informer, InformerFactory
from kcore.client.informer import INDEX_NAMESPACE, object_key, split_key
from kcore.controllers import podutil
from kcore.log import get_logger

Obj = dict[str, Any]

BURST_REPLICAS = 500
"""At most this many pods are created or deleted by one reconcile."""
SLOW_START_INITIAL_BATCH = 1
EXPECTATIONS_TIMEOUT = 300.0

log = get_logger("replicaset")


# ---------------------------------------------------------------- expectations


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    created: float = field(default_factory=time.monotonic)


class Expectations:
    """What a controller is waiting to see in its cache, per controller key.

    Creations are counted (their names are not known until the server answers);
    deletions are tracked by pod key, so observing the same deletion twice (an
    update with deletionTimestamp, then the DELETED event) counts once.
    """

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._items: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        """True when nothing is pending for ``key`` (or the record is too old to trust)."""
        exp = self._items.get(key)
        if exp is None:
            return True
        if exp.adds <= 0 and not exp.deletes:
            return True
        return self._clock() - exp.created > self.timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(adds=count, created=self._clock())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._items[key] = _Expectation(deletes=set(pod_keys), created=self._clock())

    def creation_observed(self, key: str) -> None:
        exp = self._items.get(key)
        if exp is not None and exp.adds > 0:
            exp.adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.deletes.discard(pod_key)

    def forget(self, key: str) -> None:
        self._items.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        exp = self._items.get(key)
        return (0, 0) if exp is None else (max(exp.adds, 0), len(exp.deletes))


# ---------------------------------------------------------------- pure decisions


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """Batch sizes for ``count`` creations: 1, 2, 4, ... so a template that cannot be
    created fails once, not hundreds of times."""
    batches: list[int] = []
    size = max(1, initial)
    remaining = count
    while remaining > 0:
        batch = min(size, remaining)
        batches.append(batch)
        remaining -= batch
        size *= 2
    return batches


def replica_diff(active_owned: int, desired: int, burst: int = BURST_REPLICAS) -> int:
    """Pods to create (positive) or delete (negative), at most ``burst`` either way."""
    diff = desired - active_owned
    return max(-burst, min(burst, diff))


def calculate_status(rs: Mapping[str, Any], pods: list[Obj], template_labels: Mapping[str, str],
                     min_ready_seconds: int, now: Any) -> Obj:
    """The counting part of a ReplicaSet/RC status from its active owned pods."""
    fully_labeled = sum(1 for p in pods if all(
        ((p.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in template_labels.items()))
    ready = [p for p in pods if podutil.is_pod_ready(p)]
    available = sum(1 for p in ready if podutil.is_pod_available(p, min_ready_seconds, now))
    return {
        "replicas": len(pods),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": len(ready),
        "availableReplicas": available,
        "observedGeneration": (rs.get("metadata") or {}).get("generation"),
    }


def set_condition(conditions: list[Obj], new: Obj, now_text: str) -> list[Obj]:
    """Conditions with ``new`` set: lastTransitionTime kept when the status did not change."""
    out: list[Obj] = []
    for cond in conditions:
        if cond.get("type") == new["type"]:
            if cond.get("status") == new["status"] and cond.get("reason") == new.get("reason") \
                    and cond.get("message") == new.get("message"):
                return conditions
            new = {**new, "lastTransitionTime": cond.get("lastTransitionTime") or now_text} \
                if cond.get("status") == new["status"] else {**new, "lastTransitionTime": now_text}
            continue
        out.append(cond)
    new.setdefault("lastTransitionTime", now_text)
    out.append(new)
    return out


def remove_condition(conditions: list[Obj], cond_type: str) -> list[Obj]:
    return [c for c in conditions if c.get("type") != cond_type]


# ---------------------------------------------------------------- the kinds


@dataclass(frozen=True)
class ReplicatedKind:
    """What differs between ReplicaSet and ReplicationController."""

    api_version: str
    kind: str
    map_selector: bool  # RC: spec.selector is a plain label map

    def selector(self, obj: Mapping[str, Any]) -> LabelSelector | None:
        """The pod selector; None when it is missing (such an object selects nothing)."""
        spec = obj.get("spec") or {}
        raw = spec.get("selector")
        if self.map_selector:
            if not raw:
                raw = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
            return selector_from_set(raw) if raw else None
        if raw is None:
            return None
        try:
            sel = selector_from_label_selector(raw)
        except SelectorError:
            return None
        return None if sel.is_empty() else sel


REPLICA_SET = ReplicatedKind("apps/v1", "ReplicaSet", map_selector=False)
REPLICATION_CONTROLLER = ReplicatedKind("v1", "ReplicationController", map_selector=True)


# ---------------------------------------------------------------- the controller


class ReplicaSetController(Controller):
    """Keeps the pods of every ReplicaSet (or, in the subclass, ReplicationController)."""

    KIND: ReplicatedKind = REPLICA_SET
    COMPONENT = "replicaset-controller"

    def __init__(self, client: ApiClient, factory: InformerFactory, recorder: EventRecorder | None = None,
                 *, workers: int = 4, burst_replicas: int = BURST_REPLICAS) -> None:
        super().__init__(self.COMPONENT, workers=workers)
        self.client = client
        self.recorder = recorder or EventRecorder(client, self.COMPONENT)
        self.burst_replicas = burst_replicas
        self.expectations = Expectations()
        self.owners = client.resource(self.KIND.api_version, self.KIND.kind)
        self.pods = client.resource("v1", "Pod")
        self.owner_informer: Informer = factory.informer(self.KIND.api_version, self.KIND.kind)
        self.pod_informer: Informer = factory.informer("v1", "Pod")
        self.owner_informer.add_handler(on_add=self.enqueue, on_update=self._owner_updated,
                                        on_delete=self._owner_deleted)
        self.pod_informer.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                      on_delete=self._pod_deleted)

    async def run(self, informers: list[Informer] | None = None) -> None:  # type: ignore[override]
        """Run until stop(); the caller (or factory) must start the informers."""
        await super().run(informers or [self.owner_informer, self.pod_informer])

    # ---- handlers: only bookkeeping and enqueueing ----------------------------

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)
        old_min = (old.get("spec") or {}).get("minReadySeconds")
        if old_min != (new.get("spec") or {}).get("minReadySeconds"):
            self.enqueue_after(new, float((new.get("spec") or {}).get("minReadySeconds") or 0) + 0.5)

    def _owner_deleted(self, obj: Obj) -> None:
        key = object_key(obj)
        self.expectations.forget(key)
        self.enqueue(key)

    def _owner_key(self, pod: Obj, ref: Mapping[str, Any] | None) -> str | None:
        """The key of the owner of our kind that ``ref`` points at, if it is cached and the uid matches."""
        if ref is None or ref.get("kind") != self.KIND.kind or \
                ref.get("apiVersion", "").split("/")[0] != self.KIND.api_version.split("/")[0]:
            return None
        key = f"{pod['metadata'].get('namespace')}/{ref.get('name')}"
        owner = self.owner_informer.indexer.get(key)
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _enqueue_matching_owners(self, pod: Obj) -> None:
        """An orphan appeared or changed: every owner whose selector matches may adopt it."""
        labels = (pod.get("metadata") or {}).get("labels") or {}
        for owner in self.owner_informer.indexer.by_index(INDEX_NAMESPACE, pod["metadata"].get("namespace") or ""):
            sel = self.KIND.selector(owner)
            if sel is not None and sel.matches(labels):
                self.enqueue(owner)

    def _pod_added(self, pod: Obj) -> None:
        if podutil.is_terminating(pod):
            # Seen for the first time already terminating (e.g. after a re-list).
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod, podutil.controller_ref(pod))
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
        elif podutil.controller_ref(pod) is None:
            self._enqueue_matching_owners(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return  # a resync: nothing changed
        old_ref, new_ref = podutil.controller_ref(old), podutil.controller_ref(new)
        labels_changed = (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {})
        if podutil.is_terminating(new) and not podutil.is_terminating(old):
            # Terminating counts as gone: a replacement may be created at once.
            key = self._owner_key(new, new_ref)
            if key is not None:
                self.expectations.deletion_observed(key, object_key(new))
        if (old_ref or {}).get("uid") != (new_ref or {}).get("uid"):
            old_key = self._owner_key(old, old_ref)
            if old_key is not None:
                self.enqueue(old_key)
        key = self._owner_key(new, new_ref)
        if key is not None:
            self.enqueue(key)
            owner = self.owner_informer.indexer.get(key)
            min_ready = int(((owner or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not podutil.is_pod_ready(old) and podutil.is_pod_ready(new):
                # Becomes available later without any event: look again then.
                self.enqueue_after(key, min_ready + 0.5)
        elif new_ref is None and (labels_changed or old_ref is not None):
            self._enqueue_matching_owners(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod, podutil.controller_ref(pod))
        if key is not None:
            self.expectations.deletion_observed(key, object_key(pod))
            self.enqueue(key)

    # ---- reconcile -------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        started = time.monotonic()
        owner = self.owner_informer.indexer.get(key)
        if owner is None:
            self.expectations.forget(key)
            return None
        namespace, _name = split_key(key)
        selector = self.KIND.selector(owner)
        namespace_pods = self.pod_informer.indexer.by_index(INDEX_NAMESPACE, namespace or "")
        needs_sync = self.expectations.satisfied(key)
        pods = await self._claim_pods(owner, selector, namespace_pods) if selector is not None else []
        manage_error: Exception | None = None
        deleted: set[str] = set()
        if needs_sync and not podutil.is_terminating(owner) and selector is not None:
            try:
                deleted = await self._manage_replicas(key, owner, pods)
            except Exception as exc:  # noqa: BLE001 - reported in status, then retried
                manage_error = exc
        remaining = [p for p in pods if object_key(p) not in deleted]
        requeue = await self._update_status(owner, remaining, manage_error)
        log.debug("synced", kind=self.KIND.kind, key=key, pods=len(pods),
                  took=round(time.monotonic() - started, 4))
        if manage_error is not None:
            raise manage_error
        return requeue

    async def _claim_pods(self, owner: Obj, selector: LabelSelector, candidates: list[Obj]) -> list[Obj]:
        """Active pods this owner controls after adopting matching orphans and releasing
        owned pods that stopped matching (client-go's PodControllerRefManager)."""
        owner_uid = owner["metadata"]["uid"]
        ref = podutil.owner_reference(owner, self.KIND.api_version, self.KIND.kind)
        claimed: list[Obj] = []
        orphans: list[Obj] = []
        for pod in candidates:
            cref = podutil.controller_ref(pod)
            labels = pod["metadata"].get("labels") or {}
            if cref is not None:
                if cref.get("uid") != owner_uid:
                    continue
                if selector.matches(labels):
                    if podutil.is_pod_active(pod):
                        claimed.append(pod)
                elif not podutil.is_terminating(pod):
                    await self._release(pod, owner_uid)
                continue
            if selector.matches(labels) and podutil.is_pod_active(pod) and not podutil.is_terminating(owner):
                orphans.append(pod)
        if orphans:
            # Recheck against the server: never adopt on behalf of an owner being deleted
            # or replaced by a namesake (uid differs).
            fresh = await self.owners.get_or_none(owner["metadata"]["name"], owner["metadata"].get("namespace"))
            if fresh is None or fresh["metadata"].get("uid") != owner_uid or podutil.is_terminating(fresh):
                return claimed
            for pod in orphans:
                adopted = await self._adopt(pod, ref)
                if adopted is not None:
                    claimed.append(adopted)
        return claimed

    async def _adopt(self, pod: Obj, ref: Obj) -> Obj | None:
        meta = pod["metadata"]
        try:
            patched = await self.pods.patch(meta["name"], podutil.adopt_patch(pod, ref),
                                            namespace=meta.get("namespace"))
        except ApiStatusError as exc:
            if exc.code in (404, 409, 422):
                return None  # gone or changed meanwhile: the next event brings it back
            raise
        log.info("adopted pod", kind=self.KIND.kind, owner=ref["name"], pod=meta["name"])
        return patched

    async def _release(self, pod: Obj, owner_uid: str) -> None:
        meta = pod["metadata"]
        try:
            await self.pods.patch(meta["name"], podutil.release_patch(pod, owner_uid),
                                  namespace=meta.get("namespace"))
        except ApiStatusError as exc:
            if exc.code not in (404, 409, 422):
                raise
        else:
            log.info("released pod", kind=self.KIND.kind, pod=meta["name"])

    async def _manage_replicas(self, key: str, owner: Obj, pods: list[Obj]) -> set[str]:
        """Create or delete pods toward spec.replicas; the keys of pods deleted."""
        spec = owner.get("spec") or {}
        desired = int(spec.get("replicas") if spec.get("replicas") is not None else 1)
        diff = replica_diff(len(pods), desired, self.burst_replicas)
        if diff > 0:
            await self._create_pods(key, owner, diff)
            return set()
        if diff < 0:
            return await self._delete_pods(key, owner, podutil.pods_to_delete(pods, -diff))
        return set()

    async def _create_pods(self, key: str, owner: Obj, count: int) -> None:
        template = (owner.get("spec") or {}).get("template") or {}
        ref = podutil.owner_reference(owner, self.KIND.api_version, self.KIND.kind)
        namespace = owner["metadata"].get("namespace")
        self.expectations.expect_creations(key, count)
        created = 0
        for batch in slow_start_batches(count):
            results = await asyncio.gather(
                *(self.pods.create(podutil.pod_from_template(template, owner, ref), namespace=namespace)
                  for _ in range(batch)),
                return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            for result in results:
                if isinstance(result, BaseException):
                    self.expectations.creation_observed(key)  # will never be seen
                else:
                    created += 1
                    await self.recorder.event(owner, "Normal", "SuccessfulCreate",
                                              f"Created pod: {result['metadata']['name']}")
            if errors:
                skipped = count - created - len(errors)
                for _ in range(skipped):
                    self.expectations.creation_observed(key)
                first = errors[0]
                message = first.message if isinstance(first, ApiStatusError) else str(first)
                await self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {message}")
                raise _FailedCreate(message) from first
        log.info("created pods", kind=self.KIND.kind, owner=key, count=created)

    async def _delete_pods(self, key: str, owner: Obj, victims: list[Obj]) -> set[str]:
        keys = [object_key(p) for p in victims]
        self.expectations.expect_deletions(key, keys)

        async def delete(pod: Obj) -> None:
            meta = pod["metadata"]
            try:
                await self.pods.delete(meta["name"], meta.get("namespace"),
                                       preconditions={"uid": meta.get("uid")})
            except ApiStatusError as exc:
                if exc.code not in (404, 409):
                    self.expectations.deletion_observed(key, object_key(pod))
                    await self.recorder.event(owner, "Warning", "FailedDelete",
                                              f"Error deleting: {exc.message}")
                    raise
                self.expectations.deletion_observed(key, object_key(pod))
                return
            await self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")

        results = await asyncio.gather(*(delete(p) for p in victims), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        log.info("deleted pods", kind=self.KIND.kind, owner=key, count=len(victims))
        return set(keys)

    async def _update_status(self, owner: Obj, pods: list[Obj], manage_error: Exception | None) -> float | None:
        """Write the status if it changed; seconds until a pod becomes available, if any."""
        spec = owner.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = podutil.utc_now()
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        old_status = owner.get("status") or {}
        new_status = calculate_status(owner, pods, template_labels, min_ready, now)
        conditions = list(old_status.get("conditions") or [])
        if isinstance(manage_error, _FailedCreate):
            reason = "FailedCreate"
            conditions = set_condition(conditions, {"type": "ReplicaFailure", "status": "True",
                                                    "reason": reason, "message": str(manage_error)},
                                       podutil.format_time(now))
        elif manage_error is None:
            conditions = remove_condition(conditions, "ReplicaFailure")
        new_status["conditions"] = conditions or None
        comparable_old = {k: old_status.get(k) for k in new_status}
        normalized_new = {k: (v if v != 0 or k in ("replicas",) else None) for k, v in new_status.items()}
        normalized_old = {k: (v if v != 0 or k in ("replicas",) else None) for k, v in comparable_old.items()}
        if normalized_new != normalized_old:
            meta = owner["metadata"]
            try:
                await self.owners.patch(meta["name"], {"status": new_status}, namespace=meta.get("namespace"),
                                        subresource="status")
            except ApiStatusError as exc:
                if exc.code != 404:
                    raise
        waits = [w for p in pods if (w := podutil.seconds_until_available(p, min_ready, now)) is not None]
        return min(waits) + 0.1 if waits else None


class _FailedCreate(Exception):
    """Creating pods failed; reported as the ReplicaFailure condition."""


class ReplicationControllerController(ReplicaSetController):
    """The same reconcile for the core/v1 ReplicationController (map selector)."""

    KIND = REPLICATION_CONTROLLER
    COMPONENT = "replication-controller"
