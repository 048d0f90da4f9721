"""core/v1 volume sources, shared by pod volumes and PersistentVolumes.

Kept apart from the pod module because PersistentVolumeSpec reuses most of
these sources and the pod module would otherwise grow past readable size.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.meta import LabelSelector, LocalObjectReference, ObjectMeta, ObjectReference

from kcore.api.quantity import QuantityStr

ResourceList = dict[str, QuantityStr]
"""A map of resource name (cpu, memory, ...) to quantity."""

IntOrString = int | str
"""Kubernetes' intstr.IntOrString: a port number or a named port."""


def opt(description: str) -> Any:
    """An optional field (omitted when None) with a description for OpenAPI."""
    return Field(default=None, description=description)


def req(description: str) -> Any:
    """A field Kubernetes' OpenAPI marks required."""
    return Field(description=description)


class SecretReference(KubeModel):
    """Names a secret in any namespace (PersistentVolume sources)."""

    name: str | None = None
    namespace: str | None = None


class KeyToPath(KubeModel):
    """Projects one key of a ConfigMap or Secret to a relative file path."""

    key: str
    path: str
    mode: int | None = None


class ObjectFieldSelector(KubeModel):
    """Selects a field of the pod (metadata.name, status.podIP, ...)."""

    apiVersion: str | None = None
    fieldPath: str


class ResourceFieldSelector(KubeModel):
    """Selects a container's resource (limits.cpu, requests.memory, ...)."""

    containerName: str | None = None
    resource: str
    divisor: QuantityStr | None = None


class DownwardAPIVolumeFile(KubeModel):
    path: str
    fieldRef: ObjectFieldSelector | None = None
    resourceFieldRef: ResourceFieldSelector | None = None
    mode: int | None = None


class HostPathVolumeSource(KubeModel):
    """A file or directory of the node's filesystem."""

    path: str
    type: str | None = None


class EmptyDirVolumeSource(KubeModel):
    """A scratch directory that lives as long as the pod."""

    medium: str | None = None
    sizeLimit: QuantityStr | None = None


class GCEPersistentDiskVolumeSource(KubeModel):
    pdName: str
    fsType: str | None = None
    partition: int | None = None
    readOnly: bool | None = None


class AWSElasticBlockStoreVolumeSource(KubeModel):
    volumeID: str
    fsType: str | None = None
    partition: int | None = None
    readOnly: bool | None = None


class GitRepoVolumeSource(KubeModel):
    repository: str
    revision: str | None = None
    directory: str | None = None


class SecretVolumeSource(KubeModel):
    """Populates a volume from a Secret's keys."""

    secretName: str | None = None
    items: list[KeyToPath] | None = None
    defaultMode: int | None = None
    optional: bool | None = None


class NFSVolumeSource(KubeModel):
    server: str
    path: str
    readOnly: bool | None = None


class ISCSIVolumeSource(KubeModel):
    targetPortal: str
    iqn: str
    lun: int
    iscsiInterface: str | None = None
    fsType: str | None = None
    readOnly: bool | None = None
    portals: list[str] | None = None
    chapAuthDiscovery: bool | None = None
    chapAuthSession: bool | None = None
    secretRef: LocalObjectReference | None = None
    initiatorName: str | None = None


class ISCSIPersistentVolumeSource(KubeModel):
    targetPortal: str
    iqn: str
    lun: int
    iscsiInterface: str | None = None
    fsType: str | None = None
    readOnly: bool | None = None
    portals: list[str] | None = None
    chapAuthDiscovery: bool | None = None
    chapAuthSession: bool | None = None
    secretRef: SecretReference | None = None
    initiatorName: str | None = None


class GlusterfsVolumeSource(KubeModel):
    endpoints: str
    path: str
    readOnly: bool | None = None


class GlusterfsPersistentVolumeSource(KubeModel):
    endpoints: str
    path: str
    readOnly: bool | None = None
    endpointsNamespace: str | None = None


class PersistentVolumeClaimVolumeSource(KubeModel):
    """Mounts the volume bound to a claim in the pod's namespace."""

    claimName: str
    readOnly: bool | None = None


class RBDVolumeSource(KubeModel):
    monitors: list[str]
    image: str
    fsType: str | None = None
    pool: str | None = None
    user: str | None = None
    keyring: str | None = None
    secretRef: LocalObjectReference | None = None
    readOnly: bool | None = None


class RBDPersistentVolumeSource(KubeModel):
    monitors: list[str]
    image: str
    fsType: str | None = None
    pool: str | None = None
    user: str | None = None
    keyring: str | None = None
    secretRef: SecretReference | None = None
    readOnly: bool | None = None


class FlexVolumeSource(KubeModel):
    driver: str
    fsType: str | None = None
    secretRef: LocalObjectReference | None = None
    readOnly: bool | None = None
    options: dict[str, str] | None = None


class FlexPersistentVolumeSource(KubeModel):
    driver: str
    fsType: str | None = None
    secretRef: SecretReference | None = None
    readOnly: bool | None = None
    options: dict[str, str] | None = None


class CinderVolumeSource(KubeModel):
    volumeID: str
    fsType: str | None = None
    readOnly: bool | None = None
    secretRef: LocalObjectReference | None = None


class CinderPersistentVolumeSource(KubeModel):
    volumeID: str
    fsType: str | None = None
    readOnly: bool | None = None
    secretRef: SecretReference | None = None


class CephFSVolumeSource(KubeModel):
    monitors: list[str]
    path: str | None = None
    user: str | None = None
    secretFile: str | None = None
    secretRef: LocalObjectReference | None = None
    readOnly: bool | None = None


class CephFSPersistentVolumeSource(KubeModel):
    monitors: list[str]
    path: str | None = None
    user: str | None = None
    secretFile: str | None = None
    secretRef: SecretReference | None = None
    readOnly: bool | None = None


class FlockerVolumeSource(KubeModel):
    datasetName: str | None = None
    datasetUUID: str | None = None


class DownwardAPIVolumeSource(KubeModel):
    """Exposes pod fields and container resources as files."""

    items: list[DownwardAPIVolumeFile] | None = None
    defaultMode: int | None = None


class FCVolumeSource(KubeModel):
    targetWWNs: list[str] | None = None
    lun: int | None = None
    fsType: str | None = None
    readOnly: bool | None = None
    wwids: list[str] | None = None


class AzureFileVolumeSource(KubeModel):
    secretName: str
    shareName: str
    readOnly: bool | None = None


class AzureFilePersistentVolumeSource(KubeModel):
    secretName: str
    shareName: str
    readOnly: bool | None = None
    secretNamespace: str | None = None


class ConfigMapVolumeSource(KubeModel):
    """Populates a volume from a ConfigMap's keys."""

    name: str | None = None
    items: list[KeyToPath] | None = None
    defaultMode: int | None = None
    optional: bool | None = None


class VsphereVirtualDiskVolumeSource(KubeModel):
    volumePath: str
    fsType: str | None = None
    storagePolicyName: str | None = None
    storagePolicyID: str | None = None


class QuobyteVolumeSource(KubeModel):
    registry: str
    volume: str
    readOnly: bool | None = None
    user: str | None = None
    group: str | None = None
    tenant: str | None = None


class AzureDiskVolumeSource(KubeModel):
    diskName: str
    diskURI: str
    cachingMode: str | None = None
    fsType: str | None = None
    readOnly: bool | None = None
    kind: str | None = None


class PhotonPersistentDiskVolumeSource(KubeModel):
    pdID: str
    fsType: str | None = None


class ConfigMapProjection(KubeModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class SecretProjection(KubeModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class DownwardAPIProjection(KubeModel):
    items: list[DownwardAPIVolumeFile] | None = None


class ServiceAccountTokenProjection(KubeModel):
    """A bound service-account token written to a file and refreshed."""

    audience: str | None = None
    expirationSeconds: int | None = None
    path: str


class ClusterTrustBundleProjection(KubeModel):
    name: str | None = None
    signerName: str | None = None
    labelSelector: LabelSelector | None = None
    optional: bool | None = None
    path: str


class VolumeProjection(KubeModel):
    """One source of a projected volume; exactly one member is set."""

    secret: SecretProjection | None = None
    downwardAPI: DownwardAPIProjection | None = None
    configMap: ConfigMapProjection | None = None
    serviceAccountToken: ServiceAccountTokenProjection | None = None
    clusterTrustBundle: ClusterTrustBundleProjection | None = None


class ProjectedVolumeSource(KubeModel):
    """Several secret/configMap/downwardAPI/token sources in one directory."""

    sources: list[VolumeProjection] | None = None
    defaultMode: int | None = None


class PortworxVolumeSource(KubeModel):
    volumeID: str
    fsType: str | None = None
    readOnly: bool | None = None


class ScaleIOVolumeSource(KubeModel):
    gateway: str
    system: str
    secretRef: LocalObjectReference
    sslEnabled: bool | None = None
    protectionDomain: str | None = None
    storagePool: str | None = None
    storageMode: str | None = None
    volumeName: str | None = None
    fsType: str | None = None
    readOnly: bool | None = None


class ScaleIOPersistentVolumeSource(KubeModel):
    gateway: str
    system: str
    secretRef: SecretReference
    sslEnabled: bool | None = None
    protectionDomain: str | None = None
    storagePool: str | None = None
    storageMode: str | None = None
    volumeName: str | None = None
    fsType: str | None = None
    readOnly: bool | None = None


class StorageOSVolumeSource(KubeModel):
    volumeName: str | None = None
    volumeNamespace: str | None = None
    fsType: str | None = None
    readOnly: bool | None = None
    secretRef: LocalObjectReference | None = None


class StorageOSPersistentVolumeSource(KubeModel):
    volumeName: str | None = None
    volumeNamespace: str | None = None
    fsType: str | None = None
    readOnly: bool | None = None
    secretRef: ObjectReference | None = None


class CSIVolumeSource(KubeModel):
    """An inline ephemeral volume served by a CSI driver."""

    driver: str
    readOnly: bool | None = None
    fsType: str | None = None
    volumeAttributes: dict[str, str] | None = None
    nodePublishSecretRef: LocalObjectReference | None = None


class CSIPersistentVolumeSource(KubeModel):
    driver: str
    volumeHandle: str
    readOnly: bool | None = None
    fsType: str | None = None
    volumeAttributes: dict[str, str] | None = None
    controllerPublishSecretRef: SecretReference | None = None
    nodeStageSecretRef: SecretReference | None = None
    nodePublishSecretRef: SecretReference | None = None
    controllerExpandSecretRef: SecretReference | None = None
    nodeExpandSecretRef: SecretReference | None = None


class LocalVolumeSource(KubeModel):
    path: str
    fsType: str | None = None


class ImageVolumeSource(KubeModel):
    """An OCI image or artifact mounted read-only (v1.31+)."""

    reference: str | None = None
    pullPolicy: str | None = None


class TypedLocalObjectReference(KubeModel):
    apiGroup: str | None = None
    kind: str
    name: str


class TypedObjectReference(KubeModel):
    apiGroup: str | None = None
    kind: str
    name: str
    namespace: str | None = None


class VolumeResourceRequirements(KubeModel):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class PersistentVolumeClaimSpec(KubeModel):
    """What storage a claim asks for."""

    accessModes: list[str] | None = opt("Desired access modes: ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod.")
    selector: LabelSelector | None = opt("Label query over volumes to consider for binding.")
    resources: VolumeResourceRequirements | None = opt("Minimum resources the volume should have (requests.storage).")
    volumeName: str | None = opt("Binding reference to the PersistentVolume backing this claim.")
    storageClassName: str | None = opt("Name of the StorageClass required by the claim.")
    volumeMode: str | None = opt("Block or Filesystem; Filesystem when omitted.")
    dataSource: TypedLocalObjectReference | None = opt("Populate the volume from a snapshot or another claim.")
    dataSourceRef: TypedObjectReference | None = opt("Populate the volume from any object of a volume populator.")
    volumeAttributesClassName: str | None = opt("VolumeAttributesClass used by this claim.")


class PersistentVolumeClaimTemplate(KubeModel):
    metadata: ObjectMeta | None = None
    spec: PersistentVolumeClaimSpec


class EphemeralVolumeSource(KubeModel):
    """A claim created with the pod and deleted with it."""

    volumeClaimTemplate: PersistentVolumeClaimTemplate | None = None


# Pod volume source members, in Kubernetes' order; a Volume sets exactly one.
VOLUME_SOURCE_FIELDS: tuple[str, ...] = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo",
    "secret", "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd",
    "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc", "azureFile",
    "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
    "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
)


class Volume(KubeModel):
    """A named volume that containers of the pod can mount; exactly one source."""

    name: str = req("Volume name, a DNS-1123 label unique within the pod.")
    hostPath: HostPathVolumeSource | None = opt("A file or directory on the node.")
    emptyDir: EmptyDirVolumeSource | None = opt("A temporary directory that shares the pod's lifetime.")
    gcePersistentDisk: GCEPersistentDiskVolumeSource | None = None
    awsElasticBlockStore: AWSElasticBlockStoreVolumeSource | None = None
    gitRepo: GitRepoVolumeSource | None = None
    secret: SecretVolumeSource | None = opt("A Secret's keys as files.")
    nfs: NFSVolumeSource | None = opt("An NFS export.")
    iscsi: ISCSIVolumeSource | None = None
    glusterfs: GlusterfsVolumeSource | None = None
    persistentVolumeClaim: PersistentVolumeClaimVolumeSource | None = opt("The volume bound to a claim in this namespace.")
    rbd: RBDVolumeSource | None = None
    flexVolume: FlexVolumeSource | None = None
    cinder: CinderVolumeSource | None = None
    cephfs: CephFSVolumeSource | None = None
    flocker: FlockerVolumeSource | None = None
    downwardAPI: DownwardAPIVolumeSource | None = opt("Pod metadata and resources as files.")
    fc: FCVolumeSource | None = None
    azureFile: AzureFileVolumeSource | None = None
    configMap: ConfigMapVolumeSource | None = opt("A ConfigMap's keys as files.")
    vsphereVolume: VsphereVirtualDiskVolumeSource | None = None
    quobyte: QuobyteVolumeSource | None = None
    azureDisk: AzureDiskVolumeSource | None = None
    photonPersistentDisk: PhotonPersistentDiskVolumeSource | None = None
    projected: ProjectedVolumeSource | None = opt("Several sources projected into one directory.")
    portworxVolume: PortworxVolumeSource | None = None
    scaleIO: ScaleIOVolumeSource | None = None
    storageos: StorageOSVolumeSource | None = None
    csi: CSIVolumeSource | None = opt("An inline volume served by a CSI driver.")
    ephemeral: EphemeralVolumeSource | None = opt("A claim created and deleted with the pod.")
    image: ImageVolumeSource | None = opt("An OCI image mounted read-only.")


class VolumeMount(KubeModel):
    """Where a volume appears inside a container."""

    name: str = req("Name of a volume of the pod.")
    readOnly: bool | None = opt("Mount read-only; false when omitted.")
    recursiveReadOnly: str | None = opt("Disabled, IfPossible or Enabled: make submounts read-only too.")
    mountPath: str = req("Path inside the container; must not contain ':'.")
    subPath: str | None = opt("Sub-path inside the volume to mount instead of its root.")
    mountPropagation: str | None = opt("None, HostToContainer or Bidirectional.")
    subPathExpr: str | None = opt("Like subPath, with $(VAR) expanded from the container's environment.")


class VolumeDevice(KubeModel):
    """A raw block volume mapped into a container."""

    name: str
    devicePath: str


__all__ = ["IntOrString", "ResourceList", "VOLUME_SOURCE_FIELDS", *sorted(
    name for name, value in list(globals().items())
    if isinstance(value, type) and issubclass(value, KubeModel) and value.__module__ == __name__
)]
