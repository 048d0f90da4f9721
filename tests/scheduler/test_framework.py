"""The framework: messages, sampling, profiles, weights, algorithms and extension-point order."""

from __future__ import annotations

from typing import Any

import pytest

from kcore import hookimpl
from kcore.config import SchedulerConfig, SchedulerPluginRef, SchedulerProfile
from kcore.scheduler import Code, Framework, Handle, SchedulerCache, Status
from kcore.scheduler.framework import FitError, fit_error_message, num_feasible_nodes_to_find
from kcore.scheduler.node_info import PodInfo
from kcore.scheduler.testing import Simulator, make_node, make_pod, schedule_one, scheduler_host


def test_unschedulable_message_in_kubernetes_shape() -> None:
    statuses = {
        "a": Status.unschedulable("Insufficient cpu"),
        "b": Status.unschedulable("Insufficient cpu"),
        "c": Status.unresolvable("node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
    }
    assert fit_error_message(3, statuses) == (
        "0/3 nodes are available: 2 Insufficient cpu, "
        "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.")
    assert fit_error_message(0, {}) == "0/0 nodes are available: no nodes available to schedule pods."
    assert fit_error_message(2, {}, "pod has unbound PVCs") == "0/2 nodes are available: pod has unbound PVCs."


@pytest.mark.parametrize(
    ("nodes", "percentage", "expected"),
    [(50, 0, 50), (99, 0, 99), (500, 0, 230), (5000, 0, 500), (10_000, 0, 500), (2500, 0, 750), (100_000, 0, 5000),
     (1000, 10, 100), (1000, 50, 500), (1000, 100, 1000), (150, 0, 100)],
)
def test_num_feasible_nodes_to_find(nodes: int, percentage: int, expected: int) -> None:
    assert num_feasible_nodes_to_find(nodes, percentage) == expected


def test_sampling_stops_early_and_rotates_the_start() -> None:
    cache = SchedulerCache()
    for i in range(1000):
        cache.add_node(make_node(f"n{i:04d}"))
    framework = Framework(scheduler_host(), SchedulerProfile(name="default-scheduler"), handle=Handle(cache=cache))
    pod = make_pod("p", cpu="100m")
    first = framework.schedule(framework.new_state(PodInfo(pod)), pod, cache.node_infos())
    assert (first.evaluated, first.feasible) == (420, 420)  # 50 - 1000/125 = 42%
    assert first.node < "n0420"
    second = framework.schedule(framework.new_state(PodInfo(pod)), pod, cache.node_infos())
    assert "n0420" <= second.node < "n0840"


class PreferLabel:
    """A score plugin used to check weights: 100 on nodes labelled fast=true."""

    name = "PreferFast"

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: Any) -> int:
        return 100 if node_info.labels.get("fast") == "true" else 0


class AvoidFast:
    name = "AvoidFast"

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: Any) -> int:
        return 0 if node_info.labels.get("fast") == "true" else 100


def test_profile_weights_decide_between_plugins() -> None:
    nodes = [make_node("fast", labels={"fast": "true"}), make_node("slow")]
    host = scheduler_host(PreferLabel(), AvoidFast())

    def profile(prefer: int, avoid: int) -> SchedulerProfile:
        return SchedulerProfile(name="p", plugins=[
            SchedulerPluginRef(name="NodeResourcesFit"), SchedulerPluginRef(name="PreferFast", weight=prefer),
            SchedulerPluginRef(name="AvoidFast", weight=avoid)])

    assert schedule_one(make_pod("x"), nodes, host=host, profile=profile(3, 1)).node == "fast"
    assert schedule_one(make_pod("x"), nodes, host=host, profile=profile(1, 3)).node == "slow"


def test_plugins_list_enables_exactly_those_plugins() -> None:
    nodes = [make_node("tainted", taints=[{"key": "k", "effect": "NoSchedule"}])]
    host = scheduler_host()
    only_fit = SchedulerProfile(name="p", plugins=[SchedulerPluginRef(name="NodeResourcesFit")])
    assert schedule_one(make_pod("x"), nodes, host=host, profile=only_fit).node == "tainted"
    assert schedule_one(make_pod("x"), nodes, host=host).node is None


def test_round_robin_profile_uses_the_installed_entry_point() -> None:
    config = SchedulerConfig(profiles=[SchedulerProfile(name="rr", algorithm="round-robin")])
    sim = Simulator(config=config)
    for name in ("c", "a", "b"):
        sim.add_node(make_node(name))
    sim.add_node(make_node("full", cpu="100m"))
    for i in range(7):
        sim.add_pod(make_pod(f"p{i}", cpu="500m", scheduler_name="rr"))
    placed = sim.run()
    assert [placed[f"default/p{i}"] for i in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]
    record = next(r for r in sim.host.records() if r.name == "round-robin")
    assert record.distribution == "kcore-scheduler-rr"


def test_unknown_profile_is_ignored_and_unknown_plugin_is_an_error() -> None:
    sim = Simulator()
    sim.add_node(make_node("a"))
    sim.add_pod(make_pod("mine"))
    sim.add_pod(make_pod("theirs", scheduler_name="other-scheduler"))
    assert sim.run() == {"default/mine": "a"}
    assert "default/theirs" not in sim.queue
    with pytest.raises(LookupError, match="NoSuchPlugin"):
        Framework(scheduler_host(), SchedulerProfile(name="p", plugins=[SchedulerPluginRef(name="NoSuchPlugin")]))


class Recorder:
    """Implements every point after filtering, and records the order they run in."""

    name = "Recorder"

    def __init__(self, permit: Status | None = None, reserve: Status | None = None) -> None:
        self.calls: list[str] = []
        self._permit = permit
        self._reserve = reserve

    @hookimpl
    def kcore_scheduler_pre_filter(self, state: Any, pod: Any, nodes: list[Any]) -> Status | None:
        self.calls.append("pre_filter")
        state.write("Recorder", len(nodes))
        return None

    @hookimpl
    def kcore_scheduler_filter(self, state: Any, pod: Any, node_info: Any) -> Status | None:
        self.calls.append("filter")
        assert state.read("Recorder") == 2
        return None

    @hookimpl
    def kcore_scheduler_pre_score(self, state: Any, pod: Any, nodes: list[Any]) -> Status | None:
        self.calls.append("pre_score")
        return None

    @hookimpl
    def kcore_scheduler_score(self, state: Any, pod: Any, node_info: Any) -> int:
        self.calls.append("score")
        return 7 if node_info.name == "a" else 3

    @hookimpl
    def kcore_scheduler_normalize_score(self, state: Any, pod: Any, scores: dict[str, int]) -> dict[str, int]:
        self.calls.append("normalize")
        return {n: s * 10 for n, s in scores.items()}

    @hookimpl
    def kcore_scheduler_reserve(self, state: Any, pod: Any, node_name: str) -> Status | None:
        self.calls.append("reserve")
        return self._reserve

    @hookimpl
    def kcore_scheduler_unreserve(self, state: Any, pod: Any, node_name: str) -> None:
        self.calls.append("unreserve")

    @hookimpl
    def kcore_scheduler_permit(self, state: Any, pod: Any, node_name: str) -> Status | None:
        self.calls.append("permit")
        return self._permit


def run_cycle(recorder: Recorder) -> tuple[Framework, Any, str]:
    cache = SchedulerCache()
    for name in ("a", "b"):
        cache.add_node(make_node(name))
    profile = SchedulerProfile(name="p", plugins=[SchedulerPluginRef(name="Recorder")])
    framework = Framework(scheduler_host(recorder), profile, handle=Handle(cache=cache))
    pod = make_pod("x")
    state = framework.new_state(PodInfo(pod))
    result = framework.schedule(state, pod, cache.node_infos())
    assert result.scores == {"a": 70, "b": 30}
    return framework, state, result.node


def test_extension_points_run_in_kubernetes_order() -> None:
    recorder = Recorder()
    framework, state, node = run_cycle(recorder)
    assert node == "a"
    assert framework.reserve(state, make_pod("x"), node) is None
    assert framework.permit(state, make_pod("x"), node) is None
    assert recorder.calls == ["pre_filter", "filter", "filter", "pre_score", "score", "score", "normalize",
                              "reserve", "permit"]


def test_failed_reserve_unreserves_and_wait_is_reported() -> None:
    recorder = Recorder(reserve=Status.error("no"), permit=Status.wait(5))
    framework, state, node = run_cycle(recorder)
    status = framework.reserve(state, make_pod("x"), node)
    assert status is not None and status.code is Code.ERROR and status.plugin == "Recorder"
    assert recorder.calls[-2:] == ["reserve", "unreserve"]
    permit = framework.permit(state, make_pod("x"), node)
    assert permit is not None and permit.code is Code.WAIT and permit.timeout == 5


def test_fit_error_from_pre_filter() -> None:
    class Gate:
        name = "Gate"

        @hookimpl
        def kcore_scheduler_pre_filter(self, state: Any, pod: Any, nodes: list[Any]) -> Status:
            return Status.unresolvable("waiting for a gate")

    cache = SchedulerCache()
    cache.add_node(make_node("a"))
    framework = Framework(scheduler_host(Gate()), SchedulerProfile(name="p", plugins=[
        SchedulerPluginRef(name="Gate")]))
    pod = make_pod("x")
    with pytest.raises(FitError, match=r"^0/1 nodes are available: waiting for a gate\.$"):
        framework.schedule(framework.new_state(PodInfo(pod)), pod, cache.node_infos())
