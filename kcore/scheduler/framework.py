"""The scheduling framework: one profile's plugins, walked extension point by point.

A ``Framework`` is built from a plugin host and a ``SchedulerProfile``. For each
extension point it asks the host for the profile's plugins' implementations, in
the profile's order, and calls them explicitly (never a pluggy broadcast) so
weights and order are the profile's. The scheduling cycle (``schedule``) is
synchronous and pure over the cache: pre-filter, filter over a rotating sample
of nodes, then scoring (or the profile's algorithm). Reserve, permit and bind
follow, driven by the runner or ``kcore.scheduler.testing``.
"""

from __future__ import annotations

import inspect
import os
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kcore.config import SchedulerPluginRef, SchedulerProfile
from kcore.log import get_logger
from kcore.plugins import TRACE_ENV, Implementation, PluginHost
from kcore.scheduler.cycle_state import CycleState
from kcore.scheduler.node_info import NodeInfo, PodInfo
from kcore.scheduler.scoring import MAX_NODE_SCORE
from kcore.scheduler.status import Code, Status

log = get_logger("scheduler.framework")

GROUP = "kcore.scheduler"
DEFAULT_SCHEDULER_NAME = "default-scheduler"
QUEUE_SORT_PLUGIN = "PrioritySort"
BIND_PLUGIN = "DefaultBinder"

#: The filter/score plugins of a profile without ``plugins``, with Kubernetes' weights.
DEFAULT_PLUGINS: tuple[tuple[str, int], ...] = (
    ("NodeName", 1),
    ("NodeUnschedulable", 1),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 1),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("NodeResourcesLeastAllocated", 1),
    ("NodeResourcesBalancedAllocation", 1),
)

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE = 5


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes to find before filtering stops (percentageOfNodesToScore).

    ``percentage`` 0 is adaptive: 50% minus 1% per 125 nodes, at least 5%.
    Small clusters (under 100 nodes) are always searched in full, and at least
    100 feasible nodes are sought.
    """
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND or percentage >= 100:
        return num_all_nodes
    if percentage <= 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def fit_error_message(num_all_nodes: int, statuses: Mapping[str, Status], pre_filter_message: str = "") -> str:
    """Kubernetes' unschedulable message: ``0/3 nodes are available: 2 Insufficient cpu, ...``.

    Every reason of every node's failing status is counted; the counts are
    listed most frequent first (ties alphabetically).
    """
    head = f"0/{num_all_nodes} nodes are available:"
    if pre_filter_message:
        return f"{head} {pre_filter_message}."
    histogram: Counter[str] = Counter()
    for status in statuses.values():
        histogram.update(status.reasons or (status.message or "unknown reason",))
    if not histogram:
        return f"{head} no nodes available to schedule pods." if num_all_nodes == 0 else head[:-1] + "."
    parts = [f"{count} {reason}" for reason, count in sorted(histogram.items(), key=lambda rc: (-rc[1], rc[0]))]
    return f"{head} {', '.join(parts)}."


class FitError(Exception):
    """No node can take the pod; ``str()`` is the message for the pod's condition."""

    def __init__(self, pod: Any, num_all_nodes: int, statuses: dict[str, Status],
                 pre_filter_message: str = "") -> None:
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.statuses = statuses
        self.pre_filter_message = pre_filter_message
        super().__init__(fit_error_message(num_all_nodes, statuses, pre_filter_message))


class SchedulingError(Exception):
    """A plugin failed (an Error status or an exception): retry with back-off."""


@dataclass
class Handle:
    """Long-lived services plugins reach through ``state.handle``.

    ``client`` is the ``kcore.client.ApiClient`` (None in simulations),
    ``cache`` the ``SchedulerCache``, ``recorder`` an ``EventRecorder``.
    """

    client: Any = None
    cache: Any = None
    recorder: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScheduleResult:
    """The node chosen for a pod and how much work choosing took."""

    node: str
    evaluated: int
    feasible: int
    scores: dict[str, int] | None = None


Caller = Callable[..., Any]


def _tracing() -> bool:
    return os.environ.get(TRACE_ENV, "") not in ("", "0", "false", "no")


def fast_caller(host: PluginHost, impl: Implementation, hook_name: str, argnames: Sequence[str]) -> Caller:
    """A positional caller for one plugin's hook implementation.

    Why: filter and score run per node per pod, and a pluggy call per node costs
    several times the plugin's own work. The function is taken from pluggy's own
    record of the implementation (so an implementation that takes fewer
    arguments still works). With ``KCORE_TRACE_PLUGINS`` set, calls go through
    pluggy so the trace sees every one.
    """
    if _tracing():
        return lambda *args: impl(**dict(zip(argnames, args)))
    hook = getattr(host.pm.hook, hook_name)
    for hook_impl in hook.get_hookimpls():
        if hook_impl.plugin is impl.plugin:
            function = hook_impl.function
            wanted = tuple(hook_impl.argnames)
            if wanted == tuple(argnames):
                return function  # type: ignore[no-any-return]
            positions = [argnames.index(a) for a in wanted]
            return lambda *args: function(*(args[i] for i in positions))
    return lambda *args: impl(**dict(zip(argnames, args)))


_ARGS = {
    "kcore_scheduler_queue_sort": ("pod_a", "pod_b"),
    "kcore_scheduler_pre_filter": ("state", "pod", "nodes"),
    "kcore_scheduler_filter": ("state", "pod", "node_info"),
    "kcore_scheduler_post_filter": ("state", "pod", "filtered_statuses"),
    "kcore_scheduler_pre_score": ("state", "pod", "nodes"),
    "kcore_scheduler_score": ("state", "pod", "node_info"),
    "kcore_scheduler_normalize_score": ("state", "pod", "scores"),
    "kcore_scheduler_select_node": ("state", "pod", "feasible", "scores"),
    "kcore_scheduler_reserve": ("state", "pod", "node_name"),
    "kcore_scheduler_unreserve": ("state", "pod", "node_name"),
    "kcore_scheduler_permit": ("state", "pod", "node_name"),
    "kcore_scheduler_bind": ("state", "pod", "node_name"),
}


class Framework:
    """One scheduling profile, ready to run cycles."""

    def __init__(
        self,
        host: PluginHost,
        profile: SchedulerProfile,
        *,
        handle: Handle | None = None,
        percentage_of_nodes_to_score: int = 0,
        bind_plugins: Sequence[str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.profile = profile
        self.name = profile.name
        self.handle = handle or Handle()
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.algorithm = profile.algorithm
        refs: list[SchedulerPluginRef] = (
            list(profile.plugins) if profile.plugins is not None
            else [SchedulerPluginRef(name=n, weight=w) for n, w in DEFAULT_PLUGINS]
        )
        self.plugin_names = [ref.name for ref in refs]
        self.weights = {ref.name: ref.weight for ref in refs}
        names = self.plugin_names
        self._pre_filter = self._callers("kcore_scheduler_pre_filter", names)
        self._filter = self._callers("kcore_scheduler_filter", names)
        self._post_filter = self._callers("kcore_scheduler_post_filter", names)
        self._reserve = self._callers("kcore_scheduler_reserve", names)
        self._unreserve = self._callers("kcore_scheduler_unreserve", names)
        self._permit = self._callers("kcore_scheduler_permit", names)
        self._select: Caller | None = None
        if self.algorithm is not None:
            self._pre_score, self._score, self._normalize = [], [], {}
            selectors = self._callers("kcore_scheduler_select_node", [self.algorithm])
            self._select = selectors[0][1] if selectors else None
            if self._select is None:
                raise ValueError(f"scheduler profile {self.name!r}: algorithm {self.algorithm!r} "
                                 f"does not implement kcore_scheduler_select_node")
        else:
            self._pre_score = self._callers("kcore_scheduler_pre_score", names)
            self._score = self._callers("kcore_scheduler_score", names)
            self._normalize = dict(self._callers("kcore_scheduler_normalize_score", names))
        sorters = self._callers("kcore_scheduler_queue_sort", names) or self._callers(
            "kcore_scheduler_queue_sort", [QUEUE_SORT_PLUGIN])
        self._queue_sort = sorters[0][1] if sorters else None
        if bind_plugins is None:
            bind_plugins = [*names, BIND_PLUGIN]
        self._bind = self._callers("kcore_scheduler_bind", list(dict.fromkeys(bind_plugins)))
        self._next_start = 0
        self._rng = rng or random.Random()

    def _callers(self, hook_name: str, names: Sequence[str]) -> list[tuple[str, Caller]]:
        impls = self.host.implementations(hook_name, list(names), group=GROUP)
        return [(i.name, fast_caller(self.host, i, hook_name, _ARGS[hook_name])) for i in impls]

    # -- queue ---------------------------------------------------------------

    def less(self, pod_a: Any, pod_b: Any) -> bool | None:
        """The queue-sort plugin's verdict (None: no opinion, keep arrival order)."""
        if self._queue_sort is None:
            return None
        return self._queue_sort(pod_a, pod_b)  # type: ignore[no-any-return]

    # -- scheduling cycle ----------------------------------------------------

    def new_state(self, pod_info: PodInfo) -> CycleState:
        return CycleState(self.handle, pod_info)

    def schedule(self, state: CycleState, pod: Any, nodes: Sequence[NodeInfo]) -> ScheduleResult:
        """Choose a node for the pod among ``nodes``; raises FitError or SchedulingError."""
        num_nodes = len(nodes)
        if num_nodes == 0:
            raise FitError(pod, 0, {})
        node_list = list(nodes)
        for name, call in self._pre_filter:
            status = self._guard(name, call, state, pod, node_list)
            if status is None or status.code is Code.SUCCESS:
                continue
            if status.code is Code.SKIP:
                state.skip_filter.add(name)
            elif status.code is Code.ERROR:
                raise SchedulingError(f"pre-filter plugin {name}: {status.message}")
            else:
                raise FitError(pod, num_nodes, {}, status.message or f"{name} rejected the pod")
        feasible, statuses, evaluated = self.find_feasible(state, pod, node_list)
        if not feasible:
            self.run_post_filter(state, pod, statuses)
            raise FitError(pod, num_nodes, statuses)
        if self._select is not None:
            names = [n.name for n in feasible]
            choice = self._guard(self.algorithm or "", self._select, state, pod, names, None)
            if choice is None:
                raise SchedulingError(f"algorithm {self.algorithm} chose no node")
            return ScheduleResult(choice, evaluated, len(feasible))
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        scores = self.score(state, pod, feasible)
        return ScheduleResult(self._pick(scores), evaluated, len(feasible), scores)

    def find_feasible(
        self, state: CycleState, pod: Any, nodes: list[NodeInfo]
    ) -> tuple[list[NodeInfo], dict[str, Status], int]:
        """Filter nodes from a rotating start until enough feasible ones are found.

        Returns (feasible nodes, failing status by node name, nodes evaluated).
        """
        num_nodes = len(nodes)
        wanted = num_feasible_nodes_to_find(num_nodes, self.percentage_of_nodes_to_score)
        filters = [(n, c) for n, c in self._filter if n not in state.skip_filter]
        start = self._next_start % num_nodes
        order = nodes[start:] + nodes[:start] if start else nodes
        feasible: list[NodeInfo] = []
        statuses: dict[str, Status] = {}
        evaluated = 0
        SUCCESS = Code.SUCCESS
        try:
            for node in order:
                evaluated += 1
                for name, call in filters:
                    status = call(state, pod, node)
                    if status is not None and status.code is not SUCCESS:
                        if status.code is Code.ERROR:
                            raise SchedulingError(f"filter plugin {name} on node {node.name}: {status.message}")
                        statuses[node.name] = status.with_plugin(name)
                        break
                else:
                    feasible.append(node)
                    if len(feasible) >= wanted:
                        break
        except SchedulingError:
            raise
        except Exception as err:  # a plugin bug fails this attempt, not the scheduler
            raise SchedulingError(f"filter failed: {type(err).__name__}: {err}") from err
        self._next_start = (start + evaluated) % num_nodes
        return feasible, statuses, evaluated

    def run_filters(self, state: CycleState, pod: Any, node: NodeInfo) -> Status | None:
        """Every active filter on one node; the first failing status, or None."""
        for name, call in self._filter:
            if name in state.skip_filter:
                continue
            status = call(state, pod, node)
            if status is not None and status.code is not Code.SUCCESS:
                return status.with_plugin(name)
        return None

    def run_post_filter(self, state: CycleState, pod: Any, statuses: dict[str, Status]) -> Status | None:
        for name, call in self._post_filter:
            status = self._guard(name, call, state, pod, statuses)
            if status is not None:
                return status
        return None

    def score(self, state: CycleState, pod: Any, feasible: Sequence[NodeInfo]) -> dict[str, int]:
        """Pre-score, score, normalize and weigh: the total score by node name."""
        node_list = list(feasible)
        for name, call in self._pre_score:
            status = self._guard(name, call, state, pod, node_list)
            if status is None or status.code is Code.SUCCESS:
                continue
            if status.code is Code.SKIP:
                state.skip_score.add(name)
            else:
                raise SchedulingError(f"pre-score plugin {name}: {status.message}")
        totals = dict.fromkeys((n.name for n in node_list), 0)
        for name, call in self._score:
            if name in state.skip_score:
                continue
            weight = self.weights.get(name, 1)
            if weight == 0:
                continue
            try:
                raw = {n.name: call(state, pod, n) or 0 for n in node_list}
            except Exception as err:
                raise SchedulingError(f"score plugin {name}: {type(err).__name__}: {err}") from err
            normalize = self._normalize.get(name)
            if normalize is not None:
                normalized = self._guard(name, normalize, state, pod, raw)
                if normalized is not None:
                    raw = normalized
            for node_name, value in raw.items():
                if not 0 <= value <= MAX_NODE_SCORE:
                    raise SchedulingError(
                        f"score plugin {name} gave node {node_name} {value}, outside 0-{MAX_NODE_SCORE}")
                totals[node_name] += value * weight
        return totals

    def _pick(self, scores: Mapping[str, int]) -> str:
        """The best-scored node; ties broken at random so equal nodes share the load."""
        best = max(scores.values())
        ties = [name for name, value in scores.items() if value == best]
        return ties[0] if len(ties) == 1 else self._rng.choice(ties)

    # -- after the node is chosen ---------------------------------------------

    def reserve(self, state: CycleState, pod: Any, node_name: str) -> Status | None:
        """Run reserve; on failure run unreserve (reverse order) and return the status."""
        for name, call in self._reserve:
            status = self._guard(name, call, state, pod, node_name, error_status=True)
            if status is not None and status.code is not Code.SUCCESS:
                self.unreserve(state, pod, node_name)
                return status.with_plugin(name)
        return None

    def unreserve(self, state: CycleState, pod: Any, node_name: str) -> None:
        for name, call in reversed(self._unreserve):
            try:
                call(state, pod, node_name)
            except Exception:  # must not fail: log and go on undoing
                log.exception("unreserve failed", plugin=name, pod=getattr(state.pod_info, "key", None))

    def permit(self, state: CycleState, pod: Any, node_name: str) -> Status | None:
        """Run permit: a rejection wins, else the longest Wait, else None (allowed)."""
        waiting: Status | None = None
        for name, call in self._permit:
            status = self._guard(name, call, state, pod, node_name, error_status=True)
            if status is None or status.code in (Code.SUCCESS, Code.SKIP):
                continue
            if status.code is Code.WAIT:
                if waiting is None or (status.timeout or 0) > (waiting.timeout or 0):
                    waiting = status.with_plugin(name)
                continue
            return status.with_plugin(name)
        return waiting

    async def bind(self, state: CycleState, pod: Any, node_name: str) -> Status | None:
        """The first bind plugin that handles the pod decides; None means bound."""
        for name, call in self._bind:
            try:
                result = call(state, pod, node_name)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as err:
                return Status.error(f"{type(err).__name__}: {err}", plugin=name)
            if result is None or result.code is Code.SKIP:
                continue
            return None if result.code is Code.SUCCESS else result.with_plugin(name)
        return Status.error("no bind plugin handled the pod")

    def _guard(self, name: str, call: Caller, *args: Any, error_status: bool = False) -> Any:
        """Call a plugin; an exception becomes a SchedulingError (or an Error status)."""
        try:
            return call(*args)
        except (FitError, SchedulingError):
            raise
        except Exception as err:
            if error_status:
                return Status.error(f"{type(err).__name__}: {err}", plugin=name)
            raise SchedulingError(f"plugin {name}: {type(err).__name__}: {err}") from err


def build_frameworks(host: PluginHost, profiles: Sequence[SchedulerProfile], *, handle: Handle | None = None,
                     percentage_of_nodes_to_score: int = 0,
                     bind_plugins: Sequence[str] | None = None) -> dict[str, Framework]:
    """One framework per profile, by profile name (= ``spec.schedulerName``)."""
    return {
        p.name: Framework(host, p, handle=handle, percentage_of_nodes_to_score=percentage_of_nodes_to_score,
                          bind_plugins=bind_plugins)
        for p in profiles
    }
