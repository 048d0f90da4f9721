"""Each built-in plugin's filter and score logic, as tables over pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from kcore.api.core_v1 import Taint, Toleration
from kcore.api.core_v1_pod import NodeSelectorRequirement, NodeSelectorTerm
from kcore.scheduler import labels
from kcore.scheduler.node_info import NodeInfo, PodInfo
from kcore.scheduler.plugins.balanced_allocation import balanced_score, fractions
from kcore.scheduler.plugins.least_allocated import least_allocated_score
from kcore.scheduler.plugins.node_ports import conflicts
from kcore.scheduler.plugins.node_resources_fit import insufficient
from kcore.scheduler.plugins.pod_topology_spread import normalize_spread
from kcore.scheduler.plugins.taint_toleration import count_untolerated_prefer, first_untolerated, tolerates
from kcore.scheduler.resources import pod_host_ports, pod_non_zero_requests, pod_requests
from kcore.scheduler.scoring import default_normalize
from kcore.scheduler.testing import make_node, make_pod, schedule_one

GI = 1024**3


def tol(**kw: Any) -> Toleration:
    return Toleration(**kw)


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        (tol(key="k", value="v", effect="NoSchedule"), ("k", "v", "NoSchedule"), True),
        (tol(key="k", value="other", effect="NoSchedule"), ("k", "v", "NoSchedule"), False),
        (tol(key="k", operator="Exists"), ("k", "v", "NoExecute"), True),
        (tol(operator="Exists"), ("anything", None, "NoSchedule"), True),
        (tol(key="k", operator="Exists", effect="NoExecute"), ("k", "v", "NoSchedule"), False),
        (tol(key="k", value="", effect="NoSchedule"), ("k", None, "NoSchedule"), True),
        (tol(key="other", operator="Exists"), ("k", "v", "NoSchedule"), False),
    ],
)
def test_tolerates(toleration: Toleration, taint: tuple[str, str | None, str], expected: bool) -> None:
    assert tolerates(toleration, *taint) is expected


def test_untolerated_taints_filter_and_prefer_no_schedule_counts() -> None:
    taints = [Taint(key="a", effect="PreferNoSchedule"), Taint(key="b", value="x", effect="NoSchedule")]
    assert first_untolerated(taints, [], ("NoSchedule", "NoExecute")).key == "b"
    assert first_untolerated(taints, [tol(key="b", value="x")], ("NoSchedule", "NoExecute")) is None
    assert count_untolerated_prefer(taints, []) == 1
    assert count_untolerated_prefer(taints, [tol(key="a", operator="Exists")]) == 0


def expr(key: str, op: str, *values: str) -> NodeSelectorRequirement:
    return NodeSelectorRequirement(key=key, operator=op, values=list(values) or None)


@pytest.mark.parametrize(
    ("requirement", "node_labels", "expected"),
    [
        (expr("zone", "In", "a", "b"), {"zone": "a"}, True),
        (expr("zone", "In", "a"), {"zone": "c"}, False),
        (expr("zone", "NotIn", "a"), {"zone": "c"}, True),
        (expr("zone", "NotIn", "a"), {}, True),
        (expr("gpu", "Exists"), {"gpu": ""}, True),
        (expr("gpu", "Exists"), {}, False),
        (expr("gpu", "DoesNotExist"), {}, True),
        (expr("cores", "Gt", "4"), {"cores": "8"}, True),
        (expr("cores", "Gt", "4"), {"cores": "4"}, False),
        (expr("cores", "Lt", "4"), {"cores": "2"}, True),
        (expr("cores", "Lt", "4"), {"cores": "many"}, False),
        (expr("cores", "Gt", "4"), {}, False),
    ],
)
def test_node_selector_operators(requirement: NodeSelectorRequirement, node_labels: dict[str, str],
                                 expected: bool) -> None:
    term = labels.node_selector_term(NodeSelectorTerm(matchExpressions=[requirement]))
    assert term("n", node_labels) is expected


def test_match_fields_metadata_name_and_empty_term() -> None:
    term = labels.node_selector_term(NodeSelectorTerm(matchFields=[expr("metadata.name", "In", "n1")]))
    assert term("n1", {}) and not term("n2", {})
    assert not labels.node_selector_term(NodeSelectorTerm())("n1", {})


def affinity(*terms: dict[str, Any], preferred: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    node_affinity: dict[str, Any] = {}
    if terms:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": list(terms)}
    if preferred:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    return {"nodeAffinity": node_affinity}


@pytest.mark.parametrize(
    ("spec", "feasible"),
    [
        ({"nodeSelector": {"disk": "ssd"}}, {"n1"}),
        ({"affinity": affinity({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]})},
         {"n2"}),
        # Terms are ORed.
        ({"affinity": affinity({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                               {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})},
         {"n1", "n2"}),
        # nodeSelector AND affinity.
        ({"nodeSelector": {"disk": "ssd"},
          "affinity": affinity({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]})},
         set()),
    ],
)
def test_node_affinity_filter(spec: dict[str, Any], feasible: set[str]) -> None:
    nodes = [make_node("n1", labels={"disk": "ssd", "zone": "a"}), make_node("n2", labels={"zone": "b"})]
    chosen = set()
    for _ in range(8):  # random tie-breaks: collect every choice
        outcome = schedule_one(make_pod("p", **spec), nodes)
        if outcome.node:
            chosen.add(outcome.node)
        else:
            assert outcome.message == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    assert chosen <= feasible and (chosen or not feasible)


def test_node_affinity_preferred_terms_score() -> None:
    nodes = [make_node("n1", labels={"zone": "a"}), make_node("n2", labels={"zone": "b"})]
    preferred = [{"weight": 10, "preference": {"matchExpressions": [
        {"key": "zone", "operator": "In", "values": ["b"]}]}}]
    outcome = schedule_one(make_pod("p", affinity=affinity(preferred=preferred)), nodes)
    assert outcome.node == "n2"


def node_info(cpu: str = "4", memory: str = "8Gi", pods: int = 110, placed: list[Any] = (), **kw: Any) -> NodeInfo:
    info = NodeInfo("n", make_node("n", cpu=cpu, memory=memory, pods=pods, **kw))
    for p in placed:
        info.add_pod(PodInfo(p))
    return info


@pytest.mark.parametrize(
    ("pod", "node", "reasons"),
    [
        (make_pod("p", cpu="1", memory="1Gi"), node_info(), []),
        (make_pod("p", cpu="5"), node_info(), ["Insufficient cpu"]),
        (make_pod("p", cpu="5", memory="9Gi"), node_info(), ["Insufficient cpu", "Insufficient memory"]),
        (make_pod("p", cpu="2"), node_info(placed=[make_pod("q", cpu="3")]), ["Insufficient cpu"]),
        (make_pod("p"), node_info(pods=1, placed=[make_pod("q")]), ["Too many pods"]),
        (make_pod("p", cpu="100m"), node_info(pods=0), ["Too many pods"]),
    ],
)
def test_node_resources_fit(pod: Any, node: NodeInfo, reasons: list[str]) -> None:
    assert insufficient(PodInfo(pod).requests, node) == reasons


def test_extended_resources_fit_only_where_advertised() -> None:
    spec_pod = make_pod("p")
    spec_pod.spec.containers[0].resources = type(spec_pod.spec.containers[0]).model_validate(
        {"name": "main", "resources": {"limits": {"example.com/gpu": "1"}}}).resources
    requests = PodInfo(spec_pod).requests
    assert requests == {"example.com/gpu": 1}
    assert insufficient(requests, node_info()) == ["Insufficient example.com/gpu"]
    assert insufficient(requests, node_info(extra={"example.com/gpu": "2"})) == []


def test_pod_requests_init_containers_and_overhead() -> None:
    pod = make_pod("p", cpu="1", memory="1Gi", overhead={"cpu": "100m"}, initContainers=[
        {"name": "init", "image": "x", "resources": {"requests": {"cpu": "2", "memory": "512Mi"}}},
        {"name": "sidecar", "image": "x", "restartPolicy": "Always",
         "resources": {"requests": {"cpu": "250m"}}},
    ])
    # max(init 2, containers 1 + sidecar 0.25) + overhead 0.1
    assert pod_requests(pod) == {"cpu": 2100, "memory": GI}
    assert pod_non_zero_requests(make_pod("empty")) == (100, 200 * 1024 * 1024)


def test_host_ports_conflicts() -> None:
    pod = make_pod("p", containers=[{"name": "c", "image": "x", "ports": [
        {"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "hostPort": 53, "protocol": "UDP",
                                                  "hostIP": "10.0.0.1"}]}])
    wanted = pod_host_ports(pod)
    assert wanted == [("0.0.0.0", "TCP", 8080), ("10.0.0.1", "UDP", 53)]
    info = node_info()
    assert not conflicts(wanted, info.used_ports)
    info.add_pod(PodInfo(make_pod("q", containers=[{"name": "c", "image": "x", "ports": [
        {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.2"}]}])))
    assert not conflicts(wanted, info.used_ports)  # another address, same port: fine
    info.add_pod(PodInfo(make_pod("r", containers=[{"name": "c", "image": "x", "ports": [
        {"containerPort": 1, "hostPort": 8080, "hostIP": "10.0.0.9"}]}])))
    assert conflicts(wanted, info.used_ports)  # 0.0.0.0 wanted collides with any address
    info.remove_pod("default/r")
    assert not conflicts(wanted, info.used_ports)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((0, 0, 4000, 8 * GI), 100),
        ((2000, 4 * GI, 4000, 8 * GI), 50),
        ((4000, 8 * GI, 4000, 8 * GI), 0),
        ((1000, 8 * GI, 4000, 8 * GI), 37),  # (75 + 0) / 2
        ((5000, 0, 4000, 8 * GI), 50),  # over-committed cpu scores 0
    ],
)
def test_least_allocated(args: tuple[int, int, int, int], expected: int) -> None:
    assert least_allocated_score(*args) == expected


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ({"cpu": 2000, "memory": 4 * GI}, 100),
        ({"cpu": 4000, "memory": 0}, 50),
        ({"cpu": 3000, "memory": 2 * GI}, 75),
    ],
)
def test_balanced_allocation(requested: dict[str, int], expected: int) -> None:
    assert balanced_score(fractions(requested, {"cpu": 4000, "memory": 8 * GI})) == expected


def test_default_normalize() -> None:
    assert default_normalize({"a": 0, "b": 5, "c": 10}) == {"a": 0, "b": 50, "c": 100}
    assert default_normalize({"a": 0, "b": 2}, reverse=True) == {"a": 100, "b": 0}
    assert default_normalize({"a": 0}, reverse=True) == {"a": 100}


def test_prefer_no_schedule_taints_steer_scoring() -> None:
    nodes = [make_node("tainted", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), make_node("clean")]
    assert schedule_one(make_pod("p"), nodes).node == "clean"


def spread(max_skew: int, when: str = "DoNotSchedule", key: str = "zone") -> dict[str, Any]:
    return {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}}


def test_topology_spread_filter_keeps_skew() -> None:
    nodes = [make_node("a1", labels={"zone": "a"}), make_node("b1", labels={"zone": "b"}),
             make_node("nolabel")]
    placed = [make_pod("w1", labels={"app": "web"}, node_name="a1"),
              make_pod("w2", labels={"app": "web"}, node_name="a1"),
              make_pod("other", labels={"app": "db"}, node_name="b1")]
    pod = make_pod("w3", labels={"app": "web"}, topologySpreadConstraints=[spread(1)])
    outcome = schedule_one(pod, nodes, pods=placed)
    assert outcome.node == "b1"
    # Zone b still counts (0 pods) while its only node is cordoned: a1 would make the skew 3.
    nodes[1] = make_node("b1", labels={"zone": "b"}, unschedulable=True)
    outcome = schedule_one(pod, nodes, pods=placed)
    assert outcome.node is None
    assert outcome.message == (
        "0/3 nodes are available: 1 node(s) didn't match pod topology spread constraints, "
        "1 node(s) didn't match pod topology spread constraints (missing required label), "
        "1 node(s) were unschedulable.")


def test_topology_spread_schedule_anyway_scores() -> None:
    nodes = [make_node("a1", labels={"zone": "a"}), make_node("b1", labels={"zone": "b"})]
    placed = [make_pod("w1", labels={"app": "web"}, node_name="a1")]
    pod = make_pod("w2", labels={"app": "web"}, topologySpreadConstraints=[spread(1, "ScheduleAnyway")])
    assert schedule_one(pod, nodes, pods=placed).node == "b1"
    assert normalize_spread({"a": 3, "b": 1, "c": 0}, {"c"}) == {"a": 33, "b": 100, "c": 0}


def test_node_name_and_unschedulable() -> None:
    nodes = [make_node("a"), make_node("b", unschedulable=True)]
    assert schedule_one(make_pod("p", nodeName="b"), nodes).message == (
        "0/2 nodes are available: 1 node(s) didn't match the requested node name, "
        "1 node(s) were unschedulable.")
    tolerant = make_pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}],
                        nodeSelector={"kubernetes.io/hostname": "b"})
    assert schedule_one(tolerant, nodes).node == "b"
