"""batch/v1: Job and CronJob (Kubernetes v1.32 fields)."""

from __future__ import annotations

from pydantic import Field

from kcore.api.base import KubeModel
from kcore.api.core_v1 import PodTemplateSpec
from kcore.api.meta import KubeObject, LabelSelector, ListMeta, ObjectMeta, ObjectReference

GROUP = "batch"
API_VERSION = "batch/v1"


# ---------------------------------------------------------------- Job


class PodFailurePolicyOnExitCodesRequirement(KubeModel):
    """Matches a failed pod by container exit codes."""

    containerName: str | None = Field(default=None, description="Restricts the check to one container.")
    operator: str = Field(description='"In" or "NotIn".')
    values: list[int] = Field(description="Exit codes to compare against (0 is not allowed with In).")


class PodFailurePolicyOnPodConditionsPattern(KubeModel):
    """Matches a failed pod by one of its conditions (e.g. DisruptionTarget)."""

    type: str
    status: str | None = Field(default=None, description='"True", "False" or "Unknown"; defaults to "True".')


class PodFailurePolicyRule(KubeModel):
    """An action taken when a pod failure matches the requirements."""

    action: str = Field(description='"FailJob", "FailIndex", "Ignore" or "Count".')
    onExitCodes: PodFailurePolicyOnExitCodesRequirement | None = None
    onPodConditions: list[PodFailurePolicyOnPodConditionsPattern] | None = None


class PodFailurePolicy(KubeModel):
    """How pod failures count against backoffLimit; evaluated rule by rule, first match wins."""

    rules: list[PodFailurePolicyRule]


class SuccessPolicyRule(KubeModel):
    """Declares an Indexed Job succeeded when given indexes (or a count of them) succeed."""

    succeededIndexes: str | None = Field(default=None, description='Index intervals, e.g. "1,3-5,7".')
    succeededCount: int | None = None


class SuccessPolicy(KubeModel):
    rules: list[SuccessPolicyRule]


class JobSpec(KubeModel):
    """The desired behaviour of a Job."""

    parallelism: int | None = Field(default=None, description="Maximum pods running at once; defaults to 1.")
    completions: int | None = Field(
        default=None, description="Successful pods needed; defaults to 1 (unset with parallelism: a work queue)."
    )
    activeDeadlineSeconds: int | None = Field(
        default=None, description="Seconds the Job may be active before it is terminated."
    )
    podFailurePolicy: PodFailurePolicy | None = Field(
        default=None, description="Rules for handling failed pods (requires restartPolicy Never)."
    )
    successPolicy: SuccessPolicy | None = Field(
        default=None, description="When an Indexed Job may be declared succeeded early."
    )
    backoffLimit: int | None = Field(default=None, description="Retries before the Job fails; defaults to 6.")
    backoffLimitPerIndex: int | None = Field(default=None, description="Retries per index of an Indexed Job.")
    maxFailedIndexes: int | None = Field(default=None, description="Failed indexes before the Job fails.")
    selector: LabelSelector | None = Field(
        default=None, description="Pods of the Job; generated unless manualSelector is true."
    )
    manualSelector: bool | None = Field(
        default=None, description="Lets the user set selector instead of the generated controller-uid one."
    )
    template: PodTemplateSpec = Field(description="Template of the pods; restartPolicy must be Never or OnFailure.")
    ttlSecondsAfterFinished: int | None = Field(
        default=None, description="Seconds after finishing when the Job is deleted automatically."
    )
    completionMode: str | None = Field(
        default=None, description='"NonIndexed" (default) or "Indexed" (each pod gets a completion index).'
    )
    suspend: bool | None = Field(default=None, description="Suspends pod creation and stops running pods.")
    podReplacementPolicy: str | None = Field(
        default=None, description='"TerminatingOrFailed" or "Failed": when replacement pods are created.'
    )
    managedBy: str | None = Field(default=None, description="Controller managing the Job, if not the built-in one.")


class JobCondition(KubeModel):
    """A Job condition: Complete, Failed, Suspended, FailureTarget or SuccessCriteriaMet."""

    type: str
    status: str
    lastProbeTime: str | None = None
    lastTransitionTime: str | None = None
    reason: str | None = None
    message: str | None = None


class UncountedTerminatedPods(KubeModel):
    """UIDs of finished pods not yet counted in the status counters."""

    succeeded: list[str] | None = None
    failed: list[str] | None = None


class JobStatus(KubeModel):
    """The observed state of a Job."""

    conditions: list[JobCondition] | None = None
    startTime: str | None = None
    completionTime: str | None = None
    active: int | None = Field(default=None, description="Pending or running pods.")
    succeeded: int | None = Field(default=None, description="Pods that succeeded.")
    failed: int | None = Field(default=None, description="Pods that failed.")
    terminating: int | None = None
    completedIndexes: str | None = None
    failedIndexes: str | None = None
    uncountedTerminatedPods: UncountedTerminatedPods | None = None
    ready: int | None = None


class Job(KubeObject):
    """Runs pods until a number of them complete successfully."""

    spec: JobSpec | None = Field(default=None, description="Desired behaviour of the Job.")
    status: JobStatus | None = Field(default=None, description="Most recently observed status.")


class JobList(KubeModel):
    """A list of Job objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Job]


# ---------------------------------------------------------------- CronJob


class JobTemplateSpec(KubeModel):
    """The Job a CronJob creates on each run."""

    metadata: ObjectMeta | None = None
    spec: JobSpec | None = None


class CronJobSpec(KubeModel):
    """The schedule and the Job template of a CronJob."""

    schedule: str = Field(description='Cron schedule, e.g. "*/1 * * * *" or "@hourly".')
    timeZone: str | None = Field(default=None, description='IANA time zone of the schedule, e.g. "Etc/UTC".')
    startingDeadlineSeconds: int | None = Field(
        default=None, description="Seconds after a missed start time within which the Job may still start."
    )
    concurrencyPolicy: str | None = Field(
        default=None, description='"Allow" (default), "Forbid" or "Replace" for overlapping runs.'
    )
    suspend: bool | None = Field(default=None, description="Suspends future runs; defaults to false.")
    jobTemplate: JobTemplateSpec = Field(description="The Job created on each run.")
    successfulJobsHistoryLimit: int | None = Field(default=None, description="Finished Jobs kept; defaults to 3.")
    failedJobsHistoryLimit: int | None = Field(default=None, description="Failed Jobs kept; defaults to 1.")


class CronJobStatus(KubeModel):
    """The observed state of a CronJob."""

    active: list[ObjectReference] | None = Field(default=None, description="Jobs currently running.")
    lastScheduleTime: str | None = Field(default=None, description="Last time a Job was scheduled.")
    lastSuccessfulTime: str | None = Field(default=None, description="Last time a Job completed successfully.")


class CronJob(KubeObject):
    """Creates Jobs on a repeating schedule."""

    spec: CronJobSpec | None = Field(default=None, description="Schedule and Job template.")
    status: CronJobStatus | None = Field(default=None, description="Most recently observed status.")


class CronJobList(KubeModel):
    """A list of CronJob objects."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[CronJob]
