"""Test helpers for scheduler plugins: one cycle, or a whole in-memory cluster.

``schedule_one(pod, nodes)`` runs one scheduling cycle of a real framework in a
throw-away plugin host (the installed ``kcore.scheduler`` entry points plus any
plugin you pass) and tells you where the pod would go, or why it fits nowhere.
``Simulator`` schedules many pods onto many simulated nodes with an in-memory
binder: the benchmark's "fake path". ``make_node``/``make_pod`` build objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kcore.api.core_v1 import Node, Pod
from kcore.config import SchedulerConfig, SchedulerPluginRef, SchedulerProfile
from kcore.hookspecs import hookimpl
from kcore.plugins import PluginHost, create_plugin_host
from kcore.scheduler.cache import SchedulerCache
from kcore.scheduler.framework import (
    DEFAULT_SCHEDULER_NAME,
    GROUP,
    FitError,
    Framework,
    Handle,
    SchedulingError,
)
from kcore.scheduler.node_info import PodInfo
from kcore.scheduler.queue import SchedulingQueue
from kcore.scheduler.status import Status

__all__ = ["CycleOutcome", "InMemoryBinder", "Simulator", "make_node", "make_pod", "scheduler_host",
           "schedule_one"]


def as_pod(obj: Pod | Mapping[str, Any]) -> Pod:
    return obj if isinstance(obj, Pod) else Pod.model_validate(dict(obj))


def as_node(obj: Node | Mapping[str, Any]) -> Node:
    return obj if isinstance(obj, Node) else Node.model_validate(dict(obj))


def make_node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "32Gi",
    pods: int = 110,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, str]] = (),
    unschedulable: bool = False,
    extra: Mapping[str, str] | None = None,
) -> Node:
    """A Ready node with the given allocatable resources, labels and taints."""
    allocatable = {"cpu": cpu, "memory": memory, "pods": str(pods), **(extra or {})}
    return Node.model_validate({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": [dict(t) for t in taints], "unschedulable": unschedulable or None},
        "status": {"capacity": allocatable, "allocatable": allocatable,
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })


def make_pod(
    name: str,
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    labels: Mapping[str, str] | None = None,
    node_name: str | None = None,
    scheduler_name: str | None = None,
    priority: int | None = None,
    **spec: Any,
) -> Pod:
    """A one-container pod requesting ``cpu``/``memory``; extra ``spec`` fields as wire dicts."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "main", "image": "pause"}
    if requests:
        container["resources"] = {"requests": requests}
    body: dict[str, Any] = {"containers": [container], **spec}
    for key, value in (("nodeName", node_name), ("schedulerName", scheduler_name), ("priority", priority)):
        if value is not None:
            body[key] = value
    return Pod.model_validate({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}",
                     "labels": dict(labels or {})},
        "spec": body,
    })


class InMemoryBinder:
    """A bind plugin that records bindings instead of calling an API."""

    name = "InMemoryBinder"

    def __init__(self) -> None:
        self.bindings: dict[str, str] = {}

    @hookimpl
    def kcore_scheduler_bind(self, state: Any, pod: Any, node_name: str) -> Status | None:
        self.bindings[f"{pod.metadata.namespace or 'default'}/{pod.metadata.name}"] = node_name
        return Status.success()


def scheduler_host(*plugins: object, named: Mapping[str, object] | None = None) -> PluginHost:
    """A throw-away host: every installed ``kcore.scheduler`` entry point plus the given plugins.

    Positional plugins are registered under their ``name`` attribute (or class
    name) in group ``kcore.scheduler``, so a profile can name them.
    """
    host = create_plugin_host(groups=[GROUP], only=None, trace=False)
    for plugin in plugins:
        name = getattr(plugin, "name", None) or getattr(plugin, "__name__", None) or type(plugin).__name__
        host.register(plugin, str(name), group=GROUP)
    for name, plugin in (named or {}).items():
        host.register(plugin, name, group=GROUP)
    return host


@dataclass
class CycleOutcome:
    """Where one cycle put the pod, or why it fits nowhere."""

    node: str | None
    message: str | None = None
    scores: dict[str, int] | None = None
    statuses: dict[str, Status] = field(default_factory=dict)


def schedule_one(
    pod: Pod | Mapping[str, Any],
    nodes: Iterable[Node | Mapping[str, Any]],
    *,
    pods: Iterable[Pod | Mapping[str, Any]] = (),
    plugins: Sequence[object] = (),
    profile: SchedulerProfile | None = None,
    weights: Mapping[str, int] | None = None,
    host: PluginHost | None = None,
) -> CycleOutcome:
    """Run one scheduling cycle for ``pod`` against ``nodes`` (with ``pods`` already placed).

    ``plugins`` are registered in a fresh host; with ``weights`` (name ->
    weight) the profile is the default set plus those plugins at those weights.
    Reserve, permit and bind are not run: nothing is changed.
    """
    host = host or scheduler_host(*plugins)
    if profile is None:
        profile = SchedulerProfile(name=DEFAULT_SCHEDULER_NAME)
        if weights:
            from kcore.scheduler.framework import DEFAULT_PLUGINS

            refs = {n: w for n, w in DEFAULT_PLUGINS}
            refs.update(weights)
            profile = SchedulerProfile(
                name=DEFAULT_SCHEDULER_NAME,
                plugins=[SchedulerPluginRef(name=n, weight=w) for n, w in refs.items()])
    cache = SchedulerCache()
    for node in nodes:
        cache.add_node(as_node(node))
    for placed in pods:
        cache.add_pod(as_pod(placed))
    framework = Framework(host, profile, handle=Handle(cache=cache))
    the_pod = as_pod(pod)
    state = framework.new_state(PodInfo(the_pod))
    try:
        result = framework.schedule(state, the_pod, cache.node_infos())
    except FitError as err:
        return CycleOutcome(None, str(err), None, err.statuses)
    return CycleOutcome(result.node, None, result.scores)


class Simulator:
    """Many pods onto many simulated nodes, no API: the framework with an in-memory binder.

    Each pod goes through the real queue, a full scheduling cycle, reserve,
    permit and bind (the ``InMemoryBinder``), and the cache then sees the pod as
    the watch would report it — bound.
    """

    def __init__(self, host: PluginHost | None = None, config: SchedulerConfig | None = None) -> None:
        self.binder = InMemoryBinder()
        self.host = host or scheduler_host(self.binder)
        if host is not None:
            host.register(self.binder, InMemoryBinder.name, group=GROUP)
        self.config = config or SchedulerConfig()
        self.cache = SchedulerCache()
        handle = Handle(cache=self.cache)
        self.frameworks = {
            p.name: Framework(self.host, p, handle=handle,
                              percentage_of_nodes_to_score=self.config.percentage_of_nodes_to_score,
                              bind_plugins=[InMemoryBinder.name])
            for p in self.config.profiles
        }
        first = next(iter(self.frameworks.values()))
        self.queue = SchedulingQueue(first.less)
        self.unschedulable: dict[str, str] = {}

    def add_node(self, node: Node | Mapping[str, Any]) -> None:
        self.cache.add_node(as_node(node))
        self.queue.move_all_to_active_or_backoff("NodeAdd")

    def add_pod(self, pod: Pod | Mapping[str, Any]) -> None:
        the_pod = as_pod(pod)
        if the_pod.spec.nodeName:
            self.cache.add_pod(the_pod)
        elif (the_pod.spec.schedulerName or DEFAULT_SCHEDULER_NAME) in self.frameworks:
            self.queue.add(the_pod)

    def run(self) -> dict[str, str]:
        """Schedule every pod ready in the queue; returns pod key -> node for this run."""
        placed: dict[str, str] = {}
        while (qpi := self.queue.pop_nowait()) is not None:
            pod = qpi.pod
            framework = self.frameworks[pod.spec.schedulerName or DEFAULT_SCHEDULER_NAME]
            state = framework.new_state(qpi.pod_info)
            try:
                result = framework.schedule(state, pod, self.cache.node_infos())
            except FitError as err:
                self.unschedulable[qpi.key] = str(err)
                self.queue.add_unschedulable(qpi, self.queue.scheduling_cycle)
                continue
            except SchedulingError as err:
                self.unschedulable[qpi.key] = str(err)
                self.queue.done(qpi.key)
                continue
            self.cache.assume_pod(qpi.pod_info, result.node)
            if framework.reserve(state, pod, result.node) is not None or \
                    framework.permit(state, pod, result.node) is not None:
                self.cache.forget_pod(qpi.key)
                self.queue.add_backoff(qpi)
                continue
            self.cache.finish_binding(qpi.key)
            self._bind_now(framework, state, pod, result.node)
            self.cache.add_pod(pod.model_copy(update={"spec": pod.spec.model_copy(update={"nodeName": result.node})}))
            self.queue.done(qpi.key)
            self.unschedulable.pop(qpi.key, None)
            placed[qpi.key] = result.node
        return placed

    def _bind_now(self, framework: Framework, state: Any, pod: Any, node: str) -> None:
        """Run the bind point synchronously (the in-memory binder never waits)."""
        coro = framework.bind(state, pod, node)
        try:
            coro.send(None)
        except StopIteration as done:
            if done.value is not None:
                raise SchedulingError(f"bind failed: {done.value.message}") from None
        else:
            coro.close()
            raise SchedulingError("a bind plugin awaited; use the async runner for real binders")
