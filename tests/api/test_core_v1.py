"""core/v1 models, defaulting and validation against manifests from the Kubernetes docs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kcore.api import core_v1
from kcore.api.core_v1 import (
    CORE_KINDS,
    ConfigMap,
    Container,
    Event,
    LimitRange,
    Namespace,
    Node,
    NodeSystemInfo,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    PodList,
    PodSpec,
    PodTemplateSpec,
    ReplicationController,
    Secret,
    Service,
)
from kcore.api.defaults_core import (
    CORE_DEFAULTERS,
    default_namespace,
    default_pod,
    default_pv,
    default_pvc,
    default_replication_controller,
    default_secret,
    default_service,
    image_pull_policy_for,
)
from kcore.api.validate_core import (
    CORE_VALIDATORS,
    validate_config_map,
    validate_node,
    validate_pod,
    validate_pod_template_spec,
    validate_replication_controller,
    validate_secret,
    validate_service,
)
from kcore.api.validation import (
    DUPLICATE,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    NOT_SUPPORTED,
    REQUIRED,
    TOO_LONG,
)

MANIFESTS = Path(__file__).parent / "manifests" / "core"
MANIFEST_FILES = sorted(MANIFESTS.glob("*.yaml"))


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / name).read_text())


def drop_nulls(value: Any) -> Any:
    """Kubernetes treats an explicit null like an omitted field; so do we."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


# --- parsing and round trips ---------------------------------------------------


def test_manifest_set_covers_the_core_kinds() -> None:
    kinds = {load(p.name)["kind"] for p in MANIFEST_FILES}
    assert kinds >= {
        "Pod", "Service", "Endpoints", "ConfigMap", "Secret", "Namespace", "Node",
        "PersistentVolume", "PersistentVolumeClaim", "ResourceQuota", "LimitRange",
        "ReplicationController", "ServiceAccount", "Event", "Binding", "PodTemplate",
    }


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.stem)
def test_manifest_round_trips_unchanged(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    model_cls = CORE_KINDS[data["kind"]]
    obj = model_cls.from_dict(copy.deepcopy(data))
    assert type(obj) is model_cls
    assert obj.to_dict() == drop_nulls(data)
    # and through JSON bytes too
    assert model_cls.from_json(obj.to_json()).to_dict() == drop_nulls(data)


def test_every_kind_has_a_list_type() -> None:
    for kind, cls in CORE_KINDS.items():
        if kind == "Binding":
            continue
        list_cls = getattr(core_v1, f"{kind}List")
        assert list_cls.model_fields["items"].annotation == list[cls]


def test_pod_list_round_trips() -> None:
    pod = load("pod-nginx.yaml")
    data = {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "123", "continue": "abc"},
        "items": [pod, load("pod-running-status.yaml")],
    }
    plist = PodList.from_dict(data)
    assert plist.metadata.continue_ == "abc"
    assert plist.items[0].spec.containers[0].ports[0].containerPort == 80
    assert plist.to_dict() == drop_nulls(data)


def test_typed_access_to_nested_pod_fields() -> None:
    pod = Pod.from_dict(load("pod-volumes-env.yaml"))
    spec = pod.spec
    assert spec.securityContext.seccompProfile.type == "RuntimeDefault"
    container = spec.containers[0]
    assert container.env[0].valueFrom.configMapKeyRef.key == "special.how"
    assert container.env[2].valueFrom.fieldRef.fieldPath == "status.podIP"
    assert container.envFrom[1].prefix == "SECRET_"
    assert container.resources.limits == {"memory": "128Mi", "cpu": "500m"}
    volumes = {v.name: v for v in spec.volumes}
    assert volumes["cache-volume"].emptyDir.sizeLimit == "500Mi"
    assert volumes["all-in-one"].projected.sources[3].serviceAccountToken.path == "token"
    assert volumes["data"].persistentVolumeClaim.claimName == "task-pv-claim"
    assert volumes["csi-inline"].csi.volumeAttributes == {"foo": "bar"}
    assert volumes["nfs"].nfs.server == "nfs.example.com"
    assert spec.initContainers[0].name == "init-myservice"


def test_int_or_string_keeps_its_type() -> None:
    svc = Service.from_dict(load("service.yaml"))
    assert svc.spec.ports[0].targetPort == 9376
    assert svc.spec.ports[1].targetPort == "https-port"
    pod = Pod.from_dict(load("pod-probes.yaml"))
    assert pod.spec.containers[0].livenessProbe.httpGet.port == "liveness-port"
    assert pod.spec.containers[0].readinessProbe.tcpSocket.port == 8080
    assert pod.spec.containers[1].livenessProbe.grpc.port == 2379
    assert pod.spec.containers[1].lifecycle.preStop.httpGet.port == 2379


def test_quantities_are_canonicalized() -> None:
    pod = Pod.from_dict(
        {
            "metadata": {"name": "q"},
            "spec": {
                "containers": [
                    {"name": "c", "image": "x", "resources": {"limits": {"memory": "1.5Gi", "cpu": "1000m"}}}
                ]
            },
        }
    )
    assert pod.spec.containers[0].resources.limits == {"memory": "1536Mi", "cpu": "1"}
    with pytest.raises(ValidationError) as err:
        PersistentVolumeClaim.from_dict(
            {"metadata": {"name": "x"}, "spec": {"resources": {"requests": {"storage": "lots"}}}}
        )
    assert err.value.errors()[0]["loc"] == ("spec", "resources", "requests", "storage")


def test_pod_template_spec_is_shared_with_workloads() -> None:
    rc = ReplicationController.from_dict(load("replicationcontroller.yaml"))
    assert isinstance(rc.spec.template, PodTemplateSpec)
    assert isinstance(rc.spec.template.spec, PodSpec)
    assert rc.spec.template.spec.containers[0].image == "nginx"


# --- strictness -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "patch", "loc"),
    [
        (Pod, lambda d: d["spec"]["containers"][0].update(imagePullPolicyy="Always"),
         ("spec", "containers", 0, "imagePullPolicyy")),
        (Pod, lambda d: d["spec"].update(restartpolicy="Never"), ("spec", "restartpolicy")),
        (Pod, lambda d: d["spec"]["containers"][0]["ports"][0].update(port=80),
         ("spec", "containers", 0, "ports", 0, "port")),
        (Pod, lambda d: d["metadata"].update(label={"a": "b"}), ("metadata", "label")),
        (Pod, lambda d: d.update(specs={}), ("specs",)),
    ],
)
def test_unknown_fields_are_rejected_with_their_location(model: Any, patch: Any, loc: tuple) -> None:
    data = load("pod-nginx.yaml")
    patch(data)
    with pytest.raises(ValidationError) as err:
        model.from_dict(data)
    errors = err.value.errors()
    assert [(e["type"], e["loc"]) for e in errors] == [("extra_forbidden", loc)]


def test_unknown_field_deep_in_a_volume_is_rejected() -> None:
    data = load("pod-volumes-env.yaml")
    data["spec"]["volumes"][2]["projected"]["sources"][0]["secret"]["itemz"] = []
    with pytest.raises(ValidationError) as err:
        Pod.from_dict(data)
    assert err.value.errors()[0]["loc"] == (
        "spec", "volumes", 2, "projected", "sources", 0, "secret", "itemz",
    )


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [
        (Pod, {"spec": {"containers": [{"image": "nginx"}]}}, ("spec", "containers", 0, "name")),
        (Pod, {"spec": {}}, ("spec", "containers")),
        (Pod, {"spec": {"containers": [{"name": "a", "ports": [{"name": "x"}]}]}},
         ("spec", "containers", 0, "ports", 0, "containerPort")),
        (Pod, {"spec": {"containers": [{"name": "a", "env": [{"value": "x"}]}]}},
         ("spec", "containers", 0, "env", 0, "name")),
        (Pod, {"spec": {"containers": [{"name": "a", "volumeMounts": [{"name": "v"}]}]}},
         ("spec", "containers", 0, "volumeMounts", 0, "mountPath")),
        (Pod, {"spec": {"containers": [{"name": "a"}], "volumes": [{"emptyDir": {}}]}},
         ("spec", "volumes", 0, "name")),
        (Service, {"spec": {"ports": [{"name": "http"}]}}, ("spec", "ports", 0, "port")),
        (Event, {"metadata": {"name": "e"}}, ("involvedObject",)),
        (Node, {"spec": {"taints": [{"key": "k"}]}}, ("spec", "taints", 0, "effect")),
    ],
)
def test_required_fields(model: Any, data: dict, loc: tuple) -> None:
    with pytest.raises(ValidationError) as err:
        model.from_dict(data)
    assert [(e["type"], e["loc"]) for e in err.value.errors()] == [("missing", loc)]


@pytest.mark.parametrize("field", list(NodeSystemInfo.model_fields))
def test_node_system_info_fields_are_all_required(field: str) -> None:
    data = load("node.yaml")
    del data["status"]["nodeInfo"][field]
    with pytest.raises(ValidationError) as err:
        Node.from_dict(data)
    assert err.value.errors()[0]["loc"] == ("status", "nodeInfo", field)
    assert len(NodeSystemInfo.model_fields) == 10


# --- status ------------------------------------------------------------------------


def test_pod_status_round_trips_with_container_states() -> None:
    data = load("pod-running-status.yaml")
    pod = Pod.from_dict(data)
    status = pod.status
    assert status.phase == "Running"
    assert [c.type for c in status.conditions][-1] == "PodScheduled"
    assert status.conditions[0].lastProbeTime is None
    assert [ip.ip for ip in status.podIPs] == ["10.244.1.5", "fd00:10:244:1::5"]
    nginx, sidecar = status.containerStatuses
    assert nginx.state.running.startedAt == "2024-05-01T10:00:05Z"
    assert nginx.ready and nginx.started and nginx.restartCount == 0
    assert nginx.user.linux.supplementalGroups == [0, 10]
    assert sidecar.state.waiting.reason == "CrashLoopBackOff"
    assert sidecar.lastState.terminated.exitCode == 1
    assert sidecar.lastState.terminated.signal == 15
    assert pod.to_dict() == drop_nulls(data)


def test_container_status_requires_kubelet_fields() -> None:
    data = load("pod-running-status.yaml")
    del data["status"]["containerStatuses"][0]["imageID"]
    del data["status"]["containerStatuses"][1]["lastState"]["terminated"]["exitCode"]
    with pytest.raises(ValidationError) as err:
        Pod.from_dict(data)
    assert sorted(e["loc"] for e in err.value.errors()) == [
        ("status", "containerStatuses", 0, "imageID"),
        ("status", "containerStatuses", 1, "lastState", "terminated", "exitCode"),
    ]


def test_node_status_round_trips() -> None:
    data = load("node.yaml")
    node = Node.from_dict(data)
    assert node.status.nodeInfo.kubeletVersion == "v1.32.0"
    assert node.status.daemonEndpoints.kubeletEndpoint.Port == 10250
    assert node.status.allocatable["cpu"] == "3800m"
    assert node.spec.taints[1].value == "gpu"
    assert node.to_dict() == data


# --- defaulting -------------------------------------------------------------------

# What the API server stores for the docs' nginx pod before admission plugins
# (service account, default tolerations) add their parts.
DEFAULTED_NGINX = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
    "spec": {
        "containers": [
            {
                "name": "nginx",
                "image": "nginx:1.14.2",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        ],
        "restartPolicy": "Always",
        "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30,
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
    },
}


def test_default_pod_matches_kubernetes() -> None:
    pod = Pod.from_dict(load("pod-nginx.yaml"))
    default_pod(pod)
    assert pod.to_dict() == DEFAULTED_NGINX


def test_default_pod_probes_volumes_and_env() -> None:
    pod = Pod.from_dict(load("pod-probes.yaml"))
    default_pod(pod)
    goproxy, etcd = pod.spec.containers
    assert goproxy.imagePullPolicy == "IfNotPresent"
    ready = goproxy.readinessProbe
    assert (ready.periodSeconds, ready.timeoutSeconds, ready.successThreshold, ready.failureThreshold) == (10, 1, 1, 3)
    live = goproxy.livenessProbe
    assert (live.failureThreshold, live.periodSeconds) == (1, 10)  # given values kept
    assert live.httpGet.scheme == "HTTP" and live.httpGet.path == "/healthz"
    assert goproxy.startupProbe.failureThreshold == 30
    assert etcd.livenessProbe.grpc.service == ""
    assert etcd.livenessProbe.initialDelaySeconds == 10
    assert etcd.lifecycle.preStop.httpGet.scheme == "HTTP"

    pod = Pod.from_dict(load("pod-volumes-env.yaml"))
    default_pod(pod)
    spec = pod.spec
    assert spec.restartPolicy == "Never"  # given value kept
    volumes = {v.name: v for v in spec.volumes}
    assert volumes["config-volume"].configMap.defaultMode == 420
    assert volumes["secret-volume"].secret.defaultMode == 256
    assert volumes["podinfo"].downwardAPI.defaultMode == 420
    assert volumes["podinfo"].downwardAPI.items[0].fieldRef.apiVersion == "v1"
    assert volumes["all-in-one"].projected.defaultMode == 420
    assert volumes["all-in-one"].projected.sources[1].downwardAPI.items[0].fieldRef.apiVersion == "v1"
    container = spec.containers[0]
    assert container.env[2].valueFrom.fieldRef.apiVersion == "v1"
    assert container.imagePullPolicy == "Always"  # registry.k8s.io/busybox has no tag
    assert spec.initContainers[0].terminationMessagePath == "/dev/termination-log"


def test_default_requests_copied_from_limits() -> None:
    pod = Pod.from_dict(
        {"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "x:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"},
                                                        "requests": {"cpu": "500m"}}}]}}
    )
    default_pod(pod)
    assert pod.spec.containers[0].resources.requests == {"cpu": "500m", "memory": "1Gi"}


def test_default_volume_without_source_is_empty_dir() -> None:
    pod = Pod.from_dict({"spec": {"containers": [{"name": "c"}], "volumes": [{"name": "scratch"}]}})
    default_pod(pod)
    assert pod.spec.volumes[0].to_dict() == {"name": "scratch", "emptyDir": {}}


def test_default_host_network_sets_host_ports() -> None:
    pod = Pod.from_dict({"spec": {"hostNetwork": True, "containers": [
        {"name": "c", "ports": [{"containerPort": 8080}]}]}})
    default_pod(pod)
    assert pod.spec.containers[0].ports[0].hostPort == 8080


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("localhost:5000/nginx", "Always"),
        ("localhost:5000/nginx:2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
        (None, "IfNotPresent"),
    ],
)
def test_image_pull_policy(image: str | None, policy: str) -> None:
    assert image_pull_policy_for(image) == policy


def test_default_service() -> None:
    svc = Service.from_dict(load("service-nodeport.yaml"))
    default_service(svc)
    spec = svc.spec
    assert spec.ports[0].protocol == "TCP"
    assert spec.externalTrafficPolicy == "Local"  # given value kept
    assert spec.sessionAffinity == "None"
    assert spec.internalTrafficPolicy == "Cluster"
    assert spec.ipFamilyPolicy == "SingleStack"

    svc = Service.from_dict({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "type": "LoadBalancer"}})
    default_service(svc)
    assert svc.spec.ports[0].targetPort == 80
    assert svc.spec.externalTrafficPolicy == "Cluster"
    assert svc.spec.allocateLoadBalancerNodePorts is True

    svc = Service.from_dict({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
    default_service(svc)
    assert svc.spec.type == "ClusterIP"
    assert svc.spec.externalTrafficPolicy is None

    svc = Service.from_dict({"metadata": {"name": "s"}, "spec": {"sessionAffinity": "ClientIP"}})
    default_service(svc)
    assert svc.spec.sessionAffinityConfig.clientIP.timeoutSeconds == 10800

    svc = Service.from_dict({"metadata": {"name": "s"}, "spec": {"type": "ExternalName", "externalName": "a.b"}})
    default_service(svc)
    assert svc.spec.ipFamilyPolicy is None and svc.spec.internalTrafficPolicy is None


def test_default_namespace_pv_pvc_secret() -> None:
    ns = Namespace.from_dict(load("namespace.yaml"))
    default_namespace(ns)
    assert ns.spec.finalizers == ["kubernetes"]
    assert ns.status.phase == "Active"
    assert ns.metadata.labels == {"name": "development", "kubernetes.io/metadata.name": "development"}

    pv = PersistentVolume.from_dict(load("pv.yaml"))
    default_pv(pv)
    assert (pv.spec.persistentVolumeReclaimPolicy, pv.spec.volumeMode, pv.status.phase) == (
        "Retain", "Filesystem", "Pending")

    pvc = PersistentVolumeClaim.from_dict(load("pvc.yaml"))
    default_pvc(pvc)
    assert (pvc.spec.volumeMode, pvc.status.phase) == ("Filesystem", "Pending")

    secret = Secret.from_dict({"metadata": {"name": "s"}, "data": {}})
    default_secret(secret)
    assert secret.type == "Opaque"
    tls = Secret.from_dict({"metadata": {"name": "s"}, "type": "kubernetes.io/tls"})
    default_secret(tls)
    assert tls.type == "kubernetes.io/tls"


def test_default_replication_controller_takes_template_labels() -> None:
    data = load("replicationcontroller.yaml")
    del data["spec"]["selector"]
    del data["spec"]["replicas"]
    rc = ReplicationController.from_dict(data)
    default_replication_controller(rc)
    assert rc.spec.selector == {"app": "nginx"}
    assert rc.metadata.labels == {"app": "nginx"}
    assert rc.spec.replicas == 1
    assert rc.spec.template.spec.restartPolicy == "Always"
    assert rc.spec.template.spec.containers[0].imagePullPolicy == "Always"


def test_default_limit_range_fills_defaults_from_max_and_min() -> None:
    lr = LimitRange.from_dict({"metadata": {"name": "l"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "1", "memory": "1Gi"}, "min": {"memory": "64Mi"},
         "default": {"cpu": "500m"}},
        {"type": "Pod", "max": {"cpu": "2"}},
    ]}})
    CORE_DEFAULTERS["LimitRange"](lr)
    item = lr.spec.limits[0]
    assert item.default == {"cpu": "500m", "memory": "1Gi"}
    assert item.defaultRequest == {"cpu": "500m", "memory": "1Gi"}
    assert lr.spec.limits[1].default is None


def test_default_node_allocatable_from_capacity() -> None:
    node = Node.from_dict({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "2"}}})
    CORE_DEFAULTERS["Node"](node)
    assert node.status.allocatable == {"cpu": "2"}


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.stem)
def test_defaulting_is_idempotent(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    model_cls = CORE_KINDS[data["kind"]]
    obj = model_cls.from_dict(data)
    defaulter = CORE_DEFAULTERS.get(data["kind"])
    if defaulter is None:
        assert data["kind"] in {"ResourceQuota", "ServiceAccount", "Event", "Binding"}
        return
    defaulter(obj)
    once = obj.to_dict()
    defaulter(obj)
    assert obj.to_dict() == once
    # a defaulted object still parses (defaults are valid field values)
    assert model_cls.from_dict(once).to_dict() == once


def test_container_model_is_exported_for_workloads() -> None:
    assert core_v1.Container is Container
    assert ConfigMap.model_fields["binaryData"].annotation == dict[str, str] | None


# --- validation -----------------------------------------------------------------

CLUSTER_SCOPED = {"Namespace", "Node", "PersistentVolume"}


def stored(name: str) -> Any:
    """A manifest as the API server validates it: namespaced, then defaulted."""
    data = load(name)
    obj = CORE_KINDS[data["kind"]].from_dict(data)
    if data["kind"] not in CLUSTER_SCOPED and data["kind"] != "Binding":
        obj.metadata.namespace = obj.metadata.namespace or "default"
    if data["kind"] in CORE_DEFAULTERS:
        CORE_DEFAULTERS[data["kind"]](obj)
    return obj


def errs_of(errors: list) -> list[tuple[str, str]]:
    return [(e.type, e.field) for e in errors]


@pytest.mark.parametrize("path", MANIFEST_FILES, ids=lambda p: p.stem)
def test_docs_manifests_are_valid(path: Path) -> None:
    obj = stored(path.name)
    assert [str(e) for e in CORE_VALIDATORS[obj.kind](obj)] == []


def test_validators_cover_every_kind() -> None:
    assert set(CORE_VALIDATORS) == set(CORE_KINDS)


def bad_pod(mutate: Any) -> list:
    pod = stored("pod-volumes-env.yaml")
    mutate(pod.spec)
    return validate_pod(pod)


def test_pod_image_required_message() -> None:
    pod = Pod.from_dict({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"name": "c"}]}})
    errors = validate_pod(pod)
    assert [str(e) for e in errors] == ["spec.containers[0].image: Required value"]
    assert errors[0].type == REQUIRED


def test_pod_needs_a_container_and_valid_meta() -> None:
    pod = Pod.from_dict({"metadata": {"name": "Bad_Name"}, "spec": {"containers": []}})
    assert errs_of(validate_pod(pod)) == [
        (INVALID, "metadata.name"),
        (REQUIRED, "metadata.namespace"),
        (REQUIRED, "spec.containers"),
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: setattr(s.containers[0], "name", "Test_Container"),
         [(INVALID, "spec.containers[0].name")]),
        (lambda s: setattr(s.containers[0], "name", "init-myservice"),
         [(DUPLICATE, "spec.containers[0].name")]),
        (lambda s: s.containers[0].ports.__setitem__(0, core_v1.ContainerPort(containerPort=70000))
         if s.containers[0].ports else setattr(s.containers[0], "ports", [core_v1.ContainerPort(containerPort=70000)]),
         [(INVALID, "spec.containers[0].ports[0].containerPort")]),
        (lambda s: setattr(s.containers[0], "ports", [core_v1.ContainerPort(containerPort=80, name="HTTP_port")]),
         [(INVALID, "spec.containers[0].ports[0].name")]),
        (lambda s: setattr(s.containers[0], "ports", [core_v1.ContainerPort(containerPort=80, protocol="ICMP")]),
         [(NOT_SUPPORTED, "spec.containers[0].ports[0].protocol")]),
        (lambda s: setattr(s.containers[0].env[0], "name", "1BAD=NAME"),
         [(INVALID, "spec.containers[0].env[0].name")]),
        (lambda s: setattr(s.containers[0].env[0], "value", "literal"),
         [(INVALID, "spec.containers[0].env[0].valueFrom")]),
        (lambda s: setattr(s.volumes[1], "name", "config-volume"),
         [(DUPLICATE, "spec.volumes[1].name"), (NOT_FOUND, "spec.containers[0].volumeMounts[1].name")]),
        (lambda s: setattr(s.volumes[1], "hostPath", core_v1.HostPathVolumeSource(path="/tmp")),
         [(FORBIDDEN, "spec.volumes[1].emptyDir")]),  # the second source in Kubernetes' order
        (lambda s: setattr(s.volumes[1], "emptyDir", None),
         [(REQUIRED, "spec.volumes[1]")]),
        (lambda s: setattr(s.containers[0].volumeMounts[0], "name", "nope"),
         [(NOT_FOUND, "spec.containers[0].volumeMounts[0].name")]),
        (lambda s: setattr(s.containers[0].volumeMounts[1], "mountPath", "/etc/config"),
         [(INVALID, "spec.containers[0].volumeMounts[1].mountPath")]),
        (lambda s: setattr(s, "restartPolicy", "Sometimes"),
         [(NOT_SUPPORTED, "spec.restartPolicy")]),
        (lambda s: setattr(s, "dnsPolicy", "Cluster"),
         [(NOT_SUPPORTED, "spec.dnsPolicy")]),
        (lambda s: setattr(s.containers[0].resources, "requests", {"cpu": "2", "memory": "64Mi"}),
         [(INVALID, "spec.containers[0].resources.requests[cpu]")]),
        (lambda s: setattr(s.volumes[0].configMap, "defaultMode", 0o1777),
         [(INVALID, "spec.volumes[0].configMap.defaultMode")]),
        (lambda s: setattr(s, "tolerations", [core_v1.Toleration(key="k", operator="Exists", value="v")]),
         [(INVALID, "spec.tolerations[0].operator")]),
        (lambda s: setattr(s, "tolerations", [core_v1.Toleration(key="k", effect="NoSchedule", tolerationSeconds=5)]),
         [(INVALID, "spec.tolerations[0].effect")]),
        (lambda s: setattr(s.containers[0], "livenessProbe", core_v1.Probe(periodSeconds=10)),
         [(REQUIRED, "spec.containers[0].livenessProbe")]),
        (lambda s: setattr(s.containers[0], "livenessProbe", core_v1.Probe(
            exec=core_v1.ExecAction(command=["true"]), successThreshold=2)),
         [(INVALID, "spec.containers[0].livenessProbe.successThreshold")]),
        (lambda s: setattr(s, "hostAliases", [core_v1.HostAlias(ip="not-an-ip")]),
         [(INVALID, "spec.hostAliases[0].ip")]),
        (lambda s: setattr(s, "nodeSelector", {"bad key!": "x"}),
         [(INVALID, "spec.nodeSelector")]),
    ],
)
def test_pod_spec_rules(mutate: Any, expected: list) -> None:
    assert errs_of(bad_pod(mutate)) == expected


def test_unsupported_value_lists_the_supported_ones() -> None:
    errors = bad_pod(lambda s: setattr(s, "restartPolicy", "Sometimes"))
    assert str(errors[0]) == (
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
    )
    errors = bad_pod(lambda s: setattr(s.containers[0].resources, "requests", {"cpu": "2"}))
    assert errors[0].message == 'Invalid value: "2": must be less than or equal to cpu limit of 500m'


def test_affinity_and_spread_rules() -> None:
    pod = stored("pod-scheduling.yaml")
    affinity = pod.spec.affinity
    affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values = []
    affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight = 101
    affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey = ""
    pod.spec.topologySpreadConstraints[0].maxSkew = 0
    pod.spec.topologySpreadConstraints[0].whenUnsatisfiable = "Maybe"
    pod.spec.dnsConfig = None
    na = "spec.affinity.nodeAffinity"
    assert errs_of(validate_pod(pod)) == [
        (REQUIRED, "spec.dnsConfig"),
        (REQUIRED, f"{na}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values"),
        (INVALID, f"{na}.preferredDuringSchedulingIgnoredDuringExecution[0].weight"),
        (REQUIRED, "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"),
        (INVALID, "spec.topologySpreadConstraints[0].maxSkew"),
        (NOT_SUPPORTED, "spec.topologySpreadConstraints[0].whenUnsatisfiable"),
    ]


def test_pod_template_spec_paths_are_nested() -> None:
    rc = stored("replicationcontroller.yaml")
    rc.spec.template.spec.containers[0].image = None
    assert errs_of(validate_pod_template_spec(rc.spec.template, "spec.template")) == [
        (REQUIRED, "spec.template.spec.containers[0].image"),
    ]


def svc_errors(mutate: Any, name: str = "service.yaml") -> list:
    svc = stored(name)
    mutate(svc)
    return errs_of(validate_service(svc))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: setattr(s.metadata, "name", "1-service"), [(INVALID, "metadata.name")]),
        (lambda s: setattr(s.spec.ports[1], "name", None), [(REQUIRED, "spec.ports[1].name")]),
        (lambda s: setattr(s.spec.ports[1], "name", "http"),
         [(DUPLICATE, "spec.ports[1].name")]),
        (lambda s: setattr(s.spec.ports[0], "port", 0), [(INVALID, "spec.ports[0].port")]),
        (lambda s: setattr(s.spec.ports[0], "protocol", "HTTP"), [(NOT_SUPPORTED, "spec.ports[0].protocol")]),
        (lambda s: setattr(s.spec, "type", "Magic"), [(NOT_SUPPORTED, "spec.type")]),
        (lambda s: setattr(s.spec, "clusterIP", "10.0.0.300"), [(INVALID, "spec.clusterIP")]),
        (lambda s: setattr(s.spec.ports[0], "nodePort", 30001), [(FORBIDDEN, "spec.ports[0].nodePort")]),
        (lambda s: setattr(s.spec.sessionAffinityConfig.clientIP, "timeoutSeconds", 0),
         [(INVALID, "spec.sessionAffinityConfig.clientIP.timeoutSeconds")]),
        (lambda s: setattr(s.spec, "externalTrafficPolicy", "Local"), [(INVALID, "spec.externalTrafficPolicy")]),
        (lambda s: setattr(s.spec, "ports", []), [(REQUIRED, "spec.ports")]),
    ],
)
def test_service_rules(mutate: Any, expected: list) -> None:
    assert svc_errors(mutate) == expected


def test_headless_and_external_name_services() -> None:
    assert svc_errors(lambda s: (setattr(s.spec, "clusterIP", "None"), setattr(s.spec, "ports", []))) == []
    svc = Service.from_dict({"metadata": {"name": "ext", "namespace": "d"},
                             "spec": {"type": "ExternalName", "externalName": "my.database.example.com"}})
    default_service(svc)
    assert validate_service(svc) == []
    svc.spec.externalName = None
    assert errs_of(validate_service(svc)) == [(REQUIRED, "spec.externalName")]


def test_config_map_and_secret_keys_and_size() -> None:
    cm = stored("configmap.yaml")
    cm.data["bad/key"] = "x"
    cm.binaryData["player_initial_lives"] = "AA=="
    assert errs_of(validate_config_map(cm)) == [
        (INVALID, "data[bad/key]"),
        (INVALID, "binaryData[player_initial_lives]"),
    ]
    big = ConfigMap.from_dict({"metadata": {"name": "big", "namespace": "d"}, "data": {"a": "x" * (1024 * 1024)}})
    assert errs_of(validate_config_map(big)) == [(TOO_LONG, "")]

    secret = stored("secret.yaml")
    assert secret.stringData is None and secret.data["password"] == "dDBwLVNlY3JldA=="  # merged by defaulting
    secret.data["..hidden"] = "eA=="
    secret.data["ok"] = "not base64!"
    assert errs_of(validate_secret(secret)) == [(INVALID, "data[..hidden]"), (INVALID, "data[ok]")]
    tls = Secret.from_dict({"metadata": {"name": "t", "namespace": "d"}, "type": "kubernetes.io/tls",
                            "data": {"tls.crt": "eA=="}})
    assert errs_of(validate_secret(tls)) == [(REQUIRED, "data[tls.key]")]
    huge = Secret.from_dict({"metadata": {"name": "h", "namespace": "d"},
                             "stringData": {"a": "x" * (1024 * 1024 + 1)}})
    assert errs_of(validate_secret(huge)) == [(TOO_LONG, "data")]


def test_namespace_name_is_a_dns_label() -> None:
    ns = Namespace.from_dict({"metadata": {"name": "dev.team"}})
    assert errs_of(CORE_VALIDATORS["Namespace"](ns)) == [(INVALID, "metadata.name")]
    ns = Namespace.from_dict({"metadata": {"name": "dev", "namespace": "x"}})
    assert errs_of(CORE_VALIDATORS["Namespace"](ns)) == [(FORBIDDEN, "metadata.namespace")]


def test_node_taints() -> None:
    node = stored("node.yaml")
    node.spec.taints[0].effect = "NoRun"
    node.spec.taints.append(core_v1.Taint(key="dedicated", value="other", effect="NoExecute"))
    node.spec.podCIDRs = ["10.244.0.0/33"]
    assert errs_of(validate_node(node)) == [
        (NOT_SUPPORTED, "spec.taints[0].effect"),
        (DUPLICATE, "spec.taints[2]"),
        (INVALID, "spec.podCIDRs[0]"),
        (INVALID, "spec.podCIDRs"),
    ]


def test_replication_controller_rules() -> None:
    rc = stored("replicationcontroller.yaml")
    rc.spec.replicas = -1
    rc.spec.selector = {"app": "other"}
    rc.spec.template.spec.restartPolicy = "Never"
    assert errs_of(validate_replication_controller(rc)) == [
        (INVALID, "spec.replicas"),
        (INVALID, "spec.template.metadata.labels"),
        (NOT_SUPPORTED, "spec.template.spec.restartPolicy"),
    ]


def test_storage_rules() -> None:
    pv = PersistentVolume.from_dict({"metadata": {"name": "pv"}, "spec": {"accessModes": ["ReadWriteSometimes"]}})
    assert errs_of(CORE_VALIDATORS["PersistentVolume"](pv)) == [
        (NOT_SUPPORTED, "spec.accessModes"),
        (REQUIRED, "spec.capacity"),
        (REQUIRED, "spec"),
    ]
    pvc = PersistentVolumeClaim.from_dict({"metadata": {"name": "c", "namespace": "d"}, "spec": {}})
    assert errs_of(CORE_VALIDATORS["PersistentVolumeClaim"](pvc)) == [
        (REQUIRED, "spec.accessModes"),
        (REQUIRED, "spec.resources[storage]"),
    ]


def test_limit_range_quota_event_binding() -> None:
    lr = stored("limitrange.yaml")
    lr.spec.limits[0].min = {"cpu": "2"}
    lr.spec.limits[0].type = "Pod"
    assert errs_of(CORE_VALIDATORS["LimitRange"](lr)) == [
        (FORBIDDEN, "spec.limits[0].default"),
        (FORBIDDEN, "spec.limits[0].defaultRequest"),
        (INVALID, "spec.limits[0].min[cpu]"),
    ]
    rq = stored("resourcequota.yaml")
    rq.spec.hard["pods"] = "-1"
    assert errs_of(CORE_VALIDATORS["ResourceQuota"](rq)) == [(INVALID, "spec.hard[pods]")]
    event = stored("event.yaml")
    event.involvedObject.namespace = "other"
    assert errs_of(CORE_VALIDATORS["Event"](event)) == [(INVALID, "involvedObject.namespace")]
    binding = stored("binding.yaml")
    binding.target.kind = "Pod"
    binding.target.name = None
    assert errs_of(CORE_VALIDATORS["Binding"](binding)) == [(NOT_SUPPORTED, "target.kind"), (REQUIRED, "target.name")]
