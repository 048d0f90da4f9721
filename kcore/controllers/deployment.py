"""The Deployment controller: roll a pod template out through ReplicaSets.

A Deployment owns one ReplicaSet per distinct pod template it has had, named
``<deployment>-<pod-template-hash>``; the one whose template equals the current
template is the *new* RS, the rest are *old*. Each reconcile takes one step:

* RollingUpdate: scale the new RS up as far as ``maxSurge`` allows, or scale old RSs
  down as far as ``maxUnavailable`` allows; the pods' readiness moves it on.
* Recreate: scale every old RS to 0, wait until their pods are gone, then create or
  scale the new RS.
* A change of ``spec.replicas`` mid-rollout is spread over the RSs in proportion to
  their size (Kubernetes' proportional scaling); while paused only scaling happens.

Revisions live in the ``deployment.kubernetes.io/revision`` annotation of each RS
(and the Deployment mirrors the new RS's). ``kubectl rollout undo`` just writes an
old template back, so the RS with that template is found by comparing templates
and reused with a new, higher revision. Old RSs scaled to zero beyond
``revisionHistoryLimit`` are deleted, oldest revision first.

To stay within maxSurge/maxUnavailable even while caches lag, the controller is a
little more careful than Kubernetes: an RS counts as many pods as the larger of
its spec and its live pods, counts as available no more than its spec, and a
reconcile waits until the cache shows its own last writes.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import time
from collections.abc import Mapping
from typing import Any

from kcore.apiserver.selectors import LabelSelector, SelectorError, selector_from_label_selector
from kcore.client import ApiClient, ApiStatusError, Controller, EventRecorder, Informer, InformerFactory
from kcore.client.informer import INDEX_NAMESPACE, INDEX_OWNER, object_key, split_key
from kcore.controllers import podutil
from kcore.log import get_logger

Obj = dict[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
_NOT_COPIED_ANNOTATIONS = frozenset({LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
                                     DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION,
                                     "deprecated.deployment.rollback.to"})
MAX_INT32 = 2**31 - 1
WRITE_WAIT_SECONDS = 30.0

log = get_logger("deployment")


# ---------------------------------------------------------------- small accessors


def spec_replicas(obj: Mapping[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None and obj.get("kind") == "Deployment" else int(value or 0)


def status_int(obj: Mapping[str, Any], field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def revision_of(obj: Mapping[str, Any]) -> int:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def _annotation_int(obj: Mapping[str, Any], name: str) -> int | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _created_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return (meta.get("creationTimestamp") or "", meta.get("name") or "")


# ---------------------------------------------------------------- surge / unavailable math


def resolve_int_or_percent(value: int | str | None, total: int, round_up: bool) -> int:
    """An IntOrString against ``total``: ``"25%"`` of 10 is 3 rounding up, 2 rounding down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        percent = int(text[:-1])
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """(surge, unavailable) in pods: surge rounds up, unavailable down; both zero would
    deadlock a rollout, so unavailable becomes 1 then (validation rejects it anyway)."""
    surge = resolve_int_or_percent(max_surge, desired, round_up=True)
    unavailable = resolve_int_or_percent(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling(d: Mapping[str, Any]) -> Mapping[str, Any] | None:
    strategy = (d.get("spec") or {}).get("strategy") or {}
    if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {"maxSurge": "25%", "maxUnavailable": "25%"}


def max_surge(d: Mapping[str, Any]) -> int:
    rolling = _rolling(d)
    if rolling is None:
        return 0
    surge, _ = resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"), spec_replicas(d))
    return surge


def max_unavailable(d: Mapping[str, Any]) -> int:
    rolling = _rolling(d)
    desired = spec_replicas(d)
    if rolling is None or desired == 0:
        return 0
    _, unavailable = resolve_fenceposts(rolling.get("maxSurge"), rolling.get("maxUnavailable"), desired)
    return min(unavailable, desired)


# ---------------------------------------------------------------- rolling decisions (pure)


def new_rs_target(desired: int, surge: int, current_pods: int, new_spec: int) -> int:
    """The new RS's size after one scale-up step: as many more as keep all pods within
    ``desired + surge`` (``current_pods`` counts every RS's pods), never above ``desired``."""
    if new_spec >= desired:
        return desired
    max_total = desired + surge
    if current_pods >= max_total:
        return new_spec
    return new_spec + min(max_total - current_pods, desired - new_spec)


def old_rs_scale_down(desired: int, unavailable: int, new_spec: int, new_available: int,
                      old: list[tuple[str, int, int]]) -> dict[str, int]:
    """New sizes for old RSs that may shrink now; ``old`` is (name, spec, available), oldest
    first, with available already capped at spec.

    First unhealthy replicas go (they cost no availability), then healthy ones while
    at least ``desired - unavailable`` pods stay available.
    """
    old_total = sum(spec for _, spec, _ in old)
    if old_total == 0:
        return {}
    min_available = desired - unavailable
    new_unavailable = max(new_spec - min(new_available, new_spec), 0)
    max_scaled_down = old_total + new_spec - min_available - new_unavailable
    if max_scaled_down <= 0:
        return {}
    sizes = {name: spec for name, spec, _ in old}
    available = {name: min(avail, spec) for name, spec, avail in old}
    cleaned = 0
    for name, spec, _ in old:
        if cleaned >= max_scaled_down:
            break
        unhealthy = spec - available[name]
        if unhealthy <= 0:
            continue
        step = min(unhealthy, max_scaled_down - cleaned)
        sizes[name] -= step
        cleaned += step
    total_available = sum(min(available[n], sizes[n]) for n in sizes) + min(new_available, new_spec)
    can_remove = min(total_available - min_available, max_scaled_down - cleaned)
    for name, _spec, _ in old:
        if can_remove <= 0:
            break
        take = min(sizes[name], can_remove)
        sizes[name] -= take
        can_remove -= take
    return {name: size for name, size in sizes.items() if size != dict((n, s) for n, s, _ in old)[name]}


def proportional_sizes(desired: int, surge: int, rss: list[Obj], new_rs: Obj | None,
                       status_replicas: int, rolling: bool) -> dict[str, int]:
    """New sizes when ``spec.replicas`` changed with several active RSs (Kubernetes'
    proportional scaling): each RS grows or shrinks in proportion to its share of the
    size it was given before (its max-replicas annotation); what is left over goes to
    the biggest (growing: newest; shrinking: oldest)."""
    active = [rs for rs in rss if spec_replicas(rs) > 0]
    if new_rs is not None and spec_replicas(new_rs) > 0 and new_rs not in active:
        active.append(new_rs)
    if len(active) <= 1:
        target = active[0] if active else (new_rs if new_rs is not None else
                                           (max(rss, key=_created_key) if rss else None))
        if target is None or spec_replicas(target) == desired:
            return {}
        return {target["metadata"]["name"]: desired}
    if new_rs is not None and spec_replicas(new_rs) == desired and status_int(new_rs, "availableReplicas") >= desired:
        return {rs["metadata"]["name"]: 0 for rs in active if rs is not new_rs}
    if not rolling:
        return {}
    allowed = desired + surge if desired > 0 else 0
    to_add = allowed - sum(spec_replicas(rs) for rs in active)
    if to_add == 0:
        return {}
    if to_add > 0:  # bigger first, newer first among equals
        ordered = sorted(active, key=lambda rs: (spec_replicas(rs), _created_key(rs)), reverse=True)
    else:  # bigger first, older first among equals
        ordered = sorted(active, key=lambda rs: (-spec_replicas(rs), _created_key(rs)))
    sizes: dict[str, int] = {}
    added = 0
    for rs in ordered:
        spec = spec_replicas(rs)
        proportion = 0
        if to_add != added:
            if desired == 0:
                fraction = -spec
            else:
                annotated = _annotation_int(rs, MAX_REPLICAS_ANNOTATION) or status_replicas or 1
                fraction = _round_half_up(spec * (desired + surge) / annotated) - spec
            left = to_add - added
            proportion = min(fraction, left) if to_add > 0 else max(fraction, left)
        sizes[rs["metadata"]["name"]] = spec + proportion
        added += proportion
    leftover = to_add - added
    if leftover:
        first = ordered[0]["metadata"]["name"]
        sizes[first] = max(sizes[first] + leftover, 0)
    return {name: size for name, size in sizes.items()
            if size != next(spec_replicas(rs) for rs in ordered if rs["metadata"]["name"] == name)}


def _round_half_up(value: float) -> int:
    """Go's math.Round (halves away from zero), not Python's banker's rounding."""
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def rs_to_prune(old_rss: list[Obj], limit: int) -> list[Obj]:
    """Old RSs beyond ``revisionHistoryLimit``: fully scaled down, oldest revision first."""
    cleanable = [rs for rs in old_rss if spec_replicas(rs) == 0 and status_int(rs, "replicas") == 0
                 and not podutil.is_terminating(rs)
                 and int((rs.get("status") or {}).get("observedGeneration") or 0)
                 >= int(rs["metadata"].get("generation") or 0)]
    excess = len(cleanable) - max(limit, 0)
    if excess <= 0:
        return []
    return sorted(cleanable, key=lambda rs: (revision_of(rs), _created_key(rs)))[:excess]


# ---------------------------------------------------------------- status (pure)


def find_new_rs(d: Mapping[str, Any], rss: list[Obj]) -> Obj | None:
    """The oldest RS whose template equals the Deployment's (ignoring the hash label)."""
    template = (d.get("spec") or {}).get("template") or {}
    for rs in sorted(rss, key=_created_key):
        if podutil.templates_equal_ignoring_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def _condition(conditions: list[Obj], cond_type: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == cond_type), None)


def set_deployment_condition(conditions: list[Obj], cond: Obj) -> list[Obj]:
    """Kubernetes' SetDeploymentCondition: same status and reason is a no-op; same status
    keeps lastTransitionTime."""
    current = _condition(conditions, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return conditions
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime") or cond["lastTransitionTime"]}
    return [c for c in conditions if c.get("type") != cond["type"]] + [cond]


def new_condition(cond_type: str, status: str, reason: str, message: str, now: dt.datetime) -> Obj:
    stamp = podutil.format_time(now)
    return {"type": cond_type, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def has_progress_deadline(d: Mapping[str, Any]) -> bool:
    value = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return value is not None and int(value) != MAX_INT32


def deployment_complete(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    desired = spec_replicas(d)
    return (int(status.get("updatedReplicas") or 0) == desired and int(status.get("replicas") or 0) == desired
            and int(status.get("availableReplicas") or 0) == desired
            and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0))


def deployment_progressing(d: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    old = d.get("status") or {}

    def n(s: Mapping[str, Any], f: str) -> int:
        return int(s.get(f) or 0)

    return (n(status, "updatedReplicas") > n(old, "updatedReplicas")
            or n(status, "replicas") - n(status, "updatedReplicas") < n(old, "replicas") - n(old, "updatedReplicas")
            or n(status, "readyReplicas") > n(old, "readyReplicas")
            or n(status, "availableReplicas") > n(old, "availableReplicas"))


def deployment_timed_out(d: Mapping[str, Any], status: Mapping[str, Any], now: dt.datetime) -> bool:
    cond = _condition(list(status.get("conditions") or []), "Progressing")
    if cond is None or cond.get("reason") == "NewReplicaSetAvailable":
        return False
    if cond.get("reason") == "ProgressDeadlineExceeded":
        return True
    since = podutil.parse_time(cond.get("lastUpdateTime"))
    deadline = int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)
    return since is not None and since + dt.timedelta(seconds=deadline) < now


def calculate_status(d: Mapping[str, Any], base: Mapping[str, Any], all_rss: list[Obj], new_rs: Obj | None,
                     now: dt.datetime) -> Obj:
    """The Deployment's status from its RSs: counts, Available, and Progressing (the
    progress-deadline clock); ``base`` carries conditions set earlier in this reconcile."""
    desired = spec_replicas(d)
    available = sum(status_int(rs, "availableReplicas") for rs in all_rss)
    total_spec = sum(spec_replicas(rs) for rs in all_rss)
    status: Obj = {
        "observedGeneration": d["metadata"].get("generation"),
        "replicas": sum(status_int(rs, "replicas") for rs in all_rss),
        "updatedReplicas": status_int(new_rs, "replicas") if new_rs is not None else 0,
        "readyReplicas": sum(status_int(rs, "readyReplicas") for rs in all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(total_spec - available, 0),
    }
    if base.get("collisionCount") is not None:
        status["collisionCount"] = base["collisionCount"]
    conditions = list(base.get("conditions") or [])
    if available >= desired - max_unavailable(d):
        cond = new_condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
    else:
        cond = new_condition("Available", "False", "MinimumReplicasUnavailable",
                             "Deployment does not have minimum availability.", now)
    conditions = set_deployment_condition(conditions, cond)
    if not has_progress_deadline(d):
        conditions = [c for c in conditions if c.get("type") != "Progressing"]
    current = _condition(conditions, "Progressing")
    paused = bool((d.get("spec") or {}).get("paused"))
    already_complete = status["replicas"] == status["updatedReplicas"] and current is not None and \
        current.get("reason") == "NewReplicaSetAvailable"
    subject = f'ReplicaSet "{new_rs["metadata"]["name"]}"' if new_rs is not None else \
        f'Deployment "{d["metadata"]["name"]}"'
    if has_progress_deadline(d) and not paused and not already_complete:
        if deployment_complete(d, status):
            conditions = set_deployment_condition(conditions, new_condition(
                "Progressing", "True", "NewReplicaSetAvailable", f"{subject} has successfully progressed.", now))
        elif deployment_progressing(d, status):
            cond = new_condition("Progressing", "True", "ReplicaSetUpdated", f"{subject} is progressing.", now)
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime") or cond["lastTransitionTime"]
            conditions = [c for c in conditions if c.get("type") != "Progressing"] + [cond]
        elif deployment_timed_out(d, {**status, "conditions": conditions}, now):
            conditions = set_deployment_condition(conditions, new_condition(
                "Progressing", "False", "ProgressDeadlineExceeded", f"{subject} has timed out progressing.", now))
    failure = _condition(list(((new_rs or {}).get("status") or {}).get("conditions") or []), "ReplicaFailure")
    if failure is not None:
        conditions = set_deployment_condition(conditions, new_condition(
            "ReplicaFailure", failure.get("status", "True"), failure.get("reason", ""),
            failure.get("message", ""), now))
    else:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    status["conditions"] = conditions
    return status


def seconds_until_deadline(d: Mapping[str, Any], status: Mapping[str, Any], now: dt.datetime) -> float | None:
    """When to look again for ProgressDeadlineExceeded (Kubernetes' requeueStuckDeployment)."""
    if not has_progress_deadline(d) or (d.get("spec") or {}).get("paused"):
        return None
    cond = _condition(list(status.get("conditions") or []), "Progressing")
    if cond is None or cond.get("reason") in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded"):
        return None
    if deployment_complete(d, status):
        return None
    since = podutil.parse_time(cond.get("lastUpdateTime")) or now
    deadline = int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)
    left = (since + dt.timedelta(seconds=deadline) - now).total_seconds()
    return max(left, 0) + 1.0


def _status_equal(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = set(a) | set(b)
    return all((a.get(k) or None) == (b.get(k) or None) for k in keys)


# ---------------------------------------------------------------- the controller


class DeploymentController(Controller):
    """Rolls Deployments out through ReplicaSets (the RS controller then makes the pods)."""

    COMPONENT = "deployment-controller"

    def __init__(self, client: ApiClient, factory: InformerFactory, recorder: EventRecorder | None = None,
                 *, workers: int = 4) -> None:
        super().__init__(self.COMPONENT, workers=workers)
        self.client = client
        self.recorder = recorder or EventRecorder(client, self.COMPONENT)
        self.deployments = client.resource("apps/v1", "Deployment")
        self.replicasets = client.resource("apps/v1", "ReplicaSet")
        self.d_informer: Informer = factory.informer("apps/v1", "Deployment")
        self.rs_informer: Informer = factory.informer("apps/v1", "ReplicaSet")
        self.pod_informer: Informer = factory.informer("v1", "Pod")
        # Deployment key -> RS key -> (resourceVersion written, when): act only on a cache that shows it.
        self._written: dict[str, dict[str, tuple[int, float]]] = {}
        self.d_informer.add_handler(on_add=self.enqueue, on_update=lambda _o, n: self.enqueue(n),
                                    on_delete=self.enqueue)
        self.rs_informer.add_handler(on_add=self._rs_changed, on_update=self._rs_updated,
                                     on_delete=self._rs_changed)
        self.pod_informer.add_handler(on_delete=self._pod_deleted)

    async def run(self, informers: list[Informer] | None = None) -> None:  # type: ignore[override]
        """Run until stop(); the caller (or factory) must start the informers."""
        await super().run(informers or [self.d_informer, self.rs_informer, self.pod_informer])

    # ---- handlers --------------------------------------------------------------

    def _deployment_key_for(self, obj: Obj) -> str | None:
        ref = podutil.controller_ref(obj)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        key = f"{obj['metadata'].get('namespace')}/{ref.get('name')}"
        d = self.d_informer.indexer.get(key)
        if d is None or d["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _rs_changed(self, rs: Obj) -> None:
        key = self._deployment_key_for(rs)
        if key is not None:
            self.enqueue(key)
            return
        if podutil.controller_ref(rs) is None:
            labels = rs["metadata"].get("labels") or {}
            for d in self.d_informer.indexer.by_index(INDEX_NAMESPACE, rs["metadata"].get("namespace") or ""):
                sel = _selector(d)
                if sel is not None and sel.matches(labels):
                    self.enqueue(d)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if (podutil.controller_ref(old) or {}).get("uid") != (podutil.controller_ref(new) or {}).get("uid"):
            self._rs_changed(old)
        self._rs_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for old pods to be gone: their deletion is what moves it on."""
        ref = podutil.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_informer.indexer.get(f"{pod['metadata'].get('namespace')}/{ref.get('name')}")
        if rs is not None:
            key = self._deployment_key_for(rs)
            if key is not None:
                self.enqueue(key)

    # ---- reconcile -------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        started = time.monotonic()
        d = self.d_informer.indexer.get(key)
        if d is None:
            return None
        namespace, _ = split_key(key)
        selector = _selector(d)
        if selector is None:
            await self.recorder.event(d, "Warning", "SelectingAll",
                                      "This deployment is selecting all pods. A non-empty selector is required.")
            return None
        rs_list = await self._claim_replica_sets(d, selector, namespace or "")
        if not self._cache_caught_up(key):
            return WRITE_WAIT_SECONDS  # the informer event for our own write re-enqueues this key sooner
        d = copy.deepcopy(d)
        status = copy.deepcopy(d.get("status") or {})
        if podutil.is_terminating(d):
            return await self._sync_status(d, status, rs_list, find_new_rs(d, rs_list))
        status = self._paused_conditions(d, status)
        try:
            if (d["spec"] or {}).get("paused") or self._is_scaling_event(d, rs_list):
                result = await self._sync_scale(d, status, rs_list)
            elif ((d["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "Recreate":
                result = await self._rollout_recreate(d, status, rs_list)
            else:
                result = await self._rollout_rolling(d, status, rs_list)
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
            # An RS changed under us (its status, usually): that change's event re-enqueues
            # this key, and the next reconcile decides on the newer state.
            log.debug("replica set changed meanwhile; will look again", key=key, error=exc.message)
            return 1.0
        log.debug("synced deployment", key=key, took=round(time.monotonic() - started, 4))
        return result

    def _cache_caught_up(self, key: str) -> bool:
        """Whether the cache shows every RS write this controller made for ``key``
        (a deletion is written as -1: absence is what we wait for). Records older than
        WRITE_WAIT_SECONDS are dropped, in case an event was lost."""
        pending = self._written.get(key)
        if not pending:
            return True
        now = time.monotonic()
        for rs_key, (written, when) in list(pending.items()):
            cached = self.rs_informer.indexer.get(rs_key)
            if now - when > WRITE_WAIT_SECONDS:
                caught_up = True
            elif written < 0:
                caught_up = cached is None
            else:
                caught_up = cached is not None and int(cached["metadata"].get("resourceVersion") or 0) >= written
            if caught_up:
                del pending[rs_key]
        if not pending:
            self._written.pop(key, None)
            return True
        return False

    async def _claim_replica_sets(self, d: Obj, selector: LabelSelector, namespace: str) -> list[Obj]:
        """RSs this Deployment controls, after adopting matching orphans and releasing
        owned ones that stopped matching."""
        uid = d["metadata"]["uid"]
        owned: list[Obj] = []
        orphans: list[Obj] = []
        for rs in self.rs_informer.indexer.by_index(INDEX_NAMESPACE, namespace):
            ref = podutil.controller_ref(rs)
            labels = rs["metadata"].get("labels") or {}
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if selector.matches(labels):
                    owned.append(rs)
                elif not podutil.is_terminating(rs):
                    await self._patch_quietly(rs, podutil.release_patch(rs, uid))
                continue
            if selector.matches(labels) and not podutil.is_terminating(rs) and not podutil.is_terminating(d):
                orphans.append(rs)
        if orphans:
            fresh = await self.deployments.get_or_none(d["metadata"]["name"], namespace)
            if fresh is not None and fresh["metadata"].get("uid") == uid and not podutil.is_terminating(fresh):
                ref = podutil.owner_reference(d, "apps/v1", "Deployment")
                for rs in orphans:
                    adopted = await self._patch_quietly(rs, podutil.adopt_patch(rs, ref))
                    if adopted is not None:
                        owned.append(adopted)
        return owned

    async def _patch_quietly(self, rs: Obj, patch: Obj) -> Obj | None:
        meta = rs["metadata"]
        try:
            result = await self.replicasets.patch(meta["name"], patch, namespace=meta.get("namespace"))
        except ApiStatusError as exc:
            if exc.code in (404, 409, 422):
                return None
            raise
        self._note_written(result)
        return result

    def _note_written(self, rs: Obj, resource_version: int | None = None) -> None:
        key = _owner_key_of(rs)
        if key is None:
            return
        rv = int(rs["metadata"].get("resourceVersion") or 0) if resource_version is None else resource_version
        self._written.setdefault(key, {})[object_key(rs)] = (rv, time.monotonic())

    # ---- revisions and the new RS ---------------------------------------------

    async def _sync_revision(self, d: Obj, status: Obj, rs_list: list[Obj],
                             create: bool) -> tuple[Obj | None, list[Obj], Obj]:
        """(new RS, old RSs, working status): revisions brought in line, the new RS made
        if ``create`` and missing."""
        new_rs = find_new_rs(d, rs_list)
        old_rss = [rs for rs in rs_list if rs is not new_rs]
        max_old = max((revision_of(rs) for rs in old_rss), default=0)
        revision = max_old + 1
        now = podutil.utc_now()
        if new_rs is not None:
            new_rs = await self._update_new_rs_annotations(d, new_rs, revision)
            if _condition(list(status.get("conditions") or []), "Progressing") is None and has_progress_deadline(d):
                status["conditions"] = set_deployment_condition(list(status.get("conditions") or []), new_condition(
                    "Progressing", "True", "FoundNewReplicaSet",
                    f'Found new replica set "{new_rs["metadata"]["name"]}"', now))
        elif create:
            new_rs, status = await self._create_new_rs(d, status, old_rss, revision)
        if new_rs is not None:
            await self._set_deployment_revision(d, str(revision_of(new_rs)))
        return new_rs, old_rss, status

    async def _update_new_rs_annotations(self, d: Obj, rs: Obj, revision: int) -> Obj:
        annotations = dict(rs["metadata"].get("annotations") or {})
        wanted = dict(annotations)
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k not in _NOT_COPIED_ANNOTATIONS:
                wanted[k] = v
        current = revision_of(rs)
        if current < revision:
            wanted[REVISION_ANNOTATION] = str(revision)
            if current:
                history = [h for h in (annotations.get(REVISION_HISTORY_ANNOTATION) or "").split(",") if h]
                wanted[REVISION_HISTORY_ANNOTATION] = ",".join([*history, str(current)])
        patch: Obj = {}
        if wanted != annotations:
            patch["metadata"] = {"annotations": wanted}
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        if int((rs.get("spec") or {}).get("minReadySeconds") or 0) != min_ready:
            patch["spec"] = {"minReadySeconds": min_ready}
        if not patch:
            return rs
        patch.setdefault("metadata", {})["resourceVersion"] = rs["metadata"].get("resourceVersion")
        result = await self.replicasets.patch(rs["metadata"]["name"], patch, namespace=rs["metadata"].get("namespace"))
        self._note_written(result)
        return result

    async def _create_new_rs(self, d: Obj, status: Obj, old_rss: list[Obj], revision: int) -> tuple[Obj | None, Obj]:
        meta = d["metadata"]
        namespace = meta.get("namespace")
        template = copy.deepcopy(d["spec"].get("template") or {})
        hash_ = podutil.template_hash(template, status.get("collisionCount"))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), podutil.POD_TEMPLATE_HASH_LABEL: hash_}
        selector = copy.deepcopy(d["spec"].get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), podutil.POD_TEMPLATE_HASH_LABEL: hash_}
        desired = spec_replicas(d)
        surge = max_surge(d)
        if _rolling(d) is not None:
            current = self._pod_count(old_rss)
            replicas = new_rs_target(desired, surge, current, 0)
        else:
            replicas = desired
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_COPIED_ANNOTATIONS}
        annotations.update({REVISION_ANNOTATION: str(revision), DESIRED_REPLICAS_ANNOTATION: str(desired),
                            MAX_REPLICAS_ANNOTATION: str(desired + surge)})
        rs = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{meta['name']}-{hash_}", "namespace": namespace,
                         "labels": dict(tmeta["labels"]), "annotations": annotations,
                         "ownerReferences": [podutil.owner_reference(d, "apps/v1", "Deployment")]},
            "spec": {"replicas": replicas, "minReadySeconds": int(d["spec"].get("minReadySeconds") or 0),
                     "selector": selector, "template": template},
        }
        now = podutil.utc_now()
        try:
            created = await self.replicasets.create(rs, namespace=namespace)
        except ApiStatusError as exc:
            if exc.code != 409:
                raise
            existing = await self.replicasets.get_or_none(rs["metadata"]["name"], namespace)
            if existing is not None and (podutil.controller_ref(existing) or {}).get("uid") == meta["uid"] and \
                    podutil.templates_equal_ignoring_hash(existing["spec"].get("template") or {},
                                                          d["spec"].get("template") or {}):
                self._note_written(existing)
                return existing, status  # our cache was behind: it is the new RS
            # A different RS holds the name: a hash collision. Bump the count and retry.
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            await self._write_status(d, status)
            raise RuntimeError(f"hash collision creating replica set {rs['metadata']['name']}; "
                               f"collisionCount is now {status['collisionCount']}") from exc
        self._note_written(created)
        name = created["metadata"]["name"]
        log.info("created replica set", deployment=meta["name"], replicaset=name, replicas=replicas)
        if replicas > 0:
            await self.recorder.event(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {name} to {replicas}")
        if has_progress_deadline(d):
            status["conditions"] = set_deployment_condition(list(status.get("conditions") or []), new_condition(
                "Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{name}"', now))
        return created, status

    async def _set_deployment_revision(self, d: Obj, revision: str) -> None:
        annotations = d["metadata"].get("annotations") or {}
        if annotations.get(REVISION_ANNOTATION) == revision:
            return
        await self.deployments.patch(d["metadata"]["name"], {"metadata": {"annotations": {REVISION_ANNOTATION: revision}}},
                                     namespace=d["metadata"].get("namespace"))
        d["metadata"].setdefault("annotations", {})[REVISION_ANNOTATION] = revision

    # ---- scaling ----------------------------------------------------------------

    def _pods_of(self, rs: Obj) -> list[Obj]:
        return self.pod_informer.indexer.by_index(INDEX_OWNER, rs["metadata"]["uid"])

    def _pod_count(self, rss: list[Obj]) -> int:
        """Pods the RSs have or may soon have: per RS the larger of spec and live pods."""
        return sum(max(spec_replicas(rs), sum(1 for p in self._pods_of(rs) if podutil.is_pod_active(p)))
                   for rs in rss)

    async def _scale(self, d: Obj, rs: Obj, size: int) -> Obj:
        """Set an RS's size and its desired/max-replicas annotations (conditional write)."""
        desired = spec_replicas(d)
        annotations = rs["metadata"].get("annotations") or {}
        wanted = {DESIRED_REPLICAS_ANNOTATION: str(desired), MAX_REPLICAS_ANNOTATION: str(desired + max_surge(d))}
        old_size = spec_replicas(rs)
        if old_size == size and all(annotations.get(k) == v for k, v in wanted.items()):
            return rs
        patch = {"metadata": {"annotations": wanted, "resourceVersion": rs["metadata"].get("resourceVersion")},
                 "spec": {"replicas": size}}
        result = await self.replicasets.patch(rs["metadata"]["name"], patch, namespace=rs["metadata"].get("namespace"))
        self._note_written(result)
        if old_size != size:
            direction = "up" if size > old_size else "down"
            log.info(f"scaled {direction} replica set", replicaset=rs["metadata"]["name"], old=old_size, new=size)
            await self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                      f"Scaled {direction} replica set {rs['metadata']['name']} from {old_size} to {size}")
        return result

    def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        desired = spec_replicas(d)
        for rs in rs_list:
            if spec_replicas(rs) > 0:
                annotated = _annotation_int(rs, DESIRED_REPLICAS_ANNOTATION)
                if annotated is not None and annotated != desired:
                    return True
        return False

    async def _sync_scale(self, d: Obj, status: Obj, rs_list: list[Obj]) -> float | None:
        """Paused or resized: spread spec.replicas over the RSs, no new rollout step."""
        new_rs, old_rss, status = await self._sync_revision(d, status, rs_list, create=False)
        sizes = proportional_sizes(spec_replicas(d), max_surge(d), old_rss, new_rs,
                                   status_int(d, "replicas"), _rolling(d) is not None)
        by_name = {rs["metadata"]["name"]: rs for rs in rs_list}
        scaled = {}
        # Shrink before growing, so the total never overshoots on the way.
        for name, size in sorted(sizes.items(), key=lambda kv: kv[1] - spec_replicas(by_name[kv[0]])):
            scaled[name] = await self._scale(d, by_name[name], size)
        rs_list = [scaled.get(rs["metadata"]["name"], rs) for rs in rs_list]
        new_rs = scaled.get(new_rs["metadata"]["name"], new_rs) if new_rs is not None else None
        if (d["spec"] or {}).get("paused"):
            await self._cleanup(d, [rs for rs in rs_list if rs is not new_rs])
        return await self._sync_status(d, status, rs_list, new_rs)

    async def _rollout_rolling(self, d: Obj, status: Obj, rs_list: list[Obj]) -> float | None:
        new_rs, old_rss, status = await self._sync_revision(d, status, rs_list, create=True)
        assert new_rs is not None
        all_rss = [*old_rss, new_rs]
        desired = spec_replicas(d)
        # Scale up the new RS within maxSurge.
        target = new_rs_target(desired, max_surge(d), self._pod_count(all_rss), spec_replicas(new_rs))
        if target != spec_replicas(new_rs) or spec_replicas(new_rs) > desired:
            new_rs = await self._scale(d, new_rs, min(target, desired))
            return await self._sync_status(d, status, [*old_rss, new_rs], new_rs)
        # Scale old RSs down within maxUnavailable.
        old_sorted = sorted(old_rss, key=_created_key)
        plan = old_rs_scale_down(
            desired, max_unavailable(d), spec_replicas(new_rs), status_int(new_rs, "availableReplicas"),
            [(rs["metadata"]["name"], spec_replicas(rs), status_int(rs, "availableReplicas")) for rs in old_sorted])
        if plan:
            by_name = {rs["metadata"]["name"]: rs for rs in old_rss}
            scaled = {name: await self._scale(d, by_name[name], size) for name, size in plan.items()}
            old_rss = [scaled.get(rs["metadata"]["name"], rs) for rs in old_rss]
            return await self._sync_status(d, status, [*old_rss, new_rs], new_rs)
        if deployment_complete(d, {**calculate_status(d, status, all_rss, new_rs, podutil.utc_now())}):
            old_rss = await self._cleanup(d, old_rss)
        return await self._sync_status(d, status, [*old_rss, new_rs], new_rs)

    async def _rollout_recreate(self, d: Obj, status: Obj, rs_list: list[Obj]) -> float | None:
        new_rs, old_rss, status = await self._sync_revision(d, status, rs_list, create=False)
        active_old = [rs for rs in old_rss if spec_replicas(rs) > 0]
        if active_old:
            scaled = {rs["metadata"]["name"]: await self._scale(d, rs, 0) for rs in active_old}
            old_rss = [scaled.get(rs["metadata"]["name"], rs) for rs in old_rss]
            return await self._sync_status(d, status, [*old_rss, *([new_rs] if new_rs else [])], new_rs)
        if self._old_pods_running(old_rss):
            # Their deletion events bring us back.
            return await self._sync_status(d, status, [*old_rss, *([new_rs] if new_rs else [])], new_rs)
        if new_rs is None:
            new_rs, old_rss, status = await self._sync_revision(d, status, rs_list, create=True)
            assert new_rs is not None
        if spec_replicas(new_rs) != spec_replicas(d):
            new_rs = await self._scale(d, new_rs, spec_replicas(d))
            return await self._sync_status(d, status, [*old_rss, new_rs], new_rs)
        if deployment_complete(d, calculate_status(d, status, [*old_rss, new_rs], new_rs, podutil.utc_now())):
            old_rss = await self._cleanup(d, old_rss)
        return await self._sync_status(d, status, [*old_rss, new_rs], new_rs)

    def _old_pods_running(self, old_rss: list[Obj]) -> bool:
        """Any pod of an old RS not finished (terminating ones included), or an old RS
        whose own status still counts pods."""
        for rs in old_rss:
            if status_int(rs, "replicas") > 0:
                return True
            for pod in self._pods_of(rs):
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return True
        return False

    async def _cleanup(self, d: Obj, old_rss: list[Obj]) -> list[Obj]:
        limit = d["spec"].get("revisionHistoryLimit")
        if limit is None:
            return old_rss
        doomed = rs_to_prune(old_rss, int(limit))
        gone: set[str] = set()
        for rs in doomed:
            meta = rs["metadata"]
            try:
                await self.replicasets.delete(meta["name"], meta.get("namespace"),
                                              preconditions={"uid": meta["uid"]})
            except ApiStatusError as exc:
                if exc.code not in (404, 409):
                    raise
            self._note_written(rs, -1)
            gone.add(meta["name"])
            log.info("deleted old replica set", deployment=d["metadata"]["name"], replicaset=meta["name"],
                     revision=revision_of(rs))
        return [rs for rs in old_rss if rs["metadata"]["name"] not in gone]

    # ---- status --------------------------------------------------------------

    def _paused_conditions(self, d: Obj, status: Obj) -> Obj:
        if not has_progress_deadline(d):
            return status
        conditions = list(status.get("conditions") or [])
        cond = _condition(conditions, "Progressing")
        paused = bool(d["spec"].get("paused"))
        now = podutil.utc_now()
        if paused and (cond is None or cond.get("reason") != "DeploymentPaused"):
            conditions = set_deployment_condition(conditions, new_condition(
                "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", now))
        elif not paused and cond is not None and cond.get("reason") == "DeploymentPaused":
            conditions = set_deployment_condition(conditions, new_condition(
                "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed", now))
        else:
            return status
        return {**status, "conditions": conditions}

    async def _sync_status(self, d: Obj, status: Obj, all_rss: list[Obj], new_rs: Obj | None) -> float | None:
        now = podutil.utc_now()
        new_status = calculate_status(d, status, all_rss, new_rs, now)
        if not _status_equal(new_status, d.get("status") or {}):
            await self._write_status(d, new_status)
        return seconds_until_deadline(d, new_status, now)

    async def _write_status(self, d: Obj, status: Obj) -> None:
        meta = d["metadata"]
        try:
            await self.deployments.patch(meta["name"], {"status": status}, namespace=meta.get("namespace"),
                                         subresource="status")
        except ApiStatusError as exc:
            if exc.code != 404:
                raise


def _owner_key_of(rs: Mapping[str, Any]) -> str | None:
    ref = podutil.controller_ref(rs)
    if ref is None or ref.get("kind") != "Deployment":
        return None
    return f"{rs['metadata'].get('namespace')}/{ref.get('name')}"


def _selector(d: Mapping[str, Any]) -> LabelSelector | None:
    raw = (d.get("spec") or {}).get("selector")
    if not raw:
        return None
    try:
        sel = selector_from_label_selector(raw)
    except SelectorError:
        return None
    return None if sel.is_empty() else sel
