"""Pod networking for real, inside namespaces the test makes: every pod gets its own
network namespace and an address from its node's subnet (cni_flannel), so pods of one
Deployment all listen on the same port; Services reach them by ClusterIP and DNS name.

``kcore up`` runs inside a test namespace (``ip netns exec``), so its bridge, veths and
service addresses are made there, and removed when it stops.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster import running_cluster
from support.kubectl import Kubectl
from support.pods import FETCH, HELLO_SERVER
from support.netlab import NetLab, pod_namespaces, require_root, wait_until

pytestmark = [pytest.mark.root, pytest.mark.slow,
              pytest.mark.skipif(require_root() is not None, reason=str(require_root()))]

# Answers every GET with the pod's name (HOSTNAME is set by the kubelet).
FAST = "[kubelet]\nprobe_period_scale = 0.2\nrelist_period_seconds = 0.5\n"


def hello_deployment(name: str, replicas: int) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{
                                  "name": "web", "image": "python:3", "command": ["python3", "-c", HELLO_SERVER],
                                  "ports": [{"containerPort": 8080, "name": "http"}],
                                  "readinessProbe": {"httpGet": {"path": "/", "port": 8080},
                                                     "periodSeconds": 1}}]}}},
    })


def running_pod_ips(kubectl: Kubectl, app: str, count: int) -> dict[str, str]:
    def ready() -> dict[str, str] | None:
        pods = json.loads(kubectl("get", "pods", "-l", f"app={app}", "-o", "json"))["items"]
        ips = {p["metadata"]["name"]: (p.get("status") or {}).get("podIP") for p in pods
               if (p.get("status") or {}).get("phase") == "Running"
               and all(c.get("ready") for c in (p["status"].get("containerStatuses") or [{}]))}
        return ips if len(ips) == count and all(ips.values()) else None
    return wait_until(ready, timeout=60, what=f"{count} ready pods of {app}")


@pytest.fixture
def lab() -> Iterator[NetLab]:
    lab = NetLab()
    try:
        yield lab
    finally:
        leftovers = lab.close()
    assert not leftovers, f"kcore left pod network namespaces behind: {leftovers}"


def test_pods_of_one_deployment_share_a_port_on_their_own_addresses(tmp_path: Path, lab: NetLab) -> None:
    host = lab.ns("host")
    with running_cluster(tmp_path, netns=host, extra_config=FAST, timeout=60) as cluster:
        kubectl = Kubectl(cluster.kubeconfig, tmp_path / "cache", prefix=("ip", "netns", "exec", host))
        kubectl.run("apply", "-f", "-", input=hello_deployment("hello", 2))
        ips = running_pod_ips(kubectl, "hello", 2)
        node = json.loads(kubectl("get", "node", "node-1", "-o", "json"))
        subnet = ipaddress.ip_network(node["spec"]["podCIDR"])
        assert subnet.subnet_of(ipaddress.ip_network("10.244.0.0/16")) and subnet.prefixlen == 24
        assert node["spec"]["podCIDRs"] == [str(subnet)]
        assert len(set(ips.values())) == 2, ips
        for name, ip in ips.items():
            assert ipaddress.ip_address(ip) in subnet, (ip, subnet)
            assert lab.http_get(host, f"http://{ip}:8080/") == name  # from the node
        # Each pod has a namespace of its own, with eth0 holding its address.
        mine = pod_namespaces() - lab.before
        assert len(mine) == 2, mine
        for ns in mine:
            out = lab.run_in_pod(cluster.process.pid, ns, "ip", "-o", "-4", "addr", "show", "dev", "eth0").stdout
            assert any(f" {ip}/24 " in out for ip in ips.values()), out
        bridge = lab.run(host, "ip", "-o", "-4", "addr", "show", "dev", "cni0").stdout
        assert f" {subnet.network_address + 1}/24 " in bridge
        # A deleted pod's namespace goes away with it.
        victim = sorted(ips)[0]
        kubectl("delete", "pod", victim, "--wait=true")
        wait_until(lambda: len(pod_namespaces() - lab.before) == 2 and victim not in kubectl("get", "pods"),
                   timeout=30, what="the replacement pod and the victim's namespace removed")
    # kcore stopped: its pods, their namespaces, and the bridge are gone.
    links = lab.run(host, "ip", "-o", "link", "show").stdout
    assert "cni0" not in links and "veth" not in links, links


def hello_service() -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hello"},
                       "spec": {"type": "NodePort", "selector": {"app": "hello"},
                                "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}})


@pytest.mark.parametrize("mode", ["userspace", "iptables", "ipvs"])
def test_services_answer_pods_and_the_node_by_cluster_ip_node_port_and_dns_name(
        tmp_path: Path, lab: NetLab, mode: str) -> None:
    host = lab.underlay(["host"])["host"]
    node_ip = lab.hosts["host"]  # a real address: iptables cannot DNAT pods' traffic to loopback
    # Like any host, a default route: the node's own connections to a ClusterIP are
    # routed before iptables rewrites their destination.
    lab.run(host, "ip", "route", "add", "default", "dev", "eth0")
    config = FAST + f'node_ip = "{node_ip}"\n[apiserver]\nadvertise_address = "{node_ip}"\n' \
        f'[proxy]\nmode = "{mode}"\n'
    with running_cluster(tmp_path, netns=host, extra_config=config, bind_address=node_ip, timeout=60) as cluster:
        kubectl = Kubectl(cluster.kubeconfig, tmp_path / "cache", prefix=("ip", "netns", "exec", host))
        kubectl.run("apply", "-f", "-", input=hello_deployment("hello", 2))
        kubectl.run("apply", "-f", "-", input=hello_service())
        ips = running_pod_ips(kubectl, "hello", 2)
        service = json.loads(kubectl("get", "service", "hello", "-o", "json"))
        cluster_ip, node_port = service["spec"]["clusterIP"], service["spec"]["ports"][0]["nodePort"]
        assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network("10.96.0.0/12")
        dns_ip = json.loads(kubectl("get", "service", "-n", "kube-system", "kube-dns", "-o", "json"))["spec"]["clusterIP"]
        assert dns_ip == "10.96.0.10"
        client = sorted(ips)[0]
        resolv = kubectl("exec", client, "--", "cat", "/etc/resolv.conf")
        assert "nameserver 10.96.0.10" in resolv and "search default.svc.cluster.local svc.cluster.local" in resolv
        seen: set[str] = set()
        for url in ("http://hello/", "http://hello.default.svc.cluster.local/", f"http://{cluster_ip}/"):
            def answered(url: str = url) -> str | None:
                result = kubectl.run("exec", client, "--", "python3", "-c", FETCH, url, check=False)
                return result.stdout.strip() if result.returncode == 0 else None
            seen.add(wait_until(answered, timeout=20, what=f"{url} from a pod"))
        # From the node: ClusterIP, NodePort, and the cluster DNS.
        for _ in range(10):
            seen.add(lab.http_get(host, f"http://{cluster_ip}/"))
            seen.add(lab.http_get(host, f"http://{node_ip}:{node_port}/"))
        assert seen == set(ips), (seen, ips)  # both pods answered, nothing else did
        rules = lab.run(host, "iptables-save", "-t", "nat").stdout
        if mode == "iptables":  # the kernel does the forwarding: DNAT to the pods
            assert "-A KUBE-SERVICES -d " + cluster_ip + "/32" in rules, rules
            assert all(f"--to-destination {ip}:8080" in rules for ip in ips.values()), rules
        else:  # a userspace data path listens on the ClusterIP, put on lo
            assert "KUBE-SERVICES" not in rules
            assert f"inet {cluster_ip}/32" in lab.run(host, "ip", "addr", "show", "dev", "lo").stdout
        answer = lab.run(host, "dig", "+short", f"@{dns_ip}", "hello.default.svc.cluster.local").stdout.split()
        assert answer == [cluster_ip]
        # kubectl port-forward reaches into the pod's own network namespace.
        forward = kubectl.stream("port-forward", f"pod/{client}", "18080:8080")
        try:
            forward.wait_for(lambda line: "Forwarding from 127.0.0.1:18080" in line)
            assert lab.http_get(host, "http://127.0.0.1:18080/") == client
        finally:
            forward.process.terminate()
            forward.process.wait(timeout=10)
    # kcore stopped: no service address, no proxy rule is left in the node.
    assert "10.96." not in lab.run(host, "ip", "addr", "show", "dev", "lo").stdout
    assert "KUBE-" not in lab.run(host, "iptables-save").stdout


def test_a_broken_pod_network_is_attached_again(tmp_path: Path, lab: NetLab) -> None:
    host = lab.ns("host")
    config = FAST + "network_check_period_seconds = 0.5\n"
    with running_cluster(tmp_path, netns=host, extra_config=config, timeout=60) as cluster:
        kubectl = Kubectl(cluster.kubeconfig, tmp_path / "cache", prefix=("ip", "netns", "exec", host))
        kubectl.run("apply", "-f", "-", input=hello_deployment("hello", 1))
        (name, ip), = running_pod_ips(kubectl, "hello", 1).items()
        veths = [line.split(":")[1].strip().split("@")[0]
                 for line in lab.run(host, "ip", "-o", "link", "show", "master", "cni0").stdout.splitlines()]
        assert len(veths) == 1, veths
        lab.run(host, "ip", "link", "del", veths[0])  # the pod is cut off from the bridge
        assert lab.run(host, "curl", "-sS", "--max-time", "1", f"http://{ip}:8080/", check=False).returncode != 0

        def reachable() -> bool:
            return lab.run(host, "curl", "-sS", "--max-time", "1", f"http://{ip}:8080/", check=False).stdout == name
        wait_until(reachable, timeout=20, what="the pod reachable again on its old address")
        events = kubectl("get", "events", "--field-selector", f"involvedObject.name={name}")
        assert "NetworkNotReady" in events


def test_an_exhausted_node_subnet_is_a_pod_event_and_frees_up_on_delete(tmp_path: Path, lab: NetLab) -> None:
    host = lab.ns("host")
    # A /30 per node: the gateway .1 and exactly one pod address.
    config = FAST + "[network]\nsubnet_length = 30\n"
    with running_cluster(tmp_path, netns=host, extra_config=config, timeout=60) as cluster:
        kubectl = Kubectl(cluster.kubeconfig, tmp_path / "cache", prefix=("ip", "netns", "exec", host))
        kubectl.run("apply", "-f", "-", input=hello_deployment("hello", 2))

        def one_running_one_waiting() -> tuple[str, str] | None:
            pods = json.loads(kubectl("get", "pods", "-l", "app=hello", "-o", "json"))["items"]
            running = [p["metadata"]["name"] for p in pods if p["status"].get("podIP")]
            waiting = [p["metadata"]["name"] for p in pods if not p["status"].get("podIP")]
            if len(running) == 1 and len(waiting) == 1:
                events = kubectl("get", "events", "--field-selector", f"involvedObject.name={waiting[0]}")
                if "FailedCreatePodSandBox" in events and "no IP addresses available in range set" in events:
                    return running[0], waiting[0]
            return None
        holder, starved = wait_until(one_running_one_waiting, timeout=40,
                                     what="one pod networked, the other told the subnet is full")
        assert cluster.process.poll() is None  # the kubelet did not crash
        address = json.loads(kubectl("get", "pod", holder, "-o", "json"))["status"]["podIP"]
        kubectl("delete", "pod", holder, "--wait=true")

        def starved_got_the_address() -> bool:
            pod = json.loads(kubectl("get", "pod", starved, "-o", "json"))
            return pod["status"].get("podIP") == address
        wait_until(starved_got_the_address, timeout=60, what="the waiting pod networked once the address is free")


def test_pods_keep_their_addresses_across_a_kubelet_restart(tmp_path: Path, lab: NetLab) -> None:
    host = lab.ns("host")
    config = FAST + "stop_pods_on_shutdown = false\n"  # a restart adopts the running pods
    with running_cluster(tmp_path, netns=host, extra_config=config, timeout=60) as cluster:
        kubectl = Kubectl(cluster.kubeconfig, tmp_path / "cache", prefix=("ip", "netns", "exec", host))
        kubectl.run("apply", "-f", "-", input=hello_deployment("hello", 2))
        before = running_pod_ips(kubectl, "hello", 2)
        subnet = json.loads(kubectl("get", "node", "node-1", "-o", "json"))["spec"]["podCIDR"]
    # kcore is down; its pods run on, each in its namespace, on its address.
    for name, ip in before.items():
        assert lab.http_get(host, f"http://{ip}:8080/") == name
    cluster.kubeconfig.unlink()
    with running_cluster(tmp_path, netns=host, extra_config=config, timeout=60) as cluster:
        kubectl = Kubectl(cluster.kubeconfig, tmp_path / "cache", prefix=("ip", "netns", "exec", host))
        assert json.loads(kubectl("get", "node", "node-1", "-o", "json"))["spec"]["podCIDR"] == subnet
        assert running_pod_ips(kubectl, "hello", 2) == before
        kubectl("scale", "deployment", "hello", "--replicas=3")
        after = running_pod_ips(kubectl, "hello", 3)
        assert len(set(after.values())) == 3 and set(before.values()) < set(after.values())
        ipam = cluster.data_dir / "cni" / "ipam" / subnet.replace("/", "-")
        held = sorted(p.name for p in ipam.iterdir() if p.name.startswith("10.244."))
        assert held == sorted(after.values())  # nothing leaked, nothing handed out twice
        for name, ip in after.items():
            assert lab.http_get(host, f"http://{ip}:8080/") == name
        kubectl("delete", "deployment", "hello")
        wait_until(lambda: not pod_namespaces() - lab.before, timeout=40, what="the pods' namespaces removed")
        assert not [p for p in ipam.iterdir() if p.name.startswith("10.244.")]
