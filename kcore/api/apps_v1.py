"""apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet and ControllerRevision.

Field names, optionality and nesting follow the Kubernetes v1.32 API so manifests
from the Kubernetes documentation apply unchanged and round-trip byte for byte.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.core_v1 import PersistentVolumeClaim, PodTemplateSpec
from kcore.api.meta import KubeObject, LabelSelector, ListMeta

GROUP = "apps"
API_VERSION = "apps/v1"

IntOrString = int | str
"""intstr.IntOrString: an absolute number (``1``) or a percentage (``"25%"``)."""


class WorkloadCondition(KubeModel):
    """The condition shape shared by ReplicaSet, StatefulSet and DaemonSet."""

    type: str = Field(description="Type of the condition.")
    status: str = Field(description='"True", "False" or "Unknown".')
    lastTransitionTime: str | None = Field(default=None, description="Last time the status changed.")
    reason: str | None = Field(default=None, description="Machine-readable reason for the last transition.")
    message: str | None = Field(default=None, description="Human-readable details.")


# ---------------------------------------------------------------- Deployment


class RollingUpdateDeployment(KubeModel):
    """Limits on how many pods may be above or below the desired count during a rollout."""

    maxUnavailable: IntOrString | None = Field(
        default=None,
        description=(
            'Pods that may be unavailable during the update: a number or a percentage ("25%", the default), '
            "rounded down."
        ),
    )
    maxSurge: IntOrString | None = Field(
        default=None,
        description=(
            'Pods that may be created above the desired count: a number or a percentage ("25%", the default), '
            "rounded up."
        ),
    )


class DeploymentStrategy(KubeModel):
    """How old pods are replaced by new ones."""

    type: str | None = Field(
        default=None,
        description=(
            '"RollingUpdate" (default) replaces pods gradually; '
            '"Recreate" kills all old pods before creating new ones.'
        ),
    )
    rollingUpdate: RollingUpdateDeployment | None = Field(
        default=None, description="Rolling update parameters; only with type RollingUpdate."
    )


class DeploymentSpec(KubeModel):
    """The desired state of a Deployment."""

    replicas: int | None = Field(default=None, description="Number of desired pods; defaults to 1.")
    selector: LabelSelector = Field(
        description="Label selector for the pods; must match the template's labels and is immutable."
    )
    template: PodTemplateSpec = Field(description="The pod template; changing it triggers a rollout.")
    strategy: DeploymentStrategy | None = Field(
        default=None, description="The strategy used to replace existing pods with new ones."
    )
    minReadySeconds: int | None = Field(
        default=None, description="Seconds a new pod must be ready before it counts as available; default 0."
    )
    revisionHistoryLimit: int | None = Field(
        default=None, description="Old ReplicaSets kept for rollback; defaults to 10."
    )
    paused: bool | None = Field(default=None, description="Pauses the rollout of template changes.")
    progressDeadlineSeconds: int | None = Field(
        default=None,
        description="Seconds without progress before the rollout is reported failed; defaults to 600.",
    )


class DeploymentCondition(KubeModel):
    """A Deployment condition: Available, Progressing or ReplicaFailure."""

    type: str = Field(description='"Available", "Progressing" or "ReplicaFailure".')
    status: str = Field(description='"True", "False" or "Unknown".')
    lastUpdateTime: str | None = Field(default=None, description="Last time the condition was updated.")
    lastTransitionTime: str | None = Field(default=None, description="Last time the status changed.")
    reason: str | None = None
    message: str | None = None


class DeploymentStatus(KubeModel):
    """The observed state of a Deployment, written by the deployment controller."""

    observedGeneration: int | None = Field(default=None, description="Generation last acted on by the controller.")
    replicas: int | None = Field(default=None, description="Non-terminated pods targeted by the Deployment.")
    updatedReplicas: int | None = Field(default=None, description="Pods with the current template.")
    readyReplicas: int | None = Field(default=None, description="Pods with a Ready condition.")
    availableReplicas: int | None = Field(default=None, description="Pods ready for at least minReadySeconds.")
    unavailableReplicas: int | None = Field(default=None, description="Pods still needed for 100% availability.")
    conditions: list[DeploymentCondition] | None = Field(default=None, description="Latest observations.")
    collisionCount: int | None = Field(
        default=None, description="Counts hash collisions of ReplicaSet names, to make them unique."
    )


class Deployment(KubeObject):
    """Declarative updates for Pods and ReplicaSets: keeps replicas of a template running and rolls out changes."""

    spec: DeploymentSpec | None = Field(default=None, description="Desired behaviour of the Deployment.")
    status: DeploymentStatus | None = Field(default=None, description="Most recently observed status.")


class DeploymentList(KubeModel):
    """A list of Deployment objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Deployment]


# ---------------------------------------------------------------- ReplicaSet


class ReplicaSetSpec(KubeModel):
    """The desired state of a ReplicaSet."""

    replicas: int | None = Field(default=None, description="Number of desired pods; defaults to 1.")
    minReadySeconds: int | None = Field(
        default=None, description="Seconds a new pod must be ready before it counts as available."
    )
    selector: LabelSelector = Field(description="Label selector for the pods; must match the template's labels.")
    template: PodTemplateSpec | None = Field(default=None, description="Template of the pods created.")


class ReplicaSetStatus(KubeModel):
    """The observed state of a ReplicaSet."""

    replicas: int = Field(default=0, description="Most recently observed number of replicas.")
    fullyLabeledReplicas: int | None = Field(
        default=None, description="Pods whose labels match the template's labels."
    )
    readyReplicas: int | None = None
    availableReplicas: int | None = None
    observedGeneration: int | None = None
    conditions: list[WorkloadCondition] | None = None


class ReplicaSet(KubeObject):
    """Keeps a fixed number of identical pods running; normally owned by a Deployment."""

    spec: ReplicaSetSpec | None = Field(default=None, description="Desired behaviour of the ReplicaSet.")
    status: ReplicaSetStatus | None = Field(default=None, description="Most recently observed status.")


class ReplicaSetList(KubeModel):
    """A list of ReplicaSet objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ReplicaSet]


# ---------------------------------------------------------------- StatefulSet


class RollingUpdateStatefulSetStrategy(KubeModel):
    """Parameters of a StatefulSet rolling update."""

    partition: int | None = Field(
        default=None, description="Only pods with an ordinal >= partition are updated; defaults to 0."
    )
    maxUnavailable: IntOrString | None = Field(
        default=None, description="Pods that may be unavailable during the update (beta); defaults to 1."
    )


class StatefulSetUpdateStrategy(KubeModel):
    """How the StatefulSet controller updates pods after a template change."""

    type: str | None = Field(
        default=None, description='"RollingUpdate" (default) or "OnDelete" (update only when a pod is deleted).'
    )
    rollingUpdate: RollingUpdateStatefulSetStrategy | None = None


class StatefulSetPersistentVolumeClaimRetentionPolicy(KubeModel):
    """What happens to PVCs from volumeClaimTemplates when the set is deleted or scaled down."""

    whenDeleted: str | None = Field(default=None, description='"Retain" (default) or "Delete".')
    whenScaled: str | None = Field(default=None, description='"Retain" (default) or "Delete".')


class StatefulSetOrdinals(KubeModel):
    """The numbering of replica indices."""

    start: int | None = Field(default=None, description="Index of the first replica; defaults to 0.")


class StatefulSetSpec(KubeModel):
    """The desired state of a StatefulSet."""

    replicas: int | None = Field(default=None, description="Number of desired pods; defaults to 1.")
    selector: LabelSelector = Field(description="Label selector for the pods; must match the template's labels.")
    template: PodTemplateSpec = Field(description="Template of the pods; each gets a stable identity.")
    volumeClaimTemplates: list[PersistentVolumeClaim] | None = Field(
        default=None, description="Claims every pod gets, one PVC per template per pod, named <claim>-<pod>."
    )
    # Required in v1.32's OpenAPI but made optional in v1.33; accepting it missing is the lenient choice.
    serviceName: str | None = Field(
        default=None,
        description="Headless service governing the set; pods get DNS names <pod>.<serviceName>.<ns>.svc.",
    )
    podManagementPolicy: str | None = Field(
        default=None,
        description='"OrderedReady" (default: one pod at a time, in order) or "Parallel".',
    )
    updateStrategy: StatefulSetUpdateStrategy | None = Field(
        default=None, description="How pods are updated after a template change."
    )
    revisionHistoryLimit: int | None = Field(
        default=None, description="ControllerRevisions kept in history; defaults to 10."
    )
    minReadySeconds: int | None = Field(
        default=None, description="Seconds a new pod must be ready before it counts as available."
    )
    persistentVolumeClaimRetentionPolicy: StatefulSetPersistentVolumeClaimRetentionPolicy | None = Field(
        default=None, description="Lifecycle of the PVCs created from volumeClaimTemplates."
    )
    ordinals: StatefulSetOrdinals | None = Field(default=None, description="Numbering of replica indices.")


class StatefulSetStatus(KubeModel):
    """The observed state of a StatefulSet."""

    observedGeneration: int | None = None
    replicas: int = Field(default=0, description="Pods created by the controller.")
    readyReplicas: int | None = None
    currentReplicas: int | None = Field(default=None, description="Pods at currentRevision.")
    updatedReplicas: int | None = Field(default=None, description="Pods at updateRevision.")
    currentRevision: str | None = None
    updateRevision: str | None = None
    collisionCount: int | None = None
    conditions: list[WorkloadCondition] | None = None
    availableReplicas: int | None = None


class StatefulSet(KubeObject):
    """Pods with stable identities (ordinal names, DNS, per-pod storage), created and updated in order."""

    spec: StatefulSetSpec | None = Field(default=None, description="Desired identities of pods in the set.")
    status: StatefulSetStatus | None = Field(default=None, description="Most recently observed status.")


class StatefulSetList(KubeModel):
    """A list of StatefulSet objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[StatefulSet]


# ---------------------------------------------------------------- DaemonSet


class RollingUpdateDaemonSet(KubeModel):
    """Parameters of a DaemonSet rolling update."""

    maxUnavailable: IntOrString | None = Field(
        default=None, description="Nodes whose pod may be unavailable during the update; defaults to 1."
    )
    maxSurge: IntOrString | None = Field(
        default=None, description="Nodes that may run an old and a new pod at once; defaults to 0."
    )


class DaemonSetUpdateStrategy(KubeModel):
    """How the DaemonSet controller replaces pods after a template change."""

    type: str | None = Field(default=None, description='"RollingUpdate" (default) or "OnDelete".')
    rollingUpdate: RollingUpdateDaemonSet | None = None


class DaemonSetSpec(KubeModel):
    """The desired state of a DaemonSet."""

    selector: LabelSelector = Field(description="Label selector for the pods; must match the template's labels.")
    template: PodTemplateSpec = Field(description="Template of the pod run on every eligible node.")
    updateStrategy: DaemonSetUpdateStrategy | None = Field(
        default=None, description="How pods are replaced after a template change."
    )
    minReadySeconds: int | None = Field(
        default=None, description="Seconds a new pod must be ready before it counts as available."
    )
    revisionHistoryLimit: int | None = Field(
        default=None, description="ControllerRevisions kept in history; defaults to 10."
    )


class DaemonSetStatus(KubeModel):
    """The observed state of a DaemonSet."""

    currentNumberScheduled: int = Field(default=0, description="Nodes running a daemon pod that should.")
    numberMisscheduled: int = Field(default=0, description="Nodes running a daemon pod that should not.")
    desiredNumberScheduled: int = Field(default=0, description="Nodes that should run the daemon pod.")
    numberReady: int = Field(default=0, description="Nodes whose daemon pod is ready.")
    observedGeneration: int | None = None
    updatedNumberScheduled: int | None = None
    numberAvailable: int | None = None
    numberUnavailable: int | None = None
    collisionCount: int | None = None
    conditions: list[WorkloadCondition] | None = None


class DaemonSet(KubeObject):
    """Runs one copy of a pod on every (selected) node."""

    spec: DaemonSetSpec | None = Field(default=None, description="Desired behaviour of the DaemonSet.")
    status: DaemonSetStatus | None = Field(default=None, description="Most recently observed status.")


class DaemonSetList(KubeModel):
    """A list of DaemonSet objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[DaemonSet]


# ---------------------------------------------------------------- ControllerRevision


class ControllerRevision(KubeObject):
    """An immutable snapshot of a StatefulSet's or DaemonSet's template, for rollback."""

    data: dict[str, Any] | None = Field(default=None, description="The serialized state (arbitrary JSON).")
    revision: int = Field(description="Revision number of the state in data.")


class ControllerRevisionList(KubeModel):
    """A list of ControllerRevision objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ControllerRevision]
