"""Defaulting for the non-core built-in kinds, as Kubernetes' SetDefaults_* functions do.

Each defaulter fills unset fields of an object in place and returns None (the same
contract as ``CORE_DEFAULTERS``); running it twice changes nothing the second time. The API server runs the
defaulter once on create/update, before validation, so what is stored (and returned
to ``kubectl get -o yaml``) matches what a real cluster would return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kcore.api.apps_v1 import (
    DaemonSet,
    DaemonSetUpdateStrategy,
    Deployment,
    DeploymentStrategy,
    ReplicaSet,
    RollingUpdateDaemonSet,
    RollingUpdateDeployment,
    RollingUpdateStatefulSetStrategy,
    StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetUpdateStrategy,
)
from kcore.api.autoscaling import (
    HorizontalPodAutoscaler,
    HPAScalingPolicy,
    HPAScalingRules,
    MetricSpec,
    MetricTarget,
    ResourceMetricSource,
)
from kcore.api.batch_v1 import CronJob, Job, JobSpec
from kcore.api.defaults_core import default_pod_spec, default_pvc
from kcore.api.discovery_v1 import EndpointSlice
from kcore.api.meta import LabelSelector, ObjectMeta
from kcore.api.rbac_v1 import ClusterRoleBinding, RoleBinding, Subject
from kcore.api.storage_v1 import StorageClass

RBAC_GROUP = "rbac.authorization.k8s.io"
JOB_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
MAX_INT32 = 2**31 - 1


def _default_template_pod_spec(template: Any, *, keep_restart_policy: bool = False) -> None:
    """Default a pod template's spec with core's pod-spec defaulter.

    Jobs keep their restartPolicy as written: defaulting it to Always would only turn
    a missing value into a confusing "Unsupported value: Always" error.
    """
    if template is None or template.spec is None:
        return
    restart_policy = template.spec.restartPolicy
    default_pod_spec(template.spec)
    if keep_restart_policy:
        template.spec.restartPolicy = restart_policy


def _default_claim_templates(claims: list[Any] | None) -> None:
    """Volume claim templates are PVCs and get the PVC defaults (volumeMode, phase)."""
    if not claims:
        return
    for claim in claims:
        if claim.apiVersion is None:
            claim.apiVersion = "v1"
        if claim.kind is None:
            claim.kind = "PersistentVolumeClaim"
        default_pvc(claim)


# ---------------------------------------------------------------- apps/v1


def default_deployment(obj: Deployment) -> None:
    """replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds 600."""
    spec = obj.spec
    if spec is None:
        return
    if spec.replicas is None:
        spec.replicas = 1
    if spec.strategy is None:
        spec.strategy = DeploymentStrategy()
    if spec.strategy.type is None or spec.strategy.type == "":
        spec.strategy.type = "RollingUpdate"
    if spec.strategy.type == "RollingUpdate":
        if spec.strategy.rollingUpdate is None:
            spec.strategy.rollingUpdate = RollingUpdateDeployment()
        if spec.strategy.rollingUpdate.maxUnavailable is None:
            spec.strategy.rollingUpdate.maxUnavailable = "25%"
        if spec.strategy.rollingUpdate.maxSurge is None:
            spec.strategy.rollingUpdate.maxSurge = "25%"
    if spec.revisionHistoryLimit is None:
        spec.revisionHistoryLimit = 10
    if spec.progressDeadlineSeconds is None:
        spec.progressDeadlineSeconds = 600
    _default_template_pod_spec(spec.template)


def default_replica_set(obj: ReplicaSet) -> None:
    """replicas 1 and pod template defaults."""
    if obj.spec is None:
        return
    if obj.spec.replicas is None:
        obj.spec.replicas = 1
    _default_template_pod_spec(obj.spec.template)


def default_stateful_set(obj: StatefulSet) -> None:
    """replicas 1, OrderedReady, RollingUpdate partition 0, history 10, PVC policy Retain/Retain."""
    spec = obj.spec
    if spec is None:
        return
    if spec.replicas is None:
        spec.replicas = 1
    if not spec.podManagementPolicy:
        spec.podManagementPolicy = "OrderedReady"
    if spec.updateStrategy is None:
        spec.updateStrategy = StatefulSetUpdateStrategy()
    if not spec.updateStrategy.type:
        spec.updateStrategy.type = "RollingUpdate"
    if spec.updateStrategy.type == "RollingUpdate":
        if spec.updateStrategy.rollingUpdate is None:
            spec.updateStrategy.rollingUpdate = RollingUpdateStatefulSetStrategy()
        if spec.updateStrategy.rollingUpdate.partition is None:
            spec.updateStrategy.rollingUpdate.partition = 0
    if spec.persistentVolumeClaimRetentionPolicy is None:
        spec.persistentVolumeClaimRetentionPolicy = StatefulSetPersistentVolumeClaimRetentionPolicy()
    policy = spec.persistentVolumeClaimRetentionPolicy
    if not policy.whenDeleted:
        policy.whenDeleted = "Retain"
    if not policy.whenScaled:
        policy.whenScaled = "Retain"
    if spec.revisionHistoryLimit is None:
        spec.revisionHistoryLimit = 10
    _default_template_pod_spec(spec.template)
    _default_claim_templates(spec.volumeClaimTemplates)


def default_daemon_set(obj: DaemonSet) -> None:
    """RollingUpdate maxUnavailable 1 maxSurge 0, revisionHistoryLimit 10."""
    spec = obj.spec
    if spec is None:
        return
    if spec.updateStrategy is None:
        spec.updateStrategy = DaemonSetUpdateStrategy()
    if not spec.updateStrategy.type:
        spec.updateStrategy.type = "RollingUpdate"
    if spec.updateStrategy.type == "RollingUpdate":
        if spec.updateStrategy.rollingUpdate is None:
            spec.updateStrategy.rollingUpdate = RollingUpdateDaemonSet()
        if spec.updateStrategy.rollingUpdate.maxUnavailable is None:
            spec.updateStrategy.rollingUpdate.maxUnavailable = 1
        if spec.updateStrategy.rollingUpdate.maxSurge is None:
            spec.updateStrategy.rollingUpdate.maxSurge = 0
    if spec.revisionHistoryLimit is None:
        spec.revisionHistoryLimit = 10
    _default_template_pod_spec(spec.template)


# ---------------------------------------------------------------- batch/v1


def _default_job_spec_common(spec: JobSpec) -> None:
    """Defaults that also apply inside a CronJob's jobTemplate (pod template, failure rules)."""
    if spec.podFailurePolicy is not None:
        for rule in spec.podFailurePolicy.rules:
            for pattern in rule.onPodConditions or ():
                if not pattern.status:
                    pattern.status = "True"
    _default_template_pod_spec(spec.template, keep_restart_policy=True)


def generate_job_selector(obj: Job) -> None:
    """Give a Job the controller-uid selector and pod labels, as the Job REST strategy does.

    Needs ``metadata.uid``, so the API server calls it on create after assigning one;
    the defaulter also calls it when a uid is already present. Does nothing when the
    user asked for ``manualSelector``.
    """
    spec = obj.spec
    uid = obj.metadata.uid
    if spec is None or not uid or spec.manualSelector:
        return
    template_meta = spec.template.metadata
    if template_meta is None:
        template_meta = spec.template.metadata = ObjectMeta()
    labels = dict(template_meta.labels or {})
    labels.setdefault(JOB_CONTROLLER_UID_LABEL, uid)
    labels.setdefault(LEGACY_JOB_CONTROLLER_UID_LABEL, uid)
    if obj.metadata.name:
        labels.setdefault(JOB_NAME_LABEL, obj.metadata.name)
        labels.setdefault(LEGACY_JOB_NAME_LABEL, obj.metadata.name)
    template_meta.labels = labels
    if spec.selector is None:
        spec.selector = LabelSelector(matchLabels={JOB_CONTROLLER_UID_LABEL: uid})


def default_job(obj: Job) -> None:
    """parallelism/completions 1, backoffLimit 6, NonIndexed, suspend false, labels from the template."""
    spec = obj.spec
    if spec is None:
        return
    if spec.completions is None and spec.parallelism is None:
        spec.completions = 1
        spec.parallelism = 1
    if spec.parallelism is None:
        spec.parallelism = 1
    if spec.backoffLimit is None:
        spec.backoffLimit = 6 if spec.backoffLimitPerIndex is None else MAX_INT32
    if spec.completionMode is None:
        spec.completionMode = "NonIndexed"
    if spec.suspend is None:
        spec.suspend = False
    if spec.podReplacementPolicy is None:
        spec.podReplacementPolicy = "Failed" if spec.podFailurePolicy is not None else "TerminatingOrFailed"
    template_labels = spec.template.metadata.labels if spec.template.metadata else None
    if template_labels and not obj.metadata.labels:
        obj.metadata.labels = dict(template_labels)
    _default_job_spec_common(spec)
    generate_job_selector(obj)


def default_cron_job(obj: CronJob) -> None:
    """concurrencyPolicy Allow, suspend false, history limits 3 successful / 1 failed."""
    spec = obj.spec
    if spec is None:
        return
    if not spec.concurrencyPolicy:
        spec.concurrencyPolicy = "Allow"
    if spec.suspend is None:
        spec.suspend = False
    if spec.successfulJobsHistoryLimit is None:
        spec.successfulJobsHistoryLimit = 3
    if spec.failedJobsHistoryLimit is None:
        spec.failedJobsHistoryLimit = 1
    if spec.jobTemplate.spec is not None:
        _default_job_spec_common(spec.jobTemplate.spec)


# ---------------------------------------------------------------- autoscaling/v2


def _scale_up_rules(rules: HPAScalingRules | None) -> HPAScalingRules:
    if rules is None:
        rules = HPAScalingRules()
    if rules.stabilizationWindowSeconds is None:
        rules.stabilizationWindowSeconds = 0
    if rules.selectPolicy is None:
        rules.selectPolicy = "Max"
    if rules.policies is None:
        rules.policies = [
            HPAScalingPolicy(type="Pods", value=4, periodSeconds=15),
            HPAScalingPolicy(type="Percent", value=100, periodSeconds=15),
        ]
    return rules


def _scale_down_rules(rules: HPAScalingRules | None) -> HPAScalingRules:
    if rules is None:
        rules = HPAScalingRules()
    if rules.stabilizationWindowSeconds is None:
        rules.stabilizationWindowSeconds = 300
    if rules.selectPolicy is None:
        rules.selectPolicy = "Max"
    if rules.policies is None:
        rules.policies = [HPAScalingPolicy(type="Percent", value=100, periodSeconds=15)]
    return rules


def default_horizontal_pod_autoscaler(obj: HorizontalPodAutoscaler) -> None:
    """minReplicas 1, 80% average CPU when no metric is given, behavior rules filled when set."""
    spec = obj.spec
    if spec is None:
        return
    if spec.minReplicas is None:
        spec.minReplicas = 1
    if not spec.metrics:
        spec.metrics = [
            MetricSpec(
                type="Resource",
                resource=ResourceMetricSource(
                    name="cpu", target=MetricTarget(type="Utilization", averageUtilization=80)
                ),
            )
        ]
    if spec.behavior is not None:
        spec.behavior.scaleUp = _scale_up_rules(spec.behavior.scaleUp)
        spec.behavior.scaleDown = _scale_down_rules(spec.behavior.scaleDown)


# ---------------------------------------------------------------- others


def default_storage_class(obj: StorageClass) -> None:
    """reclaimPolicy Delete, volumeBindingMode Immediate."""
    if not obj.reclaimPolicy:
        obj.reclaimPolicy = "Delete"
    if not obj.volumeBindingMode:
        obj.volumeBindingMode = "Immediate"


def default_endpoint_slice(obj: EndpointSlice) -> None:
    """Ports without a protocol are TCP."""
    for port in obj.ports or ():
        if not port.protocol:
            port.protocol = "TCP"


def _default_subjects(subjects: list[Subject] | None) -> None:
    """Users and Groups live in the RBAC API group; ServiceAccounts in the core group ("", omitted)."""
    for subject in subjects or ():
        if subject.apiGroup is None and subject.kind in ("User", "Group"):
            subject.apiGroup = RBAC_GROUP


def default_role_binding(obj: RoleBinding) -> None:
    _default_subjects(obj.subjects)


def default_cluster_role_binding(obj: ClusterRoleBinding) -> None:
    _default_subjects(obj.subjects)


WORKLOAD_DEFAULTERS: dict[str, Callable[[Any], None]] = {
    "Deployment": default_deployment,
    "ReplicaSet": default_replica_set,
    "StatefulSet": default_stateful_set,
    "DaemonSet": default_daemon_set,
    "Job": default_job,
    "CronJob": default_cron_job,
    "HorizontalPodAutoscaler": default_horizontal_pod_autoscaler,
    "StorageClass": default_storage_class,
    "EndpointSlice": default_endpoint_slice,
    "RoleBinding": default_role_binding,
    "ClusterRoleBinding": default_cluster_role_binding,
}
"""Defaulters keyed by kind name; kinds without defaults (Lease, Role, ...) are absent."""
