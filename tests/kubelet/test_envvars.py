"""Building a container's environment the way the kubelet does."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kcore.api.core_v1 import Container, Pod, Service
from kcore.kubelet.envvars import EnvError, build_env, expand, service_env


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)", "1"), ("x$(A)y$(B)", "x1y2"), ("$(MISSING)", "$(MISSING)"), ("$$(A)", "$(A)"),
    ("$$", "$"), ("$A", "$A"), ("$(A", "$(A"), ("cost $5", "cost $5"), ("end$", "end$"), ("$$$(A)", "$1"),
])
def test_expand(text: str, expected: str) -> None:
    assert expand(text, {"A": "1", "B": "2"}) == expected


CONFIGMAPS = {("ns", "cfg"): {"LEVEL": "debug", "bad key": "skipped", "mode": "fast"}}
SECRETS = {("ns", "sec"): {"password": base64.b64encode(b"s3cret").decode(), "TOKEN": base64.b64encode(b"t").decode()}}


def pod(env: list[dict[str, Any]] | None = None, env_from: list[dict[str, Any]] | None = None, **spec: Any) -> tuple[Pod, Container]:
    p = Pod.from_dict({
        "metadata": {"name": "web-1", "namespace": "ns", "uid": "u-1", "labels": {"app": "web"},
                     "annotations": {"team": "blue"}},
        "spec": {"nodeName": "node-a", "serviceAccountName": "robot", **spec, "containers": [{
            "name": "c", "image": "x", "env": env or [], "envFrom": env_from or [],
            "resources": {"limits": {"cpu": "1500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
        }]},
        "status": {"podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}], "hostIP": "192.168.1.2"},
    })
    return p, p.spec.containers[0]


def build(p: Pod, c: Container, **kw: Any) -> dict[str, str]:
    return build_env(p, c, get_configmap=lambda ns, n: CONFIGMAPS.get((ns, n)),
                     get_secret=lambda ns, n: SECRETS.get((ns, n)), **kw)


@pytest.mark.parametrize(("source", "expected"), [
    ({"fieldRef": {"fieldPath": "metadata.name"}}, "web-1"),
    ({"fieldRef": {"fieldPath": "metadata.namespace"}}, "ns"),
    ({"fieldRef": {"fieldPath": "metadata.uid"}}, "u-1"),
    ({"fieldRef": {"fieldPath": "metadata.labels['app']"}}, "web"),
    ({"fieldRef": {"fieldPath": "metadata.annotations['team']"}}, "blue"),
    ({"fieldRef": {"fieldPath": "spec.nodeName"}}, "node-a"),
    ({"fieldRef": {"fieldPath": "spec.serviceAccountName"}}, "robot"),
    ({"fieldRef": {"fieldPath": "status.podIP"}}, "10.0.0.5"),
    ({"fieldRef": {"fieldPath": "status.podIPs"}}, "10.0.0.5,fd00::5"),
    ({"fieldRef": {"fieldPath": "status.hostIP"}}, "192.168.1.2"),
    ({"resourceFieldRef": {"resource": "limits.cpu"}}, "2"),  # rounded up to whole cores
    ({"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}, "1500"),
    ({"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}, "250"),
    ({"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}, "128"),
    ({"resourceFieldRef": {"resource": "requests.memory"}}, str(128 * 1024 * 1024)),  # falls back to the limit
    ({"configMapKeyRef": {"name": "cfg", "key": "LEVEL"}}, "debug"),
    ({"secretKeyRef": {"name": "sec", "key": "password"}}, "s3cret"),
])
def test_value_from(source: dict[str, Any], expected: str) -> None:
    p, c = pod([{"name": "V", "valueFrom": source}])
    assert build(p, c)["V"] == expected


@pytest.mark.parametrize(("source", "message"), [
    ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
    ({"configMapKeyRef": {"name": "cfg", "key": "k"}}, "couldn't find key k in ConfigMap ns/cfg"),
    ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
    ({"fieldRef": {"fieldPath": "spec.whatever"}}, "unsupported fieldRef"),
    ({"resourceFieldRef": {"resource": "limits.gpu"}}, "unsupported resourceFieldRef"),
])
def test_missing_references_are_errors(source: dict[str, Any], message: str) -> None:
    p, c = pod([{"name": "V", "valueFrom": source}])
    with pytest.raises(EnvError, match=message) as err:
        build(p, c)
    assert err.value.reason == "CreateContainerConfigError"


def test_optional_references_are_skipped() -> None:
    p, c = pod([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "nope", "optional": True}}}],
               [{"secretRef": {"name": "gone", "optional": True}}])
    env = build(p, c)
    assert "A" not in env and "B" not in env
    p, c = pod(env_from=[{"configMapRef": {"name": "gone"}}])
    with pytest.raises(EnvError, match='configmap "gone" not found'):
        build(p, c)


def test_order_env_from_prefix_and_expansion() -> None:
    p, c = pod(
        [{"name": "LEVEL", "value": "info"}, {"name": "MSG", "value": "$(CFG_LEVEL)/$(LEVEL)/$(LATER)"},
         {"name": "LATER", "value": "x"}, {"name": "HOST", "value": "$(HOSTNAME)"}],
        [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "sec"}}],
    )
    env = build(p, c)
    assert env["CFG_LEVEL"] == "debug" and env["CFG_mode"] == "fast" and "CFG_bad key" not in env
    assert env["TOKEN"] == "t" and env["password"] == "s3cret"
    assert env["MSG"] == "debug/info/$(LATER)"  # only earlier variables expand
    assert env["HOST"] == "web-1" and env["HOSTNAME"] == "web-1"
    assert list(env)[0] == "HOSTNAME"


def svc(name: str, ns: str, ip: str, *ports: tuple[str | None, int, str]) -> Service:
    return Service.from_dict({"metadata": {"name": name, "namespace": ns}, "spec": {
        "clusterIP": ip, "ports": [{"name": n, "port": port, "protocol": proto} if n else {"port": port, "protocol": proto}
                                   for n, port, proto in ports]}})


SERVICES = [
    svc("kubernetes", "default", "10.96.0.1", ("https", 443, "TCP")),
    svc("redis-main", "ns", "10.96.0.7", ("db", 6379, "TCP"), ("metrics", 9121, "UDP")),
    svc("headless", "ns", "None", (None, 80, "TCP")),
    svc("other", "elsewhere", "10.96.0.9", (None, 80, "TCP")),
]


def test_service_links() -> None:
    env = service_env(SERVICES, "ns")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443" and env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT_443_TCP"] == "tcp://10.96.0.1:443"
    assert env["REDIS_MAIN_SERVICE_HOST"] == "10.96.0.7" and env["REDIS_MAIN_SERVICE_PORT"] == "6379"
    assert env["REDIS_MAIN_SERVICE_PORT_DB"] == "6379" and env["REDIS_MAIN_PORT"] == "tcp://10.96.0.7:6379"
    assert env["REDIS_MAIN_PORT_9121_UDP"] == "udp://10.96.0.7:9121"
    assert env["REDIS_MAIN_PORT_9121_UDP_PROTO"] == "udp" and env["REDIS_MAIN_PORT_9121_UDP_ADDR"] == "10.96.0.7"
    assert env["REDIS_MAIN_PORT_6379_TCP_PORT"] == "6379"
    assert not any(k.startswith(("HEADLESS_", "OTHER_")) for k in env)


def test_service_links_disabled_keeps_the_api_service() -> None:
    p, c = pod(enableServiceLinks=False)
    env = build(p, c, services=SERVICES)
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert not any(k.startswith("REDIS_MAIN_") for k in env)
    p, c = pod([{"name": "KUBERNETES_SERVICE_HOST", "value": "override"}])
    assert build(p, c, services=SERVICES)["KUBERNETES_SERVICE_HOST"] == "override"
    assert "REDIS_MAIN_SERVICE_HOST" in build(p, c, services=SERVICES)


def test_limits_default_to_node_allocatable() -> None:
    p = Pod.from_dict({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"name": "c", "env": [
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}}]}]}})
    env = build(p, p.spec.containers[0], node_allocatable={"cpu": "4", "memory": "8Gi"})
    assert env["CPU"] == "4" and env["REQ"] == "0"
