"""Services end to end: a real ``kcore up``, the real kubectl, real server pods.

One cluster per proxy mode (module-scoped, parametrized): ``userspace`` and
``ipvs`` with the ``rr``, ``sh`` and ``lc`` schedulers (this kernel has no
IPVS, so the ipvs mode forwards with its userspace data path). Pods share the
host network, so the three HTTP servers are three Deployments listening on
different ports, each naming its port ``http``; one NodePort Service with
``targetPort: http`` fronts all three. Each server answers ``GET /`` with its
pod name and keeps HTTP/1.1 connections open; its readiness probe checks a
file the test can remove.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cluster import RunningCluster, free_port, running_cluster
from support.kubectl import Kubectl

pytestmark = pytest.mark.slow

MODES: dict[str, str] = {
    "userspace": '[proxy]\nmode = "userspace"\n',
    "ipvs-rr": '[proxy]\nmode = "ipvs"\n[proxy.ipvs]\nscheduler = "rr"\n',
    "ipvs-sh": '[proxy]\nmode = "ipvs"\n[proxy.ipvs]\nscheduler = "sh"\n',
    "ipvs-lc": '[proxy]\nmode = "ipvs"\n[proxy.ipvs]\nscheduler = "lc"\n',
}
SERVERS = ("web-0", "web-1", "web-2")
WAIT = 30.0

SERVER = """
import http.server, os
name, ready = os.environ["POD_NAME"], os.environ["READY_FILE"]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def manifests(ports: dict[str, int], ready_dir: Path) -> str:
    docs: list[dict[str, Any]] = []
    for name, port in ports.items():
        docs.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web", "server": name}},
                "template": {
                    "metadata": {"labels": {"app": "web", "server": name}},
                    "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "containers": [{
                            "name": "http", "image": "python:3",
                            "command": ["python3", "-u", "-c", SERVER],
                            "ports": [{"name": "http", "containerPort": port}],
                            "env": [
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                                {"name": "PORT", "value": str(port)},
                                {"name": "READY_FILE", "value": str(ready_dir / name)},
                            ],
                            "readinessProbe": {
                                "exec": {"command": ["test", "-f", str(ready_dir / name)]},
                                "periodSeconds": 1, "failureThreshold": 1,
                            },
                        }],
                    },
                },
            },
        })
    docs.append({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    })
    return yaml.safe_dump_all(docs)


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - not yet: retried until the deadline
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class Services:
    """One cluster of one proxy mode, with the web Service ready."""

    mode: str
    cluster: RunningCluster
    kubectl: Kubectl
    service_cidr: str
    ready_dir: Path
    cluster_ip: str = ""
    node_port: int = 0
    pod_of_server: dict[str, str] = field(default_factory=dict)  # Deployment -> pod name

    def endpoints_ready(self) -> int:
        slices = json.loads(self.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                                         "-o", "json"))["items"]
        return sum(1 for s in slices for ep in s.get("endpoints") or []
                   if (ep.get("conditions") or {}).get("ready", True))


def get(ip: str, port: int, source: str | None = None) -> str:
    """One request on a fresh connection; the answering pod's name."""
    conn = http.client.HTTPConnection(ip, port, timeout=5, source_address=(source, 0) if source else None)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def hold(ip: str, port: int) -> tuple[http.client.HTTPConnection, str]:
    """A kept-alive connection, after one request on it: (connection, the pod it reached)."""
    conn = http.client.HTTPConnection(ip, port, timeout=5)
    conn.request("GET", "/")
    return conn, conn.getresponse().read().decode()


def all_reachable(env: Services) -> bool:
    """Whether the proxy already forwards to all three servers (each mode its own way)."""
    pods = set(env.pod_of_server.values())
    if env.mode == "ipvs-sh":
        return {get(env.cluster_ip, 80, f"127.0.0.{i}") for i in range(1, 31)} == pods
    if env.mode == "ipvs-lc":
        held = [hold(env.cluster_ip, 80) for _ in range(3)]
        for conn, _ in held:
            conn.close()
        return {pod for _, pod in held} == pods
    return {get(env.cluster_ip, 80) for _ in range(3)} == pods


@pytest.fixture(scope="module", params=list(MODES))
def services(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    mode = request.param
    tmp = tmp_path_factory.mktemp(f"services-{mode}")
    ready_dir = tmp / "ready"
    ready_dir.mkdir()
    for name in SERVERS:
        (ready_dir / name).touch()
    with running_cluster(tmp, extra_config=MODES[mode]) as cluster:
        import tomllib

        cidr = tomllib.loads((tmp / "kcore.toml").read_text())["network"]["service_cidr"]
        kubectl = Kubectl(cluster.kubeconfig, tmp / "kube-cache")
        env = Services(mode, cluster, kubectl, cidr, ready_dir)
        ports = {name: free_port() for name in SERVERS}
        kubectl("apply", "-f", "-", input=manifests(ports, ready_dir))
        svc = json.loads(kubectl("get", "service", "web", "-o", "json"))
        env.cluster_ip = svc["spec"]["clusterIP"]
        env.node_port = int(svc["spec"]["ports"][0]["nodePort"])
        wait_for(lambda: env.endpoints_ready() == 3, "3 ready endpoints")
        pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
        env.pod_of_server = {p["metadata"]["labels"]["server"]: p["metadata"]["name"] for p in pods}
        # Order the servers as IPVS orders real servers: by (ip, port), all ip 127.0.0.1.
        env.pod_of_server = dict(sorted(env.pod_of_server.items(), key=lambda kv: ports[kv[0]]))
        wait_for(lambda: all_reachable(env), "the proxy to reach every server")
        try:
            yield env
        except BaseException:
            print(cluster.log()[-20000:])
            raise


def test_the_configured_mode_forwards(services: Services) -> None:
    events = []
    for line in services.cluster.log().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    fallback = [e for e in events if str(e.get("event", "")).startswith("kernel IPVS unavailable")]
    if services.mode.startswith("ipvs"):
        # This kernel has no IPVS: the schedulers drive the userspace data path.
        assert [e["scheduler"] for e in fallback] == [services.mode.split("-")[1]]
    else:
        assert fallback == []


def test_cluster_ip_is_from_the_loopback_range(services: Services) -> None:
    assert ipaddress.ip_address(services.cluster_ip) in ipaddress.ip_network(services.service_cidr)
    assert ipaddress.ip_address(services.cluster_ip).is_loopback


def test_endpointslices_list_the_three_servers(services: Services) -> None:
    out = services.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web")
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS"]
    # The servers' "http" ports differ, so (as in Kubernetes) each port mapping has its own slice.
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 3 and {row[1] for row in rows} == {"IPv4"}
    assert {row[3] for row in rows} == {"127.0.0.1"}
    assert len({row[2] for row in rows}) == 3
    assert services.endpoints_ready() == 3
    slices = json.loads(services.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                                         "-o", "json"))["items"]
    names = {ep["targetRef"]["name"] for s in slices for ep in s["endpoints"]}
    assert names == set(services.pod_of_server.values())


def distribution(services: Services, ip: str, port: int) -> None:
    pods = list(services.pod_of_server.values())
    mode = services.mode
    if mode in ("userspace", "ipvs-rr"):  # strict round-robin
        answers = [get(ip, port) for _ in range(30)]
        assert Counter(answers) == {pod: 10 for pod in pods}
    elif mode == "ipvs-sh":  # one client, one server; many clients cover every server
        chosen = {}
        for i in range(1, 31):
            seen = {get(ip, port, f"127.0.0.{i}") for _ in range(3)}
            assert len(seen) == 1, f"client 127.0.0.{i} went to {seen}"
            chosen[i] = seen.pop()
        assert set(chosen.values()) == set(pods)
        assert len({get(ip, port) for _ in range(10)}) == 1
    elif mode == "ipvs-lc":  # a new connection goes to the server with the fewest open ones
        held: list[tuple[http.client.HTTPConnection, str]] = []
        try:
            for expected in (pods[0], pods[1], pods[2], pods[0], pods[1]):
                held.append(hold(ip, port))
                assert held[-1][1] == expected, [h[1] for h in held]
            held.append(hold(ip, port))
            assert held[-1][1] == pods[2]
            for conn, pod in [h for h in held if h[1] == pods[1]]:
                conn.close()
            held = [h for h in held if h[1] != pods[1]]
            # Once the proxy has seen both close, pods[1] is the least loaded.
            def next_is_emptied() -> bool:
                conn, pod = hold(ip, port)
                conn.close()
                return pod == pods[1]

            wait_for(next_is_emptied, "the emptied server to get new connections", timeout=10)
            # Short connections leave it the least loaded (round-robin would move on).
            for _ in range(3):
                assert next_is_emptied()
        finally:
            for conn, _ in held:
                conn.close()
    else:  # pragma: no cover
        raise AssertionError(mode)


def test_cluster_ip_distribution(services: Services) -> None:
    distribution(services, services.cluster_ip, 80)


def test_node_port_distribution(services: Services) -> None:
    distribution(services, "127.0.0.1", services.node_port)


def test_cluster_dns_through_the_kube_dns_service(services: Services) -> None:
    import dns.resolver

    dns_ip = json.loads(services.kubectl("get", "service", "-n", "kube-system", "kube-dns",
                                         "-o", "json"))["spec"]["clusterIP"]
    assert ipaddress.ip_address(dns_ip) in ipaddress.ip_network(services.service_cidr)
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns_ip]
    resolver.port = 53
    resolver.lifetime = 5
    for tcp in (False, True):
        answer = wait_for(lambda tcp=tcp: resolver.resolve("web.default.svc.cluster.local", "A", tcp=tcp),
                          f"the name to resolve (tcp={tcp})", timeout=15)
        assert [r.address for r in answer] == [services.cluster_ip]


def test_unready_endpoint_stops_getting_traffic(services: Services) -> None:
    pods = list(services.pod_of_server.values())
    victim_server, victim = next(iter(services.pod_of_server.items()))
    sources = [f"127.0.0.{i}" for i in range(1, 31)] if services.mode == "ipvs-sh" else [None] * 12

    def victim_gone() -> bool:
        return victim not in {get(services.cluster_ip, 80, source) for source in sources}

    (services.ready_dir / victim_server).unlink()
    try:
        started = time.monotonic()
        wait_for(victim_gone, f"{victim} to stop getting traffic", timeout=10)
        assert time.monotonic() - started < 10
        assert services.endpoints_ready() == 2
        answers = [get(services.cluster_ip, 80, s) for s in sources] + \
                  [get("127.0.0.1", services.node_port, s) for s in sources]
        assert victim not in answers
        if services.mode in ("userspace", "ipvs-rr"):
            assert set(answers) == set(pods) - {victim}
    finally:
        (services.ready_dir / victim_server).touch()
    wait_for(lambda: services.endpoints_ready() == 3, "the endpoint to be ready again")
