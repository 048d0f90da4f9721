"""Kubernetes' ``patchStrategy`` / ``patchMergeKey`` struct tags, as data.

Keyed by (model class name, wire field name), valued by the tag strings exactly as
they read in Kubernetes' ``types.go`` (``"merge"``, ``"merge,retainKeys"``,
``"retainKeys"``) and the merge key (``None`` for primitive lists merged as sets and
for structs). A list field that is absent here is atomic: a patch replaces it whole,
as in Kubernetes. Lookups walk the model's MRO, so ``EphemeralContainer`` inherits
``Container``'s tags.
"""

from __future__ import annotations

PatchTag = tuple[str, str | None]

PATCH_TAGS: dict[tuple[str, str], PatchTag] = {
    # meta/v1
    ("ObjectMeta", "finalizers"): ("merge", None),
    ("ObjectMeta", "ownerReferences"): ("merge", "uid"),
    # core/v1 PodSpec
    ("PodSpec", "volumes"): ("merge,retainKeys", "name"),
    ("PodSpec", "initContainers"): ("merge", "name"),
    ("PodSpec", "containers"): ("merge", "name"),
    ("PodSpec", "ephemeralContainers"): ("merge", "name"),
    ("PodSpec", "imagePullSecrets"): ("merge", "name"),
    ("PodSpec", "hostAliases"): ("merge", "ip"),
    ("PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"),
    ("PodSpec", "schedulingGates"): ("merge", "name"),
    ("PodSpec", "resourceClaims"): ("merge,retainKeys", "name"),
    # core/v1 Container (and EphemeralContainer through the MRO)
    ("Container", "ports"): ("merge", "containerPort"),
    ("Container", "env"): ("merge", "name"),
    ("Container", "volumeMounts"): ("merge", "mountPath"),
    ("Container", "volumeDevices"): ("merge", "devicePath"),
    # core/v1 PodStatus (containerStatuses & co. carry no strategy: atomic)
    ("PodStatus", "conditions"): ("merge", "type"),
    ("PodStatus", "podIPs"): ("merge", "ip"),
    ("PodStatus", "hostIPs"): ("merge", "ip"),
    ("PodStatus", "resourceClaimStatuses"): ("merge,retainKeys", "name"),
    # core/v1 others (NodeSpec.taints, Endpoints.subsets, tolerations: atomic)
    ("NodeSpec", "podCIDRs"): ("merge", None),
    ("NodeStatus", "conditions"): ("merge", "type"),
    ("NodeStatus", "addresses"): ("merge", "type"),
    ("NamespaceStatus", "conditions"): ("merge", "type"),
    ("ServiceSpec", "ports"): ("merge", "port"),
    ("ServiceStatus", "conditions"): ("merge", "type"),
    ("ServiceAccount", "secrets"): ("merge", "name"),
    ("PersistentVolumeClaimStatus", "conditions"): ("merge", "type"),
    ("ReplicationControllerStatus", "conditions"): ("merge", "type"),
    # apps/v1
    ("DeploymentSpec", "strategy"): ("retainKeys", None),
    ("DeploymentStatus", "conditions"): ("merge", "type"),
    ("ReplicaSetStatus", "conditions"): ("merge", "type"),
    ("StatefulSetStatus", "conditions"): ("merge", "type"),
    ("DaemonSetStatus", "conditions"): ("merge", "type"),
    # batch/v1 (CronJobStatus.active is atomic)
    ("JobStatus", "conditions"): ("merge", "type"),
    # autoscaling/v2
    ("HorizontalPodAutoscalerStatus", "conditions"): ("merge", "type"),
}


def patch_tag(class_names: list[str], field: str) -> PatchTag | None:
    """The tag of ``field`` on the first class in ``class_names`` (an MRO) that has one."""
    for name in class_names:
        tag = PATCH_TAGS.get((name, field))
        if tag is not None:
            return tag
    return None
