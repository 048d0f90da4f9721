"""The kinds registry: every built-in kind once, kubectl-style name resolution, discovery data."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel

from kcore.api import KindInfo, KindRegistry, KubeObject, builtin_registry
from kcore.api.apps_v1 import Deployment, DeploymentList
from kcore.api.registry import DEFAULT_VERBS, version_priority

EXPECTED = {
    # kind: (apiVersion, plural, namespaced, short names)
    "Namespace": ("v1", "namespaces", False, ("ns",)),
    "Node": ("v1", "nodes", False, ("no",)),
    "Pod": ("v1", "pods", True, ("po",)),
    "PodTemplate": ("v1", "podtemplates", True, ()),
    "Service": ("v1", "services", True, ("svc",)),
    "Endpoints": ("v1", "endpoints", True, ("ep",)),
    "ConfigMap": ("v1", "configmaps", True, ("cm",)),
    "Secret": ("v1", "secrets", True, ()),
    "ServiceAccount": ("v1", "serviceaccounts", True, ("sa",)),
    "Event": ("v1", "events", True, ("ev",)),
    "PersistentVolume": ("v1", "persistentvolumes", False, ("pv",)),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims", True, ("pvc",)),
    "ResourceQuota": ("v1", "resourcequotas", True, ("quota",)),
    "LimitRange": ("v1", "limitranges", True, ("limits",)),
    "ReplicationController": ("v1", "replicationcontrollers", True, ("rc",)),
    "Binding": ("v1", "bindings", True, ()),
    "Deployment": ("apps/v1", "deployments", True, ("deploy",)),
    "ReplicaSet": ("apps/v1", "replicasets", True, ("rs",)),
    "StatefulSet": ("apps/v1", "statefulsets", True, ("sts",)),
    "DaemonSet": ("apps/v1", "daemonsets", True, ("ds",)),
    "ControllerRevision": ("apps/v1", "controllerrevisions", True, ()),
    "Job": ("batch/v1", "jobs", True, ()),
    "CronJob": ("batch/v1", "cronjobs", True, ("cj",)),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers", True, ("hpa",)),
    "StorageClass": ("storage.k8s.io/v1", "storageclasses", False, ("sc",)),
    "Lease": ("coordination.k8s.io/v1", "leases", True, ()),
    "EndpointSlice": ("discovery.k8s.io/v1", "endpointslices", True, ()),
    "Role": ("rbac.authorization.k8s.io/v1", "roles", True, ()),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", "clusterroles", False, ()),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", True, ()),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings", False, ()),
    "SelfSubjectAccessReview": ("authorization.k8s.io/v1", "selfsubjectaccessreviews", False, ()),
}
IN_CATEGORY_ALL = {"Pod", "Service", "ReplicationController", "Deployment", "ReplicaSet", "StatefulSet",
                   "DaemonSet", "Job", "CronJob", "HorizontalPodAutoscaler"}


@pytest.fixture(scope="module")
def registry() -> KindRegistry:
    return builtin_registry()


def test_every_builtin_kind_is_registered_exactly_once(registry: KindRegistry) -> None:
    kinds = [info.kind for info in registry.kinds()]
    assert sorted(kinds) == sorted(EXPECTED)
    assert len(kinds) == len(set(kinds))
    for info in registry.kinds():
        api_version, plural, namespaced, short_names = EXPECTED[info.kind]
        assert (info.api_version, info.plural, info.namespaced, info.short_names) == (
            api_version, plural, namespaced, short_names), info.kind
        assert info.singular == info.kind.lower()
        assert ("all" in info.categories) == (info.kind in IN_CATEGORY_ALL), info.kind


def test_models_defaulters_and_validators_are_wired(registry: KindRegistry) -> None:
    for info in registry.kinds():
        assert issubclass(info.model, KubeObject)
        assert info.model.__name__ == info.kind
        assert info.validator is not None, info.kind
        if info.list_model is not None:
            assert info.list_model.__name__ == info.list_kind
            assert issubclass(info.list_model, BaseModel)
    deployment = registry.get("apps/v1", "Deployment")
    assert deployment.model is Deployment and deployment.list_model is DeploymentList
    assert deployment.defaulter is not None and deployment.defaulter.__name__ == "default_deployment"
    assert registry.get("v1", "Pod").defaulter.__name__ == "default_pod"
    assert registry.get("coordination.k8s.io/v1", "Lease").defaulter is None


def test_subresources_and_verbs(registry: KindRegistry) -> None:
    pods = registry.get("v1", "Pod")
    assert set(pods.subresources) >= {"status", "binding", "log", "eviction", "exec", "attach", "portforward",
                                      "ephemeralcontainers"}
    for name in ("Deployment", "ReplicaSet", "StatefulSet"):
        assert registry.get("apps/v1", name).subresources == ("status", "scale")
    assert registry.get("v1", "ReplicationController").has_subresource("scale")
    assert registry.get("apps/v1", "DaemonSet").subresources == ("status",)
    assert registry.get("batch/v1", "Job").subresources == ("status",)
    assert registry.get("v1", "ConfigMap").subresources == ()
    binding = registry.get("v1", "Binding")
    assert binding.verbs == ("create",) and binding.list_model is None
    assert "deletecollection" not in registry.get("v1", "Namespace").verbs
    assert registry.get("v1", "Secret").verbs == DEFAULT_VERBS


def test_key_prefixes_are_unique_and_etcd_shaped(registry: KindRegistry) -> None:
    prefixes = [info.key_prefix for info in registry.kinds()]
    assert len(prefixes) == len(set(prefixes))
    assert registry.get("v1", "Pod").key_prefix == "/registry/core/pods/"
    assert registry.get("apps/v1", "Deployment").key_prefix == "/registry/apps/deployments/"
    # No prefix is a prefix of another, so a watch on one never sees another kind's keys.
    for a in prefixes:
        for b in prefixes:
            assert a == b or not b.startswith(a)


def test_kind_info_derived_names(registry: KindRegistry) -> None:
    pod = registry.get("v1", "Pod")
    assert (pod.api_version, pod.group_version, pod.list_kind) == ("v1", "v1", "PodList")
    hpa = registry.get("autoscaling/v2", "HorizontalPodAutoscaler")
    assert (hpa.group, hpa.version, hpa.api_version) == ("autoscaling", "v2", "autoscaling/v2")
    rb = registry.get("rbac.authorization.k8s.io/v1", "RoleBinding")
    assert rb.api_version == "rbac.authorization.k8s.io/v1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rb.plural = "x"  # type: ignore[misc]


def test_get_and_by_resource(registry: KindRegistry) -> None:
    assert registry.by_resource("apps", "v1", "deployments").kind == "Deployment"
    assert registry.by_resource("", "v1", "pods").kind == "Pod"
    assert registry.by_resource("apps", "v1", "pods") is None
    assert registry.by_resource("autoscaling", "v1", "horizontalpodautoscalers") is None
    with pytest.raises(KeyError, match='no kind "Deployment" is registered for version "v1"'):
        registry.get("v1", "Deployment")
    with pytest.raises(KeyError, match="Widget"):
        registry.get("apps/v1", "Widget")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("po", "Pod"), ("pods", "Pod"), ("pod", "Pod"), ("Pod", "Pod"), ("PODS", "Pod"),
        ("deploy", "Deployment"), ("deployments.apps", "Deployment"), ("deployment.v1.apps", "Deployment"),
        ("Deployment", "Deployment"), ("svc", "Service"), ("ns", "Namespace"), ("no", "Node"),
        ("ep", "Endpoints"), ("cm", "ConfigMap"), ("sa", "ServiceAccount"), ("ev", "Event"), ("pv", "PersistentVolume"),
        ("pvc", "PersistentVolumeClaim"), ("quota", "ResourceQuota"), ("limits", "LimitRange"),
        ("rc", "ReplicationController"), ("rs", "ReplicaSet"), ("sts", "StatefulSet"), ("ds", "DaemonSet"),
        ("cj", "CronJob"), ("hpa", "HorizontalPodAutoscaler"), ("sc", "StorageClass"), ("jobs.batch", "Job"),
        ("leases.coordination.k8s.io", "Lease"), ("endpointslices", "EndpointSlice"),
        ("clusterrolebindings.rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("roles.v1.rbac.authorization.k8s.io", "Role"), ("controllerrevisions", "ControllerRevision"),
    ],
)
def test_resolve_like_kubectl(registry: KindRegistry, name: str, kind: str) -> None:
    assert [info.kind for info in registry.resolve(name)] == [kind]


def test_resolve_misses(registry: KindRegistry) -> None:
    assert registry.resolve("widgets") == []
    assert registry.resolve("deployments.batch") == []
    assert registry.resolve("") == []


def test_group_versions(registry: KindRegistry) -> None:
    assert registry.group_versions() == {
        "": ["v1"],
        "apps": ["v1"],
        "batch": ["v1"],
        "autoscaling": ["v2"],
        "authorization.k8s.io": ["v1"],
        "storage.k8s.io": ["v1"],
        "coordination.k8s.io": ["v1"],
        "discovery.k8s.io": ["v1"],
        "rbac.authorization.k8s.io": ["v1"],
    }


def _info(**changes: Any) -> KindInfo:
    base = KindInfo(group="example.com", version="v1alpha1", kind="Widget", plural="widgets", singular="widget",
                    namespaced=True, model=Deployment, list_model=DeploymentList, short_names=("wd",))
    return dataclasses.replace(base, **changes)


def test_duplicate_registration_is_rejected(registry: KindRegistry) -> None:
    fresh = builtin_registry()
    with pytest.raises(ValueError, match="Deployment in apps/v1 is already registered"):
        fresh.register(fresh.get("apps/v1", "Deployment"))
    with pytest.raises(ValueError, match="resource deployments in apps/v1"):
        fresh.register(dataclasses.replace(fresh.get("apps/v1", "Deployment"), kind="Deployment2"))


def test_registries_are_independent_and_extensible() -> None:
    mine = builtin_registry()
    mine.register(_info())
    mine.register(_info(version="v1"))
    mine.register(_info(version="v2beta1"))
    assert mine.resolve("wd")[0].version == "v1"  # preferred version first
    assert mine.resolve("widgets.example.com")[0].kind == "Widget"
    assert mine.group_versions()["example.com"] == ["v1", "v2beta1", "v1alpha1"]
    assert builtin_registry().resolve("wd") == []
    assert len(mine.kinds()) == len(builtin_registry().kinds()) + 3


def test_version_priority_follows_kubernetes() -> None:
    versions = ["v1alpha1", "foo", "v1", "v11alpha2", "v2beta1", "v1beta2", "v2", "v10beta3", "bar"]
    assert sorted(versions, key=version_priority) == [
        "v2", "v1", "v10beta3", "v2beta1", "v1beta2", "v11alpha2", "v1alpha1", "bar", "foo"
    ]


def _minimal(model: type) -> dict[str, Any]:
    """The smallest valid body of a kind: its required fields with their simplest values."""
    required: dict[str, dict[str, Any]] = {
        "Binding": {"target": {"name": "node-1"}},
        "Event": {"involvedObject": {"kind": "Pod", "name": "p"}},
        "ControllerRevision": {"revision": 1},
        "StorageClass": {"provisioner": "example.com/p"},
        "EndpointSlice": {"addressType": "IPv4"},
        "RoleBinding": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}},
        "ClusterRoleBinding": {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"}},
        "SelfSubjectAccessReview": {"spec": {"resourceAttributes": {"verb": "get", "resource": "pods"}}},
    }
    return required.get(model.__name__, {})


def test_every_model_round_trips_a_minimal_instance(registry: KindRegistry) -> None:
    for info in registry.kinds():
        required_fields = {n for n, f in info.model.model_fields.items() if f.is_required()}
        assert required_fields == set(_minimal(info.model)), info.kind
        body = {"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": "x"}, **_minimal(info.model)}
        obj = info.model.from_dict(body)
        assert obj.to_dict() == body, info.kind
        assert info.model.from_json(obj.to_json()).to_dict() == body, info.kind
        if info.list_model is not None:
            listing = {"apiVersion": info.api_version, "kind": info.list_kind,
                       "metadata": {"resourceVersion": "7"}, "items": [body]}
            assert info.list_model.from_dict(listing).to_dict() == listing, info.list_kind


def test_builtin_registry_is_cheap() -> None:
    import time

    builtin_registry()
    start = time.perf_counter()
    for _ in range(100):
        builtin_registry()
    assert (time.perf_counter() - start) / 100 < 0.005
