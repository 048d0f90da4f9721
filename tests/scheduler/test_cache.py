"""NodeInfo accounting in the cache: pods and nodes added, updated, deleted, assumed."""

from __future__ import annotations

from kcore.scheduler.cache import SchedulerCache
from kcore.scheduler.node_info import PodInfo
from kcore.scheduler.testing import make_node, make_pod

MI = 1024**2


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_pods_add_update_delete_adjust_totals() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n"))
    cache.add_pod(make_pod("a", cpu="500m", memory="100Mi", node_name="n"))
    cache.add_pod(make_pod("b", cpu="250m", node_name="n"))
    node = cache.node("n")
    assert node.requested == {"cpu": 750, "memory": 100 * MI}
    assert (node.non_zero_cpu, node.non_zero_memory) == (750, 300 * MI)
    cache.update_pod(make_pod("a", cpu="1", memory="100Mi", node_name="n"))
    assert node.requested == {"cpu": 1250, "memory": 100 * MI}
    cache.remove_pod("default/a")
    assert node.requested == {"cpu": 250} and list(node.pods) == ["default/b"]
    finished = make_pod("b", cpu="250m", node_name="n")
    finished.status = type(finished).model_validate({"metadata": {}, "spec": {"containers": []},
                                                     "status": {"phase": "Succeeded"}}).status
    cache.update_pod(finished)
    assert node.requested == {} and node.pods == {}


def test_nodes_add_update_delete() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n", cpu="2", labels={"zone": "a"}))
    cache.add_pod(make_pod("a", cpu="1", node_name="n"))
    cache.update_node(make_node("n", cpu="4", labels={"zone": "b"},
                                taints=[{"key": "k", "effect": "NoSchedule"}]))
    node = cache.node("n")
    assert node.allocatable["cpu"] == 4000 and node.labels["zone"] == "b" and node.taints[0].key == "k"
    assert node.requested == {"cpu": 1000}  # pods survive a node update
    cache.remove_node("n")
    assert cache.node("n") is None and len(cache) == 0
    cache.remove_pod("default/a")
    assert cache.node_of("default/a") is None


def test_pod_before_its_node() -> None:
    cache = SchedulerCache()
    cache.add_pod(make_pod("early", cpu="1", node_name="late"))
    assert cache.node("late") is None and cache.node_infos() == []
    cache.add_node(make_node("late"))
    assert cache.node("late").requested == {"cpu": 1000}
    assert [n.name for n in cache.node_infos()] == ["late"]


def test_assumed_pod_is_counted_confirmed_or_forgotten() -> None:
    clock = Clock()
    cache = SchedulerCache(assumed_ttl=30, clock=clock)
    cache.add_node(make_node("n"))
    cache.add_node(make_node("m"))
    pod = make_pod("p", cpu="1")
    cache.assume_pod(PodInfo(pod), "n")
    assert cache.node("n").requested == {"cpu": 1000} and cache.is_assumed("default/p")
    cache.forget_pod("default/p")  # binding failed
    assert cache.node("n").requested == {}

    cache.assume_pod(PodInfo(pod), "n")
    cache.finish_binding("default/p")
    cache.add_pod(make_pod("p", cpu="1", node_name="m"))  # the watch says: bound elsewhere
    assert not cache.is_assumed("default/p")
    assert cache.node("n").requested == {} and cache.node("m").requested == {"cpu": 1000}
    cache.forget_pod("default/p")  # too late to forget a confirmed pod
    assert cache.node("m").requested == {"cpu": 1000}


def test_unconfirmed_assumption_expires() -> None:
    clock = Clock()
    cache = SchedulerCache(assumed_ttl=30, clock=clock)
    cache.add_node(make_node("n"))
    cache.assume_pod(PodInfo(make_pod("p", cpu="1")), "n")
    clock.now = 100
    assert cache.cleanup_expired() == []  # binding still in flight: never expires
    cache.finish_binding("default/p")
    clock.now = 129
    assert cache.cleanup_expired() == []
    clock.now = 130
    assert cache.cleanup_expired() == ["default/p"]
    assert cache.node("n").requested == {}


def test_host_ports_follow_pods() -> None:
    cache = SchedulerCache()
    cache.add_node(make_node("n"))
    cache.add_pod(make_pod("p", node_name="n", containers=[
        {"name": "c", "image": "x", "ports": [{"containerPort": 80, "hostPort": 80}]}]))
    assert dict(cache.node("n").used_ports[("TCP", 80)]) == {"0.0.0.0": 1}
    cache.remove_pod("default/p")
    assert cache.node("n").used_ports == {}
