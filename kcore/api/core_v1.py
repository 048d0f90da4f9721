"""core/v1: the legacy API group ("" group, version v1).

Pod and volume structures live in ``core_v1_pod`` and ``core_v1_volume`` to keep
files readable; everything is re-exported here, so callers import only
``kcore.api.core_v1``.
"""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.core_v1_pod import *  # noqa: F403 - re-export
from kcore.api.core_v1_pod import __all__ as _pod_all
from kcore.api.core_v1_pod import NodeSelector, PodTemplateSpec
from kcore.api.core_v1_volume import *  # noqa: F403 - re-export
from kcore.api.core_v1_volume import __all__ as _volume_all
from kcore.api.core_v1_volume import (
    AWSElasticBlockStoreVolumeSource,
    AzureDiskVolumeSource,
    AzureFilePersistentVolumeSource,
    CephFSPersistentVolumeSource,
    CinderPersistentVolumeSource,
    CSIPersistentVolumeSource,
    FCVolumeSource,
    FlexPersistentVolumeSource,
    FlockerVolumeSource,
    GCEPersistentDiskVolumeSource,
    GlusterfsPersistentVolumeSource,
    HostPathVolumeSource,
    ISCSIPersistentVolumeSource,
    LocalVolumeSource,
    NFSVolumeSource,
    PersistentVolumeClaimSpec,
    PhotonPersistentDiskVolumeSource,
    PortworxVolumeSource,
    QuantityStr,
    QuobyteVolumeSource,
    RBDPersistentVolumeSource,
    ResourceList,
    ScaleIOPersistentVolumeSource,
    StorageOSPersistentVolumeSource,
    VsphereVirtualDiskVolumeSource,
    opt,
    req,
)
from kcore.api.meta import (
    Condition,
    KubeObject,
    ListMeta,
    LocalObjectReference,
    ObjectReference,
)


# --- Namespace --------------------------------------------------------------


class NamespaceSpec(KubeModel):
    finalizers: list[str] | None = opt("Finalizers that must run before the namespace is removed.")


class NamespaceCondition(KubeModel):
    type: str
    status: str
    lastTransitionTime: str | None = None
    reason: str | None = None
    message: str | None = None


class NamespaceStatus(KubeModel):
    phase: str | None = opt("Active or Terminating.")
    conditions: list[NamespaceCondition] | None = None


class Namespace(KubeObject):
    """A scope for names; most kinds live inside one."""

    spec: NamespaceSpec | None = None
    status: NamespaceStatus | None = None


# --- Node ---------------------------------------------------------------------


class Taint(KubeModel):
    """Repels pods that do not tolerate it."""

    key: str
    value: str | None = None
    effect: str = req("NoSchedule, PreferNoSchedule or NoExecute.")
    timeAdded: str | None = None


class ConfigMapNodeConfigSource(KubeModel):
    namespace: str
    name: str
    uid: str | None = None
    resourceVersion: str | None = None
    kubeletConfigKey: str


class NodeConfigSource(KubeModel):
    configMap: ConfigMapNodeConfigSource | None = None


class NodeSpec(KubeModel):
    podCIDR: str | None = opt("Pod IP range assigned to the node.")
    podCIDRs: list[str] | None = opt("Pod IP ranges, one per family; the first equals podCIDR.")
    providerID: str | None = opt("Cloud provider ID: <ProviderName>://<ProviderSpecificNodeID>.")
    unschedulable: bool | None = opt("Keep new pods off the node (kubectl cordon).")
    taints: list[Taint] | None = opt("Taints of the node.")
    configSource: NodeConfigSource | None = opt("Deprecated dynamic kubelet config source.")
    externalID: str | None = opt("Deprecated.")


class NodeCondition(KubeModel):
    type: str = req("Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable.")
    status: str
    lastHeartbeatTime: str | None = None
    lastTransitionTime: str | None = None
    reason: str | None = None
    message: str | None = None


class NodeAddress(KubeModel):
    type: str = req("Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS.")
    address: str


class DaemonEndpoint(KubeModel):
    Port: int


class NodeDaemonEndpoints(KubeModel):
    kubeletEndpoint: DaemonEndpoint | None = None


class NodeSystemInfo(KubeModel):
    """Versions and IDs the kubelet reports about its machine."""

    machineID: str
    systemUUID: str
    bootID: str
    kernelVersion: str
    osImage: str
    containerRuntimeVersion: str
    kubeletVersion: str
    kubeProxyVersion: str
    operatingSystem: str
    architecture: str


class ContainerImage(KubeModel):
    names: list[str] | None = None
    sizeBytes: int | None = None


class AttachedVolume(KubeModel):
    name: str
    devicePath: str


class NodeConfigStatus(KubeModel):
    assigned: NodeConfigSource | None = None
    active: NodeConfigSource | None = None
    lastKnownGood: NodeConfigSource | None = None
    error: str | None = None


class NodeRuntimeHandlerFeatures(KubeModel):
    recursiveReadOnlyMounts: bool | None = None
    userNamespaces: bool | None = None


class NodeRuntimeHandler(KubeModel):
    name: str | None = None
    features: NodeRuntimeHandlerFeatures | None = None


class NodeFeatures(KubeModel):
    supplementalGroupsPolicy: bool | None = None


class NodeStatus(KubeModel):
    capacity: ResourceList | None = opt("Total resources of the node.")
    allocatable: ResourceList | None = opt("Resources available for pods.")
    phase: str | None = opt("Deprecated.")
    conditions: list[NodeCondition] | None = opt("Current observed conditions.")
    addresses: list[NodeAddress] | None = opt("Addresses reachable to the node.")
    daemonEndpoints: NodeDaemonEndpoints | None = opt("Ports of daemons on the node.")
    nodeInfo: NodeSystemInfo | None = opt("Versions and IDs of the node.")
    images: list[ContainerImage] | None = opt("Images present on the node.")
    volumesInUse: list[str] | None = None
    volumesAttached: list[AttachedVolume] | None = None
    config: NodeConfigStatus | None = None
    runtimeHandlers: list[NodeRuntimeHandler] | None = None
    features: NodeFeatures | None = None


class Node(KubeObject):
    """A worker machine; its kubelet registers it and reports status."""

    spec: NodeSpec | None = None
    status: NodeStatus | None = None


# --- Service / Endpoints --------------------------------------------------------


class ServicePort(KubeModel):
    name: str | None = opt("DNS label; required and unique when there is more than one port.")
    protocol: str | None = opt("TCP, UDP or SCTP; TCP when omitted.")
    appProtocol: str | None = opt("Application protocol hint, e.g. kubernetes.io/h2c.")
    port: int = req("Port exposed by the service.")
    targetPort: int | str | None = opt("Number or name of the port on the pods; port when omitted.")
    nodePort: int | None = opt("Port on every node for NodePort/LoadBalancer services.")


class ClientIPConfig(KubeModel):
    timeoutSeconds: int | None = None


class SessionAffinityConfig(KubeModel):
    clientIP: ClientIPConfig | None = None


class ServiceSpec(KubeModel):
    """How a service exposes a set of pods."""

    ports: list[ServicePort] | None = opt("Ports exposed by the service.")
    selector: dict[str, str] | None = opt("Route to pods with these labels.")
    clusterIP: str | None = opt("Virtual IP; 'None' for a headless service.")
    clusterIPs: list[str] | None = opt("Virtual IPs, one per family.")
    type: str | None = opt("ClusterIP, NodePort, LoadBalancer or ExternalName.")
    externalIPs: list[str] | None = opt("Extra IPs that route to the service.")
    sessionAffinity: str | None = opt("ClientIP or None.")
    loadBalancerIP: str | None = opt("Deprecated requested load balancer IP.")
    loadBalancerSourceRanges: list[str] | None = opt("Client CIDRs allowed by the load balancer.")
    externalName: str | None = opt("DNS name returned as a CNAME for ExternalName services.")
    externalTrafficPolicy: str | None = opt("Cluster or Local routing of external traffic.")
    healthCheckNodePort: int | None = opt("Health check node port for Local external traffic.")
    publishNotReadyAddresses: bool | None = opt("Publish endpoints of pods that are not ready.")
    sessionAffinityConfig: SessionAffinityConfig | None = opt("Session affinity settings.")
    ipFamilies: list[str] | None = opt("IPv4 and/or IPv6.")
    ipFamilyPolicy: str | None = opt("SingleStack, PreferDualStack or RequireDualStack.")
    allocateLoadBalancerNodePorts: bool | None = opt("Allocate node ports for LoadBalancer services.")
    loadBalancerClass: str | None = opt("Load balancer implementation to use.")
    internalTrafficPolicy: str | None = opt("Cluster or Local routing of in-cluster traffic.")
    trafficDistribution: str | None = opt("Routing preference, e.g. PreferClose.")


class PortStatus(KubeModel):
    port: int
    protocol: str
    error: str | None = None


class LoadBalancerIngress(KubeModel):
    ip: str | None = None
    hostname: str | None = None
    ipMode: str | None = None
    ports: list[PortStatus] | None = None


class LoadBalancerStatus(KubeModel):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(KubeModel):
    loadBalancer: LoadBalancerStatus | None = None
    conditions: list[Condition] | None = None


class Service(KubeObject):
    """A stable virtual IP and DNS name for a set of pods."""

    spec: ServiceSpec | None = None
    status: ServiceStatus | None = None


class EndpointAddress(KubeModel):
    ip: str
    hostname: str | None = None
    nodeName: str | None = None
    targetRef: ObjectReference | None = None


class EndpointPort(KubeModel):
    name: str | None = None
    port: int
    protocol: str | None = None
    appProtocol: str | None = None


class EndpointSubset(KubeModel):
    """Addresses times ports: every address serves every port."""

    addresses: list[EndpointAddress] | None = None
    notReadyAddresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(KubeObject):
    """The addresses behind a service."""

    subsets: list[EndpointSubset] | None = None


# --- config and identity -----------------------------------------------------


class ConfigMap(KubeObject):
    """Non-secret configuration as key-value pairs."""

    data: dict[str, str] | None = opt("UTF-8 values.")
    binaryData: dict[str, str] | None = opt("Base64-encoded binary values.")
    immutable: bool | None = opt("When true, data cannot change.")


class Secret(KubeObject):
    """Sensitive data as key-value pairs."""

    data: dict[str, str] | None = opt("Base64-encoded values.")
    stringData: dict[str, str] | None = opt("Write-only plain values merged into data.")
    type: str | None = opt("Opaque, kubernetes.io/tls, kubernetes.io/dockerconfigjson, ...")
    immutable: bool | None = opt("When true, data cannot change.")


class ServiceAccount(KubeObject):
    """An identity for processes that run in pods."""

    secrets: list[ObjectReference] | None = None
    imagePullSecrets: list[LocalObjectReference] | None = None
    automountServiceAccountToken: bool | None = None


# --- Event --------------------------------------------------------------------


class EventSource(KubeModel):
    component: str | None = None
    host: str | None = None


class EventSeries(KubeModel):
    count: int | None = None
    lastObservedTime: str | None = None


class Event(KubeObject):
    """A report of something that happened to an object (core/v1 shape)."""

    involvedObject: ObjectReference = req("The object this event is about.")
    reason: str | None = opt("Short machine-readable reason, e.g. Scheduled.")
    message: str | None = opt("Human-readable description.")
    source: EventSource | None = opt("Component reporting the event.")
    firstTimestamp: str | None = None
    lastTimestamp: str | None = None
    count: int | None = None
    type: str | None = opt("Normal or Warning.")
    eventTime: str | None = None
    series: EventSeries | None = None
    action: str | None = None
    related: ObjectReference | None = None
    reportingComponent: str | None = None
    reportingInstance: str | None = None


# --- storage ---------------------------------------------------------------------


class VolumeNodeAffinity(KubeModel):
    required: NodeSelector | None = None


class PersistentVolumeSpec(KubeModel):
    """A piece of storage and how it may be claimed."""

    capacity: ResourceList | None = opt("Size of the volume (storage).")
    gcePersistentDisk: GCEPersistentDiskVolumeSource | None = None
    awsElasticBlockStore: AWSElasticBlockStoreVolumeSource | None = None
    hostPath: HostPathVolumeSource | None = None
    glusterfs: GlusterfsPersistentVolumeSource | None = None
    nfs: NFSVolumeSource | None = None
    rbd: RBDPersistentVolumeSource | None = None
    iscsi: ISCSIPersistentVolumeSource | None = None
    cinder: CinderPersistentVolumeSource | None = None
    cephfs: CephFSPersistentVolumeSource | None = None
    fc: FCVolumeSource | None = None
    flocker: FlockerVolumeSource | None = None
    flexVolume: FlexPersistentVolumeSource | None = None
    azureFile: AzureFilePersistentVolumeSource | None = None
    vsphereVolume: VsphereVirtualDiskVolumeSource | None = None
    quobyte: QuobyteVolumeSource | None = None
    azureDisk: AzureDiskVolumeSource | None = None
    photonPersistentDisk: PhotonPersistentDiskVolumeSource | None = None
    portworxVolume: PortworxVolumeSource | None = None
    scaleIO: ScaleIOPersistentVolumeSource | None = None
    local: LocalVolumeSource | None = None
    storageos: StorageOSPersistentVolumeSource | None = None
    csi: CSIPersistentVolumeSource | None = None
    accessModes: list[str] | None = opt("ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod.")
    claimRef: ObjectReference | None = opt("The claim bound to this volume.")
    persistentVolumeReclaimPolicy: str | None = opt("Retain, Delete or Recycle.")
    storageClassName: str | None = None
    mountOptions: list[str] | None = None
    volumeMode: str | None = opt("Block or Filesystem.")
    nodeAffinity: VolumeNodeAffinity | None = opt("Nodes this volume can be accessed from.")
    volumeAttributesClassName: str | None = None


PV_SOURCE_FIELDS: tuple[str, ...] = (
    "gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd",
    "iscsi", "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile",
    "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
    "scaleIO", "local", "storageos", "csi",
)


class PersistentVolumeStatus(KubeModel):
    phase: str | None = opt("Pending, Available, Bound, Released or Failed.")
    message: str | None = None
    reason: str | None = None
    lastPhaseTransitionTime: str | None = None


class PersistentVolume(KubeObject):
    """Cluster storage provisioned by an administrator or a provisioner."""

    spec: PersistentVolumeSpec | None = None
    status: PersistentVolumeStatus | None = None


class PersistentVolumeClaimCondition(KubeModel):
    type: str
    status: str
    lastProbeTime: str | None = None
    lastTransitionTime: str | None = None
    reason: str | None = None
    message: str | None = None


class ModifyVolumeStatus(KubeModel):
    targetVolumeAttributesClassName: str | None = None
    status: str


class PersistentVolumeClaimStatus(KubeModel):
    phase: str | None = opt("Pending, Bound or Lost.")
    accessModes: list[str] | None = None
    capacity: ResourceList | None = None
    conditions: list[PersistentVolumeClaimCondition] | None = None
    allocatedResources: ResourceList | None = None
    allocatedResourceStatuses: dict[str, str] | None = None
    currentVolumeAttributesClassName: str | None = None
    modifyVolumeStatus: ModifyVolumeStatus | None = None


class PersistentVolumeClaim(KubeObject):
    """A user's request for storage."""

    spec: PersistentVolumeClaimSpec | None = None
    status: PersistentVolumeClaimStatus | None = None


# --- policy ----------------------------------------------------------------------


class ScopedResourceSelectorRequirement(KubeModel):
    scopeName: str
    operator: str
    values: list[str] | None = None


class ScopeSelector(KubeModel):
    matchExpressions: list[ScopedResourceSelectorRequirement] | None = None


class ResourceQuotaSpec(KubeModel):
    hard: ResourceList | None = opt("Hard limit per named resource.")
    scopes: list[str] | None = opt("Filters on the objects counted.")
    scopeSelector: ScopeSelector | None = None


class ResourceQuotaStatus(KubeModel):
    hard: ResourceList | None = None
    used: ResourceList | None = None


class ResourceQuota(KubeObject):
    """Caps aggregate resource consumption in a namespace."""

    spec: ResourceQuotaSpec | None = None
    status: ResourceQuotaStatus | None = None


class LimitRangeItem(KubeModel):
    type: str = req("Pod, Container or PersistentVolumeClaim.")
    max: ResourceList | None = None
    min: ResourceList | None = None
    default: ResourceList | None = opt("Default limits.")
    defaultRequest: ResourceList | None = opt("Default requests.")
    maxLimitRequestRatio: ResourceList | None = None


class LimitRangeSpec(KubeModel):
    limits: list[LimitRangeItem]


class LimitRange(KubeObject):
    """Per-object resource constraints and defaults in a namespace."""

    spec: LimitRangeSpec | None = None


# --- ReplicationController, Binding ---------------------------------------------


class ReplicationControllerSpec(KubeModel):
    replicas: int | None = opt("Desired number of pods; default 1.")
    minReadySeconds: int | None = None
    selector: dict[str, str] | None = opt("Labels of the pods counted; template labels when omitted.")
    template: PodTemplateSpec | None = opt("Pods created when too few exist.")


class ReplicationControllerCondition(KubeModel):
    type: str
    status: str
    lastTransitionTime: str | None = None
    reason: str | None = None
    message: str | None = None


class ReplicationControllerStatus(KubeModel):
    replicas: int
    fullyLabeledReplicas: int | None = None
    readyReplicas: int | None = None
    availableReplicas: int | None = None
    observedGeneration: int | None = None
    conditions: list[ReplicationControllerCondition] | None = None


class ReplicationController(KubeObject):
    """Keeps a number of pod replicas running (predecessor of ReplicaSet)."""

    spec: ReplicationControllerSpec | None = None
    status: ReplicationControllerStatus | None = None


class Binding(KubeObject):
    """Binds a pod to a node (the pods/binding subresource)."""

    target: ObjectReference = req("The node the pod is bound to.")


class NamespaceList(KubeModel):
    """A list of namespaces."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Namespace]


class NodeList(KubeModel):
    """A list of nodes."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Node]


class ServiceList(KubeModel):
    """A list of services."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Service]


class EndpointsList(KubeModel):
    """A list of endpoints."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Endpoints]


class ConfigMapList(KubeModel):
    """A list of config maps."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ConfigMap]


class SecretList(KubeModel):
    """A list of secrets."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Secret]


class ServiceAccountList(KubeModel):
    """A list of service accounts."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ServiceAccount]


class EventList(KubeModel):
    """A list of events."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Event]


class PersistentVolumeList(KubeModel):
    """A list of persistent volumes."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[PersistentVolume]


class PersistentVolumeClaimList(KubeModel):
    """A list of claims."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[PersistentVolumeClaim]


class ResourceQuotaList(KubeModel):
    """A list of resource quotas."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ResourceQuota]


class LimitRangeList(KubeModel):
    """A list of limit ranges."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[LimitRange]


class ReplicationControllerList(KubeModel):
    """A list of replication controllers."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ReplicationController]


# Top-level kinds of core/v1 by kind name (lists are found as KIND + "List").
CORE_KINDS: dict[str, type[KubeObject]] = {
    cls.__name__: cls
    for cls in (
        Namespace, Node, Pod, PodTemplate, Service, Endpoints, ConfigMap, Secret,  # noqa: F405
        ServiceAccount, Event, PersistentVolume, PersistentVolumeClaim, ResourceQuota,
        LimitRange, ReplicationController, Binding,
    )
}

__all__ = [
    *_pod_all,
    *_volume_all,
    "CORE_KINDS",
    "PV_SOURCE_FIELDS",
    "QuantityStr",
    *sorted(
        name for name, value in list(globals().items())
        if isinstance(value, type) and issubclass(value, KubeModel) and value.__module__ == __name__
    ),
]
