"""Defaulting for core/v1: what Kubernetes fills in when an object is written.

Each function mutates the model in place and is idempotent: it only sets what
is unset, so running it on a stored object changes nothing. Values follow
Kubernetes' ``pkg/apis/core/v1/defaults.go`` plus the few the registry
strategies set (namespace finalizer, service ipFamilyPolicy, priority).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from kcore.api.core_v1 import (
    ConfigMap,
    Container,
    Endpoints,
    HTTPGetAction,
    LifecycleHandler,
    LimitRange,
    Namespace,
    NamespaceSpec,
    NamespaceStatus,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
    Pod,
    PodSecurityContext,
    PodSpec,
    PodTemplate,
    PodTemplateSpec,
    Probe,
    ReplicationController,
    ReplicationControllerSpec,
    Secret,
    Service,
    ClientIPConfig,
    SessionAffinityConfig,
    Volume,
    EmptyDirVolumeSource,
    VOLUME_SOURCE_FIELDS,
)

DEFAULT_FILE_MODE = 0o644  # 420: what `kubectl get -o yaml` shows as defaultMode
DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_CLIENT_IP_TIMEOUT = 10800  # three hours, Kubernetes' ClientIP affinity default


def image_pull_policy_for(image: str | None) -> str:
    """``Always`` for ``:latest`` or untagged images, else ``IfNotPresent``.

    A digest-only reference (``repo@sha256:...``) has no tag and is pinned, so
    it does not count as ``latest``.
    """
    if not image:
        return "IfNotPresent"
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        tag = last.rsplit(":", 1)[1]
    else:
        tag = "" if digest else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_http_get(action: HTTPGetAction | None) -> None:
    if action is None:
        return
    if not action.path:
        action.path = "/"
    if action.scheme is None:
        action.scheme = "HTTP"


def _default_handler(handler: Probe | LifecycleHandler | None) -> None:
    if handler is None:
        return
    _default_http_get(handler.httpGet)
    if isinstance(handler, Probe):
        if handler.grpc is not None and handler.grpc.service is None:
            handler.grpc.service = ""
        if handler.timeoutSeconds is None:
            handler.timeoutSeconds = 1
        if handler.periodSeconds is None:
            handler.periodSeconds = 10
        if handler.successThreshold is None:
            handler.successThreshold = 1
        if handler.failureThreshold is None:
            handler.failureThreshold = 3


def default_container(container: Container) -> None:
    """Defaults of one container (app, init or ephemeral)."""
    if container.terminationMessagePath is None:
        container.terminationMessagePath = "/dev/termination-log"
    if container.terminationMessagePolicy is None:
        container.terminationMessagePolicy = "File"
    if container.imagePullPolicy is None:
        container.imagePullPolicy = image_pull_policy_for(container.image)
    for port in container.ports or []:
        if port.protocol is None:
            port.protocol = "TCP"
    for env in container.env or []:
        if env.valueFrom is not None and env.valueFrom.fieldRef is not None:
            if env.valueFrom.fieldRef.apiVersion is None:
                env.valueFrom.fieldRef.apiVersion = "v1"
    for probe in (container.livenessProbe, container.readinessProbe, container.startupProbe):
        _default_handler(probe)
    if container.lifecycle is not None:
        _default_handler(container.lifecycle.postStart)
        _default_handler(container.lifecycle.preStop)
    res = container.resources
    if res is not None and res.limits:
        # Kubernetes copies a limit to the request when only the limit is given.
        requests = dict(res.requests or {})
        for name, value in res.limits.items():
            requests.setdefault(name, value)
        res.requests = requests


def default_volume(volume: Volume) -> None:
    """A volume without a source is an emptyDir; file modes default to 0644."""
    if all(getattr(volume, f) is None for f in VOLUME_SOURCE_FIELDS):
        volume.emptyDir = EmptyDirVolumeSource()
    for source in (volume.secret, volume.configMap, volume.downwardAPI, volume.projected):
        if source is not None and source.defaultMode is None:
            source.defaultMode = DEFAULT_FILE_MODE
    if volume.hostPath is not None and volume.hostPath.type is None:
        volume.hostPath.type = ""
    if volume.projected is not None:
        for src in volume.projected.sources or []:
            token = src.serviceAccountToken
            if token is not None and token.expirationSeconds is None:
                token.expirationSeconds = 3600
    file_lists = [volume.downwardAPI.items] if volume.downwardAPI else []
    if volume.projected is not None:
        file_lists += [s.downwardAPI.items for s in volume.projected.sources or [] if s.downwardAPI]
    for items in file_lists:
        for item in items or []:
            if item.fieldRef is not None and item.fieldRef.apiVersion is None:
                item.fieldRef.apiVersion = "v1"
    if volume.iscsi is not None and volume.iscsi.iscsiInterface is None:
        volume.iscsi.iscsiInterface = "default"
    if volume.rbd is not None:
        volume.rbd.pool = volume.rbd.pool or "rbd"
        volume.rbd.user = volume.rbd.user or "admin"
        volume.rbd.keyring = volume.rbd.keyring or "/etc/ceph/keyring"
    if volume.azureDisk is not None:
        disk = volume.azureDisk
        disk.cachingMode = disk.cachingMode or "ReadWrite"
        disk.fsType = disk.fsType or "ext4"
        disk.readOnly = False if disk.readOnly is None else disk.readOnly
        disk.kind = disk.kind or "Shared"


def default_pod_spec(spec: PodSpec) -> None:
    """PodSpec defaults, shared by pods and every pod template."""
    if spec.restartPolicy is None:
        spec.restartPolicy = "Always"
    if spec.dnsPolicy is None:
        spec.dnsPolicy = "ClusterFirst"
    if spec.terminationGracePeriodSeconds is None:
        spec.terminationGracePeriodSeconds = DEFAULT_TERMINATION_GRACE_PERIOD
    if spec.schedulerName is None:
        spec.schedulerName = DEFAULT_SCHEDULER_NAME
    if spec.securityContext is None:
        spec.securityContext = PodSecurityContext()
    if spec.enableServiceLinks is None:
        spec.enableServiceLinks = True
    if spec.preemptionPolicy is None:
        spec.preemptionPolicy = "PreemptLowerPriority"
    if spec.priority is None:
        spec.priority = 0
    if spec.serviceAccountName is not None and spec.serviceAccount is None:
        spec.serviceAccount = spec.serviceAccountName  # the deprecated mirror field
    for container in [*(spec.initContainers or []), *spec.containers, *(spec.ephemeralContainers or [])]:
        default_container(container)
        if spec.hostNetwork:
            # With the node's network, a container port is a host port.
            for port in container.ports or []:
                if port.hostPort is None:
                    port.hostPort = port.containerPort
    for volume in spec.volumes or []:
        default_volume(volume)


def default_pod_template_spec(template: PodTemplateSpec | None) -> None:
    """Defaults of the pod template embedded in workload kinds."""
    if template is not None and template.spec is not None:
        default_pod_spec(template.spec)


def default_pod(pod: Pod) -> None:
    if pod.spec is not None:
        default_pod_spec(pod.spec)


def default_pod_template(obj: PodTemplate) -> None:
    default_pod_template_spec(obj.template)


def default_service(svc: Service) -> None:
    spec = svc.spec
    if spec is None:
        return
    if spec.type is None:
        spec.type = "ClusterIP"
    if spec.sessionAffinity is None:
        spec.sessionAffinity = "None"
    if spec.sessionAffinity == "ClientIP":
        if spec.sessionAffinityConfig is None:
            spec.sessionAffinityConfig = SessionAffinityConfig()
        if spec.sessionAffinityConfig.clientIP is None:
            spec.sessionAffinityConfig.clientIP = ClientIPConfig()
        if spec.sessionAffinityConfig.clientIP.timeoutSeconds is None:
            spec.sessionAffinityConfig.clientIP.timeoutSeconds = DEFAULT_CLIENT_IP_TIMEOUT
    for port in spec.ports or []:
        if port.protocol is None:
            port.protocol = "TCP"
        if port.targetPort in (None, 0, ""):
            port.targetPort = port.port
    if spec.type in ("NodePort", "LoadBalancer") and spec.externalTrafficPolicy is None:
        spec.externalTrafficPolicy = "Cluster"
    if spec.type == "LoadBalancer" and spec.allocateLoadBalancerNodePorts is None:
        spec.allocateLoadBalancerNodePorts = True
    if spec.type != "ExternalName":
        if spec.internalTrafficPolicy is None:
            spec.internalTrafficPolicy = "Cluster"
        if spec.ipFamilyPolicy is None:
            spec.ipFamilyPolicy = "SingleStack"


def default_endpoints(ep: Endpoints) -> None:
    for subset in ep.subsets or []:
        for port in subset.ports or []:
            if port.protocol is None:
                port.protocol = "TCP"


def default_namespace(ns: Namespace) -> None:
    """The ``kubernetes`` finalizer, phase Active and the name label."""
    if ns.spec is None:
        ns.spec = NamespaceSpec()
    if ns.spec.finalizers is None:
        ns.spec.finalizers = ["kubernetes"]
    if ns.status is None:
        ns.status = NamespaceStatus()
    if ns.status.phase is None:
        ns.status.phase = "Active"
    if ns.metadata.name:
        labels = dict(ns.metadata.labels or {})
        labels["kubernetes.io/metadata.name"] = ns.metadata.name
        ns.metadata.labels = labels


def default_node(node: Node) -> None:
    """Allocatable defaults to capacity when the kubelet reports only capacity."""
    status = node.status
    if status is not None and status.capacity and status.allocatable is None:
        status.allocatable = dict(status.capacity)


def default_pv(pv: PersistentVolume) -> None:
    if pv.spec is not None:
        if pv.spec.persistentVolumeReclaimPolicy is None:
            pv.spec.persistentVolumeReclaimPolicy = "Retain"
        if pv.spec.volumeMode is None:
            pv.spec.volumeMode = "Filesystem"
    if pv.status is None:
        pv.status = PersistentVolumeStatus()
    if pv.status.phase is None:
        pv.status.phase = "Pending"


def default_pvc(pvc: PersistentVolumeClaim) -> None:
    if pvc.spec is not None and pvc.spec.volumeMode is None:
        pvc.spec.volumeMode = "Filesystem"
    if pvc.status is None:
        pvc.status = PersistentVolumeClaimStatus()
    if pvc.status.phase is None:
        pvc.status.phase = "Pending"


def default_secret(secret: Secret) -> None:
    """Type Opaque; ``stringData`` is write-only and merged into ``data``.

    Kubernetes merges it while decoding the request, so a stored secret never
    carries ``stringData``; its values win over ``data`` on the same key.
    """
    if secret.type is None:
        secret.type = "Opaque"
    if secret.stringData:
        data = dict(secret.data or {})
        for name, value in secret.stringData.items():
            data[name] = base64.b64encode(value.encode()).decode()
        secret.data = data
    secret.stringData = None


def default_config_map(cm: ConfigMap) -> None:
    """ConfigMaps have no defaults; kept so every kind has an entry."""


def default_limit_range(lr: LimitRange) -> None:
    """Container items: default limit from max, default request from limit or min."""
    if lr.spec is None:
        return
    for item in lr.spec.limits:
        if item.type != "Container":
            continue
        default = dict(item.default or {})
        for name, value in (item.max or {}).items():
            default.setdefault(name, value)
        request = dict(item.defaultRequest or {})
        for name, value in default.items():
            request.setdefault(name, value)
        for name, value in (item.min or {}).items():
            request.setdefault(name, value)
        if default:
            item.default = default
        if request:
            item.defaultRequest = request


def default_replication_controller(rc: ReplicationController) -> None:
    """Selector and labels from the template's labels; one replica."""
    if rc.spec is None:
        rc.spec = ReplicationControllerSpec()
    spec = rc.spec
    template_labels = (spec.template.metadata.labels if spec.template and spec.template.metadata else None) or {}
    if not spec.selector and template_labels:
        spec.selector = dict(template_labels)
    if not rc.metadata.labels and template_labels:
        rc.metadata.labels = dict(template_labels)
    if spec.replicas is None:
        spec.replicas = 1
    default_pod_template_spec(spec.template)


CORE_DEFAULTERS: dict[str, Callable[[Any], None]] = {
    "Pod": default_pod,
    "PodTemplate": default_pod_template,
    "Service": default_service,
    "Endpoints": default_endpoints,
    "Namespace": default_namespace,
    "Node": default_node,
    "PersistentVolume": default_pv,
    "PersistentVolumeClaim": default_pvc,
    "Secret": default_secret,
    "ConfigMap": default_config_map,
    "LimitRange": default_limit_range,
    "ReplicationController": default_replication_controller,
}

__all__ = [
    "CORE_DEFAULTERS",
    "default_container",
    "default_pod_spec",
    "default_pod_template_spec",
    "image_pull_policy_for",
    *[fn.__name__ for fn in CORE_DEFAULTERS.values()],
]
