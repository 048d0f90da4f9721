"""The scheduler process: informers in, bindings, conditions and events out.

``Scheduler(client, host, config)`` watches nodes and pods through informers.
Assigned pods and nodes feed the cache incrementally; pending pods whose
``spec.schedulerName`` names a served profile feed the queue (others stay
Pending, untouched — another scheduler may serve them). The loop pops one pod at
a time and runs its profile's scheduling cycle synchronously; the binding cycle
(permit wait, bind) runs as its own task so the next pod need not wait for the
API round trip, which is why the chosen node is *assumed* in the cache first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from kcore.api.core_v1 import Node, Pod
from kcore.client import ApiClient, EventRecorder, InformerFactory, object_key
from kcore.config import SchedulerConfig
from kcore.log import get_logger
from kcore.plugins import PluginHost
from kcore.scheduler.cache import SchedulerCache
from kcore.scheduler.cycle_state import CycleState
from kcore.scheduler.framework import (
    DEFAULT_SCHEDULER_NAME,
    FitError,
    Framework,
    Handle,
    SchedulingError,
    build_frameworks,
)
from kcore.scheduler.plugins.default_binder import ALREADY_ASSIGNED
from kcore.scheduler.queue import QueuedPodInfo, SchedulingQueue
from kcore.scheduler.status import Code, Status

log = get_logger("scheduler")

COMPONENT = "default-scheduler"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _scheduler_name(obj: dict[str, Any]) -> str:
    return (obj.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER_NAME


def _node_name(obj: dict[str, Any]) -> str | None:
    return (obj.get("spec") or {}).get("nodeName") or None


def _scheduling_relevant(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a pending pod's update may change where it fits (not just its status)."""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (old.get("spec") != new.get("spec") or om.get("labels") != nm.get("labels")
            or om.get("annotations") != nm.get("annotations"))


def _node_relevant(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a node update may let parked pods fit (heartbeats alone do not)."""
    os_, ns = old.get("status") or {}, new.get("status") or {}
    return (old.get("spec") != new.get("spec")
            or (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels")
            or os_.get("allocatable") != ns.get("allocatable"))


class WaitingPods:
    """Pods held by a permit plugin's Wait, until allowed, rejected or timed out."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Status | None]] = {}

    def keys(self) -> list[str]:
        return sorted(self._waiting)

    async def wait(self, key: str, timeout: float | None) -> Status | None:
        future: asyncio.Future[Status | None] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return Status.unschedulable("rejected due to timeout after waiting at permit")
        finally:
            self._waiting.pop(key, None)

    def allow(self, key: str) -> bool:
        future = self._waiting.get(key)
        if future is None or future.done():
            return False
        future.set_result(None)
        return True

    def reject(self, key: str, message: str) -> bool:
        future = self._waiting.get(key)
        if future is None or future.done():
            return False
        future.set_result(Status.unschedulable(message))
        return True


class Scheduler:
    """Schedules pending pods of the configured profiles onto nodes through the API."""

    def __init__(
        self,
        client: ApiClient,
        host: PluginHost,
        config: SchedulerConfig,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        assumed_ttl: float = 30.0,
        informers: InformerFactory | None = None,
    ) -> None:
        self.client = client
        self.host = host
        self.config = config
        self.cache = SchedulerCache(assumed_ttl=assumed_ttl)
        self.recorder = EventRecorder(client, COMPONENT)
        self.waiting = WaitingPods()
        self.handle = Handle(client=client, cache=self.cache, recorder=self.recorder,
                             extra={"waiting_pods": self.waiting})
        self.frameworks: dict[str, Framework] = build_frameworks(
            host, config.profiles, handle=self.handle,
            percentage_of_nodes_to_score=config.percentage_of_nodes_to_score)
        # Kubernetes requires one queue-sort for all profiles: the first profile's.
        first = self.frameworks[config.profiles[0].name]
        self.queue = SchedulingQueue(first.less, initial_backoff=initial_backoff, max_backoff=max_backoff)
        self._own_factory = informers is None
        self.informers = informers or InformerFactory(client)
        self.nodes = self.informers.informer("v1", "Node")
        self.pods = self.informers.informer("v1", "Pod")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.scheduled = 0

    # -- lifecycle -------------------------------------------------------------

    async def run(self) -> None:
        """Watch, then schedule until ``stop()``."""
        self.nodes.add_handler(on_add=self._node_added, on_update=self._node_updated,
                               on_delete=self._node_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)
        await self.informers.start()
        await self.informers.wait_synced()
        log.info("scheduler started", profiles=sorted(self.frameworks), nodes=len(self.cache))
        while not self._stopping:
            qpi = await self.queue.pop()
            if qpi is None:
                break
            try:
                self.schedule_one(qpi)
            except Exception:  # one pod's bad luck must not stop the scheduler
                log.exception("scheduling attempt crashed", pod=qpi.key)
                self.queue.add_backoff(qpi)

    async def stop(self) -> None:
        """Stop popping, cancel in-flight binding cycles, stop the informers we own."""
        self._stopping = True
        self.queue.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._own_factory:
            await self.informers.stop()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until background writes (bindings, conditions, events) are done; for tests."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- informer handlers: keep them short (cache or queue, nothing else) ----

    def _node_added(self, obj: dict[str, Any]) -> None:
        self.cache.add_node(Node.model_validate(obj))
        self.queue.move_all_to_active_or_backoff("NodeAdd")

    def _node_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.cache.update_node(Node.model_validate(new))
        if _node_relevant(old, new):
            self.queue.move_all_to_active_or_backoff("NodeUpdate")

    def _node_deleted(self, obj: dict[str, Any]) -> None:
        self.cache.remove_node((obj.get("metadata") or {}).get("name", ""))

    def _responsible(self, obj: dict[str, Any]) -> bool:
        return _scheduler_name(obj) in self.frameworks and not (obj.get("metadata") or {}).get("deletionTimestamp")

    def _pod_added(self, obj: dict[str, Any]) -> None:
        if _node_name(obj):
            self.cache.add_pod(Pod.model_validate(obj))
        elif self._responsible(obj):
            self.queue.add(Pod.model_validate(obj))

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        key = object_key(new)
        if _node_name(new):
            self.queue.delete(key)
            self.cache.update_pod(Pod.model_validate(new))
        elif not self._responsible(new):
            self.queue.delete(key)
        elif _scheduling_relevant(old, new):
            self.queue.update(Pod.model_validate(new))
        else:
            self.queue.refresh(Pod.model_validate(new))

    def _pod_deleted(self, obj: dict[str, Any]) -> None:
        key = object_key(obj)
        self.queue.delete(key)
        if self.cache.node_of(key) is not None:
            self.cache.remove_pod(key)
            self.queue.move_all_to_active_or_backoff("AssignedPodDelete")

    # -- one pod ---------------------------------------------------------------

    def schedule_one(self, qpi: QueuedPodInfo) -> None:
        """The scheduling cycle for one popped pod; the binding cycle is spawned."""
        key = qpi.key
        current = self.pods.indexer.get(key)
        if current is None or _node_name(current) or not self._responsible(current):
            self.queue.done(key)  # deleted, bound meanwhile, or handed to another scheduler
            return
        pod = qpi.pod
        framework = self.frameworks[_scheduler_name(current)]
        self.cache.cleanup_expired()
        state = framework.new_state(qpi.pod_info)
        cycle = self.queue.scheduling_cycle
        try:
            result = framework.schedule(state, pod, self.cache.node_infos())
        except FitError as err:
            log.debug("pod is unschedulable", pod=key, message=str(err))
            self._failed(qpi, "Unschedulable", str(err))
            self.queue.add_unschedulable(qpi, cycle)
            return
        except SchedulingError as err:
            log.warning("scheduling attempt failed", pod=key, error=str(err))
            self._failed(qpi, "SchedulerError", str(err))
            self.queue.add_backoff(qpi)
            return
        node = result.node
        self.cache.assume_pod(qpi.pod_info, node)
        status = framework.reserve(state, pod, node)
        if status is not None:
            self.cache.forget_pod(key)
            self._failed(qpi, "SchedulerError", f"reserve: {status.message}")
            self.queue.add_backoff(qpi)
            return
        permit = framework.permit(state, pod, node)
        if permit is not None and permit.code is not Code.WAIT:
            framework.unreserve(state, pod, node)
            self.cache.forget_pod(key)
            self._failed(qpi, "Unschedulable", f"permit: {permit.message}")
            self.queue.add_unschedulable(qpi, cycle)
            return
        self._spawn(self._binding_cycle(qpi, framework, state, node, permit))

    async def _binding_cycle(self, qpi: QueuedPodInfo, framework: Framework, state: CycleState, node: str,
                             permit: Status | None) -> None:
        key, pod = qpi.key, qpi.pod
        try:
            if permit is not None:  # Wait
                verdict = await self.waiting.wait(key, permit.timeout)
                if verdict is not None:
                    framework.unreserve(state, pod, node)
                    self.cache.forget_pod(key)
                    self._failed(qpi, "Unschedulable", f"permit: {verdict.message}")
                    self.queue.add_unschedulable(qpi, self.queue.scheduling_cycle)
                    return
            status = await framework.bind(state, pod, node)
        except asyncio.CancelledError:
            self.cache.forget_pod(key)
            raise
        if status is None:
            self.cache.finish_binding(key)
            self.queue.done(key)
            self.scheduled += 1
            meta = pod.metadata
            await self.recorder.event(_ref(pod), "Normal", "Scheduled",
                                      f"Successfully assigned {meta.namespace or 'default'}/{meta.name} to {node}")
            return
        framework.unreserve(state, pod, node)
        self.cache.forget_pod(key)
        if ALREADY_ASSIGNED in status.message:
            # Bound by someone else: the watch brings the assigned pod into the cache.
            log.info("pod was already bound", pod=key, message=status.message)
            self.queue.done(key)
            return
        log.warning("binding failed", pod=key, node=node, error=status.message)
        self._failed(qpi, "SchedulerError", f"Binding rejected: {status.message}")
        self.queue.add_backoff(qpi)

    # -- reporting -------------------------------------------------------------

    def _failed(self, qpi: QueuedPodInfo, reason: str, message: str) -> None:
        """PodScheduled=False on the pod (if it changed) and a FailedScheduling event, in the background."""
        self._spawn(self._report_failure(qpi.pod, reason, message))

    async def _report_failure(self, pod: Any, reason: str, message: str) -> None:
        meta = pod.metadata
        namespace = meta.namespace or "default"
        await self.recorder.event(_ref(pod), "Warning", "FailedScheduling", message)
        current = self.pods.indexer.get(f"{namespace}/{meta.name}")
        if current is None or _node_name(current):
            return
        for cond in (current.get("status") or {}).get("conditions") or ():
            if (cond.get("type") == "PodScheduled" and cond.get("status") == "False"
                    and cond.get("reason") == reason and cond.get("message") == message):
                return  # already says so: no write, no watch event
        condition = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                     "lastProbeTime": None, "lastTransitionTime": _now()}
        try:
            await self.client.resource("v1", "Pod").patch(
                meta.name, {"status": {"conditions": [condition]}}, namespace=namespace,
                patch_type="strategic", subresource="status")
        except Exception as err:  # noqa: BLE001 - the next attempt reports again
            log.warning("could not update pod condition", pod=f"{namespace}/{meta.name}", error=str(err))


def _ref(pod: Any) -> dict[str, Any]:
    """The wire shape the event recorder needs to name the pod."""
    meta = pod.metadata
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": meta.name, "namespace": meta.namespace or "default", "uid": meta.uid,
                         "resourceVersion": meta.resourceVersion}}
