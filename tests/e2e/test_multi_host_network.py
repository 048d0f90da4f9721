"""Three "hosts" (network namespaces on one underlay bridge, made by the test), the
control plane in the first, ``kcore agent`` in the others: pods on different hosts
reach each other by pod IP through the VXLAN overlay, and reach Services by ClusterIP
and DNS name; a host that leaves takes its routes and FDB entries off the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from support.cluster import RunningAgent, RunningCluster, running_cluster, start_agent, stop_agent
from support.kubectl import Kubectl
from support.pods import FETCH, HELLO_SERVER
from support.netlab import NetLab, require_root, sh, wait_until

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(require_root() is not None, reason=str(require_root()))]

NODES = {"node-1": "h1", "node-2": "h2", "node-3": "h3"}


def node_config(address: str) -> str:
    return ("[kubelet]\nprobe_period_scale = 0.2\nrelist_period_seconds = 0.5\n"
            f'node_ip = "{address}"\nport = 10250\n')


def hello_pod(name: str, node: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "hello"}},
            "spec": {"nodeName": node, "containers": [{
                "name": "web", "image": "python:3", "command": ["python3", "-c", HELLO_SERVER],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}}


@dataclass
class ThreeHosts:
    lab: NetLab
    hosts: dict[str, str]  # node name -> namespace
    server: RunningCluster
    agents: dict[str, RunningAgent]
    kubectl: Kubectl

    def pods(self) -> dict[str, dict[str, object]]:
        items = json.loads(self.kubectl("get", "pods", "-o", "json"))["items"]
        return {p["metadata"]["name"]: p for p in items}

    def node(self, name: str) -> dict[str, object]:
        return json.loads(self.kubectl("get", "node", name, "-o", "json"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreeHosts]:
    tmp = tmp_path_factory.mktemp("three-hosts")
    lab = NetLab()
    try:
        with ExitStack() as stack:
            spaces = lab.underlay(list(NODES.values()))
            hosts = {node: spaces[h] for node, h in NODES.items()}
            address = lab.hosts["h1"]
            server = stack.enter_context(running_cluster(
                tmp, netns=hosts["node-1"], bind_address=address, timeout=60,
                extra_config=node_config(address) + f'[apiserver]\nadvertise_address = "{address}"\n'))
            agents = {}
            for node in ("node-2", "node-3"):
                agents[node] = start_agent(tmp, server, node, extra_config=node_config(lab.hosts[NODES[node]]),
                                           netns=hosts[node])
                stack.callback(stop_agent, agents[node])
            kubectl = Kubectl(server.kubeconfig, tmp / "cache", prefix=("ip", "netns", "exec", hosts["node-1"]))
            three = ThreeHosts(lab, hosts, server, agents, kubectl)
            def leased() -> bool:
                nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
                return sorted(n["metadata"]["name"] for n in nodes if n["spec"].get("podCIDR")) == sorted(NODES)
            wait_until(leased, timeout=60, what="three nodes with pod subnets")
            for node in NODES:
                kubectl.run("apply", "-f", "-", input=json.dumps(hello_pod(f"hello-{node}", node)))
            yield three
    finally:
        leftovers = lab.close()
    assert not leftovers, f"kcore left pod network namespaces behind: {leftovers}"


def ready_ips(three: ThreeHosts) -> dict[str, str]:
    def ready() -> dict[str, str] | None:
        pods = three.pods()
        ips = {name: p["status"].get("podIP") for name, p in pods.items()  # type: ignore[index,union-attr]
               if all(c.get("ready") for c in p["status"].get("containerStatuses") or [{}])}  # type: ignore[index,union-attr]
        return ips if len(ips) == 3 and all(ips.values()) else None
    return wait_until(ready, timeout=90, what="three ready hello pods")


def test_each_node_leases_its_own_subnet_with_flannel_annotations(cluster: ThreeHosts) -> None:
    subnets = set()
    for name in NODES:
        node = cluster.node(name)
        subnets.add(node["spec"]["podCIDR"])  # type: ignore[index]
        annotations = node["metadata"]["annotations"]  # type: ignore[index]
        assert annotations["flannel.alpha.coreos.com/public-ip"] == cluster.lab.hosts[NODES[name]]
        assert json.loads(annotations["flannel.alpha.coreos.com/backend-data"])["VtepMAC"]
    assert len(subnets) == 3


def test_pods_on_different_hosts_reach_each_other_by_pod_ip(cluster: ThreeHosts) -> None:
    ips = ready_ips(cluster)
    for source, target in (("hello-node-2", "hello-node-3"), ("hello-node-3", "hello-node-2"),
                           ("hello-node-1", "hello-node-3"), ("hello-node-2", "hello-node-1")):
        out = cluster.kubectl("exec", source, "--", "python3", "-c", FETCH, f"http://{ips[target]}:8080/")
        assert out.strip() == target, (source, target, out)


def test_overlay_routes_neighbours_and_fdb_point_at_each_peer(cluster: ThreeHosts) -> None:
    node3 = cluster.node("node-3")
    subnet = node3["spec"]["podCIDR"]  # type: ignore[index]
    vtep = json.loads(node3["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"])["VtepMAC"]  # type: ignore[index]
    h2 = cluster.hosts["node-2"]
    assert f"{subnet} via {subnet.split('/')[0]} dev flannel.1 onlink" in sh("ip", "-n", h2, "route").stdout
    assert vtep in sh("ip", "-n", h2, "neigh", "show", "dev", "flannel.1").stdout
    assert f"{vtep} dst {cluster.lab.hosts['h3']}" in sh("bridge", "-n", h2, "fdb", "show", "dev", "flannel.1").stdout


def test_pods_reach_a_service_on_other_hosts_by_dns_name(cluster: ThreeHosts) -> None:
    ready_ips(cluster)
    cluster.kubectl.run("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"},
        "spec": {"selector": {"app": "hello"}, "ports": [{"port": 80, "targetPort": "http"}]}}))
    seen: set[str] = set()

    def fetch() -> str | None:
        # node-2's proxy forwards the DNS query to node-1 and the request to any of the pods.
        result = cluster.kubectl.run("exec", "hello-node-2", "--", "python3", "-c", FETCH,
                                     "http://hello.default.svc.cluster.local/", check=False)
        return result.stdout.strip() if result.returncode == 0 else None
    for _ in range(12):
        seen.add(wait_until(fetch, timeout=20, what="the hello Service from a pod on node-2"))
    assert seen <= {"hello-node-1", "hello-node-2", "hello-node-3"}
    assert len(seen) >= 2, seen  # round-robin over pods on several hosts


def test_a_host_that_leaves_is_removed_from_the_others(cluster: ThreeHosts) -> None:
    node3 = cluster.node("node-3")
    subnet = node3["spec"]["podCIDR"]  # type: ignore[index]
    vtep = json.loads(node3["metadata"]["annotations"]["flannel.alpha.coreos.com/backend-data"])["VtepMAC"]  # type: ignore[index]
    h3 = cluster.hosts["node-3"]
    cluster.kubectl("delete", "pod", "hello-node-3", "--wait=true")
    stop_agent(cluster.agents["node-3"])
    links = sh("ip", "-n", h3, "-o", "link", "show").stdout
    assert "flannel.1" not in links and "cni0" not in links and "veth" not in links, links
    rules = sh("ip", "netns", "exec", h3, "iptables-save").stdout
    assert "FLANNEL" not in rules and "KUBE-" not in rules, rules  # masquerade and proxy rules gone
    assert "10.244." not in sh("ip", "-n", h3, "route").stdout
    cluster.kubectl("delete", "node", "node-3")
    for other in ("node-1", "node-2"):
        ns = cluster.hosts[other]
        wait_until(lambda: subnet not in sh("ip", "-n", ns, "route").stdout
                   and vtep not in sh("bridge", "-n", ns, "fdb", "show", "dev", "flannel.1").stdout
                   and vtep not in sh("ip", "-n", ns, "neigh", "show", "dev", "flannel.1").stdout,
                   timeout=15, what=f"node-3's route, FDB and neighbour entries gone from {other}")
