"""autoscaling/v2 HorizontalPodAutoscaler and autoscaling/v1 Scale.

``Scale`` is the body of every ``/scale`` subresource (Deployment, ReplicaSet,
StatefulSet, ReplicationController), which is how both ``kubectl scale`` and the HPA
controller change replica counts without knowing the target's kind.
"""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.meta import KubeObject, LabelSelector, ListMeta
from kcore.api.quantity import QuantityStr

GROUP = "autoscaling"
API_VERSION_V1 = "autoscaling/v1"
API_VERSION_V2 = "autoscaling/v2"


# ---------------------------------------------------------------- autoscaling/v1 Scale


class ScaleSpec(KubeModel):
    replicas: int | None = Field(default=None, description="Desired number of replicas.")


class ScaleStatus(KubeModel):
    replicas: int = Field(description="Actual number of observed replicas.")
    selector: str | None = Field(
        default=None,
        description="Label selector of the pods, in string form (as for the ?labelSelector= query).",
    )


class Scale(KubeObject):
    """The scale subresource: desired and observed replicas of a scalable object."""

    spec: ScaleSpec | None = Field(default=None, description="Desired replicas.")
    status: ScaleStatus | None = Field(default=None, description="Observed replicas and pod selector.")


# ---------------------------------------------------------------- autoscaling/v2 HPA


class CrossVersionObjectReference(KubeModel):
    """Identifies the scaled object (kind and name in the HPA's namespace)."""

    apiVersion: str | None = Field(default=None, description='API version of the target, e.g. "apps/v1".')
    kind: str = Field(description='Kind of the target, e.g. "Deployment".')
    name: str = Field(description="Name of the target.")


class MetricTarget(KubeModel):
    """The target value of a metric: a utilization, a value or an average value."""

    type: str = Field(description='"Utilization", "Value" or "AverageValue".')
    value: QuantityStr | None = Field(default=None, description="Target value of the metric.")
    averageValue: QuantityStr | None = Field(default=None, description="Target value averaged over pods.")
    averageUtilization: int | None = Field(
        default=None, description="Target average percentage of the pods' resource requests."
    )


class MetricValueStatus(KubeModel):
    """The current value of a metric."""

    value: QuantityStr | None = None
    averageValue: QuantityStr | None = None
    averageUtilization: int | None = None


class MetricIdentifier(KubeModel):
    name: str = Field(description="Name of the metric.")
    selector: LabelSelector | None = Field(default=None, description="Narrows which series are used.")


class ResourceMetricSource(KubeModel):
    """A resource (cpu, memory) of the target's pods, compared to their requests."""

    name: str = Field(description='Resource name, e.g. "cpu" or "memory".')
    target: MetricTarget


class ContainerResourceMetricSource(KubeModel):
    """Like ResourceMetricSource but for one named container of each pod."""

    name: str
    target: MetricTarget
    container: str = Field(description="Name of the container in the pods of the target.")


class PodsMetricSource(KubeModel):
    """A custom metric averaged across the target's pods."""

    metric: MetricIdentifier
    target: MetricTarget


class ObjectMetricSource(KubeModel):
    """A metric describing a single other object (e.g. hits-per-second on an Ingress)."""

    describedObject: CrossVersionObjectReference
    target: MetricTarget
    metric: MetricIdentifier


class ExternalMetricSource(KubeModel):
    """A metric from outside the cluster (e.g. queue length)."""

    metric: MetricIdentifier
    target: MetricTarget


class MetricSpec(KubeModel):
    """One metric to scale on; ``type`` says which of the source fields is set."""

    type: str = Field(description='"ContainerResource", "External", "Object", "Pods" or "Resource".')
    containerResource: ContainerResourceMetricSource | None = None
    external: ExternalMetricSource | None = None
    object: ObjectMetricSource | None = None
    pods: PodsMetricSource | None = None
    resource: ResourceMetricSource | None = None


class HPAScalingPolicy(KubeModel):
    """At most ``value`` pods (or percent) change within ``periodSeconds``."""

    type: str = Field(description='"Pods" or "Percent".')
    value: int = Field(description="Amount of change allowed; must be greater than zero.")
    periodSeconds: int = Field(description="Window the policy holds for, 1..1800 seconds.")


class HPAScalingRules(KubeModel):
    """How fast one direction (up or down) of scaling may go."""

    stabilizationWindowSeconds: int | None = Field(
        default=None, description="Past recommendations considered to avoid flapping (0..3600)."
    )
    selectPolicy: str | None = Field(default=None, description='"Max" (default), "Min" or "Disabled".')
    policies: list[HPAScalingPolicy] | None = Field(default=None, description="Allowed rates of change.")


class HorizontalPodAutoscalerBehavior(KubeModel):
    """Separate scale-up and scale-down rate limits."""

    scaleUp: HPAScalingRules | None = None
    scaleDown: HPAScalingRules | None = None


class HorizontalPodAutoscalerSpec(KubeModel):
    scaleTargetRef: CrossVersionObjectReference = Field(description="The object whose replicas are scaled.")
    minReplicas: int | None = Field(default=None, description="Lower limit of replicas; defaults to 1.")
    maxReplicas: int = Field(description="Upper limit of replicas; not less than minReplicas.")
    metrics: list[MetricSpec] | None = Field(
        default=None,
        description="Metrics the desired replica count is computed from (the maximum wins); default 80% CPU.",
    )
    behavior: HorizontalPodAutoscalerBehavior | None = Field(
        default=None, description="Scaling rate limits for up and down."
    )


class ObjectMetricStatus(KubeModel):
    metric: MetricIdentifier
    current: MetricValueStatus
    describedObject: CrossVersionObjectReference


class PodsMetricStatus(KubeModel):
    metric: MetricIdentifier
    current: MetricValueStatus


class ResourceMetricStatus(KubeModel):
    name: str
    current: MetricValueStatus


class ContainerResourceMetricStatus(KubeModel):
    name: str
    current: MetricValueStatus
    container: str


class ExternalMetricStatus(KubeModel):
    metric: MetricIdentifier
    current: MetricValueStatus


class MetricStatus(KubeModel):
    """The last observed value of one metric."""

    type: str
    containerResource: ContainerResourceMetricStatus | None = None
    external: ExternalMetricStatus | None = None
    object: ObjectMetricStatus | None = None
    pods: PodsMetricStatus | None = None
    resource: ResourceMetricStatus | None = None


class HorizontalPodAutoscalerCondition(KubeModel):
    type: str = Field(description='"ScalingActive", "AbleToScale" or "ScalingLimited".')
    status: str
    lastTransitionTime: str | None = None
    reason: str | None = None
    message: str | None = None


class HorizontalPodAutoscalerStatus(KubeModel):
    observedGeneration: int | None = None
    lastScaleTime: str | None = None
    currentReplicas: int | None = None
    desiredReplicas: int = Field(description="Replica count last computed by the autoscaler.")
    currentMetrics: list[MetricStatus] | None = None
    conditions: list[HorizontalPodAutoscalerCondition] | None = None


class HorizontalPodAutoscaler(KubeObject):
    """Scales a Deployment, ReplicaSet or StatefulSet between min and max replicas from metrics."""

    spec: HorizontalPodAutoscalerSpec | None = Field(default=None, description="Target, limits and metrics.")
    status: HorizontalPodAutoscalerStatus | None = Field(
        default=None, description="Observed metrics and replica counts."
    )


class HorizontalPodAutoscalerList(KubeModel):
    """A list of HorizontalPodAutoscaler objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[HorizontalPodAutoscaler]
