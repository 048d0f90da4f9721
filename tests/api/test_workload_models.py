"""Workload and other non-core models: manifests round-trip, defaulting, validation."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kcore.api.apps_v1 import ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet
from kcore.api.autoscaling import HorizontalPodAutoscaler, Scale
from kcore.api.batch_v1 import CronJob, Job
from kcore.api.coordination_v1 import Lease
from kcore.api.core_v1 import Service
from kcore.api.defaults_workloads import WORKLOAD_DEFAULTERS, generate_job_selector
from kcore.api.discovery_v1 import EndpointSlice
from kcore.api.rbac_v1 import ClusterRole, ClusterRoleBinding, Role, RoleBinding
from kcore.api.storage_v1 import StorageClass

MANIFESTS = Path(__file__).parent / "manifests" / "workloads"

MODELS: dict[tuple[str, str], type] = {
    ("v1", "Service"): Service,
    ("apps/v1", "Deployment"): Deployment,
    ("apps/v1", "ReplicaSet"): ReplicaSet,
    ("apps/v1", "StatefulSet"): StatefulSet,
    ("apps/v1", "DaemonSet"): DaemonSet,
    ("apps/v1", "ControllerRevision"): ControllerRevision,
    ("batch/v1", "Job"): Job,
    ("batch/v1", "CronJob"): CronJob,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): HorizontalPodAutoscaler,
    ("storage.k8s.io/v1", "StorageClass"): StorageClass,
    ("coordination.k8s.io/v1", "Lease"): Lease,
    ("discovery.k8s.io/v1", "EndpointSlice"): EndpointSlice,
    ("rbac.authorization.k8s.io/v1", "Role"): Role,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ClusterRole,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): RoleBinding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ClusterRoleBinding,
}


def _docs() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                docs.append((f"{path.stem}[{i}]", doc))
    return docs


DOCS = _docs()


def load(name: str, kind: str | None = None) -> Any:
    """Parse the (first, or first of ``kind``) object of a manifest file."""
    for doc in yaml.safe_load_all((MANIFESTS / name).read_text()):
        if kind is None or doc["kind"] == kind:
            return MODELS[(doc["apiVersion"], doc["kind"])].from_dict(doc)
    raise LookupError(f"{kind} not in {name}")


def defaulted(obj: Any) -> Any:
    WORKLOAD_DEFAULTERS[type(obj).__name__](obj)
    return obj


# ---------------------------------------------------------------- parsing and round trips


def test_every_manifest_kind_is_covered() -> None:
    kinds = {doc["kind"] for _, doc in DOCS}
    assert kinds >= {
        "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "ControllerRevision", "Job", "CronJob",
        "HorizontalPodAutoscaler", "StorageClass", "Lease", "EndpointSlice", "Role", "ClusterRole",
        "RoleBinding", "ClusterRoleBinding",
    }


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_manifest_round_trips_unchanged(name: str, doc: dict[str, Any]) -> None:
    model = MODELS[(doc["apiVersion"], doc["kind"])]
    obj = model.from_dict(copy.deepcopy(doc))
    assert obj.to_dict() == doc
    assert model.from_json(obj.to_json()).to_dict() == doc


def test_nested_fields_parse_to_typed_models() -> None:
    dep = load("nginx-deployment.yaml")
    assert dep.spec.replicas == 3
    assert dep.spec.selector.matchLabels == {"app": "nginx"}
    assert dep.spec.template.spec.containers[0].image == "nginx:1.14.2"
    sts = load("statefulset-web.yaml", "StatefulSet")
    assert sts.spec.volumeClaimTemplates[0].spec.resources.requests == {"storage": "1Gi"}
    assert sts.spec.persistentVolumeClaimRetentionPolicy.whenDeleted == "Delete"
    hpa = load("hpa-php-apache.yaml")
    assert [m.type for m in hpa.spec.metrics] == ["Resource", "Pods", "Object", "External"]
    assert hpa.spec.metrics[2].object.describedObject.kind == "Ingress"
    assert hpa.status.desiredReplicas == 1
    es = load("endpointslice.yaml")
    assert es.endpoints[0].conditions.ready is True
    assert es.endpoints[0].targetRef.kind == "Pod"


def test_unknown_fields_are_rejected() -> None:
    doc = yaml.safe_load((MANIFESTS / "nginx-deployment.yaml").read_text())
    doc["spec"]["replica"] = 3
    with pytest.raises(ValidationError, match="replica"):
        Deployment.from_dict(doc)


@pytest.mark.parametrize(
    ("model", "doc", "missing"),
    [
        (StorageClass, {"metadata": {"name": "x"}}, "provisioner"),
        (EndpointSlice, {"metadata": {"name": "x"}, "endpoints": []}, "addressType"),
        (RoleBinding, {"metadata": {"name": "x"}, "subjects": []}, "roleRef"),
        (ControllerRevision, {"metadata": {"name": "x"}}, "revision"),
        (HorizontalPodAutoscaler, {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}}}, "maxReplicas"),
        (Deployment, {"spec": {"selector": {}}}, "template"),
        (CronJob, {"spec": {"jobTemplate": {}}}, "schedule"),
    ],
)
def test_required_fields_are_required(model: type, doc: dict[str, Any], missing: str) -> None:
    with pytest.raises(ValidationError, match=missing):
        model.from_dict(doc)


def test_int_or_string_keeps_its_wire_type() -> None:
    doc = yaml.safe_load((MANIFESTS / "nginx-deployment.yaml").read_text())
    doc["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"}}
    dep = Deployment.from_dict(doc)
    assert dep.spec.strategy.rollingUpdate.maxSurge == 1
    assert dep.spec.strategy.rollingUpdate.maxUnavailable == "10%"
    assert dep.to_dict()["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": "10%"}


def test_controller_revision_data_is_arbitrary_json() -> None:
    rev = load("controllerrevision.yaml")
    assert rev.revision == 1
    assert rev.data["spec"]["template"]["$patch"] == "replace"


def test_quantities_are_canonicalized_like_kubernetes() -> None:
    hpa = HorizontalPodAutoscaler.from_dict(
        {
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "x"},
                "maxReplicas": 3,
                "metrics": [{"type": "External", "external": {"metric": {"name": "q"},
                                                              "target": {"type": "AverageValue", "averageValue": 30}}}],
            }
        }
    )
    assert hpa.spec.metrics[0].external.target.averageValue == "30"


def test_scale_subresource_body() -> None:
    body = {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 5},
        "status": {"replicas": 3, "selector": "app=nginx"},
    }
    scale = Scale.from_dict(body)
    assert scale.spec.replicas == 5 and scale.status.selector == "app=nginx"
    assert scale.to_dict() == body


def test_models_carry_descriptions_for_openapi_and_explain() -> None:
    schema = Deployment.model_json_schema()
    defs = schema["$defs"]
    assert "Deployment" in (schema.get("description") or "") or schema.get("description")
    assert "RollingUpdate" in defs["DeploymentStrategy"]["properties"]["type"]["description"]
    assert "25%" in defs["RollingUpdateDeployment"]["properties"]["maxSurge"]["description"]
    assert defs["DeploymentSpec"]["properties"]["strategy"]["description"]


# ---------------------------------------------------------------- defaulting


# What `kubectl get deployment nginx-deployment -o yaml` shows for the docs' manifest,
# leaving out what the server adds outside defaulting (uid, timestamps, generation).
NGINX_DEFAULTED_SPEC_OUTSIDE_TEMPLATE = {
    "progressDeadlineSeconds": 600,
    "replicas": 3,
    "revisionHistoryLimit": 10,
    "selector": {"matchLabels": {"app": "nginx"}},
    "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}, "type": "RollingUpdate"},
}
NGINX_DEFAULTED_POD_SPEC_FIELDS = {
    "dnsPolicy": "ClusterFirst",
    "restartPolicy": "Always",
    "schedulerName": "default-scheduler",
    "securityContext": {},
    "terminationGracePeriodSeconds": 30,
}
NGINX_DEFAULTED_CONTAINER = {
    "image": "nginx:1.14.2",
    "imagePullPolicy": "IfNotPresent",
    "name": "nginx",
    "ports": [{"containerPort": 80, "protocol": "TCP"}],
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}


def test_defaulted_nginx_deployment_matches_kubernetes() -> None:
    spec = defaulted(load("nginx-deployment.yaml")).to_dict()["spec"]
    template = spec.pop("template")
    assert spec == NGINX_DEFAULTED_SPEC_OUTSIDE_TEMPLATE
    assert template["metadata"] == {"labels": {"app": "nginx"}}
    pod_spec = template["spec"]
    for key, value in NGINX_DEFAULTED_POD_SPEC_FIELDS.items():
        assert pod_spec[key] == value, key
    container = pod_spec["containers"][0]
    assert {k: v for k, v in container.items() if k != "resources"} == NGINX_DEFAULTED_CONTAINER


def test_deployment_defaults_keep_what_the_user_set() -> None:
    doc = yaml.safe_load((MANIFESTS / "nginx-deployment.yaml").read_text())
    doc["spec"].update(strategy={"type": "Recreate"}, revisionHistoryLimit=2, replicas=0)
    dep = defaulted(Deployment.from_dict(doc))
    assert dep.spec.strategy.type == "Recreate"
    assert dep.spec.strategy.rollingUpdate is None
    assert dep.spec.revisionHistoryLimit == 2
    assert dep.spec.replicas == 0
    partial = Deployment.from_dict(
        {"spec": {"selector": {"matchLabels": {"a": "b"}}, "strategy": {"rollingUpdate": {"maxSurge": 2}},
                  "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    )
    defaulted(partial)
    assert partial.spec.replicas == 1
    assert partial.spec.strategy.to_dict() == {"type": "RollingUpdate",
                                               "rollingUpdate": {"maxSurge": 2, "maxUnavailable": "25%"}}


@pytest.mark.parametrize(("name", "doc"), DOCS, ids=[n for n, _ in DOCS])
def test_defaulting_is_idempotent(name: str, doc: dict[str, Any]) -> None:
    defaulter = WORKLOAD_DEFAULTERS.get(doc["kind"])
    if defaulter is None:
        assert doc["kind"] in {"Service", "ControllerRevision", "Lease", "Role", "ClusterRole"}
        return
    obj = MODELS[(doc["apiVersion"], doc["kind"])].from_dict(copy.deepcopy(doc))
    defaulter(obj)
    once = obj.to_dict()
    defaulter(obj)
    assert obj.to_dict() == once


def test_replica_set_defaults() -> None:
    rs = ReplicaSet.from_dict({"spec": {"selector": {"matchLabels": {"a": "b"}}}})
    defaulted(rs)
    assert rs.spec.replicas == 1


def test_stateful_set_defaults() -> None:
    sts = defaulted(load("statefulset-web.yaml", "StatefulSet"))
    spec = sts.to_dict()["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["replicas"] == 3
    # Set by the user, kept; an unset half would be Retain.
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}
    claim = spec["volumeClaimTemplates"][0]
    assert claim["apiVersion"] == "v1" and claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"

    bare = StatefulSet.from_dict(
        {"spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}},
                  "updateStrategy": {"type": "OnDelete"}}}
    )
    defaulted(bare)
    assert bare.spec.replicas == 1
    assert bare.spec.updateStrategy.rollingUpdate is None
    assert bare.spec.persistentVolumeClaimRetentionPolicy.to_dict() == {"whenDeleted": "Retain", "whenScaled": "Retain"}


def test_daemon_set_defaults() -> None:
    ds = defaulted(load("daemonset-fluentd.yaml"))
    spec = ds.to_dict()["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["template"]["spec"]["volumes"][0]["hostPath"] == {"path": "/var/log", "type": ""}


def test_job_defaults() -> None:
    job = defaulted(load("job-pi.yaml"))
    spec = job.spec
    assert (spec.completions, spec.parallelism, spec.backoffLimit) == (1, 1, 4)
    assert spec.completionMode == "NonIndexed"
    assert spec.suspend is False
    assert spec.podReplacementPolicy == "TerminatingOrFailed"
    assert spec.template.spec.restartPolicy == "Never"
    assert spec.template.spec.dnsPolicy == "ClusterFirst"
    assert spec.selector is None  # no uid yet: the selector is generated on create

    work_queue = Job.from_dict({"spec": {"parallelism": 3, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    defaulted(work_queue)
    assert work_queue.spec.completions is None and work_queue.spec.parallelism == 3
    assert work_queue.spec.backoffLimit == 6
    # restartPolicy is not defaulted to Always for Jobs: validation reports it missing instead.
    assert work_queue.spec.template.spec.restartPolicy is None

    per_index = Job.from_dict({"spec": {"backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 3,
                                        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    defaulted(per_index)
    assert per_index.spec.backoffLimit == 2**31 - 1
    assert per_index.spec.parallelism == 1


def test_job_pod_failure_policy_defaults() -> None:
    job = defaulted(load("job-pod-failure-policy.yaml"))
    assert job.spec.podFailurePolicy.rules[1].onPodConditions[0].status == "True"
    assert job.spec.podReplacementPolicy == "Failed"


def test_job_labels_and_generated_selector() -> None:
    job = Job.from_dict({"metadata": {"name": "pi", "uid": "u-1"},
                         "spec": {"template": {"metadata": {"labels": {"app": "pi"}},
                                               "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}})
    defaulted(job)
    assert job.metadata.labels == {"app": "pi"}
    assert job.spec.selector.matchLabels == {"batch.kubernetes.io/controller-uid": "u-1"}
    assert job.spec.template.metadata.labels == {
        "app": "pi",
        "batch.kubernetes.io/controller-uid": "u-1",
        "controller-uid": "u-1",
        "batch.kubernetes.io/job-name": "pi",
        "job-name": "pi",
    }

    manual = Job.from_dict({"metadata": {"name": "m", "uid": "u-2"},
                            "spec": {"manualSelector": True, "selector": {"matchLabels": {"x": "y"}},
                                     "template": {"metadata": {"labels": {"x": "y"}},
                                                  "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}})
    generate_job_selector(manual)
    assert manual.spec.selector.matchLabels == {"x": "y"}
    assert manual.spec.template.metadata.labels == {"x": "y"}


def test_cron_job_defaults() -> None:
    cj = defaulted(load("cronjob-hello.yaml"))
    spec = cj.spec
    assert (spec.concurrencyPolicy, spec.suspend) == ("Allow", False)
    assert (spec.successfulJobsHistoryLimit, spec.failedJobsHistoryLimit) == (3, 1)
    pod_spec = spec.jobTemplate.spec.template.spec
    assert pod_spec.restartPolicy == "OnFailure"
    assert pod_spec.schedulerName == "default-scheduler"
    # The job template's own JobSpec is not given Job-level defaults (as in Kubernetes).
    assert spec.jobTemplate.spec.completions is None


def test_hpa_defaults() -> None:
    hpa = HorizontalPodAutoscaler.from_dict(
        {"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"}, "maxReplicas": 4}}
    )
    defaulted(hpa)
    assert hpa.spec.minReplicas == 1
    assert [m.to_dict() for m in hpa.spec.metrics] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]
    assert hpa.spec.behavior is None

    php = defaulted(load("hpa-php-apache.yaml"))
    assert len(php.spec.metrics) == 4
    behavior = php.spec.behavior.to_dict()
    assert behavior["scaleDown"] == {"stabilizationWindowSeconds": 300, "selectPolicy": "Min",
                                     "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}]}
    assert behavior["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                   "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                                {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def test_other_defaults() -> None:
    sc = defaulted(StorageClass.from_dict({"metadata": {"name": "s"}, "provisioner": "p"}))
    assert (sc.reclaimPolicy, sc.volumeBindingMode) == ("Delete", "Immediate")
    kept = defaulted(load("storageclass.yaml"))
    assert (kept.reclaimPolicy, kept.volumeBindingMode) == ("Retain", "WaitForFirstConsumer")

    es = defaulted(EndpointSlice.from_dict({"addressType": "IPv4", "endpoints": [], "ports": [{"port": 53}]}))
    assert es.ports[0].protocol == "TCP"

    rb = defaulted(RoleBinding.from_dict(
        {"subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "d", "namespace": "n"}],
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}
    ))
    assert rb.subjects[0].apiGroup == "rbac.authorization.k8s.io"
    assert rb.subjects[1].apiGroup is None


# ---------------------------------------------------------------- validation

from kcore.api.validate_workloads import WORKLOAD_VALIDATORS, cron_schedule_error, label_selector_matches  # noqa: E402

CLUSTER_SCOPED = {"StorageClass", "ClusterRole", "ClusterRoleBinding"}


def prepared(obj: Any) -> Any:
    """What the API server validates: namespace filled in for namespaced kinds, then defaulted."""
    kind = type(obj).__name__
    if kind not in CLUSTER_SCOPED and obj.metadata.namespace is None:
        obj.metadata.namespace = "default"
    if kind in WORKLOAD_DEFAULTERS:
        WORKLOAD_DEFAULTERS[kind](obj)
    return obj


def errors(obj: Any) -> list[str]:
    return [str(e) for e in WORKLOAD_VALIDATORS[type(obj).__name__](prepared(obj))]


def fields(obj: Any) -> list[str]:
    return [e.field for e in WORKLOAD_VALIDATORS[type(obj).__name__](prepared(obj))]


def nginx(**spec_changes: Any) -> Deployment:
    doc = yaml.safe_load((MANIFESTS / "nginx-deployment.yaml").read_text())
    doc["spec"].update(spec_changes)
    return Deployment.from_dict(doc)


@pytest.mark.parametrize(("name", "doc"), [(n, d) for n, d in DOCS if d["kind"] in WORKLOAD_VALIDATORS],
                         ids=[n for n, d in DOCS if d["kind"] in WORKLOAD_VALIDATORS])
def test_documentation_manifests_are_valid(name: str, doc: dict[str, Any]) -> None:
    obj = MODELS[(doc["apiVersion"], doc["kind"])].from_dict(copy.deepcopy(doc))
    assert errors(obj) == []


def test_every_validator_checks_object_meta() -> None:
    rb = RoleBinding.from_dict({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}})
    assert errors(rb) == ["metadata.name: Required value: name or generateName is required"]
    sc = StorageClass.from_dict({"metadata": {"name": "Bad_Name", "namespace": "x"}, "provisioner": "p"})
    assert fields(sc) == ["metadata.name", "metadata.namespace"]


def test_deployment_selector_must_match_template_labels() -> None:
    dep = nginx(selector={"matchLabels": {"app": "other"}})
    assert errors(dep) == [
        'spec.template.metadata.labels: Invalid value: {"app": "nginx"}: `selector` does not match template `labels`'
    ]
    expressions = nginx(selector={"matchExpressions": [{"key": "app", "operator": "In", "values": ["nginx", "web"]}]})
    assert errors(expressions) == []
    empty = nginx(selector={})
    assert fields(empty) == ["spec.selector"]
    assert "empty selector is invalid for deployment" in errors(empty)[0]


def test_deployment_numbers_and_strategy() -> None:
    assert errors(nginx(replicas=-1)) == ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]
    assert errors(nginx(strategy={"type": "BlueGreen"})) == [
        'spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"'
    ]
    assert errors(nginx(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})) == [
        "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"
    ]
    assert errors(nginx(strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})) == [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0'
    ]
    assert fields(nginx(strategy={"rollingUpdate": {"maxSurge": "25", "maxUnavailable": "150%"}})) == [
        "spec.strategy.rollingUpdate.maxSurge",
        "spec.strategy.rollingUpdate.maxUnavailable",
    ]
    assert errors(nginx(strategy={"rollingUpdate": {"maxSurge": -1}})) == [
        "spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"
    ]
    assert errors(nginx(minReadySeconds=700)) == [
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"
    ]


def test_deployment_pods_must_restart_always() -> None:
    dep = nginx()
    dep.spec.template.spec.restartPolicy = "OnFailure"
    dep.spec.template.spec.activeDeadlineSeconds = 5
    assert errors(dep) == [
        'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
        "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
    ]


def test_replica_set_stateful_set_daemon_set_rules() -> None:
    rs = load("replicaset-frontend.yaml")
    rs.spec.template = None
    assert errors(rs) == ["spec.template: Required value"]

    sts = load("statefulset-web.yaml", "StatefulSet")
    sts.spec.podManagementPolicy = "Random"
    sts.spec.persistentVolumeClaimRetentionPolicy.whenScaled = "Keep"
    assert fields(sts) == ["spec.podManagementPolicy", "spec.persistentVolumeClaimRetentionPolicy.whenScaled"]

    ds = prepared(load("daemonset-fluentd.yaml"))
    ds.spec.updateStrategy.rollingUpdate.maxUnavailable = 0
    assert [str(e) for e in WORKLOAD_VALIDATORS["DaemonSet"](ds)] == [
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
    ]
    ds.spec.updateStrategy.type = "Sometimes"
    assert [e.field for e in WORKLOAD_VALIDATORS["DaemonSet"](ds)] == ["spec.updateStrategy.type"]


def test_controller_revision_rules() -> None:
    rev = ControllerRevision.from_dict({"metadata": {"name": "r"}, "revision": -1})
    assert errors(rev) == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0",
    ]


def _job(restart_policy: str | None, **spec: Any) -> Job:
    pod_spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox"}]}
    if restart_policy is not None:
        pod_spec["restartPolicy"] = restart_policy
    return Job.from_dict({"metadata": {"name": "j"}, "spec": {"template": {"spec": pod_spec}, **spec}})


def test_job_restart_policy_must_be_on_failure_or_never() -> None:
    assert errors(_job("Never")) == []
    assert errors(_job("OnFailure")) == []
    assert errors(_job("Always")) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'
    ]
    assert errors(_job(None)) == [
        'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
    ]


def test_job_spec_rules() -> None:
    assert errors(_job("Never", backoffLimit=-1)) == [
        "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"
    ]
    assert errors(_job("Never", completionMode="Indexed", parallelism=2)) == [
        "spec.completions: Required value: when completion mode is Indexed"
    ]
    assert fields(_job("Never", completionMode="Sometimes")) == ["spec.completionMode"]
    assert errors(_job("Never", manualSelector=True)) == ["spec.selector: Required value"]
    mismatch = _job("Never", manualSelector=True, selector={"matchLabels": {"a": "b"}})
    assert fields(mismatch) == ["spec.template.metadata.labels"]
    policy = {"rules": [{"action": "Explode", "onExitCodes": {"operator": "In", "values": [0]}}]}
    assert errors(_job("OnFailure", podFailurePolicy=policy)) == [
        'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified',
        'spec.podFailurePolicy.rules[0].action: Unsupported value: "Explode": supported values: "Count", "FailIndex", "FailJob", "Ignore"',
        "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator",
    ]


def test_generated_job_selector_is_valid() -> None:
    job = _job("Never")
    job.metadata.uid = "0b1d6a0c-3c3e-4b53-8c07-8c1b2c1b7c11"
    assert errors(job) == []
    assert job.spec.selector is not None


@pytest.mark.parametrize(
    "schedule",
    ["* * * * *", "*/5 * * * *", "0 0 * * SUN-SAT", "0 9-17/2 * JAN,mar 1-5", "15 3 ? * 0", "5/15 0 1 1 *",
     "@hourly", "@daily", "@every 1h30m"],
)
def test_valid_cron_schedules(schedule: str) -> None:
    assert cron_schedule_error(schedule) is None


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 5-2 * * *", "beginning of range (5) beyond end of range (2): 5-2"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("* * * FOO *", "failed to parse int from FOO"),
        ("? * * * *", "failed to parse int from ?"),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
        ("", "empty spec string"),
    ],
)
def test_invalid_cron_schedules(schedule: str, problem: str) -> None:
    assert (cron_schedule_error(schedule) or "").startswith(problem)


def test_cron_job_rules() -> None:
    cj = load("cronjob-hello.yaml")
    cj.spec.schedule = "*/1 * * *"
    assert errors(cj) == [
        'spec.schedule: Invalid value: "*/1 * * *": expected exactly 5 fields, found 4: [*/1 * * *]'
    ]
    cj = load("cronjob-hello.yaml")
    cj.spec.timeZone = "Mars/Olympus_Mons"
    cj.spec.concurrencyPolicy = "Sometimes"
    cj.spec.jobTemplate.spec.template.spec.restartPolicy = "Always"
    assert fields(cj) == ["spec.timeZone", "spec.concurrencyPolicy", "spec.jobTemplate.spec.template.spec.restartPolicy"]
    cj = load("cronjob-hello.yaml")
    cj.spec.timeZone = "Europe/Berlin"
    cj.spec.schedule = "TZ=UTC 0 * * * *"
    assert fields(cj) == ["spec.schedule"]
    cj.metadata.name = "x" * 53
    assert "metadata.name" in fields(cj)


def test_hpa_rules() -> None:
    hpa = load("hpa-php-apache.yaml")
    hpa.spec.minReplicas, hpa.spec.maxReplicas = 5, 2
    assert errors(hpa) == ["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"]
    hpa = load("hpa-php-apache.yaml")
    hpa.spec.minReplicas = 0
    hpa.spec.metrics[0].resource = None
    hpa.spec.metrics[1].type = "Custom"
    hpa.spec.behavior.scaleDown.policies[0].periodSeconds = 3600
    assert fields(hpa) == [
        "spec.minReplicas",
        "spec.metrics[0].resource",
        "spec.metrics[1].type",
        "spec.behavior.scaleDown.policies[0].periodSeconds",
    ]
    hpa = load("hpa-php-apache.yaml")
    hpa.spec.scaleTargetRef.name = ""
    hpa.spec.metrics[0].resource.target.averageUtilization = 0
    assert fields(hpa) == ["spec.scaleTargetRef.name", "spec.metrics[0].resource.target.averageUtilization"]


def test_rbac_rules() -> None:
    rb = load("rbac.yaml", "RoleBinding")
    rb.roleRef.kind = "User"
    rb.roleRef.apiGroup = "rbac"
    assert errors(rb) == [
        'roleRef.apiGroup: Unsupported value: "rbac": supported values: "rbac.authorization.k8s.io"',
        'roleRef.kind: Unsupported value: "User": supported values: "Role", "ClusterRole"',
    ]
    crb = load("rbac.yaml", "ClusterRoleBinding")
    crb.roleRef.kind = "Role"
    crb.roleRef.name = ""
    crb.subjects[1].namespace = None
    assert errors(crb) == [
        'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"',
        "roleRef.name: Required value",
        "subjects[1].namespace: Required value",
    ]
    role = Role.from_dict({"metadata": {"name": "r"}, "rules": [{"verbs": [], "nonResourceURLs": ["/healthz"]},
                                                                  {"verbs": ["get"]}]})
    assert fields(role) == ["rules[0].verbs", "rules[0].nonResourceURLs", "rules[1].apiGroups", "rules[1].resources"]
    slash = ClusterRole.from_dict({"metadata": {"name": "system:a/b"}})
    assert errors(slash) == ['metadata.name: Invalid value: "system:a/b": may not contain \'/\'']


def test_endpoint_slice_storage_class_lease_rules() -> None:
    es = load("endpointslice.yaml")
    es.addressType = "IPv5"
    assert errors(es) == ['addressType: Unsupported value: "IPv5": supported values: "IPv4", "IPv6", "FQDN"']
    es = load("endpointslice.yaml")
    es.endpoints[0].addresses = ["fd00::1"]
    es.ports[0].protocol = "HTTP"
    assert errors(es) == [
        'endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address',
        'ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
    ]
    sc = load("storageclass.yaml")
    sc.reclaimPolicy = "Recycle"
    assert errors(sc) == ['reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"']
    lease = load("lease.yaml")
    lease.spec.leaseDurationSeconds = 0
    assert errors(lease) == ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]


def test_label_selector_matching() -> None:
    from kcore.api.meta import LabelSelector

    sel = LabelSelector.from_dict({"matchLabels": {"a": "1"}, "matchExpressions": [
        {"key": "b", "operator": "NotIn", "values": ["x"]}, {"key": "c", "operator": "Exists"},
        {"key": "d", "operator": "DoesNotExist"}]})
    assert label_selector_matches(sel, {"a": "1", "c": ""})
    assert not label_selector_matches(sel, {"a": "1", "c": "", "b": "x"})
    assert not label_selector_matches(sel, {"a": "1"})
    assert not label_selector_matches(sel, {"a": "1", "c": "", "d": "y"})
    assert label_selector_matches(LabelSelector(), {})
