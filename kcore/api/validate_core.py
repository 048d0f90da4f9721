"""Validation of core/v1 objects, with Kubernetes' field paths and messages.

The API server defaults an object and then validates it, so fields that
defaulting always fills (restartPolicy, imagePullPolicy, ...) are checked for
supported values when present and not reported missing. Each
``validate_<kind>(obj)`` returns every problem found; an empty list means valid.
``validate_pod_spec`` and ``validate_pod_template_spec`` are shared with the
workload kinds.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kcore.api.core_v1 import (
    PV_SOURCE_FIELDS,
    VOLUME_SOURCE_FIELDS,
    Affinity,
    Binding,
    ConfigMap,
    Container,
    ContainerPort,
    Endpoints,
    EnvVar,
    Event,
    LimitRange,
    Namespace,
    Node,
    NodeSelector,
    NodeSelectorRequirement,
    PersistentVolume,
    PersistentVolumeClaim,
    Pod,
    PodAffinityTerm,
    PodSpec,
    PodTemplate,
    PodTemplateSpec,
    Probe,
    ReplicationController,
    ResourceQuota,
    Secret,
    Service,
    ServiceAccount,
    Toleration,
    Volume,
)
from kcore.api.quantity import parse_quantity
from kcore.api.validation import (
    FieldError,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    is_c_identifier,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_cidr,
    is_valid_ip,
    is_valid_label_value,
    is_valid_port_name,
    is_valid_port_num,
    key,
    not_found,
    not_supported,
    required,
    too_long,
    too_many,
    validate_label_selector,
    validate_labels,
    validate_nonnegative,
    validate_object_meta,
    validate_quantity_nonnegative,
)

Errors = list[FieldError]

MAX_CONFIG_SIZE = 1024 * 1024  # ConfigMaps and Secrets: 1 MiB of data in total
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_CLIENT_IP_TIMEOUT = 86400

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PROTOCOLS = ("TCP", "UDP", "SCTP")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
HOST_PATH_TYPES = (
    "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice",
)
NODE_SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn")
UNSATISFIABLE_ACTIONS = ("DoNotSchedule", "ScheduleAnyway")
LIMIT_TYPES = ("Container", "PersistentVolumeClaim", "Pod")
QUOTA_SCOPES = (
    "BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating",
    "PriorityClass", "Terminating", "VolumeAttributesClass",
)

_CONFIG_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")
_CONFIG_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
    "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


def _each(messages: Iterable[str], path: str, value: Any) -> Errors:
    return [invalid(path, value, m) for m in messages]


def _supported(value: str | None, path: str, values: tuple[str, ...]) -> Errors:
    """A set value must be one of ``values``; None means "left to defaulting"."""
    if value is not None and value not in values:
        return [not_supported(path, value, values)]
    return []


def _is_ip(value: str) -> bool:
    return not is_valid_ip(value)


def _positive(value: int | None, path: str) -> Errors:
    if value is not None and value <= 0:
        return [invalid(path, value, "must be greater than zero")]
    return []


def is_config_map_key(value: str) -> list[str]:
    """Keys of ConfigMaps and Secrets: file names without a path."""
    errs: list[str] = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _CONFIG_KEY_RE.fullmatch(value):
        errs.append(_CONFIG_KEY_MSG)
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _validate_port_number_or_name(port: int | str, path: str) -> Errors:
    if isinstance(port, int):
        return _each(is_valid_port_num(port), path, port)
    return _each(is_valid_port_name(port), path, port)


def _validate_resource_list(resources: Mapping[str, str] | None, path: str) -> Errors:
    errs: Errors = []
    for name, value in (resources or {}).items():
        errs.extend(_each(is_qualified_name(name), path, name))
        errs.extend(validate_quantity_nonnegative(value, key(path, name)))
    return errs


def _validate_relative_path(value: str, path: str) -> Errors:
    if value.startswith("/"):
        return [invalid(path, value, "must be a relative path")]
    if ".." in value.split("/"):
        return [invalid(path, value, "must not contain '..'")]
    return []


def _validate_file_mode(mode: int | None, path: str) -> Errors:
    if mode is not None and not 0 <= mode <= 0o777:
        return [invalid(path, mode, "must be a number between 0 and 0777 (octal), both inclusive")]
    return []


# --- volumes -----------------------------------------------------------------


def _validate_key_to_paths(items: Iterable[Any] | None, path: str) -> Errors:
    errs: Errors = []
    for i, item in enumerate(items or []):
        at = index(path, i)
        if not item.key:
            errs.append(required(child(at, "key")))
        if not item.path:
            errs.append(required(child(at, "path")))
        else:
            errs.extend(_validate_relative_path(item.path, child(at, "path")))
        errs.extend(_validate_file_mode(item.mode, child(at, "mode")))
    return errs


def _validate_downward_files(items: Iterable[Any] | None, path: str) -> Errors:
    errs: Errors = []
    for i, item in enumerate(items or []):
        at = index(path, i)
        errs.extend(_validate_relative_path(item.path, child(at, "path")))
        if item.fieldRef is not None and item.resourceFieldRef is not None:
            errs.append(invalid(at, item.path, "fieldRef and resourceFieldRef can not be specified simultaneously"))
        elif item.fieldRef is None and item.resourceFieldRef is None:
            errs.append(required(at, "one of fieldRef and resourceFieldRef is required"))
        errs.extend(_validate_file_mode(item.mode, child(at, "mode")))
    return errs


def _validate_volume_source(volume: Volume, path: str) -> Errors:
    """Exactly one source is set, and that source is well formed."""
    errs: Errors = []
    present = [name for name in VOLUME_SOURCE_FIELDS if getattr(volume, name) is not None]
    if not present:
        return [required(path, "must specify a volume type")]
    errs.extend(forbidden(child(path, name), "may not specify more than 1 volume type") for name in present[1:])
    if volume.hostPath is not None:
        if not volume.hostPath.path:
            errs.append(required(child(path, "hostPath", "path")))
        errs.extend(_supported(volume.hostPath.type, child(path, "hostPath", "type"), HOST_PATH_TYPES))
    if volume.emptyDir is not None and volume.emptyDir.sizeLimit is not None:
        errs.extend(validate_quantity_nonnegative(volume.emptyDir.sizeLimit, child(path, "emptyDir", "sizeLimit")))
    if volume.secret is not None:
        at = child(path, "secret")
        errs.extend(_validate_file_mode(volume.secret.defaultMode, child(at, "defaultMode")))
        errs.extend(_validate_key_to_paths(volume.secret.items, child(at, "items")))
    if volume.configMap is not None:
        at = child(path, "configMap")
        errs.extend(_validate_file_mode(volume.configMap.defaultMode, child(at, "defaultMode")))
        errs.extend(_validate_key_to_paths(volume.configMap.items, child(at, "items")))
    if volume.persistentVolumeClaim is not None and not volume.persistentVolumeClaim.claimName:
        errs.append(required(child(path, "persistentVolumeClaim", "claimName")))
    if volume.nfs is not None:
        if not volume.nfs.server:
            errs.append(required(child(path, "nfs", "server")))
        if not volume.nfs.path.startswith("/"):
            errs.append(invalid(child(path, "nfs", "path"), volume.nfs.path, "must be an absolute path"))
    if volume.csi is not None and not volume.csi.driver:
        errs.append(required(child(path, "csi", "driver")))
    if volume.downwardAPI is not None:
        at = child(path, "downwardAPI")
        errs.extend(_validate_file_mode(volume.downwardAPI.defaultMode, child(at, "defaultMode")))
        errs.extend(_validate_downward_files(volume.downwardAPI.items, child(at, "items")))
    if volume.projected is not None:
        at = child(path, "projected")
        errs.extend(_validate_file_mode(volume.projected.defaultMode, child(at, "defaultMode")))
        for i, source in enumerate(volume.projected.sources or []):
            src_at = index(child(at, "sources"), i)
            kinds = [n for n in ("secret", "downwardAPI", "configMap", "serviceAccountToken", "clusterTrustBundle")
                     if getattr(source, n) is not None]
            if len(kinds) > 1:
                errs.extend(forbidden(child(src_at, n), "may not specify more than 1 volume type") for n in kinds[1:])
            if source.secret is not None:
                errs.extend(_validate_key_to_paths(source.secret.items, child(src_at, "secret", "items")))
            if source.configMap is not None:
                errs.extend(_validate_key_to_paths(source.configMap.items, child(src_at, "configMap", "items")))
            if source.downwardAPI is not None:
                errs.extend(_validate_downward_files(source.downwardAPI.items, child(src_at, "downwardAPI", "items")))
            token = source.serviceAccountToken
            if token is not None:
                if token.expirationSeconds is not None and token.expirationSeconds < 600:
                    errs.append(invalid(child(src_at, "serviceAccountToken", "expirationSeconds"),
                                        token.expirationSeconds, "may not specify a duration less than 10 minutes"))
                errs.extend(_validate_relative_path(token.path, child(src_at, "serviceAccountToken", "path")))
    return errs


def _validate_volumes(volumes: list[Volume] | None, path: str) -> tuple[Errors, set[str]]:
    errs: Errors = []
    names: set[str] = set()
    for i, volume in enumerate(volumes or []):
        at = index(path, i)
        if not volume.name:
            errs.append(required(child(at, "name")))
        else:
            errs.extend(_each(is_dns1123_label(volume.name), child(at, "name"), volume.name))
            if volume.name in names:
                errs.append(duplicate(child(at, "name"), volume.name))
            names.add(volume.name)
        errs.extend(_validate_volume_source(volume, at))
    return errs, names


# --- containers ----------------------------------------------------------------


def _validate_env(env: list[EnvVar] | None, path: str) -> Errors:
    errs: Errors = []
    for i, var in enumerate(env or []):
        at = index(path, i)
        if not var.name:
            errs.append(required(child(at, "name")))
        else:
            errs.extend(_each(is_c_identifier(var.name), child(at, "name"), var.name))
        source = var.valueFrom
        if source is None:
            continue
        from_at = child(at, "valueFrom")
        members = [m for m in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                   if getattr(source, m) is not None]
        if not members:
            errs.append(invalid(from_at, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                             "`configMapKeyRef` or `secretKeyRef`"))
        elif len(members) > 1:
            errs.append(invalid(from_at, "", "may not have more than one field specified at a time"))
        if var.value:
            errs.append(invalid(from_at, "", "may not be specified when `value` is not empty"))
        for ref_name in ("configMapKeyRef", "secretKeyRef"):
            ref = getattr(source, ref_name)
            if ref is not None:
                if not ref.key:
                    errs.append(required(child(from_at, ref_name, "key")))
                else:
                    errs.extend(_each(is_config_map_key(ref.key), child(from_at, ref_name, "key"), ref.key))
        if source.fieldRef is not None and not source.fieldRef.fieldPath:
            errs.append(required(child(from_at, "fieldRef", "fieldPath")))
        if source.resourceFieldRef is not None and not source.resourceFieldRef.resource:
            errs.append(required(child(from_at, "resourceFieldRef", "resource")))
    return errs


def _validate_ports(
    ports: list[ContainerPort] | None, path: str, seen_names: set[str], host_network: bool
) -> Errors:
    errs: Errors = []
    for i, port in enumerate(ports or []):
        at = index(path, i)
        if port.name:
            errs.extend(_each(is_valid_port_name(port.name), child(at, "name"), port.name))
            if port.name in seen_names:
                errs.append(duplicate(child(at, "name"), port.name))
            seen_names.add(port.name)
        errs.extend(_each(is_valid_port_num(port.containerPort), child(at, "containerPort"), port.containerPort))
        if port.hostPort:
            errs.extend(_each(is_valid_port_num(port.hostPort), child(at, "hostPort"), port.hostPort))
            if host_network and port.hostPort != port.containerPort:
                errs.append(invalid(child(at, "hostPort"), port.hostPort,
                                    "must match `containerPort` when `hostNetwork` is true"))
        errs.extend(_supported(port.protocol, child(at, "protocol"), PROTOCOLS))
        if port.hostIP:
            errs.extend(_each(is_valid_ip(port.hostIP), child(at, "hostIP"), port.hostIP))
    return errs


def _validate_probe(probe: Probe | None, path: str, liveness_like: bool) -> Errors:
    if probe is None:
        return []
    errs: Errors = []
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if getattr(probe, h) is not None]
    if not handlers:
        errs.append(required(path, "must specify a handler type"))
    errs.extend(forbidden(child(path, h), "may not specify more than 1 handler type") for h in handlers[1:])
    if probe.httpGet is not None:
        errs.extend(_validate_port_number_or_name(probe.httpGet.port, child(path, "httpGet", "port")))
        errs.extend(_supported(probe.httpGet.scheme, child(path, "httpGet", "scheme"), ("HTTP", "HTTPS")))
    if probe.tcpSocket is not None:
        errs.extend(_validate_port_number_or_name(probe.tcpSocket.port, child(path, "tcpSocket", "port")))
    if probe.grpc is not None:
        errs.extend(_each(is_valid_port_num(probe.grpc.port), child(path, "grpc", "port"), probe.grpc.port))
    for name in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs.extend(validate_nonnegative(getattr(probe, name), child(path, name)))
    if liveness_like and probe.successThreshold not in (None, 1):
        errs.append(invalid(child(path, "successThreshold"), probe.successThreshold, "must be 1"))
    if probe.terminationGracePeriodSeconds is not None and probe.terminationGracePeriodSeconds <= 0:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), probe.terminationGracePeriodSeconds,
                            "must be greater than 0"))
    return errs


def _validate_resources(container: Container, path: str) -> Errors:
    res = container.resources
    if res is None:
        return []
    errs = _validate_resource_list(res.limits, child(path, "limits"))
    errs.extend(_validate_resource_list(res.requests, child(path, "requests")))
    for name, request in (res.requests or {}).items():
        limit = (res.limits or {}).get(name)
        if limit is None:
            continue
        try:
            if parse_quantity(request) > parse_quantity(limit):
                errs.append(invalid(key(child(path, "requests"), name), request,
                                    f"must be less than or equal to {name} limit of {limit}"))
        except (ValueError, TypeError):
            continue  # already reported as an invalid quantity
    return errs


def _validate_container(
    container: Container,
    path: str,
    volumes: set[str],
    port_names: set[str],
    host_network: bool,
    probes_allowed: bool = True,
) -> Errors:
    errs: Errors = []
    if not container.image:
        errs.append(required(child(path, "image")))
    errs.extend(_supported(container.imagePullPolicy, child(path, "imagePullPolicy"), PULL_POLICIES))
    errs.extend(_supported(container.terminationMessagePolicy, child(path, "terminationMessagePolicy"),
                           TERMINATION_MESSAGE_POLICIES))
    errs.extend(_validate_ports(container.ports, child(path, "ports"), port_names, host_network))
    errs.extend(_validate_env(container.env, child(path, "env")))
    for i, source in enumerate(container.envFrom or []):
        at = index(child(path, "envFrom"), i)
        if source.prefix:
            errs.extend(_each(is_c_identifier(source.prefix), child(at, "prefix"), source.prefix))
        if source.configMapRef is None and source.secretRef is None:
            errs.append(invalid(at, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif source.configMapRef is not None and source.secretRef is not None:
            errs.append(invalid(at, "", "may not have more than one field specified at a time"))
    mount_paths: set[str] = set()
    for i, mount in enumerate(container.volumeMounts or []):
        at = index(child(path, "volumeMounts"), i)
        if not mount.name:
            errs.append(required(child(at, "name")))
        elif mount.name not in volumes:
            errs.append(not_found(child(at, "name"), mount.name))
        if not mount.mountPath:
            errs.append(required(child(at, "mountPath")))
        elif mount.mountPath in mount_paths:
            errs.append(invalid(child(at, "mountPath"), mount.mountPath, "must be unique"))
        mount_paths.add(mount.mountPath)
        if mount.subPath:
            errs.extend(_validate_relative_path(mount.subPath, child(at, "subPath")))
        errs.extend(_supported(mount.mountPropagation, child(at, "mountPropagation"),
                               ("Bidirectional", "HostToContainer", "None")))
    errs.extend(_validate_resources(container, child(path, "resources")))
    if probes_allowed:
        errs.extend(_validate_probe(container.livenessProbe, child(path, "livenessProbe"), True))
        errs.extend(_validate_probe(container.readinessProbe, child(path, "readinessProbe"), False))
        errs.extend(_validate_probe(container.startupProbe, child(path, "startupProbe"), True))
    return errs


def _validate_containers(
    containers: list[Container], path: str, volumes: set[str], names: set[str], port_names: set[str],
    host_network: bool, init: bool = False,
) -> Errors:
    errs: Errors = []
    for i, container in enumerate(containers):
        at = index(path, i)
        if not container.name:
            errs.append(required(child(at, "name")))
        else:
            errs.extend(_each(is_dns1123_label(container.name), child(at, "name"), container.name))
            if container.name in names:
                errs.append(duplicate(child(at, "name"), container.name))
            names.add(container.name)
        if init and container.restartPolicy is not None:
            errs.extend(_supported(container.restartPolicy, child(at, "restartPolicy"), ("Always",)))
        elif not init and container.restartPolicy is not None:
            errs.append(forbidden(child(at, "restartPolicy"), "may not be set for non-init containers"))
        sidecar = init and container.restartPolicy == "Always"
        if init and not sidecar:
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if getattr(container, probe) is not None:
                    errs.append(forbidden(child(at, probe), f"may not be set for init containers without "
                                                            "restartPolicy=Always"))
        errs.extend(_validate_container(container, at, volumes, port_names, host_network,
                                        probes_allowed=not init or sidecar))
    return errs


# --- scheduling ------------------------------------------------------------------


def _validate_node_selector_requirement(req_: NodeSelectorRequirement, path: str) -> Errors:
    errs: Errors = []
    values = req_.values or []
    if req_.operator in ("In", "NotIn"):
        if not values:
            errs.append(required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'"))
    elif req_.operator in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(child(path, "values"),
                                  "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif req_.operator in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(required(child(path, "values"),
                                 "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(not_supported(child(path, "operator"), req_.operator, NODE_SELECTOR_OPERATORS))
    errs.extend(_each(is_qualified_name(req_.key), child(path, "key"), req_.key))
    return errs


def _validate_node_selector(selector: NodeSelector, path: str) -> Errors:
    terms_path = child(path, "nodeSelectorTerms")
    if not selector.nodeSelectorTerms:
        return [required(terms_path, "must have at least one node selector term")]
    errs: Errors = []
    for i, term in enumerate(selector.nodeSelectorTerms):
        at = index(terms_path, i)
        for j, req_ in enumerate(term.matchExpressions or []):
            errs.extend(_validate_node_selector_requirement(req_, index(child(at, "matchExpressions"), j)))
    return errs


def _validate_pod_affinity_term(term: PodAffinityTerm, path: str) -> Errors:
    errs = validate_label_selector(term.labelSelector, child(path, "labelSelector"))
    errs.extend(validate_label_selector(term.namespaceSelector, child(path, "namespaceSelector")))
    for i, ns in enumerate(term.namespaces or []):
        errs.extend(_each(is_dns1123_label(ns), index(child(path, "namespaces"), i), ns))
    if not term.topologyKey:
        errs.append(required(child(path, "topologyKey"), "can not be empty"))
    else:
        errs.extend(_each(is_qualified_name(term.topologyKey), child(path, "topologyKey"), term.topologyKey))
    return errs


def _validate_weight(weight: int, path: str) -> Errors:
    if not 1 <= weight <= 100:
        return [invalid(path, weight, "must be in the range 1-100")]
    return []


def _validate_affinity(affinity: Affinity | None, path: str) -> Errors:
    if affinity is None:
        return []
    errs: Errors = []
    node = affinity.nodeAffinity
    if node is not None:
        at = child(path, "nodeAffinity")
        if node.requiredDuringSchedulingIgnoredDuringExecution is not None:
            errs.extend(_validate_node_selector(node.requiredDuringSchedulingIgnoredDuringExecution,
                                                child(at, "requiredDuringSchedulingIgnoredDuringExecution")))
        for i, pref in enumerate(node.preferredDuringSchedulingIgnoredDuringExecution or []):
            p_at = index(child(at, "preferredDuringSchedulingIgnoredDuringExecution"), i)
            errs.extend(_validate_weight(pref.weight, child(p_at, "weight")))
            for j, req_ in enumerate(pref.preference.matchExpressions or []):
                errs.extend(_validate_node_selector_requirement(
                    req_, index(child(p_at, "preference", "matchExpressions"), j)))
    for name in ("podAffinity", "podAntiAffinity"):
        rules = getattr(affinity, name)
        if rules is None:
            continue
        at = child(path, name)
        for i, term in enumerate(rules.requiredDuringSchedulingIgnoredDuringExecution or []):
            errs.extend(_validate_pod_affinity_term(
                term, index(child(at, "requiredDuringSchedulingIgnoredDuringExecution"), i)))
        for i, weighted in enumerate(rules.preferredDuringSchedulingIgnoredDuringExecution or []):
            w_at = index(child(at, "preferredDuringSchedulingIgnoredDuringExecution"), i)
            errs.extend(_validate_weight(weighted.weight, child(w_at, "weight")))
            errs.extend(_validate_pod_affinity_term(weighted.podAffinityTerm, child(w_at, "podAffinityTerm")))
    return errs


def _validate_tolerations(tolerations: list[Toleration] | None, path: str) -> Errors:
    errs: Errors = []
    for i, tol in enumerate(tolerations or []):
        at = index(path, i)
        if tol.key:
            errs.extend(_each(is_qualified_name(tol.key), child(at, "key"), tol.key))
        elif tol.operator != "Exists":
            errs.append(invalid(child(at, "operator"), tol.operator,
                                "operator must be Exists when `key` is empty, which means \"match all values "
                                "and all keys\""))
        if tol.tolerationSeconds is not None and tol.effect != "NoExecute":
            errs.append(invalid(child(at, "effect"), tol.effect,
                                "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if tol.operator in (None, "", "Equal"):
            if tol.value:
                errs.extend(_each(is_valid_label_value(tol.value), child(at, "value"), tol.value))
        elif tol.operator == "Exists":
            if tol.value:
                errs.append(invalid(child(at, "operator"), tol.value,
                                    "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(child(at, "operator"), tol.operator, TOLERATION_OPERATORS))
        if tol.effect:
            errs.extend(_supported(tol.effect, child(at, "effect"), TAINT_EFFECTS))
    return errs


def _validate_topology_spread(spec: PodSpec, path: str) -> Errors:
    errs: Errors = []
    seen: set[tuple[str, str]] = set()
    for i, tsc in enumerate(spec.topologySpreadConstraints or []):
        at = index(path, i)
        errs.extend(_positive(tsc.maxSkew, child(at, "maxSkew")))
        if not tsc.topologyKey:
            errs.append(required(child(at, "topologyKey"), "can not be empty"))
        else:
            errs.extend(_each(is_qualified_name(tsc.topologyKey), child(at, "topologyKey"), tsc.topologyKey))
        if tsc.whenUnsatisfiable not in UNSATISFIABLE_ACTIONS:
            errs.append(not_supported(child(at, "whenUnsatisfiable"), tsc.whenUnsatisfiable,
                                      UNSATISFIABLE_ACTIONS))
        if tsc.minDomains is not None:
            errs.extend(_positive(tsc.minDomains, child(at, "minDomains")))
            if tsc.whenUnsatisfiable != "DoNotSchedule":
                errs.append(invalid(child(at, "minDomains"), tsc.minDomains,
                                    "can only use minDomains if whenUnsatisfiable=DoNotSchedule"))
        pair = (tsc.topologyKey, tsc.whenUnsatisfiable)
        if pair in seen:
            errs.append(duplicate(at, f"{{{pair[0]}, {pair[1]}}}"))
        seen.add(pair)
        errs.extend(validate_label_selector(tsc.labelSelector, child(at, "labelSelector")))
    return errs


def _validate_dns(spec: PodSpec, path: str) -> Errors:
    errs = _supported(spec.dnsPolicy, child(path, "dnsPolicy"), DNS_POLICIES)
    config = spec.dnsConfig
    if spec.dnsPolicy == "None":
        if config is None:
            errs.append(required(child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
        elif not config.nameservers:
            errs.append(required(child(path, "dnsConfig", "nameservers"),
                                 "must provide at least one DNS nameserver when `dnsPolicy` is None"))
    if config is None:
        return errs
    at = child(path, "dnsConfig")
    servers = config.nameservers or []
    if len(servers) > MAX_DNS_NAMESERVERS:
        errs.append(invalid(child(at, "nameservers"), servers,
                            f"must not have more than {MAX_DNS_NAMESERVERS} nameservers"))
    for i, server in enumerate(servers):
        errs.extend(_each(is_valid_ip(server), index(child(at, "nameservers"), i), server))
    searches = config.searches or []
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        errs.append(invalid(child(at, "searches"), searches,
                            f"must not have more than {MAX_DNS_SEARCH_PATHS} search paths"))
    for i, search in enumerate(searches):
        errs.extend(_each(is_dns1123_subdomain(search.removesuffix(".")), index(child(at, "searches"), i), search))
    for i, option in enumerate(config.options or []):
        if not option.name:
            errs.append(required(child(index(child(at, "options"), i), "name"), "must not be empty"))
    return errs


# --- PodSpec -----------------------------------------------------------------------


def validate_pod_spec(spec: PodSpec | None, path: str = "spec") -> Errors:
    """Every PodSpec rule; ``path`` is where the spec sits (``spec.template.spec``)."""
    if spec is None:
        return [required(path)]
    errs, volume_names = _validate_volumes(spec.volumes, child(path, "volumes"))
    container_names: set[str] = set()
    port_names: set[str] = set()
    host_network = bool(spec.hostNetwork)
    if not spec.containers:
        errs.append(required(child(path, "containers")))
    errs.extend(_validate_containers(spec.initContainers or [], child(path, "initContainers"), volume_names,
                                     container_names, set(), host_network, init=True))
    errs.extend(_validate_containers(spec.containers, child(path, "containers"), volume_names,
                                     container_names, port_names, host_network))
    for i, eph in enumerate(spec.ephemeralContainers or []):
        at = index(child(path, "ephemeralContainers"), i)
        if not eph.name:
            errs.append(required(child(at, "name")))
        elif eph.name in container_names:
            errs.append(duplicate(child(at, "name"), eph.name))
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if getattr(eph, probe) is not None:
                errs.append(forbidden(child(at, probe), "cannot be set for an Ephemeral Container"))
        if eph.ports:
            errs.append(forbidden(child(at, "ports"), "cannot be set for an Ephemeral Container"))
    errs.extend(_supported(spec.restartPolicy, child(path, "restartPolicy"), RESTART_POLICIES))
    errs.extend(_validate_dns(spec, path))
    errs.extend(validate_nonnegative(spec.terminationGracePeriodSeconds, child(path, "terminationGracePeriodSeconds")))
    if spec.activeDeadlineSeconds is not None and not 1 <= spec.activeDeadlineSeconds <= 2**31 - 1:
        errs.append(invalid(child(path, "activeDeadlineSeconds"), spec.activeDeadlineSeconds,
                            "must be between 1 and 2147483647, inclusive"))
    errs.extend(validate_labels(spec.nodeSelector, child(path, "nodeSelector")))
    if spec.serviceAccountName:
        errs.extend(_each(is_dns1123_subdomain(spec.serviceAccountName), child(path, "serviceAccountName"),
                          spec.serviceAccountName))
    if spec.nodeName:
        errs.extend(_each(is_dns1123_subdomain(spec.nodeName), child(path, "nodeName"), spec.nodeName))
    if spec.hostname:
        errs.extend(_each(is_dns1123_label(spec.hostname), child(path, "hostname"), spec.hostname))
    if spec.subdomain:
        errs.extend(_each(is_dns1123_label(spec.subdomain), child(path, "subdomain"), spec.subdomain))
    errs.extend(_validate_affinity(spec.affinity, child(path, "affinity")))
    errs.extend(_validate_tolerations(spec.tolerations, child(path, "tolerations")))
    errs.extend(_validate_topology_spread(spec, child(path, "topologySpreadConstraints")))
    for i, alias in enumerate(spec.hostAliases or []):
        at = index(child(path, "hostAliases"), i)
        errs.extend(_each(is_valid_ip(alias.ip), child(at, "ip"), alias.ip))
        for j, host in enumerate(alias.hostnames or []):
            errs.extend(_each(is_dns1123_subdomain(host), index(child(at, "hostnames"), j), host))
    for i, gate in enumerate(spec.readinessGates or []):
        at = child(index(child(path, "readinessGates"), i), "conditionType")
        errs.extend(_each(is_qualified_name(gate.conditionType), at, gate.conditionType))
    errs.extend(_supported(spec.preemptionPolicy, child(path, "preemptionPolicy"), ("Never", "PreemptLowerPriority")))
    errs.extend(_validate_resource_list(spec.overhead, child(path, "overhead")))
    if spec.os is not None:
        errs.extend(_supported(spec.os.name, child(path, "os", "name"), ("linux", "windows")))
    if spec.securityContext is not None:
        ctx = spec.securityContext
        at = child(path, "securityContext")
        for name in ("runAsUser", "runAsGroup", "fsGroup"):
            errs.extend(validate_nonnegative(getattr(ctx, name), child(at, name)))
        for i, group in enumerate(ctx.supplementalGroups or []):
            errs.extend(validate_nonnegative(group, index(child(at, "supplementalGroups"), i)))
    return errs


def validate_pod_template_spec(template: PodTemplateSpec | None, path: str = "template") -> Errors:
    """Template labels/annotations and the pod spec inside a workload."""
    if template is None:
        return [required(path)]
    errs: Errors = []
    if template.metadata is not None:
        errs.extend(validate_labels(template.metadata.labels, child(path, "metadata", "labels")))
    errs.extend(validate_pod_spec(template.spec, child(path, "spec")))
    return errs


# --- kinds -----------------------------------------------------------------------


def validate_pod(pod: Pod) -> Errors:
    errs = validate_object_meta(pod.metadata, namespaced=True)
    errs.extend(validate_pod_spec(pod.spec, "spec"))
    return errs


def validate_pod_template(obj: PodTemplate) -> Errors:
    errs = validate_object_meta(obj.metadata, namespaced=True)
    errs.extend(validate_pod_template_spec(obj.template, "template"))
    return errs


def _is_headless(svc: Service) -> bool:
    return svc.spec is not None and svc.spec.clusterIP == "None"


def validate_service(svc: Service) -> Errors:
    errs = validate_object_meta(svc.metadata, namespaced=True, name_validator=is_dns1035_label)
    spec = svc.spec
    if spec is None:
        return [*errs, required("spec")]
    svc_type = spec.type or "ClusterIP"
    errs.extend(_supported(spec.type, "spec.type", SERVICE_TYPES))
    ports = spec.ports or []
    if svc_type == "ExternalName":
        if not spec.externalName:
            errs.append(required("spec.externalName"))
        else:
            errs.extend(_each(is_dns1123_subdomain(spec.externalName.removesuffix(".")), "spec.externalName",
                              spec.externalName))
        if spec.clusterIP:
            errs.append(forbidden("spec.clusterIP", "may not be set for ExternalName services"))
    elif not ports and not _is_headless(svc):
        errs.append(required("spec.ports"))
    names: set[str] = set()
    port_protocols: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        at = index("spec.ports", i)
        if len(ports) > 1 and not port.name:
            errs.append(required(child(at, "name")))
        elif port.name:
            errs.extend(_each(is_dns1123_label(port.name), child(at, "name"), port.name))
            if port.name in names:
                errs.append(duplicate(child(at, "name"), port.name))
            names.add(port.name)
        errs.extend(_each(is_valid_port_num(port.port), child(at, "port"), port.port))
        errs.extend(_supported(port.protocol, child(at, "protocol"), PROTOCOLS))
        if port.targetPort not in (None, 0, ""):
            errs.extend(_validate_port_number_or_name(port.targetPort, child(at, "targetPort")))
        if port.nodePort:
            if svc_type not in ("NodePort", "LoadBalancer"):
                errs.append(forbidden(child(at, "nodePort"), f"may not be used when `type` is '{svc_type}'"))
            else:
                errs.extend(_each(is_valid_port_num(port.nodePort), child(at, "nodePort"), port.nodePort))
        pair = (port.port, port.protocol or "TCP")
        if pair in port_protocols:
            errs.append(duplicate(at, {"port": port.port, "protocol": pair[1]}))
        port_protocols.add(pair)
    if spec.clusterIP and spec.clusterIP != "None" and not _is_ip(spec.clusterIP):
        errs.append(invalid("spec.clusterIP", spec.clusterIP, "must be empty, 'None', or a valid IP address"))
    for i, ip in enumerate(spec.clusterIPs or []):
        if ip != "None" and not _is_ip(ip):
            errs.append(invalid(index("spec.clusterIPs", i), ip, "must be empty, 'None', or a valid IP address"))
    if spec.clusterIPs and spec.clusterIP and spec.clusterIPs[0] != spec.clusterIP:
        errs.append(invalid("spec.clusterIPs", spec.clusterIPs, "first value must match `clusterIP`"))
    errs.extend(_supported(spec.sessionAffinity, "spec.sessionAffinity", SESSION_AFFINITIES))
    client_ip = spec.sessionAffinityConfig.clientIP if spec.sessionAffinityConfig else None
    if client_ip is not None and client_ip.timeoutSeconds is not None:
        if not 0 < client_ip.timeoutSeconds <= MAX_CLIENT_IP_TIMEOUT:
            errs.append(invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", client_ip.timeoutSeconds,
                                f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT}"))
    if spec.sessionAffinityConfig is not None and spec.sessionAffinity != "ClientIP":
        errs.append(invalid("spec.sessionAffinityConfig", spec.sessionAffinityConfig.to_dict(),
                            f"must not be set when session affinity is {spec.sessionAffinity}"))
    errs.extend(validate_labels(spec.selector, "spec.selector"))
    if spec.externalTrafficPolicy is not None:
        if svc_type not in ("NodePort", "LoadBalancer"):
            errs.append(invalid("spec.externalTrafficPolicy", spec.externalTrafficPolicy,
                                "may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
        else:
            errs.extend(_supported(spec.externalTrafficPolicy, "spec.externalTrafficPolicy", TRAFFIC_POLICIES))
    errs.extend(_supported(spec.internalTrafficPolicy, "spec.internalTrafficPolicy", TRAFFIC_POLICIES))
    for i, family in enumerate(spec.ipFamilies or []):
        errs.extend(_supported(family, index("spec.ipFamilies", i), IP_FAMILIES))
    if len(spec.ipFamilies or []) > 2:
        errs.append(too_many("spec.ipFamilies", len(spec.ipFamilies or []), 2))
    errs.extend(_supported(spec.ipFamilyPolicy, "spec.ipFamilyPolicy", IP_FAMILY_POLICIES))
    for i, ip in enumerate(spec.externalIPs or []):
        errs.extend(_each(is_valid_ip(ip), index("spec.externalIPs", i), ip))
    for i, cidr in enumerate(spec.loadBalancerSourceRanges or []):
        errs.extend(_each(is_valid_cidr(cidr.strip()), index("spec.loadBalancerSourceRanges", i), cidr))
    return errs


def validate_endpoints(ep: Endpoints) -> Errors:
    errs = validate_object_meta(ep.metadata, namespaced=True)
    for i, subset in enumerate(ep.subsets or []):
        at = index("subsets", i)
        for field in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(getattr(subset, field) or []):
                a_at = index(child(at, field), j)
                errs.extend(_each(is_valid_ip(address.ip), child(a_at, "ip"), address.ip))
                if address.hostname:
                    errs.extend(_each(is_dns1123_label(address.hostname), child(a_at, "hostname"), address.hostname))
        ports = subset.ports or []
        for j, port in enumerate(ports):
            p_at = index(child(at, "ports"), j)
            if len(ports) > 1 and not port.name:
                errs.append(required(child(p_at, "name")))
            elif port.name:
                errs.extend(_each(is_dns1123_label(port.name), child(p_at, "name"), port.name))
            errs.extend(_each(is_valid_port_num(port.port), child(p_at, "port"), port.port))
            errs.extend(_supported(port.protocol, child(p_at, "protocol"), PROTOCOLS))
    return errs


def _validate_data_keys(data: Mapping[str, str] | None, path: str) -> Errors:
    errs: Errors = []
    for k in data or {}:
        errs.extend(_each(is_config_map_key(k), key(path, k), k))
    return errs


def _decoded_size(data: Mapping[str, str] | None, path: str, errs: Errors) -> int:
    """Total bytes of base64 values; undecodable values are reported."""
    total = 0
    for k, v in (data or {}).items():
        try:
            total += len(base64.b64decode(v, validate=True))
        except (binascii.Error, ValueError):
            errs.append(invalid(key(path, k), "<value omitted>", "illegal base64 data"))
    return total


def validate_config_map(cm: ConfigMap) -> Errors:
    errs = validate_object_meta(cm.metadata, namespaced=True)
    errs.extend(_validate_data_keys(cm.data, "data"))
    errs.extend(_validate_data_keys(cm.binaryData, "binaryData"))
    for k in cm.binaryData or {}:
        if k in (cm.data or {}):
            errs.append(invalid(key("binaryData", k), k, "duplicate of key present in data"))
    size = sum(len(k) + len(v.encode()) for k, v in (cm.data or {}).items())
    size += sum(len(k) for k in cm.binaryData or {}) + _decoded_size(cm.binaryData, "binaryData", errs)
    if size > MAX_CONFIG_SIZE:
        errs.append(too_long("", "", MAX_CONFIG_SIZE))
    return errs


_SECRET_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def validate_secret(secret: Secret) -> Errors:
    errs = validate_object_meta(secret.metadata, namespaced=True)
    errs.extend(_validate_data_keys(secret.data, "data"))
    errs.extend(_validate_data_keys(secret.stringData, "stringData"))
    size = _decoded_size(secret.data, "data", errs)
    size += sum(len(v.encode()) for k, v in (secret.stringData or {}).items() if k not in (secret.data or {}))
    if size > MAX_CONFIG_SIZE:
        errs.append(too_long("data", "", MAX_CONFIG_SIZE))
    keys = set(secret.data or {}) | set(secret.stringData or {})
    for needed in _SECRET_REQUIRED_KEYS.get(secret.type or "Opaque", ()):
        if needed not in keys:
            errs.append(required(key("data", needed)))
    if secret.type == "kubernetes.io/service-account-token":
        annotation = "kubernetes.io/service-account.name"
        if not (secret.metadata.annotations or {}).get(annotation):
            errs.append(required(key("metadata.annotations", annotation)))
    if secret.type == "kubernetes.io/basic-auth" and not keys & {"username", "password"}:
        errs.append(required(key("data", "username")))
        errs.append(required(key("data", "password")))
    if secret.type is not None and not secret.type:
        errs.append(required("type"))
    return errs


def validate_service_account(sa: ServiceAccount) -> Errors:
    return validate_object_meta(sa.metadata, namespaced=True)


def validate_namespace(ns: Namespace) -> Errors:
    errs = validate_object_meta(ns.metadata, namespaced=False, name_validator=is_dns1123_label)
    for i, finalizer in enumerate((ns.spec.finalizers if ns.spec else None) or []):
        errs.extend(_each(is_qualified_name(finalizer), index("spec.finalizers", i), finalizer))
    return errs


def validate_node(node: Node) -> Errors:
    errs = validate_object_meta(node.metadata, namespaced=False)
    spec = node.spec
    if spec is None:
        return errs
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(spec.taints or []):
        at = index("spec.taints", i)
        errs.extend(_each(is_qualified_name(taint.key), child(at, "key"), taint.key))
        if taint.value:
            errs.extend(_each(is_valid_label_value(taint.value), child(at, "value"), taint.value))
        if not taint.effect:
            errs.append(required(child(at, "effect")))
        else:
            errs.extend(_supported(taint.effect, child(at, "effect"), TAINT_EFFECTS))
        pair = (taint.key, taint.effect)
        if pair in seen:
            errs.append(duplicate(at, taint.to_dict()))
        seen.add(pair)
    cidrs = spec.podCIDRs or []
    for i, cidr in enumerate(cidrs):
        errs.extend(_each(is_valid_cidr(cidr), index("spec.podCIDRs", i), cidr))
    if len(cidrs) > 2:
        errs.append(too_many("spec.podCIDRs", len(cidrs), 2))
    if spec.podCIDR and cidrs and cidrs[0] != spec.podCIDR:
        errs.append(invalid("spec.podCIDRs", cidrs, "first value must match `podCIDR`"))
    return errs


def _validate_access_modes(modes: list[str] | None, path: str) -> Errors:
    if not modes:
        return [required(path)]
    errs: Errors = []
    for mode in modes:
        errs.extend(_supported(mode, path, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def validate_persistent_volume(pv: PersistentVolume) -> Errors:
    errs = validate_object_meta(pv.metadata, namespaced=False)
    spec = pv.spec
    if spec is None:
        return [*errs, required("spec")]
    errs.extend(_validate_access_modes(spec.accessModes, "spec.accessModes"))
    if not spec.capacity or "storage" not in spec.capacity:
        errs.append(required("spec.capacity"))
    errs.extend(_validate_resource_list(spec.capacity, "spec.capacity"))
    errs.extend(_supported(spec.persistentVolumeReclaimPolicy, "spec.persistentVolumeReclaimPolicy",
                           RECLAIM_POLICIES))
    errs.extend(_supported(spec.volumeMode, "spec.volumeMode", VOLUME_MODES))
    sources = [name for name in PV_SOURCE_FIELDS if getattr(spec, name) is not None]
    if not sources:
        errs.append(required("spec", "must specify a volume type"))
    errs.extend(forbidden(child("spec", n), "may not specify more than 1 volume type") for n in sources[1:])
    if spec.hostPath is not None:
        errs.extend(_supported(spec.hostPath.type, "spec.hostPath.type", HOST_PATH_TYPES))
    if spec.local is not None and spec.nodeAffinity is None:
        errs.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    if spec.nodeAffinity is not None and spec.nodeAffinity.required is not None:
        errs.extend(_validate_node_selector(spec.nodeAffinity.required, "spec.nodeAffinity.required"))
    return errs


def validate_persistent_volume_claim(pvc: PersistentVolumeClaim) -> Errors:
    errs = validate_object_meta(pvc.metadata, namespaced=True)
    spec = pvc.spec
    if spec is None:
        return [*errs, required("spec")]
    errs.extend(_validate_access_modes(spec.accessModes, "spec.accessModes"))
    errs.extend(validate_label_selector(spec.selector, "spec.selector"))
    requests = spec.resources.requests if spec.resources else None
    storage = (requests or {}).get("storage")
    if storage is None:
        errs.append(required(key("spec.resources", "storage")))
    else:
        try:
            if parse_quantity(storage).nanos <= 0:
                errs.append(invalid("spec.resources.requests[storage]", storage, "must be greater than zero"))
        except ValueError as exc:
            errs.append(invalid("spec.resources.requests[storage]", storage, str(exc)))
    errs.extend(_validate_resource_list(requests, "spec.resources.requests"))
    errs.extend(_supported(spec.volumeMode, "spec.volumeMode", VOLUME_MODES))
    return errs


def validate_resource_quota(rq: ResourceQuota) -> Errors:
    errs = validate_object_meta(rq.metadata, namespaced=True)
    if rq.spec is None:
        return errs
    errs.extend(_validate_resource_list(rq.spec.hard, "spec.hard"))
    for i, scope in enumerate(rq.spec.scopes or []):
        errs.extend(_supported(scope, index("spec.scopes", i), QUOTA_SCOPES))
    if rq.spec.scopeSelector is not None:
        for i, req_ in enumerate(rq.spec.scopeSelector.matchExpressions or []):
            at = index("spec.scopeSelector.matchExpressions", i)
            errs.extend(_supported(req_.scopeName, child(at, "scopeName"), QUOTA_SCOPES))
            errs.extend(_supported(req_.operator, child(at, "operator"), ("DoesNotExist", "Exists", "In", "NotIn")))
    return errs


def validate_limit_range(lr: LimitRange) -> Errors:
    errs = validate_object_meta(lr.metadata, namespaced=True)
    if lr.spec is None:
        return [*errs, required("spec")]
    for i, item in enumerate(lr.spec.limits):
        at = index("spec.limits", i)
        errs.extend(_supported(item.type, child(at, "type"), LIMIT_TYPES))
        for name in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            errs.extend(_validate_resource_list(getattr(item, name), child(at, name)))
        if item.type == "Pod":
            if item.default:
                errs.append(forbidden(child(at, "default"), "may not be specified when `type` is 'Pod'"))
            if item.defaultRequest:
                errs.append(forbidden(child(at, "defaultRequest"), "may not be specified when `type` is 'Pod'"))
        for name, low in (item.min or {}).items():
            high = (item.max or {}).get(name)
            try:
                if high is not None and parse_quantity(low) > parse_quantity(high):
                    errs.append(invalid(key(child(at, "min"), name), low,
                                        f"min value {low} is greater than max value {high}"))
            except ValueError:
                continue
    return errs


def validate_replication_controller(rc: ReplicationController) -> Errors:
    errs = validate_object_meta(rc.metadata, namespaced=True)
    spec = rc.spec
    if spec is None:
        return [*errs, required("spec")]
    errs.extend(validate_nonnegative(spec.replicas, "spec.replicas"))
    errs.extend(validate_nonnegative(spec.minReadySeconds, "spec.minReadySeconds"))
    if not spec.selector:
        errs.append(required("spec.selector"))
    else:
        errs.extend(validate_labels(spec.selector, "spec.selector"))
    if spec.template is None:
        errs.append(required("spec.template"))
        return errs
    labels = (spec.template.metadata.labels if spec.template.metadata else None) or {}
    if spec.selector and any(labels.get(k) != v for k, v in spec.selector.items()):
        errs.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))
    errs.extend(validate_pod_template_spec(spec.template, "spec.template"))
    tpl_spec = spec.template.spec
    if tpl_spec is not None and tpl_spec.restartPolicy not in (None, "Always"):
        errs.append(not_supported("spec.template.spec.restartPolicy", tpl_spec.restartPolicy, ("Always",)))
    if tpl_spec is not None and tpl_spec.activeDeadlineSeconds is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in ReplicationController is not Supported"))
    return errs


def validate_event(event: Event) -> Errors:
    """Core/v1 events: the object must live in the event's namespace."""
    errs = validate_object_meta(event.metadata, namespaced=True)
    involved_ns = event.involvedObject.namespace or ""
    event_ns = event.metadata.namespace or ""
    if involved_ns and involved_ns != event_ns:
        errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    if not involved_ns and event_ns not in ("", "default"):
        errs.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    errs.extend(validate_nonnegative(event.count, "count"))
    return errs


def validate_binding(binding: Binding) -> Errors:
    errs: Errors = []
    if binding.target.kind and binding.target.kind != "Node":
        errs.append(not_supported("target.kind", binding.target.kind, ("Node", "<empty>")))
    if not binding.target.name:
        errs.append(required("target.name"))
    return errs


CORE_VALIDATORS: dict[str, Callable[[Any], Errors]] = {
    "Pod": validate_pod,
    "PodTemplate": validate_pod_template,
    "Service": validate_service,
    "Endpoints": validate_endpoints,
    "ConfigMap": validate_config_map,
    "Secret": validate_secret,
    "ServiceAccount": validate_service_account,
    "Namespace": validate_namespace,
    "Node": validate_node,
    "PersistentVolume": validate_persistent_volume,
    "PersistentVolumeClaim": validate_persistent_volume_claim,
    "ResourceQuota": validate_resource_quota,
    "LimitRange": validate_limit_range,
    "ReplicationController": validate_replication_controller,
    "Event": validate_event,
    "Binding": validate_binding,
}

__all__ = [
    "CORE_VALIDATORS",
    "is_config_map_key",
    "validate_pod_spec",
    "validate_pod_template_spec",
    *[fn.__name__ for fn in CORE_VALIDATORS.values()],
]
