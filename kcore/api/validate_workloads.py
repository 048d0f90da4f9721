"""Validation of the non-core built-in kinds, with Kubernetes' rules, paths and wording.

Each validator takes a (defaulted) object and returns its ``FieldError`` list; the API
server raises ``ObjectValidationError`` (HTTP 422) when the list is not empty. Rules
follow ``pkg/apis/<group>/validation`` of Kubernetes v1.32; messages match so that a
user sees the same text as from a real cluster.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kcore.api.apps_v1 import ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet
from kcore.api.autoscaling import (
    CrossVersionObjectReference,
    HorizontalPodAutoscaler,
    HPAScalingRules,
    MetricSpec,
    MetricTarget,
)
from kcore.api.batch_v1 import CronJob, Job, JobSpec
from kcore.api.core_v1 import PersistentVolumeClaimVolumeSource, Volume
from kcore.api.coordination_v1 import Lease
from kcore.api.discovery_v1 import EndpointSlice
from kcore.api.meta import LabelSelector
from kcore.api.quantity import parse_quantity
from kcore.api.rbac_v1 import ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject
from kcore.api.storage_v1 import StorageClass
from kcore.api.validate_core import validate_pod_spec
from kcore.api.validation import (
    FieldError,
    child,
    duplicate,
    forbidden,
    index,
    invalid,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_num,
    not_supported,
    required,
    too_many,
    validate_label_selector,
    validate_labels,
    validate_nonnegative,
    validate_object_meta,
)

Validator = Callable[[Any], list[FieldError]]

RBAC_GROUP = "rbac.authorization.k8s.io"
_SELECTOR_MISMATCH = "`selector` does not match template `labels`"
_PERCENT_RE = re.compile(r"^[0-9]+%$")
_PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
)


# ---------------------------------------------------------------- helpers


def label_selector_matches(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    """Whether a LabelSelector selects an object with these labels (empty selects all)."""
    labels = labels or {}
    for k, v in (selector.matchLabels or {}).items():
        if labels.get(k) != v:
            return False
    for req in selector.matchExpressions or ():
        present = req.key in labels
        values = req.values or []
        if req.operator == "In" and not (present and labels[req.key] in values):
            return False
        if req.operator == "NotIn" and present and labels[req.key] in values:
            return False
        if req.operator == "Exists" and not present:
            return False
        if req.operator == "DoesNotExist" and present:
            return False
    return True


def _selector_is_empty(selector: LabelSelector) -> bool:
    return not selector.matchLabels and not selector.matchExpressions


def is_valid_path_segment_name(name: str) -> list[str]:
    """RBAC object names: anything usable as one URL path segment."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _int_or_percent_value(value: int | str) -> int | None:
    """The number in ``3`` or ``"25%"``; None when the string is not a percentage."""
    if isinstance(value, int):
        return value
    if _PERCENT_RE.match(value):
        return int(value[:-1])
    return None


def _validate_positive_int_or_percent(value: int | str | None, path: str) -> list[FieldError]:
    if value is None:
        return []
    if isinstance(value, str):
        if not _PERCENT_RE.match(value):
            return [invalid(path, value, _PERCENT_MSG)]
        return []
    return validate_nonnegative(value, path)


def _validate_not_more_than_100_percent(value: int | str | None, path: str) -> list[FieldError]:
    if isinstance(value, str) and _PERCENT_RE.match(value) and int(value[:-1]) > 100:
        return [invalid(path, value, "must not be greater than 100%")]
    return []


def _validate_pod_template(template: Any, path: str, claim_names: Iterable[str] = ()) -> list[FieldError]:
    """Template labels plus core's pod-spec rules (containers, volumes, ...).

    ``claim_names`` are a StatefulSet's volumeClaimTemplates: the controller adds
    them as volumes, so mounts may refer to them. (Kubernetes skips pod-spec
    validation of StatefulSet templates altogether for this reason; adding the
    volumes lets kcore validate the rest.)
    """
    if template is None:
        return [required(path)]
    errs: list[FieldError] = []
    if template.metadata is not None:
        errs += validate_labels(template.metadata.labels, child(path, "metadata", "labels"))
    if template.spec is None:
        errs.append(required(child(path, "spec")))
        return errs
    spec = template.spec
    existing = {v.name for v in spec.volumes or ()}
    extra = [
        Volume(name=name, persistentVolumeClaim=PersistentVolumeClaimVolumeSource(claimName=name))
        for name in dict.fromkeys(claim_names)
        if name and name not in existing
    ]
    if extra:
        spec = spec.model_copy(update={"volumes": [*(spec.volumes or ()), *extra]})
    errs += validate_pod_spec(spec, child(path, "spec"))
    return errs


def _validate_selector_and_template(
    selector: LabelSelector | None,
    template: Any,
    path: str,
    kind: str,
    *,
    pods_kind: str | None = None,
    claim_names: Iterable[str] = (),
) -> list[FieldError]:
    """Selector required and non-empty, template labels selected, pods restart Always."""
    errs: list[FieldError] = []
    selector_path = child(path, "selector")
    if selector is None:
        errs.append(required(selector_path))
    else:
        errs += validate_label_selector(selector, selector_path)
        if _selector_is_empty(selector):
            errs.append(invalid(selector_path, selector.to_dict(), f"empty selector is invalid for {kind.lower()}"))
    template_path = child(path, "template")
    errs += _validate_pod_template(template, template_path, claim_names)
    if template is None:
        return errs
    labels = template.metadata.labels if template.metadata is not None else None
    if selector is not None and not _selector_is_empty(selector) and not label_selector_matches(selector, labels):
        errs.append(invalid(child(template_path, "metadata", "labels"), labels or {}, _SELECTOR_MISMATCH))
    if template.spec is not None:
        if template.spec.restartPolicy != "Always":
            errs.append(
                not_supported(child(template_path, "spec", "restartPolicy"), template.spec.restartPolicy, ["Always"])
            )
        if template.spec.activeDeadlineSeconds is not None:
            errs.append(
                forbidden(
                    child(template_path, "spec", "activeDeadlineSeconds"),
                    f"activeDeadlineSeconds in {pods_kind or kind} is not Supported",
                )
            )
    return errs


def _meta(
    obj: Any, *, namespaced: bool, name_validator: Callable[[str], list[str]] = is_dns1123_subdomain
) -> list[FieldError]:
    return validate_object_meta(obj.metadata, namespaced=namespaced, name_validator=name_validator)


def _spec_required(obj: Any) -> list[FieldError]:
    return [required("spec")] if obj.spec is None else []


# ---------------------------------------------------------------- apps/v1


def validate_deployment(obj: Deployment) -> list[FieldError]:
    errs = _meta(obj, namespaced=True) + _spec_required(obj)
    spec = obj.spec
    if spec is None:
        return errs
    errs += validate_nonnegative(spec.replicas, "spec.replicas")
    errs += _validate_selector_and_template(spec.selector, spec.template, "spec", "Deployment", pods_kind="ReplicaSet")
    strategy = spec.strategy
    if strategy is not None:
        path = "spec.strategy"
        if strategy.type == "Recreate":
            if strategy.rollingUpdate is not None:
                errs.append(
                    forbidden(child(path, "rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")
                )
        elif strategy.type == "RollingUpdate":
            if strategy.rollingUpdate is None:
                errs.append(required(child(path, "rollingUpdate"), "this should be defaulted and never be nil"))
            else:
                errs += _validate_rolling_update(
                    strategy.rollingUpdate.maxUnavailable, strategy.rollingUpdate.maxSurge, child(path, "rollingUpdate")
                )
        else:
            errs.append(not_supported(child(path, "type"), strategy.type, ["Recreate", "RollingUpdate"]))
    errs += validate_nonnegative(spec.minReadySeconds, "spec.minReadySeconds")
    errs += validate_nonnegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit")
    if spec.progressDeadlineSeconds is not None:
        errs += validate_nonnegative(spec.progressDeadlineSeconds, "spec.progressDeadlineSeconds")
        if spec.progressDeadlineSeconds <= (spec.minReadySeconds or 0):
            errs.append(
                invalid(
                    "spec.progressDeadlineSeconds", spec.progressDeadlineSeconds, "must be greater than minReadySeconds"
                )
            )
    return errs


def _validate_rolling_update(
    max_unavailable: int | str | None, max_surge: int | str | None, path: str
) -> list[FieldError]:
    """Deployment and DaemonSet rolling updates: valid numbers, not both zero, at most 100% down."""
    unavailable_path = child(path, "maxUnavailable")
    errs = _validate_positive_int_or_percent(max_unavailable, unavailable_path)
    errs += _validate_positive_int_or_percent(max_surge, child(path, "maxSurge"))
    unavailable = _int_or_percent_value(max_unavailable) if max_unavailable is not None else 0
    surge = _int_or_percent_value(max_surge) if max_surge is not None else 0
    if unavailable == 0 and surge == 0:
        errs.append(invalid(unavailable_path, max_unavailable, "may not be 0 when `maxSurge` is 0"))
    errs += _validate_not_more_than_100_percent(max_unavailable, unavailable_path)
    return errs


def validate_replica_set(obj: ReplicaSet) -> list[FieldError]:
    errs = _meta(obj, namespaced=True) + _spec_required(obj)
    spec = obj.spec
    if spec is None:
        return errs
    errs += validate_nonnegative(spec.replicas, "spec.replicas")
    errs += validate_nonnegative(spec.minReadySeconds, "spec.minReadySeconds")
    errs += _validate_selector_and_template(spec.selector, spec.template, "spec", "ReplicaSet")
    return errs


def validate_stateful_set(obj: StatefulSet) -> list[FieldError]:
    errs = _meta(obj, namespaced=True) + _spec_required(obj)
    spec = obj.spec
    if spec is None:
        return errs
    if not spec.podManagementPolicy:
        errs.append(required("spec.podManagementPolicy"))
    elif spec.podManagementPolicy not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", spec.podManagementPolicy, "must be 'OrderedReady' or 'Parallel'"))
    strategy = spec.updateStrategy
    if strategy is None or not strategy.type:
        errs.append(required("spec.updateStrategy"))
    elif strategy.type == "OnDelete":
        if strategy.rollingUpdate is not None:
            errs.append(
                invalid("spec.updateStrategy.rollingUpdate", strategy.rollingUpdate.to_dict(),
                        "only allowed for updateStrategy 'RollingUpdate'")
            )
    elif strategy.type == "RollingUpdate":
        if strategy.rollingUpdate is not None:
            path = "spec.updateStrategy.rollingUpdate"
            errs += validate_nonnegative(strategy.rollingUpdate.partition, child(path, "partition"))
            max_unavailable = strategy.rollingUpdate.maxUnavailable
            if max_unavailable is not None:
                mu_path = child(path, "maxUnavailable")
                errs += _validate_positive_int_or_percent(max_unavailable, mu_path)
                if _int_or_percent_value(max_unavailable) == 0:
                    errs.append(invalid(mu_path, max_unavailable, "must be greater than 0"))
                errs += _validate_not_more_than_100_percent(max_unavailable, mu_path)
    else:
        errs.append(invalid("spec.updateStrategy", strategy.to_dict(), "must be 'RollingUpdate' or 'OnDelete'"))
    policy = spec.persistentVolumeClaimRetentionPolicy
    if policy is not None:
        for name in ("whenDeleted", "whenScaled"):
            value = getattr(policy, name)
            if value not in ("Retain", "Delete"):
                errs.append(
                    not_supported(child("spec.persistentVolumeClaimRetentionPolicy", name), value, ["Retain", "Delete"])
                )
    if spec.ordinals is not None:
        errs += validate_nonnegative(spec.ordinals.start, "spec.ordinals.start")
    errs += validate_nonnegative(spec.replicas, "spec.replicas")
    errs += validate_nonnegative(spec.minReadySeconds, "spec.minReadySeconds")
    errs += validate_nonnegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit")
    if spec.serviceName:
        errs += [invalid("spec.serviceName", spec.serviceName, m) for m in is_dns1123_label(spec.serviceName)]
    seen: set[str] = set()
    for i, claim in enumerate(spec.volumeClaimTemplates or ()):
        path = index("spec.volumeClaimTemplates", i)
        name = claim.metadata.name if claim.metadata is not None else None
        if not name:
            errs.append(required(child(path, "metadata", "name")))
        elif name in seen:
            errs.append(duplicate(child(path, "metadata", "name"), name))
        else:
            seen.add(name)
            errs += [invalid(child(path, "metadata", "name"), name, m) for m in is_dns1123_subdomain(name)]
    claim_names = [c.metadata.name for c in spec.volumeClaimTemplates or () if c.metadata and c.metadata.name]
    errs += _validate_selector_and_template(spec.selector, spec.template, "spec", "StatefulSet", claim_names=claim_names)
    return errs


def validate_daemon_set(obj: DaemonSet) -> list[FieldError]:
    errs = _meta(obj, namespaced=True) + _spec_required(obj)
    spec = obj.spec
    if spec is None:
        return errs
    errs += _validate_selector_and_template(spec.selector, spec.template, "spec", "DaemonSet")
    strategy = spec.updateStrategy
    if strategy is not None:
        if strategy.type == "RollingUpdate":
            if strategy.rollingUpdate is None:
                errs.append(required("spec.updateStrategy.rollingUpdate"))
            else:
                errs += _validate_rolling_update(
                    strategy.rollingUpdate.maxUnavailable,
                    strategy.rollingUpdate.maxSurge,
                    "spec.updateStrategy.rollingUpdate",
                )
        elif strategy.type != "OnDelete":
            errs.append(not_supported("spec.updateStrategy.type", strategy.type, ["OnDelete", "RollingUpdate"]))
    errs += validate_nonnegative(spec.minReadySeconds, "spec.minReadySeconds")
    errs += validate_nonnegative(spec.revisionHistoryLimit, "spec.revisionHistoryLimit")
    return errs


def validate_controller_revision(obj: ControllerRevision) -> list[FieldError]:
    errs = _meta(obj, namespaced=True)
    if obj.data is None:
        errs.append(required("data", "data is mandatory"))
    errs += validate_nonnegative(obj.revision, "revision")
    return errs


# ---------------------------------------------------------------- batch/v1


_CRON_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}),
    ("day of week", 0, 6, {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)
_CRON_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")


def _cron_number(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ValueError(f"failed to parse int from {text}: strconv.Atoi: parsing {text!r}: invalid syntax")
    return int(text)


def _check_cron_field(expr: str, low: int, high: int, names: dict[str, int], *, question_ok: bool) -> None:
    for part in expr.split(","):
        range_part, _, step_text = part.partition("/")
        if range_part in ("*", "?"):
            if range_part == "?" and not question_ok:
                raise ValueError(f"failed to parse int from ?: strconv.Atoi: parsing \"?\": invalid syntax")
            start, end = low, high
        else:
            lo_text, dash, hi_text = range_part.partition("-")
            start = _cron_number(lo_text, names)
            end = _cron_number(hi_text, names) if dash else start
            if step_text and not dash:
                end = high
        if "/" in part:
            step = _cron_number(step_text, {}) if step_text else -1
            if step <= 0:
                raise ValueError(f"step of range should be a positive number: {part}")
        if start < low:
            raise ValueError(f"beginning of range ({start}) below minimum ({low}): {part}")
        if end > high:
            raise ValueError(f"end of range ({end}) above maximum ({high}): {part}")
        if start > end:
            raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {part}")


def cron_schedule_error(schedule: str) -> str | None:
    """Why a standard 5-field cron schedule (or ``@daily``-style descriptor) is invalid; None if valid.

    Accepts what Kubernetes' cron library's standard parser accepts: ``*``, ``?`` in
    the day fields, lists, ranges, steps, month and weekday names, and descriptors.
    """
    text = schedule.strip()
    if not text:
        return "empty spec string"
    if text.startswith("@"):
        if text.lower() in _CRON_DESCRIPTORS:
            return None
        if text.lower().startswith("@every "):
            duration = text[len("@every "):].strip()
            if _DURATION_RE.match(duration):
                return None
            return f"failed to parse duration {text}: time: invalid duration {duration!r}"
        return f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    try:
        for i, (expr, (_, low, high, names)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
            _check_cron_field(expr, low, high, names, question_ok=i in (2, 4))
    except ValueError as exc:
        return str(exc)
    return None


def _validate_pod_failure_policy(spec: JobSpec, path: str) -> list[FieldError]:
    policy = spec.podFailurePolicy
    if policy is None:
        return []
    errs: list[FieldError] = []
    restart_policy = spec.template.spec.restartPolicy if spec.template.spec is not None else None
    if restart_policy != "Never":
        errs.append(
            invalid(child(path, "template", "spec", "restartPolicy"), restart_policy,
                    'only "Never" is supported when podFailurePolicy is specified')
        )
    actions = ["Count", "FailIndex", "FailJob", "Ignore"]
    for i, rule in enumerate(policy.rules):
        rule_path = index(child(path, "podFailurePolicy", "rules"), i)
        if rule.action not in actions:
            errs.append(not_supported(child(rule_path, "action"), rule.action, actions))
        if rule.action == "FailIndex" and spec.backoffLimitPerIndex is None:
            errs.append(
                forbidden(
                    child(rule_path, "action"),
                    "the 'FailIndex' action can only be used when backoffLimitPerIndex is set",
                )
            )
        if (rule.onExitCodes is None) == (rule.onPodConditions is None):
            errs.append(
                invalid(rule_path, rule.to_dict(), "specifying one of OnExitCodes and OnPodConditions is required")
            )
        if rule.onExitCodes is not None:
            codes_path = child(rule_path, "onExitCodes")
            codes = rule.onExitCodes
            if codes.operator not in ("In", "NotIn"):
                errs.append(not_supported(child(codes_path, "operator"), codes.operator, ["In", "NotIn"]))
            if not codes.values:
                errs.append(required(child(codes_path, "values"), "at least one value is required"))
            seen: set[int] = set()
            for j, code in enumerate(codes.values):
                if code in seen:
                    errs.append(duplicate(index(child(codes_path, "values"), j), code))
                seen.add(code)
                if codes.operator == "In" and code == 0:
                    errs.append(invalid(index(child(codes_path, "values"), j), code, "must not be 0 for the In operator"))
        for j, pattern in enumerate(rule.onPodConditions or ()):
            pattern_path = index(child(rule_path, "onPodConditions"), j)
            if pattern.status not in ("True", "False", "Unknown"):
                errs.append(not_supported(child(pattern_path, "status"), pattern.status, ["True", "False", "Unknown"]))
            errs += [invalid(child(pattern_path, "type"), pattern.type, m) for m in is_qualified_name(pattern.type)]
    return errs


def _validate_job_spec(spec: JobSpec, path: str, *, check_selector: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    for name in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
                 "backoffLimitPerIndex", "maxFailedIndexes"):
        errs += validate_nonnegative(getattr(spec, name), child(path, name))
    if spec.completionMode not in (None, "NonIndexed", "Indexed"):
        errs.append(not_supported(child(path, "completionMode"), spec.completionMode, ["NonIndexed", "Indexed"]))
    if spec.completionMode == "Indexed":
        if spec.completions is None:
            errs.append(required(child(path, "completions"), "when completion mode is Indexed"))
        elif spec.completions > 100000:
            errs.append(invalid(child(path, "completions"), spec.completions,
                                "must be less than or equal to 100000 when completion mode is Indexed"))
    elif spec.backoffLimitPerIndex is not None:
        errs.append(invalid(child(path, "backoffLimitPerIndex"), spec.backoffLimitPerIndex,
                            "requires indexed completion mode"))
    if spec.podReplacementPolicy is not None:
        supported = ["Failed", "TerminatingOrFailed"]
        if spec.podReplacementPolicy not in supported:
            errs.append(not_supported(child(path, "podReplacementPolicy"), spec.podReplacementPolicy, supported))
        elif spec.podFailurePolicy is not None and spec.podReplacementPolicy != "Failed":
            errs.append(not_supported(child(path, "podReplacementPolicy"), spec.podReplacementPolicy, ["Failed"]))
    template = spec.template
    errs += _validate_pod_template(template, child(path, "template"))
    if check_selector:
        if spec.manualSelector and spec.selector is None:
            errs.append(required(child(path, "selector")))
        if spec.selector is not None:
            errs += validate_label_selector(spec.selector, child(path, "selector"))
            labels = template.metadata.labels if template.metadata is not None else None
            if not label_selector_matches(spec.selector, labels):
                errs.append(invalid(child(path, "template", "metadata", "labels"), labels or {}, _SELECTOR_MISMATCH))
    if template.spec is not None:
        restart_path = child(path, "template", "spec", "restartPolicy")
        restart_policy = template.spec.restartPolicy
        if not restart_policy:
            errs.append(required(restart_path, 'valid values: "OnFailure", "Never"'))
        elif restart_policy not in ("OnFailure", "Never"):
            errs.append(not_supported(restart_path, restart_policy, ["OnFailure", "Never"]))
    errs += _validate_pod_failure_policy(spec, path)
    return errs


def validate_job(obj: Job) -> list[FieldError]:
    errs = _meta(obj, namespaced=True) + _spec_required(obj)
    if obj.spec is not None:
        errs += _validate_job_spec(obj.spec, "spec", check_selector=True)
    return errs


def validate_cron_job(obj: CronJob) -> list[FieldError]:
    errs = _meta(obj, namespaced=True) + _spec_required(obj)
    name = obj.metadata.name
    if name and len(name) > 52:
        errs.append(invalid("metadata.name", name, "must be no more than 52 characters"))
    spec = obj.spec
    if spec is None:
        return errs
    if not spec.schedule:
        errs.append(required("spec.schedule"))
    elif re.search(r"\b(CRON_)?TZ=", spec.schedule):
        errs.append(
            invalid("spec.schedule", spec.schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
        )
    else:
        problem = cron_schedule_error(spec.schedule)
        if problem is not None:
            errs.append(invalid("spec.schedule", spec.schedule, problem))
    if spec.timeZone is not None:
        errs += _validate_time_zone(spec.timeZone, "spec.timeZone")
    if not spec.concurrencyPolicy:
        errs.append(required("spec.concurrencyPolicy"))
    elif spec.concurrencyPolicy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported("spec.concurrencyPolicy", spec.concurrencyPolicy, ["Allow", "Forbid", "Replace"]))
    for name in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs += validate_nonnegative(getattr(spec, name), child("spec", name))
    if spec.jobTemplate.metadata is not None:
        errs += validate_labels(spec.jobTemplate.metadata.labels, "spec.jobTemplate.metadata.labels")
    if spec.jobTemplate.spec is None:
        errs.append(required("spec.jobTemplate.spec"))
    else:
        errs += _validate_job_spec(spec.jobTemplate.spec, "spec.jobTemplate.spec", check_selector=False)
    return errs


def _validate_time_zone(tz: str, path: str) -> list[FieldError]:
    if tz == "" or tz.lower() == "local" or tz.startswith("/") or ".." in tz:
        return [invalid(path, tz, f"unknown time zone {tz}")]
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid(path, tz, f"unknown time zone {tz}")]
    return []


# ---------------------------------------------------------------- autoscaling/v2

_METRIC_SOURCES = {
    "ContainerResource": "containerResource",
    "External": "external",
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
}


def _validate_cross_version_ref(ref: CrossVersionObjectReference, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for name in ("kind", "name"):
        value = getattr(ref, name)
        if not value:
            errs.append(required(child(path, name)))
        else:
            errs += [invalid(child(path, name), value, m) for m in is_valid_path_segment_name(value)]
    return errs


def _positive_quantity(value: str | None, path: str) -> list[FieldError]:
    if value is not None and parse_quantity(value).nanos <= 0:
        return [invalid(path, value, "must be positive")]
    return []


def _validate_metric_target(target: MetricTarget, path: str, *, resource: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    allowed = ["Utilization", "Value", "AverageValue"]
    if target.type not in allowed:
        errs.append(not_supported(child(path, "type"), target.type, allowed))
    if target.averageUtilization is not None and target.averageUtilization < 1:
        errs.append(invalid(child(path, "averageUtilization"), target.averageUtilization, "must be greater than 0"))
    errs += _positive_quantity(target.value, child(path, "value"))
    errs += _positive_quantity(target.averageValue, child(path, "averageValue"))
    if target.type == "Utilization" and target.averageUtilization is None:
        errs.append(required(child(path, "averageUtilization"), "must set averageUtilization when type is Utilization"))
    if target.type == "Value" and target.value is None:
        errs.append(required(child(path, "value"), "must set value when type is Value"))
    if target.type == "AverageValue" and target.averageValue is None:
        errs.append(required(child(path, "averageValue"), "must set averageValue when type is AverageValue"))
    if resource and target.type == "Value":
        errs.append(invalid(child(path, "type"), target.type, "must be either Utilization or AverageValue"))
    return errs


def _validate_metric(metric: MetricSpec, path: str) -> list[FieldError]:
    field_name = _METRIC_SOURCES.get(metric.type)
    if field_name is None:
        return [not_supported(child(path, "type"), metric.type, sorted(_METRIC_SOURCES))]
    errs: list[FieldError] = []
    for other in _METRIC_SOURCES.values():
        if other != field_name and getattr(metric, other) is not None:
            errs.append(forbidden(child(path, other), "must populate the given metric source only"))
    source = getattr(metric, field_name)
    source_path = child(path, field_name)
    if source is None:
        errs.append(required(source_path, "must populate information for the given metric source"))
        return errs
    if field_name in ("resource", "containerResource"):
        if not source.name:
            errs.append(required(child(source_path, "name"), "resource name must be specified"))
        if field_name == "containerResource" and not source.container:
            errs.append(required(child(source_path, "container"), "container name must be specified"))
    else:
        if not source.metric.name:
            errs.append(required(child(source_path, "metric", "name"), "must specify a metric name"))
        if source.metric.selector is not None:
            errs += validate_label_selector(source.metric.selector, child(source_path, "metric", "selector"))
        if field_name == "object":
            errs += _validate_cross_version_ref(source.describedObject, child(source_path, "describedObject"))
    errs += _validate_metric_target(source.target, child(source_path, "target"),
                                    resource=field_name in ("resource", "containerResource"))
    return errs


def _validate_scaling_rules(rules: HPAScalingRules | None, path: str) -> list[FieldError]:
    if rules is None:
        return []
    errs: list[FieldError] = []
    window = rules.stabilizationWindowSeconds
    if window is not None and not 0 <= window <= 3600:
        detail = "must be less than or equal to 3600" if window > 3600 else "must be greater than or equal to zero"
        errs.append(invalid(child(path, "stabilizationWindowSeconds"), window, detail))
    if rules.selectPolicy is not None and rules.selectPolicy not in ("Max", "Min", "Disabled"):
        errs.append(not_supported(child(path, "selectPolicy"), rules.selectPolicy, ["Disabled", "Max", "Min"]))
    if rules.policies is not None and not rules.policies:
        errs.append(required(child(path, "policies"), "must specify at least one Policy"))
    for i, policy in enumerate(rules.policies or ()):
        policy_path = index(child(path, "policies"), i)
        if policy.type not in ("Pods", "Percent"):
            errs.append(not_supported(child(policy_path, "type"), policy.type, ["Percent", "Pods"]))
        if policy.value <= 0:
            errs.append(invalid(child(policy_path, "value"), policy.value, "must be greater than zero"))
        if policy.periodSeconds <= 0:
            errs.append(invalid(child(policy_path, "periodSeconds"), policy.periodSeconds, "must be greater than zero"))
        elif policy.periodSeconds > 1800:
            errs.append(invalid(child(policy_path, "periodSeconds"), policy.periodSeconds,
                                "must be less than or equal to 1800"))
    return errs


def validate_horizontal_pod_autoscaler(obj: HorizontalPodAutoscaler) -> list[FieldError]:
    errs = _meta(obj, namespaced=True) + _spec_required(obj)
    spec = obj.spec
    if spec is None:
        return errs
    errs += _validate_cross_version_ref(spec.scaleTargetRef, "spec.scaleTargetRef")
    if spec.minReplicas is not None and spec.minReplicas < 1:
        errs.append(invalid("spec.minReplicas", spec.minReplicas, "must be greater than or equal to 1"))
    if spec.maxReplicas < 1:
        errs.append(invalid("spec.maxReplicas", spec.maxReplicas, "must be greater than 0"))
    if spec.minReplicas is not None and spec.maxReplicas < spec.minReplicas:
        errs.append(invalid("spec.maxReplicas", spec.maxReplicas, "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(spec.metrics or ()):
        errs += _validate_metric(metric, index("spec.metrics", i))
    if spec.behavior is not None:
        errs += _validate_scaling_rules(spec.behavior.scaleUp, "spec.behavior.scaleUp")
        errs += _validate_scaling_rules(spec.behavior.scaleDown, "spec.behavior.scaleDown")
    return errs


# ---------------------------------------------------------------- storage, coordination, discovery


def validate_storage_class(obj: StorageClass) -> list[FieldError]:
    errs = _meta(obj, namespaced=False)
    if not obj.provisioner:
        errs.append(required("provisioner"))
    else:
        errs += [invalid("provisioner", obj.provisioner, m) for m in is_qualified_name(obj.provisioner.lower())]
    params = obj.parameters or {}
    if len(params) > 512:
        errs.append(too_many("parameters", len(params), 512))
    if sum(len(k) + len(v) for k, v in params.items()) > 256 * 1024:
        errs.append(invalid("parameters", "", "must have at most 262144 bytes"))
    if obj.reclaimPolicy is not None and obj.reclaimPolicy not in ("Delete", "Retain"):
        errs.append(not_supported("reclaimPolicy", obj.reclaimPolicy, ["Delete", "Retain"]))
    if obj.volumeBindingMode is not None and obj.volumeBindingMode not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(not_supported("volumeBindingMode", obj.volumeBindingMode, ["Immediate", "WaitForFirstConsumer"]))
    for i, term in enumerate(obj.allowedTopologies or ()):
        term_path = index("allowedTopologies", i)
        if not term.matchLabelExpressions:
            errs.append(required(child(term_path, "matchLabelExpressions"), "must have at least one label selector"))
        for j, req in enumerate(term.matchLabelExpressions or ()):
            req_path = index(child(term_path, "matchLabelExpressions"), j)
            errs += [invalid(child(req_path, "key"), req.key, m) for m in is_qualified_name(req.key)]
            if not req.values:
                errs.append(required(child(req_path, "values"), "must specify as least one value"))
            seen: set[str] = set()
            for k, value in enumerate(req.values):
                if value in seen:
                    errs.append(duplicate(index(child(req_path, "values"), k), value))
                seen.add(value)
    return errs


def validate_lease(obj: Lease) -> list[FieldError]:
    errs = _meta(obj, namespaced=True)
    if obj.spec is not None:
        if obj.spec.leaseDurationSeconds is not None and obj.spec.leaseDurationSeconds <= 0:
            errs.append(invalid("spec.leaseDurationSeconds", obj.spec.leaseDurationSeconds, "must be greater than 0"))
        errs += validate_nonnegative(obj.spec.leaseTransitions, "spec.leaseTransitions")
    return errs


def _address_errors(address_type: str, address: str) -> list[str]:
    if address_type == "FQDN":
        return is_dns1123_subdomain(address)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if address_type == "IPv4" and (ip is None or ip.version != 4):
        return ["must be a valid IPv4 address"]
    if address_type == "IPv6" and (ip is None or ip.version != 6):
        return ["must be a valid IPv6 address"]
    return []


def validate_endpoint_slice(obj: EndpointSlice) -> list[FieldError]:
    errs = _meta(obj, namespaced=True)
    address_types = ["IPv4", "IPv6", "FQDN"]
    if obj.addressType not in address_types:
        errs.append(not_supported("addressType", obj.addressType, address_types))
    endpoints = obj.endpoints or []
    if len(endpoints) > 1000:
        errs.append(too_many("endpoints", len(endpoints), 1000))
    for i, endpoint in enumerate(endpoints):
        path = index("endpoints", i)
        if not endpoint.addresses:
            errs.append(required(child(path, "addresses"), "must contain at least 1 address"))
        elif len(endpoint.addresses) > 100:
            errs.append(too_many(child(path, "addresses"), len(endpoint.addresses), 100))
        if obj.addressType in address_types:
            for j, address in enumerate(endpoint.addresses):
                errs += [invalid(index(child(path, "addresses"), j), address, m)
                         for m in _address_errors(obj.addressType, address)]
        if endpoint.hostname is not None:
            errs += [invalid(child(path, "hostname"), endpoint.hostname, m) for m in is_dns1123_label(endpoint.hostname)]
        if endpoint.nodeName is not None:
            errs += [
                invalid(child(path, "nodeName"), endpoint.nodeName, m) for m in is_dns1123_subdomain(endpoint.nodeName)
            ]
    ports = obj.ports or []
    if len(ports) > 20000:
        errs.append(too_many("ports", len(ports), 20000))
    names: set[str] = set()
    for i, port in enumerate(ports):
        path = index("ports", i)
        name = port.name or ""
        if name:
            errs += [invalid(child(path, "name"), name, m) for m in is_dns1123_label(name)]
        if name in names:
            errs.append(duplicate(child(path, "name"), name))
        names.add(name)
        if port.protocol is not None and port.protocol not in ("TCP", "UDP", "SCTP"):
            errs.append(not_supported(child(path, "protocol"), port.protocol, ["SCTP", "TCP", "UDP"]))
        if port.port is not None:
            errs += [invalid(child(path, "port"), port.port, m) for m in is_valid_port_num(port.port)]
        if port.appProtocol is not None:
            errs += [invalid(child(path, "appProtocol"), port.appProtocol, m) for m in is_qualified_name(port.appProtocol)]
    return errs


# ---------------------------------------------------------------- rbac.authorization.k8s.io/v1


def _validate_policy_rule(rule: PolicyRule, path: str, *, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    if not rule.verbs:
        errs.append(required(child(path, "verbs"), "verbs must contain at least one value"))
    if rule.nonResourceURLs:
        if namespaced:
            errs.append(invalid(child(path, "nonResourceURLs"), rule.nonResourceURLs,
                                "namespaced rules cannot apply to non-resource URLs"))
        if rule.apiGroups or rule.resources or rule.resourceNames:
            errs.append(invalid(child(path, "nonResourceURLs"), rule.nonResourceURLs,
                                "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not rule.apiGroups:
        errs.append(required(child(path, "apiGroups"), "resource rules must supply at least one api group"))
    if not rule.resources:
        errs.append(required(child(path, "resources"), "resource rules must supply at least one resource"))
    return errs


def _rbac_meta(obj: Any, *, namespaced: bool) -> list[FieldError]:
    return _meta(obj, namespaced=namespaced, name_validator=is_valid_path_segment_name)


def validate_role(obj: Role) -> list[FieldError]:
    errs = _rbac_meta(obj, namespaced=True)
    for i, rule in enumerate(obj.rules or ()):
        errs += _validate_policy_rule(rule, index("rules", i), namespaced=True)
    return errs


def validate_cluster_role(obj: ClusterRole) -> list[FieldError]:
    errs = _rbac_meta(obj, namespaced=False)
    for i, rule in enumerate(obj.rules or ()):
        errs += _validate_policy_rule(rule, index("rules", i), namespaced=False)
    if obj.aggregationRule is not None:
        selectors = obj.aggregationRule.clusterRoleSelectors or []
        if not selectors:
            errs.append(
                required(
                    "aggregationRule.clusterRoleSelectors",
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                )
            )
        for i, selector in enumerate(selectors):
            errs += validate_label_selector(selector, index("aggregationRule.clusterRoleSelectors", i))
    return errs


def _validate_role_ref(ref: RoleRef, kinds: Iterable[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    if ref.apiGroup != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.apiGroup, [RBAC_GROUP]))
    kinds = list(kinds)
    if ref.kind not in kinds:
        errs.append(not_supported("roleRef.kind", ref.kind, kinds))
    if not ref.name:
        errs.append(required("roleRef.name"))
    else:
        errs += [invalid("roleRef.name", ref.name, m) for m in is_valid_path_segment_name(ref.name)]
    return errs


def _validate_subject(subject: Subject, path: str, *, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    if not subject.name:
        errs.append(required(child(path, "name")))
    if subject.kind == "ServiceAccount":
        if subject.name:
            errs += [invalid(child(path, "name"), subject.name, m) for m in is_dns1123_subdomain(subject.name)]
        if subject.apiGroup:
            errs.append(not_supported(child(path, "apiGroup"), subject.apiGroup, [""]))
        if not namespaced and not subject.namespace:
            errs.append(required(child(path, "namespace")))
    elif subject.kind in ("User", "Group"):
        if subject.apiGroup != RBAC_GROUP:
            errs.append(not_supported(child(path, "apiGroup"), subject.apiGroup, [RBAC_GROUP]))
    else:
        errs.append(not_supported(child(path, "kind"), subject.kind, ["ServiceAccount", "User", "Group"]))
    return errs


def validate_role_binding(obj: RoleBinding) -> list[FieldError]:
    errs = _rbac_meta(obj, namespaced=True) + _validate_role_ref(obj.roleRef, ["Role", "ClusterRole"])
    for i, subject in enumerate(obj.subjects or ()):
        errs += _validate_subject(subject, index("subjects", i), namespaced=True)
    return errs


def validate_cluster_role_binding(obj: ClusterRoleBinding) -> list[FieldError]:
    errs = _rbac_meta(obj, namespaced=False) + _validate_role_ref(obj.roleRef, ["ClusterRole"])
    for i, subject in enumerate(obj.subjects or ()):
        errs += _validate_subject(subject, index("subjects", i), namespaced=False)
    return errs


WORKLOAD_VALIDATORS: dict[str, Validator] = {
    "Deployment": validate_deployment,
    "ReplicaSet": validate_replica_set,
    "StatefulSet": validate_stateful_set,
    "DaemonSet": validate_daemon_set,
    "ControllerRevision": validate_controller_revision,
    "Job": validate_job,
    "CronJob": validate_cron_job,
    "HorizontalPodAutoscaler": validate_horizontal_pod_autoscaler,
    "StorageClass": validate_storage_class,
    "Lease": validate_lease,
    "EndpointSlice": validate_endpoint_slice,
    "Role": validate_role,
    "ClusterRole": validate_cluster_role,
    "RoleBinding": validate_role_binding,
    "ClusterRoleBinding": validate_cluster_role_binding,
}
"""Validators keyed by kind name; each returns the object's field errors (empty when valid)."""
