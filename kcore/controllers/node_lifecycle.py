"""The node lifecycle controller: notices nodes that stopped answering, taints them,
and evicts the pods that do not tolerate it (Kubernetes' node lifecycle controller
together with its taint-eviction controller).

Heartbeats. A kubelet renews its Lease in ``kube-node-lease`` and posts the Ready
condition. Every ``monitor_period_seconds`` the controller compares what it sees
with what it saw last; a change is a sign of life, stamped with *our* clock (remote
clocks are not trusted, as in Kubernetes). A node silent for longer than
``grace_period_seconds`` gets its conditions set to Unknown ("Kubelet stopped
posting node status.").

Taints follow the Ready condition: False -> ``node.kubernetes.io/not-ready``,
Unknown -> ``node.kubernetes.io/unreachable``, each as NoSchedule (at once) and as
NoExecute. Adding a NoExecute taint is what evicts pods, so it is rate-limited per
zone by a token bucket (``eviction_rate_per_second`` nodes per second, burst 1).
When every node of every zone is unhealthy at once, the problem is more likely the
control plane or the network than all the machines: the controller then adds no
NoExecute taints and removes the ones it set ("full disruption"); when a node comes
back, every node gets a fresh grace period. When a node's Ready condition is True
again, the taints go.

Eviction. For every pod bound to a node with NoExecute taints, the pure
:func:`kcore.controllers.taints.eviction_deadline` decides: a taint it does not
tolerate evicts it at once, ``tolerationSeconds`` evicts it that long after the
taint's ``timeAdded``, a toleration without seconds keeps it forever. Evicting is
deleting the pod; a pod on a node that is away stays Terminating until its kubelet
returns and confirms (or the node object is deleted).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kcore.client.controller import Controller
from kcore.client.events import EventRecorder
from kcore.client.informer import INDEX_NODE, Informer, InformerFactory
from kcore.client.rest import ApiClient, ApiStatusError
from kcore.config import NodeLifecycleConfig
from kcore.controllers.taints import (
    NO_EXECUTE,
    NO_SCHEDULE,
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    eviction_deadline,
    format_micro_time,
    has_taint,
    parse_time,
    taints_with_effect,
    with_taint,
    without_taints,
)
from kcore.log import get_logger

log = get_logger("node-lifecycle")

Obj = dict[str, Any]
Clock = Callable[[], dt.datetime]

LEASE_NAMESPACE = "kube-node-lease"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_UPDATED_REASON = "NodeStatusNeverUpdated"
NEVER_UPDATED_MESSAGE = "Kubelet never posted node status."
HEALTH_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

NORMAL = "Normal"
PARTIAL_DISRUPTION = "PartialDisruption"
FULL_DISRUPTION = "FullDisruption"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- pure decisions ----------------------------------------------------------------


class TokenBucket:
    """``rate`` tokens a second up to ``burst``; ``try_take`` spends one if there is one."""

    def __init__(self, rate: float, burst: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._last) * self.rate)
        self._last = now

    def set_rate(self, rate: float) -> None:
        self._refill()
        self.rate = rate

    def try_take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def ready_condition(node: Obj) -> Obj | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def ready_status(node: Obj) -> str | None:
    """"True", "False", "Unknown", or None when the kubelet never said."""
    cond = ready_condition(node)
    return None if cond is None else cond.get("status")


def zone_of(node: Obj) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return f"{labels.get(REGION_LABEL, '')}:{labels.get(ZONE_LABEL, '')}"


def zone_state(statuses: list[str | None], unhealthy_threshold: float = 0.55) -> str:
    """A zone's health from its nodes' Ready statuses (Kubernetes' ComputeZoneState)."""
    ready = sum(1 for s in statuses if s == "True")
    not_ready = len(statuses) - ready
    if ready == 0 and not_ready > 0:
        return FULL_DISRUPTION
    if not_ready > 2 and not_ready / len(statuses) >= unhealthy_threshold:
        return PARTIAL_DISRUPTION
    return NORMAL


def zone_eviction_rate(state: str, size: int, rate: float, secondary_rate: float,
                       large_cluster_threshold: int) -> float:
    """Nodes per second that may be NoExecute-tainted in a zone in ``state``.

    A partly broken zone slows down (a small one stops): evicting there would pile
    the pods onto the few survivors.
    """
    if state == PARTIAL_DISRUPTION:
        return secondary_rate if size > large_cluster_threshold else 0.0
    return rate


def condition_taints(status: str | None) -> str | None:
    """The taint key a node's Ready status calls for (None when it is Ready or never said)."""
    if status == "False":
        return TAINT_NOT_READY
    if status == "Unknown":
        return TAINT_UNREACHABLE
    return None


def unknown_conditions(node: Obj, now: str) -> list[Obj]:
    """The node's conditions with the health ones turned Unknown (a new list of new dicts)."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    have = {c.get("type") for c in conditions}
    for cond in conditions:
        if cond.get("type") in HEALTH_CONDITIONS and cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE,
                        lastTransitionTime=now)
    if "Ready" not in have:
        created = (node.get("metadata") or {}).get("creationTimestamp") or now
        conditions.append({"type": "Ready", "status": "Unknown", "reason": NEVER_UPDATED_REASON,
                           "message": NEVER_UPDATED_MESSAGE, "lastHeartbeatTime": created,
                           "lastTransitionTime": now})
    return conditions


def pod_not_ready_conditions(pod: Obj, now: str) -> list[Obj] | None:
    """A pod's conditions with Ready turned False because its node is silent; None if not Ready."""
    conditions = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
    changed = False
    for cond in conditions:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            cond.update(status="False", reason="NodeNotReady", message="", lastTransitionTime=now)
            changed = True
    return conditions if changed else None


def desired_taints(taints: list[Obj], status: str | None, *, allow_no_execute: bool,
                   now: str) -> tuple[list[Obj], bool]:
    """The taints a node should carry for its Ready ``status`` (pure).

    Returns the new list and whether a NoExecute taint is still wanted but left for
    the rate-limited tainter to add. NoSchedule taints are set at once; a NoExecute
    taint only swaps (not-ready <-> unreachable) at once, as in Kubernetes.
    """
    wanted = condition_taints(status)
    keys = (TAINT_NOT_READY, TAINT_UNREACHABLE)
    new = without_taints(taints, [(k, NO_SCHEDULE) for k in keys if k != wanted])
    if wanted is not None and not has_taint(new, wanted, NO_SCHEDULE):
        new = with_taint(new, {"key": wanted, "effect": NO_SCHEDULE, "timeAdded": now})
    if wanted is None or not allow_no_execute:
        return without_taints(new, [(k, NO_EXECUTE) for k in keys]), False
    if has_taint(new, wanted, NO_EXECUTE):
        return without_taints(new, [(k, NO_EXECUTE) for k in keys if k != wanted]), False
    other = TAINT_UNREACHABLE if wanted == TAINT_NOT_READY else TAINT_NOT_READY
    if has_taint(new, other, NO_EXECUTE):
        swapped = without_taints(new, [(other, NO_EXECUTE)])
        return with_taint(swapped, {"key": wanted, "effect": NO_EXECUTE, "timeAdded": now}), False
    return new, True


# ---- the controller ------------------------------------------------------------------


@dataclass
class NodeHealth:
    probe: dt.datetime
    """When we last saw a sign of life (our clock)."""
    heartbeat: tuple[str | None, str | None]
    """(Lease renewTime, Ready lastHeartbeatTime) as last seen."""


class NodeLifecycleController(Controller):
    """Marks silent nodes Unknown, taints unhealthy nodes, evicts intolerant pods."""

    def __init__(
        self,
        client: ApiClient,
        factory: InformerFactory,
        *,
        config: NodeLifecycleConfig | None = None,
        monitor_period_seconds: float = 5.0,
        taint_pass_seconds: float = 0.1,
        secondary_eviction_rate: float = 0.01,
        large_cluster_threshold: int = 50,
        unhealthy_zone_threshold: float = 0.55,
        clock: Clock = utc_now,
        workers: int = 2,
        recorder: EventRecorder | None = None,
    ) -> None:
        super().__init__("node-lifecycle", workers=workers)
        cfg = config or NodeLifecycleConfig()
        self.client = client
        self.factory = factory
        self.grace = dt.timedelta(seconds=cfg.grace_period_seconds)
        self.eviction_rate = cfg.eviction_rate_per_second
        self.secondary_eviction_rate = secondary_eviction_rate
        self.large_cluster_threshold = large_cluster_threshold
        self.unhealthy_zone_threshold = unhealthy_zone_threshold
        self.monitor_period_seconds = monitor_period_seconds
        self.taint_pass_seconds = taint_pass_seconds
        self.clock = clock
        self.recorder = recorder or EventRecorder(client, "node-controller")
        self.nodes = factory.informer("v1", "Node")
        self.leases = factory.informer("coordination.k8s.io/v1", "Lease", namespace=LEASE_NAMESPACE)
        self.pods = factory.informer("v1", "Pod")
        self.health: dict[str, NodeHealth] = {}
        self.disrupted = False
        """True while every zone is fully disrupted: no NoExecute taints, no evictions."""
        self.evictions: list[tuple[dt.datetime, str]] = []
        """(when, namespace/name) of every pod this controller evicted, oldest first."""
        self.passes = 0
        """Completed monitor passes (tests await them instead of sleeping)."""
        self._passed = asyncio.Condition()
        self._pending: dict[str, collections.OrderedDict[str, int | None]] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._taint_seen: dict[tuple[str, str, str], dt.datetime] = {}
        self._loops: list[asyncio.Task[None]] = []
        self.nodes.add_handler(on_add=self._node_changed, on_update=self._node_updated,
                               on_delete=self._node_deleted)
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda _old, new: self._pod_changed(new))

    @property
    def informers(self) -> list[Informer]:
        return [self.nodes, self.leases, self.pods]

    # ---- handlers: enqueue only -------------------------------------------------------

    def _node_changed(self, node: Obj) -> None:
        if taints_with_effect(node, NO_EXECUTE):
            self.queue.add(f"node:{node['metadata']['name']}")

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if taints_with_effect(old, NO_EXECUTE) != taints_with_effect(new, NO_EXECUTE):
            self.queue.add(f"node:{new['metadata']['name']}")

    def _node_deleted(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self._taint_seen = {k: v for k, v in self._taint_seen.items() if k[0] != name}

    def _pod_changed(self, pod: Obj) -> None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or pod["metadata"].get("deletionTimestamp"):
            return
        node = self.nodes.indexer.get(node_name)
        if node is not None and taints_with_effect(node, NO_EXECUTE):
            self.queue.add(f"pod:{pod['metadata']['namespace']}/{pod['metadata']['name']}")

    # ---- lifecycle -------------------------------------------------------------------

    async def run(self, informers: list[Informer] | None = None) -> None:
        """Start the informers, the monitor and the tainter, and evict until stop()."""
        await self.factory.start()
        self._loops = [asyncio.create_task(self._every(self.monitor_period_seconds, self.monitor_once),
                                           name="node-lifecycle-monitor"),
                       asyncio.create_task(self._every(self.taint_pass_seconds, self.taint_pass),
                                           name="node-lifecycle-tainter")]
        try:
            await super().run(informers if informers is not None else self.informers)
        finally:
            await self._stop_loops()

    async def stop(self) -> None:
        await self._stop_loops()
        await super().stop()

    async def _stop_loops(self) -> None:
        loops, self._loops = self._loops, []
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _every(self, period: float, work: Callable[[], Any]) -> None:
        for informer in self.informers:
            await informer.wait_synced()
        while True:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                log.warning("node lifecycle pass failed", error=str(exc) or type(exc).__name__,
                            exc_info=True)
            await asyncio.sleep(period)

    async def wait_passes(self, count: int, timeout: float = 30.0) -> None:
        """Return after ``count`` more monitor passes have completed."""
        target = self.passes + count
        async with asyncio.timeout(timeout):
            async with self._passed:
                await self._passed.wait_for(lambda: self.passes >= target)

    # ---- the monitor -----------------------------------------------------------------

    async def monitor_once(self) -> None:
        """One look at every node: mark silent ones Unknown, decide disruption, set taints."""
        now = self.clock()
        nodes: dict[str, Obj] = {}
        for cached in self.nodes.indexer.list():
            name = cached["metadata"]["name"]
            lease = self.leases.indexer.get(f"{LEASE_NAMESPACE}/{name}")
            ready = ready_condition(cached) or {}
            beat = (((lease or {}).get("spec") or {}).get("renewTime"), ready.get("lastHeartbeatTime"))
            health = self.health.get(name)
            node = cached
            if health is None or health.heartbeat != beat:
                self.health[name] = NodeHealth(now, beat)
            elif now - health.probe > self.grace and ready_status(cached) != "Unknown":
                node = await self._mark_unknown(cached, now) or cached
            nodes[name] = node
        for name in [n for n in self.health if n not in nodes]:
            del self.health[name]
        self._update_disruption(nodes, now)
        for zone in self._pending.values():
            for name in [n for n in zone if n not in nodes]:
                del zone[name]
        for node in nodes.values():
            await self._apply_taints(node, now)
        async with self._passed:
            self.passes += 1
            self._passed.notify_all()

    def _update_disruption(self, nodes: dict[str, Obj], now: dt.datetime) -> None:
        zones: dict[str, list[str | None]] = {}
        for node in nodes.values():
            zones.setdefault(zone_of(node), []).append(ready_status(node))
        states = {zone: zone_state(statuses, self.unhealthy_zone_threshold) for zone, statuses in zones.items()}
        all_down = bool(states) and all(s == FULL_DISRUPTION for s in states.values())
        if all_down and not self.disrupted:
            log.warning("every node is unhealthy: assuming a control-plane or network problem; "
                        "no evictions until a node is back", nodes=len(nodes))
            self.disrupted = True
        elif not all_down and self.disrupted:
            log.info("a node is healthy again; leaving full-disruption mode")
            self.disrupted = False
            for health in self.health.values():
                health.probe = now  # everyone gets a fresh grace period
        for zone, state in states.items():
            rate = 0.0 if self.disrupted else zone_eviction_rate(
                state, len(zones[zone]), self.eviction_rate, self.secondary_eviction_rate,
                self.large_cluster_threshold)
            bucket = self._buckets.get(zone)
            if bucket is None:
                self._buckets[zone] = TokenBucket(rate, 1, clock=lambda: self.clock().timestamp())
            elif bucket.rate != rate:
                bucket.set_rate(rate)

    async def _mark_unknown(self, node: Obj, now: dt.datetime) -> Obj | None:
        name = node["metadata"]["name"]
        log.warning("node stopped posting status; marking it Unknown", node=name)
        updated = copy.deepcopy(node)
        updated.setdefault("status", {})["conditions"] = unknown_conditions(node, _time_text(now))
        try:
            written = await self.client.resource("v1", "Node").update_status(updated)
        except ApiStatusError as exc:
            if exc.code in (404, 409):
                return None  # gone, or changed under us: the next pass sees the news
            raise
        await self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        await self._mark_pods_not_ready(name, _time_text(now))
        return written

    async def _mark_pods_not_ready(self, node_name: str, now: str) -> None:
        """Nobody can vouch for the pods of a silent node: take them out of Service endpoints."""
        pods = self.client.resource("v1", "Pod")
        for pod in self.pods.indexer.by_index(INDEX_NODE, node_name):
            conditions = pod_not_ready_conditions(pod, now)
            if conditions is None:
                continue
            updated = copy.deepcopy(pod)
            updated.setdefault("status", {})["conditions"] = conditions
            try:
                await pods.update_status(updated)
            except ApiStatusError as exc:
                if exc.code not in (404, 409):
                    raise

    async def _apply_taints(self, node: Obj, now: dt.datetime) -> None:
        name = node["metadata"]["name"]
        taints = (node.get("spec") or {}).get("taints") or []
        new, pending = desired_taints(taints, ready_status(node), allow_no_execute=not self.disrupted,
                                      now=format_micro_time(now))
        queue = self._pending.setdefault(zone_of(node), collections.OrderedDict())
        if pending:
            queue.setdefault(name, self.passes)  # remembers the pass that queued it
        else:
            queue.pop(name, None)
        if new != taints:
            await self._write_taints(node, taints, new)

    async def taint_pass(self) -> None:
        """Add the NoExecute taints waiting in each zone's queue, as fast as its bucket allows."""
        for zone, queue in self._pending.items():
            bucket = self._buckets.get(zone)
            while queue and bucket is not None:
                name = next(iter(queue))
                if queue[name] is not None and self.passes < queue[name] + 2:
                    # Wait for one more full pass: nodes that went silent together but were
                    # noticed a pass apart must count as one disruption, not two failures.
                    break
                node = self.nodes.indexer.get(name)
                if node is None or self.disrupted:
                    del queue[name]
                    continue
                taints = (node.get("spec") or {}).get("taints") or []
                wanted = condition_taints(ready_status(node))
                if wanted is None or has_taint(taints, wanted, NO_EXECUTE):
                    del queue[name]
                    continue
                if not bucket.try_take():
                    break
                del queue[name]
                # Write over the live node: the cache may not show the NoSchedule taint just set.
                live = await self.client.resource("v1", "Node").get_or_none(name)
                if live is None or condition_taints(ready_status(live)) != wanted:
                    continue
                taints = (live.get("spec") or {}).get("taints") or []
                node = live
                new = with_taint(without_taints(taints, [(TAINT_NOT_READY, NO_EXECUTE),
                                                         (TAINT_UNREACHABLE, NO_EXECUTE)]),
                                 {"key": wanted, "effect": NO_EXECUTE,
                                  "timeAdded": format_micro_time(self.clock())})
                log.info("tainting node for eviction", node=name, taint=wanted)
                try:
                    await self._write_taints(node, taints, new)
                except Exception:
                    queue[name] = None  # try again on a later pass
                    raise

    async def _write_taints(self, node: Obj, old: list[Obj], new: list[Obj]) -> None:
        """Replace the node's taints if they are still ``old`` (JSON patch test + replace)."""
        meta = node["metadata"]
        ops: list[Obj] = [{"op": "test", "path": "/metadata/uid", "value": meta["uid"]}]
        if "taints" in (node.get("spec") or {}):
            ops.append({"op": "test", "path": "/spec/taints", "value": old})
            ops.append({"op": "replace", "path": "/spec/taints", "value": new})
        else:
            ops.append({"op": "add", "path": "/spec/taints", "value": new})
        try:
            await self.client.resource("v1", "Node").patch(meta["name"], ops, patch_type="json")
        except ApiStatusError as exc:
            if exc.code in (404, 409, 422):
                log.debug("node changed under us; next pass", node=meta["name"], error=exc.message)
                return
            raise

    # ---- eviction (the work queue) -----------------------------------------------------

    def _taint_started(self, node_name: str) -> Callable[[Obj], dt.datetime]:
        def started(taint: Obj) -> dt.datetime:
            added = parse_time(taint.get("timeAdded"))
            if added is not None:
                return added
            # No timeAdded: count from when we first saw it.
            return self._taint_seen.setdefault((node_name, taint.get("key", ""), taint.get("effect", "")),
                                               self.clock())
        return started

    async def reconcile(self, key: str) -> float | None:
        kind, _, rest = key.partition(":")
        if kind == "node":
            for pod in self.pods.indexer.by_index(INDEX_NODE, rest):
                if not pod["metadata"].get("deletionTimestamp"):
                    self.queue.add(f"pod:{pod['metadata']['namespace']}/{pod['metadata']['name']}")
            return None
        pod = self.pods.indexer.get(rest)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return None
        node_name = (pod.get("spec") or {}).get("nodeName")
        node = self.nodes.indexer.get(node_name) if node_name else None
        if node is None:
            return None
        taints = taints_with_effect(node, NO_EXECUTE)
        if not taints:
            return None
        deadline = eviction_deadline((pod.get("spec") or {}).get("tolerations") or [], taints,
                                     self._taint_started(node_name or ""))
        if deadline is None:
            return None
        wait = (deadline - self.clock()).total_seconds()
        if wait > 0:
            return wait  # look again then: the taint or the pod may have changed by that time
        await self._evict(pod, node_name or "")
        return None

    async def _evict(self, pod: Obj, node_name: str) -> None:
        meta = pod["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        log.info("evicting pod from tainted node", pod=key, node=node_name)
        await self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        try:
            await self.client.resource("v1", "Pod").delete(meta["name"], meta["namespace"],
                                                           preconditions={"uid": meta["uid"]})
        except ApiStatusError as exc:
            if exc.code in (404, 409):
                return  # already gone, or a new pod under the same name
            raise
        self.evictions.append((self.clock(), key))
